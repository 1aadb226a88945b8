"""More of ``torch.nn.functional``: ``rms_norm``, ``local_response_norm``, ``gumbel_softmax``,
bilinear resizing (``upsample_bilinear``, ``bilinear_interpolate``) and
``upsample_nearest``.

Each is a composition of minigan's differentiable ops (mean, pow, pad, avg_pool2d, softmax,
getitem with index arrays), so gradients of every order are exact. Constants (gumbel noise,
interpolation indices and weights) are built on the input's device.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from .. import backend
from ..autograd import Tensor
from . import basic as B
from .basic import _float_input, _int
from .conv import avg_pool2d
from .loss import softmax
from .normalization import _affine, pad
from .resize import interpolate, output_size

__all__ = ["bilinear_interpolate", "gumbel_softmax", "local_response_norm", "rms_norm",
           "upsample_bilinear", "upsample_nearest"]


def _normalized_shape(fn: str, x: Tensor, normalized_shape) -> tuple:
    """``normalized_shape`` (an int or a sequence of ints) as a tuple that must end x's shape."""
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape,
                                                                          (bool, np.bool_)):
        normalized_shape = (normalized_shape,)
    try:
        shape = tuple(_int(fn, "normalized_shape", s) for s in normalized_shape)
    except TypeError:
        raise TypeError(f"{fn}: normalized_shape must be an int or a sequence of ints, got "
                        f"{normalized_shape!r}") from None
    if not shape:
        raise RuntimeError(f"{fn}: normalized_shape must have at least one element, got ()")
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise RuntimeError(f"{fn}: given normalized_shape={list(shape)}, expected input with "
                           f"shape [*, {', '.join(map(str, shape))}], but got input of size "
                           f"{list(x.shape)}")
    return shape


