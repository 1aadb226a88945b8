"""Resizing and padding: PyTorch's ``interpolate`` (nearest) and end-padding for
``Conv2d(padding='same')`` with an even total padding.

Both are compositions of differentiable functions (getitem, concat, the nearest upsampling
kernel), so derivatives of every order are exact.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import backend
from ..autograd import Tensor, as_tensor
from . import basic as B
from .conv import upsample_nearest2d

_UNSUPPORTED_MODES = ("linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")


def _nearest_source_index(in_size: int, out_size: int, scale) -> np.ndarray:
    """PyTorch's nearest rule: src = min(floor(dst * s), in - 1) in float32, where s is
    1/scale_factor when a factor was given, else in/out."""
    if out_size == in_size:
        return np.arange(out_size)
    if out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 else \
        np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * s).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _spatial_pair(fn: str, value, name: str, cast) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{fn}: {name} must have 2 elements for a 4-D input "
                             f"(N, C, H, W), got {value!r}")
        return tuple(cast(v) for v in value)
    return (cast(value), cast(value))


def _size_int(fn: str):
    def cast(v) -> int:
        """An output size must be a whole int, as torch's (3.5 was truncated to 3)."""
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{fn}: size must hold ints, got {v!r}")
        return int(v)
    return cast


def output_size(fn: str, x, size, scale_factor, recompute_scale_factor) -> tuple:
    """``(out_hw, scales)`` of a 4-D resize as torch computes them: from ``size`` (ints), or
    from ``scale_factor`` (floor(in * f); ``scales`` are the factors, which the source-index
    rule then uses, unless ``recompute_scale_factor``). Exactly one of the two is given."""
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{fn}: give exactly one of size and scale_factor, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    in_hw = tuple(x.shape[2:])
    if size is not None:
        out_hw = _spatial_pair(fn, size, "size", _size_int(fn))
        if any(s <= 0 for s in out_hw):
            raise ValueError(f"{fn}: size must be positive, got {size!r}")
        return out_hw, (None, None)
    factors = _spatial_pair(fn, scale_factor, "scale_factor", float)
    if not all(math.isfinite(f) and f > 0 for f in factors):
        raise ValueError(f"{fn}: scale_factor must be positive and finite, got "
                         f"{scale_factor!r}")
    out_hw = tuple(int(math.floor(i * f)) for i, f in zip(in_hw, factors))
    if any(o <= 0 for o in out_hw):
        raise ValueError(f"{fn}: scale_factor {scale_factor!r} gives an empty output for input "
                         f"of shape {tuple(x.shape)}")
    return out_hw, ((None, None) if recompute_scale_factor else factors)


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """PyTorch's ``F.interpolate`` for ``mode='nearest'`` and ``mode='bilinear'`` (with or
    without ``align_corners``, see ``extra.bilinear_interpolate``) on (N, C, H, W) inputs, with
    any ``size`` or positive ``scale_factor`` (1.5 gives floor(1.5 H) rows, as in PyTorch).

    Integer factors run the nearest-upsampling kernel; other sizes gather rows and columns.
    """
    x = as_tensor(input)
    if mode == "bilinear":
        if antialias:
            raise NotImplementedError("interpolate: antialias=True is not implemented in "
                                      "minigan's bilinear mode")
        from .extra import bilinear_interpolate
        return bilinear_interpolate(x, size, scale_factor, bool(align_corners),
                                    recompute_scale_factor)
    if mode != "nearest":
        if mode in _UNSUPPORTED_MODES:
            raise NotImplementedError(f"interpolate: mode={mode!r} is not implemented in "
                                      "minigan; only mode='nearest' and mode='bilinear' are")
        raise ValueError(f"interpolate: unknown mode {mode!r}")
    if align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         f"linear | bilinear | bicubic | trilinear (got mode={mode!r})")
    if antialias:
        raise ValueError("interpolate: anti-alias option is only supported for bilinear and "
                         "bicubic modes")
    if x.ndim != 4:
        raise NotImplementedError(f"interpolate: minigan supports 4-D inputs (N, C, H, W), got "
                                  f"shape {x.shape}")
    in_hw = x.shape[2:]
    out_hw, scales = output_size("interpolate", x, size, scale_factor, recompute_scale_factor)
    k, rows, cols = _nearest_plan(tuple(in_hw), out_hw, scales, x.device)
    if k:
        return x if k == 1 else upsample_nearest2d(x, k)
    return B.getitem(x, (slice(None), slice(None), rows, cols))


@functools.lru_cache(maxsize=256)
def _nearest_plan(in_hw: tuple, out_hw: tuple, scales: tuple, device: str):
    """(k, None, None) when the rule is plain k-fold repetition (the fused kernel), else
    (0, rows (H', 1), cols (1, W')) of source indices on ``device``; cached, as a model's
    sizes repeat (so the GPU gets its index arrays once, not on every call)."""
    rows = _nearest_source_index(in_hw[0], out_hw[0], scales[0])
    cols = _nearest_source_index(in_hw[1], out_hw[1], scales[1])
    k = out_hw[0] // in_hw[0]
    if (k >= 1 and out_hw == (k * in_hw[0], k * in_hw[1])
            and np.array_equal(rows, np.arange(out_hw[0]) // k)
            and np.array_equal(cols, np.arange(out_hw[1]) // k)):
        return k, None, None
    return (0, backend.to_device(rows.reshape(-1, 1), device),
            backend.to_device(cols.reshape(1, -1), device))


