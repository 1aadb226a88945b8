"""torch's channel-wise dropouts and alpha dropouts.

Each draws its mask from minigan's counter-based generators (the device's default one, or
``generator=``), so ``minigan.manual_seed`` makes a run repeatable on either device. The mask is
a constant of the graph: y = x * mask (+ b for the alpha forms) is linear in x, so every
derivative is exact. As in torch, ``training=False``, ``p = 0`` and empty inputs return the
input itself; ``p = 1`` returns ``x * 0``. ``inplace`` is accepted for PyTorch code and
ignored: the result is always a new tensor.
"""
from __future__ import annotations

import warnings

from .. import backend
from ..autograd import Tensor, as_tensor
from .basic import add, mul, reshape

__all__ = ["alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout"]

# torch's constants: SELU's -alpha * scale, the value a dropped unit takes before the affine
# correction that keeps zero mean and unit variance
_ALPHA = 1.7580993408473766


def _check_p(p) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def _float(fn: str, input) -> Tensor:
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating-point input, got dtype {x.dtype}")
    return x


def _generator(fn: str, x: Tensor, generator):
    from ..random import default_generator  # the generators sit beside the ops
    gen = generator if generator is not None else default_generator(x.device)
    if gen.device != x.device:
        raise backend.DeviceError(f"{fn}: generator on {gen.device} but input on {x.device}")
    return gen


def _noise_shape(fn: str, x: Tensor, feature: bool) -> tuple:
    """One draw per (sample, channel) for the feature forms, per element otherwise."""
    if not feature:
        return x.shape
    if x.ndim < 2:
        raise ValueError(f"{fn}: feature dropout requires at least 2 dimensions in the input, "
                         f"got shape {tuple(x.shape)}")
    return x.shape[:2] + (1,) * (x.ndim - 2)


def _dropout(fn: str, x: Tensor, p: float, training: bool, feature: bool, alpha: bool,
             generator) -> Tensor:
    """torch's _dropout_impl: inverted dropout (x * keep / (1 - p)), or alpha dropout
    (a * (x * keep + alpha' (1 - keep)) + b with torch's a and b), per element or per channel."""
    if p == 0.0 or not training or x.size == 0:
        return x
    if p == 1.0:
        return mul(x, 0.0)  # (NaN stays NaN, as torch's input * zeros)
    shape = _noise_shape(fn, x, feature)
    gen = _generator(fn, x, generator)
    if not alpha:
        return mul(x, Tensor(gen.dropout_mask(shape, p, x.dtype)))
    keep = gen.bernoulli_mask(shape, 1.0 - p, x.dtype)  # 1 with probability 1 - p
    a = 1.0 / (((_ALPHA * _ALPHA * p + 1) * (1 - p)) ** 0.5)
    b = (keep - 1) * (_ALPHA * a) + _ALPHA * a * p  # torch's order of operations
    return add(mul(x, Tensor(keep * a)), Tensor(b.astype(x.dtype, copy=False)))


def _unbatched(fn: str, x: Tensor, p: float, training: bool, generator) -> Tensor:
    """Channel dropout of an input without a batch dimension: as one sample of a batch."""
    if p == 0.0 or not training or x.size == 0:
        return x
    y = _dropout(fn, reshape(x, (1,) + x.shape), p, training, True, False, generator)
    return reshape(y, x.shape)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator=None) -> Tensor:
    """torch's ``F.dropout1d``: zero whole channels of (N, C, L) or (C, L) with probability p,
    scaling the rest by 1/(1-p)."""
    p = _check_p(p)
    x = _float("dropout1d", input)
    if x.ndim not in (2, 3):
        raise ValueError(f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape "
                         f"{tuple(x.shape)}")
    if x.ndim == 2:
        return _unbatched("dropout1d", x, p, training, generator)
    return _dropout("dropout1d", x, p, training, True, False, generator)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator=None) -> Tensor:
    """torch's ``F.dropout2d``: zero whole channels of (N, C, H, W) with probability p, scaling
    the rest by 1/(1-p). As torch 2.13 does, a 3-D input is read as (N, C, L) (channel-wise 1-D
    dropout) with a warning, and other ranks are deprecated with a warning."""
    p = _check_p(p)
    x = _float("dropout2d", input)
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is "
                      "deprecated and will result in an error in a future release. To retain "
                      "the behavior and silence this warning, please use dropout instead. Note "
                      "that dropout2d exists to provide channel-wise dropout on inputs with 2 "
                      "spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 3D or 4D inputs).", stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim. This behavior will change in "
                      "a future release to interpret the input as one without a batch "
                      "dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout "
                      "behavior, please switch to using dropout1d instead.", stacklevel=2)
    return _dropout("dropout2d", x, p, training, True, False, generator)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator=None) -> Tensor:
    """torch's ``F.dropout3d``: zero whole channels of (N, C, D, H, W) or (C, D, H, W) with
    probability p, scaling the rest by 1/(1-p); other ranks are deprecated with a warning
    (and, as in torch, read as unbatched)."""
    p = _check_p(p)
    x = _float("dropout3d", input)
    if x.ndim not in (4, 5):
        warnings.warn(f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is "
                      "deprecated and will result in an error in a future release. To retain "
                      "the behavior and silence this warning, please use dropout instead. Note "
                      "that dropout3d exists to provide channel-wise dropout on inputs with 3 "
                      "spatial dimensions, a channel dimension, and an optional batch dimension "
                      "(i.e. 4D or 5D inputs).", stacklevel=2)
    if x.ndim == 5:
        return _dropout("dropout3d", x, p, training, True, False, generator)
    return _unbatched("dropout3d", x, p, training, generator)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False, *,
                  generator=None) -> Tensor:
    """torch's ``F.alpha_dropout`` (note: ``training`` defaults to False, as there): each
    element is kept with probability 1-p, a dropped one set to SELU's negative saturation, and
    the result scaled and shifted so that zero mean and unit variance are kept."""
    p = _check_p(p)
    x = _float("alpha_dropout", input)
    return _dropout("alpha_dropout", x, p, training, False, True, generator)


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False,
                          *, generator=None) -> Tensor:
    """torch's ``F.feature_alpha_dropout`` (``training`` defaults to False): alpha dropout of
    whole channels (one draw per (sample, channel); at least 2-D input)."""
    p = _check_p(p)
    x = _float("feature_alpha_dropout", input)
    return _dropout("feature_alpha_dropout", x, p, training, True, True, generator)