def rms_norm(input, normalized_shape, weight=None, eps=None) -> Tensor:
    """``F.rms_norm``: ``x / sqrt(mean(x^2 over the last len(normalized_shape) dims) + eps)``,
    times ``weight`` (of shape ``normalized_shape``) when given. ``eps=None`` is the machine
    epsilon of the computation type, as torch's: float32's for float16/float32 input,
    float64's for float64."""
    x = _float_input("rms_norm", input)
    shape = _normalized_shape("rms_norm", x, normalized_shape)
    w = _affine("rms_norm", "weight", weight, x, shape, "normalized_shape")
    if eps is None:
        eps = float(np.finfo(np.float64 if x.dtype == np.float64 else np.float32).eps)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    half = x.dtype == np.float16
    xc = B.astype(x, np.float32) if half else x  # float16 is computed in float32, as torch's
    y = xc * B.pow(B.mean(xc * xc, axes, keepdims=True) + eps, -0.5)
    if half:
        y = B.astype(y, np.float16)
    return y if w is None else y * w


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """``F.local_response_norm``: ``x / (k + alpha * mean(x^2 over a window of `size`
    channels))^beta`` for input (N, C, *) with at least 3 dims. The window of channel c
    spans channels c - size // 2 .. c + (size - 1) // 2; channels past the edges count as
    zeros (the mean is always over `size`), as in torch."""
    x = _float_input("local_response_norm", input)
    size = _int("local_response_norm", "size", size)
    if size < 1:
        raise ValueError(f"local_response_norm: size must be positive, got {size}")
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: expected 3D or higher dimensionality input "
                         f"(got {x.ndim} dimensions, shape {tuple(x.shape)})")
    if x.data.size == 0:
        return x
    n, c = x.shape[:2]
    # the channels as the rows of one (C, positions) image per sample: a (size, 1) average
    # pool over the zero-padded rows is the windowed mean
    sq = B.reshape(x * x, (n, 1, c, -1))
    sq = pad(sq, (0, 0, size // 2, (size - 1) // 2))
    div = B.reshape(avg_pool2d(sq, (size, 1), stride=1), x.shape)
    return x / B.pow(div * alpha + k, beta)


def gumbel_softmax(logits, tau: float = 1, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1, *, generator=None) -> Tensor:
    """``F.gumbel_softmax``: ``softmax((logits + g) / tau, dim)`` with g ~ Gumbel(0, 1) drawn
    from the device's generator (or ``generator``). With ``hard``, the one-hot of the argmax
    in the forward and the soft sample's gradient (straight-through: ``y_hard -
    y_soft.detach() + y_soft``). ``eps`` is deprecated and unused, as in torch."""
    x = _float_input("gumbel_softmax", logits)
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    from ..random import default_generator  # the generators sit beside the ops
    gen = generator if generator is not None else default_generator(x.device)
    if gen.device != x.device:
        raise backend.DeviceError(f"gumbel_softmax: generator on {gen.device} but logits on "
                                  f"{x.device}")
    xp = backend.get_array_module(x.data)
    u = gen.uniform(x.shape, dtype=x.dtype)
    # Exp(1) = -log(1 - U), kept above 0 so that -log of it (a Gumbel sample) is finite
    e = xp.maximum(-xp.log1p(-u), np.finfo(x.dtype).tiny)
    y_soft = softmax((x + Tensor((-xp.log(e)).astype(x.dtype, copy=False))) / tau, dim)
    if not hard:
        return y_soft
    d = B._dim("gumbel_softmax", dim, x.ndim)
    index = xp.argmax(y_soft.data, axis=d, keepdims=True)
    classes = xp.arange(x.shape[d]).reshape([-1 if i == d else 1 for i in range(x.ndim)])
    y_hard = Tensor((classes == index).astype(x.dtype))
    return y_hard - y_soft.detach() + y_soft


# ----------------------------------------------------------------------------- resizing

@functools.lru_cache(maxsize=256)
def _linear_plan(in_size: int, out_size: int, align_corners: bool, scale, dtype: str,
                 device: str):
    """(i0, i1, l0, l1) for one axis, torch's linear rule: output position j reads source
    src = j * (in - 1) / (out - 1) with ``align_corners``, else max((j + 0.5) r - 0.5, 0)
    with r = 1 / scale (the given factor) or in / out; i0 = floor(src), i1 = min(i0 + 1,
    in - 1), weights l1 = src - i0 and l0 = 1 - l1, computed in the input's float type as
    torch's kernels do. An axis that keeps its size is copied (i0 = j, l1 = 0). Index arrays
    and weights on ``device``; cached, as sizes repeat."""
    ft = np.dtype(dtype).type
    j = np.arange(out_size, dtype=ft)
    if in_size == out_size:
        # an axis whose size does not change is copied, whatever the factor (torch's CPU
        # kernels skip it: floor(3 * 1.3) = 3 rows stay the input's rows, not a blend at 1/1.3)
        src = j
    elif align_corners:
        r = ft((in_size - 1) / (out_size - 1)) if out_size > 1 else ft(0)
        src = j * r
    else:
        r = ft(1.0 / scale) if scale is not None and scale > 0 else \
            ft(in_size) / ft(out_size)
        src = np.maximum((j + ft(0.5)) * r - ft(0.5), ft(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    l1 = (src - i0.astype(ft)).astype(ft)
    l0 = (ft(1) - l1).astype(ft)
    return tuple(backend.to_device(a, device) for a in (i0, i1, l0, l1))


def bilinear_interpolate(input, size=None, scale_factor=None, align_corners: bool = False,
                         recompute_scale_factor=None) -> Tensor:
    """``F.interpolate(input, size, scale_factor, mode='bilinear', align_corners)`` on
    (N, C, H, W) input: each output pixel is the bilinear blend of its four source pixels by
    torch's rule (see ``_linear_plan``). Rows are blended first, then columns: two gathers by
    index arrays, linear in x, so every derivative is exact."""
    fn = "bilinear_interpolate"
    x = _float_input(fn, input)
    if x.ndim != 4:
        raise ValueError(f"{fn}: bilinear mode takes a 4-D input (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    in_hw = tuple(x.shape[2:])
    out_hw, scales = output_size(fn, x, size, scale_factor, recompute_scale_factor)
    if any(i == 0 for i in in_hw):
        raise ValueError(f"{fn}: input of shape {tuple(x.shape)} has an empty spatial dim")
    dev, dt = str(x.device), x.dtype.name
    r0, r1, a0, a1 = _linear_plan(in_hw[0], out_hw[0], bool(align_corners), scales[0], dt, dev)
    c0, c1, b0, b1 = _linear_plan(in_hw[1], out_hw[1], bool(align_corners), scales[1], dt, dev)
    rows = (B.getitem(x, (slice(None), slice(None), r0)) * Tensor(a0.reshape(-1, 1))
            + B.getitem(x, (slice(None), slice(None), r1)) * Tensor(a1.reshape(-1, 1)))
    return (B.getitem(rows, (Ellipsis, c0)) * Tensor(b0)
            + B.getitem(rows, (Ellipsis, c1)) * Tensor(b1))


def upsample_bilinear(input, size=None, scale_factor=None) -> Tensor:
    """torch's (deprecated) ``F.upsample_bilinear``: bilinear resizing with
    ``align_corners=True``."""
    return bilinear_interpolate(input, size, scale_factor, align_corners=True)


def upsample_nearest(input, size=None, scale_factor=None) -> Tensor:
    """torch's (deprecated) ``F.upsample_nearest``: ``interpolate(..., mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")
