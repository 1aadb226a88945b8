"""Weight initialisers, in place, as in ``torch.nn.init`` (drawn from minigan's seeded generators).

Every function takes a Tensor (a Parameter) or the raw array behind one (``m.weight.data``, as
in PyTorch's DCGAN tutorial: ``nn.init.normal_(m.weight.data, 0.0, 0.02)``), fills it in place
and returns what it was given. Names, argument names and defaults are PyTorch's.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Tensor, mark_modified
from ..random import default_generator

__all__ = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_",
           "zeros_", "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_", "dcgan_init_"]

_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")


def _array(tensor, write: bool = True):
    """The array to fill: a Tensor's data, or the array itself. Filling a Tensor counts as an
    in-place change (a graph that used its old values can no longer backward)."""
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    if write and isinstance(tensor, Tensor):
        mark_modified(tensor)
    if not (isinstance(arr, np.ndarray) or backend.is_cupy_array(arr)):
        raise TypeError(f"nn.init expects a Tensor, a Parameter or its .data array, got "
                        f"{type(tensor).__name__}")
    if arr.dtype.kind != "f":
        raise TypeError(f"nn.init fills floating-point tensors, got dtype {arr.dtype}")
    return arr


def _fill(tensor, values):
    arr = _array(tensor)
    arr[...] = values.astype(arr.dtype, copy=False)
    return tensor


def _gen(arr, generator):
    device = backend.device_of(arr)
    gen = generator if generator is not None else default_generator(device)
    if gen.device != device:
        raise backend.DeviceError(f"nn.init: generator on {gen.device} but tensor on {device}")
    return gen


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table): 1 for linear layers and
    sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope
    ``param``, default 0.01), 3/4 for selu."""
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    shape = _array(tensor, write=False).shape
    if len(shape) < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {shape})")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    arr = _array(tensor)
    u = _gen(arr, generator).uniform(arr.shape, dtype=arr.dtype)
    return _fill(tensor, u * (b - a) + a)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    arr = _array(tensor)
    n = _gen(arr, generator).normal(arr.shape, dtype=arr.dtype)
    return _fill(tensor, n * std + mean)


def _erfinv(y, xp):
    """erf^-1 by Giles' approximation ("Approximating the erfinv function", 2010): relative
    error below 2e-7 for |y| <= 1 - 1e-7 (callers clip to that range)."""
    y = y.astype(np.float64)
    w = -xp.log((1.0 - y) * (1.0 + y))
    central = w < 5.0
    wc = w - 2.5
    p1 = 2.81022636e-08
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
              -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
        p1 = c + p1 * wc
    wt = xp.sqrt(xp.maximum(w, 5.0)) - 3.0
    p2 = -0.000200214257
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
              0.00943887047, 1.00167406, 2.83297682):
        p2 = c + p2 * wt
    return xp.where(central, p1, p2) * y


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None):
    """Fill with N(mean, std^2) truncated to [a, b] (PyTorch's inverse-CDF method: uniform
    samples between the CDF values of a and b, mapped back through erf^-1, then clamped)."""
    arr = _array(tensor)
    xp = backend.get_array_module(arr)

    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
    u = _gen(arr, generator).uniform(arr.shape, dtype=np.float64)
    y = (2 * lo - 1) + u * (2 * hi - 2 * lo)
    y = xp.clip(y, -1 + 1e-7, 1 - 1e-7)  # |x - mean| < 5.3 std: the approximation's range
    x = _erfinv(y, xp) * (std * math.sqrt(2.0)) + mean
    return _fill(tensor, xp.clip(x, a, b))


def constant_(tensor, val: float):
    """Fill with ``val``."""
    _array(tensor)[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def eye_(tensor):
    """Fill a 2-D tensor with the identity (ones on the diagonal)."""
    arr = _array(tensor)
    if arr.ndim != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported, got shape {arr.shape}")
    xp = backend.get_array_module(arr)
    arr[...] = xp.eye(arr.shape[0], arr.shape[1], dtype=arr.dtype)
    return tensor


def dirac_(tensor, groups: int = 1):
    """Fill a 3-, 4- or 5-D conv weight so that the convolution is the identity (per group)."""
    arr = _array(tensor)
    if arr.ndim not in (3, 4, 5):
        raise ValueError(f"Only tensors with 3, 4, or 5 dimensions are supported, got shape "
                         f"{arr.shape}")
    if arr.shape[0] % groups != 0:
        raise ValueError(f"dim 0 ({arr.shape[0]}) must be divisible by groups ({groups})")
    out_per_group = arr.shape[0] // groups
    arr[...] = 0
    centre = tuple(k // 2 for k in arr.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, arr.shape[1])):
            arr[(g * out_per_group + d, d) + centre] = 1
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    """U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    if _array(tensor, write=False).size == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    """N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    if _array(tensor, write=False).size == 0:
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain: float = 1, generator=None):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal sample (signs fixed by
    R's diagonal), times ``gain``; dimensions after the first are flattened."""
    arr = _array(tensor)
    if arr.ndim < 2:
        raise ValueError(f"Only tensors with 2 or more dimensions are supported, got shape "
                         f"{arr.shape}")
    if arr.size == 0:
        return tensor
    xp = backend.get_array_module(arr)
    rows = arr.shape[0]
    cols = arr.size // rows
    flat = _gen(arr, generator).normal((rows, cols), dtype=np.float64)
    if rows < cols:
        flat = flat.T
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (q * gain).reshape(arr.shape))


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
        if module.bias is not None:
            zeros_(module.bias)
    return module
