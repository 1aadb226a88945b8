"""Weight initialisers, in place, as in ``torch.nn.init`` (drawn from minigan's seeded generators)."""
from __future__ import annotations

import math

from ..autograd import Tensor
from ..random import default_generator


def _fill(t: Tensor, values) -> Tensor:
    t.data[...] = values.astype(t.dtype, copy=False)
    return t


def _gen(t: Tensor, generator):
    return generator if generator is not None else default_generator(t.device)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended std gain for a nonlinearity (PyTorch's table)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got "
                         f"shape {t.shape}")
    receptive = 1
    for s in t.shape[2:]:
        receptive *= s
    return t.shape[1] * receptive, t.shape[0] * receptive


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    u = _gen(t, generator).uniform(t.shape, dtype=t.dtype)
    return _fill(t, u * (b - a) + a)


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    n = _gen(t, generator).normal(t.shape, dtype=t.dtype)
    return _fill(t, n * std + mean)


def constant_(t: Tensor, value: float) -> Tensor:
    t.data[...] = value
    return t


def zeros_(t: Tensor) -> Tensor:
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound, generator)


def xavier_normal_(t: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _fan(t: Tensor, mode: str) -> int:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    return normal_(t, 0.0, std, generator)


def dcgan_init_(module, std: float = 0.02, generator=None):
    """Radford et al.'s initialisation: conv and linear weights N(0, std), biases 0, and
    batch-norm weights N(1, std) with biases 0. Apply with ``model.apply(dcgan_init_)``."""
    from .layers import BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Linear

    if isinstance(module, (Conv2d, ConvTranspose2d, Linear)):
        normal_(module.weight, 0.0, std, generator)
        if module.bias is not None:
            zeros_(module.bias)
    elif isinstance(module, (BatchNorm1d, BatchNorm2d)) and module.weight is not None:
        normal_(module.weight, 1.0, std, generator)
        zeros_(module.bias)
    return module
