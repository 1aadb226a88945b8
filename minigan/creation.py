"""Tensor factories with PyTorch's names and defaults: ``zeros``, ``ones``, ``full``, ``empty``,
``arange``, ``linspace``, ``eye``, ``randint`` and the ``*_like`` forms.

Floating results default to float32 and integer ones to int64, as in PyTorch; ``device`` is
"cpu" unless given (for ``*_like``, the input's device and dtype unless given).
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor
from .random import default_generator

__all__ = ["zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like",
           "empty_like", "rand_like", "randn_like", "arange", "linspace", "eye", "randint"]


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"a size must be a non-negative int, got {s!r} in {tuple(size)}")
        out.append(int(s))
    return tuple(out)


def _make(arr, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad)


def _xp(device):
    return backend.xp_for(backend.normalize_device(device or "cpu"))


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(_xp(device).zeros(_shape(size), dtype=np.dtype(dtype or np.float32)),
                 requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _make(_xp(device).ones(_shape(size), dtype=np.dtype(dtype or np.float32)),
                 requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uninitialised memory, as ``torch.empty``: write every element before reading it."""
    return _make(_xp(device).empty(_shape(size), dtype=np.dtype(dtype or np.float32)),
                 requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, (bool, np.bool_)):
        return np.dtype(bool)
    if isinstance(fill_value, (int, np.integer)):
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value``; the dtype follows the value (bool,
    int64 or float32) unless given, as in PyTorch."""
    dtype = np.dtype(dtype) if dtype is not None else _fill_dtype(fill_value)
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return _make(_xp(device).full(_shape(size), fill_value, dtype=dtype), requires_grad)


def _like(input, dtype, device):
    if not isinstance(input, Tensor):
        raise TypeError(f"expected a Tensor, got {type(input).__name__}")
    return (np.dtype(dtype) if dtype is not None else input.dtype,
            device if device is not None else input.device)


def zeros_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return zeros(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return ones(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return empty(input.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    dtype, device = _like(input, dtype, device)
    return full(input.shape, fill_value, dtype=dtype, device=device,
                requires_grad=requires_grad)


def _float_like(fn, input, dtype, device, generator, requires_grad):
    dtype, device = _like(input, dtype, device)
    if dtype.kind != "f":
        raise TypeError(f"{fn}: needs a floating dtype, got {dtype}")
    gen = generator or default_generator(device)
    if gen.device != backend.normalize_device(device):
        raise backend.DeviceError(f"{fn}: generator on {gen.device} but tensor on {device}")
    draw = gen.uniform if fn == "rand_like" else gen.normal
    return _make(draw(input.shape, dtype=dtype), requires_grad)


def rand_like(input, *, dtype=None, device=None, generator=None,
              requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of ``input``'s shape, from the device's seeded generator."""
    return _float_like("rand_like", input, dtype, device, generator, requires_grad)


def randn_like(input, *, dtype=None, device=None, generator=None,
               requires_grad: bool = False) -> Tensor:
    """Standard normal samples of ``input``'s shape, from the device's seeded generator."""
    return _float_like("randn_like", input, dtype, device, generator, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (``arange(n)`` is ``[0, n)``). int64 when every
    bound is an int, float32 otherwise; the element count is PyTorch's
    ceil((end - start) / step)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in (start, end, step))
    dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.int64 if ints else np.float32)
    n = int(np.ceil((end - start) / step))
    if n < 0:
        raise ValueError(f"arange: the step {step} goes away from end {end} starting at {start}")
    # computed in float64 (or exactly in int64), then cast: start + i * step, as PyTorch
    i = np.arange(n, dtype=np.int64 if ints else np.float64)
    vals = (start + i * step).astype(dtype)
    return _make(backend.to_device(vals, backend.normalize_device(device or "cpu")),
                 requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` values from ``start`` to ``end``, as ``torch.linspace`` computes them: with
    ``step = (end - start) / (steps - 1)``, the first half is ``start + i * step`` and the
    second half ``end - (steps - 1 - i) * step``, so both ends are exact.

    PyTorch's kernels are compiled with fused multiply-adds, which round ``start + i * step``
    once; so is each value here (float32: computed exactly in float64, then rounded; float64:
    an error-free product and sum). That gives the same bits as ``torch.linspace`` for float32,
    float64 and integer dtypes (``start`` and ``end`` truncated to integers first, the values
    computed in float64 and truncated, as torch does). float16 values are the float64 ones,
    rounded; PyTorch's half kernel rounds the step to half precision first, so its values
    drift further from the exact ones."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    steps = int(steps)
    dt = np.dtype(dtype or np.float32)
    if dt.kind == "f":
        lo, hi = dt.type(start), dt.type(end)
        step = np.float64((hi - lo) / dt.type(max(steps - 1, 1)))
    else:
        lo, hi = dt.type(int(start)), dt.type(int(end))
        step = (float(hi) - float(lo)) / max(steps - 1, 1)
    i = np.arange(steps)
    first = i < steps // 2
    k = np.where(first, i, steps - 1 - i).astype(np.float64)
    base = np.where(first, np.float64(lo), np.float64(hi))
    sign = np.where(first, 1.0, -1.0)
    vals = _fma(sign * step, k, base) if steps > 1 else np.full(steps, np.float64(lo))
    return _make(backend.to_device(vals.astype(dt), backend.normalize_device(device or "cpu")),
                 requires_grad)


def _fma(a, b, c):
    """``a * b + c`` with one rounding, in float64 (NumPy has no fused multiply-add): the
    product split exactly into a rounded part and its error (Veltkamp and Dekker), the sum
    likewise (Knuth's two-sum), and the errors added back before the last rounding."""
    p = a * b

    def split(x):
        t = 134217729.0 * x  # 2**27 + 1
        high = t - (t - x)
        return high, x - high

    ah, al = split(a)
    bh, bl = split(b)
    p_err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    s = p + c
    bb = s - p
    s_err = (p - (s - bb)) + (c - bb)
    return s + (p_err + s_err)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    return _make(_xp(device).eye(n, m, dtype=np.dtype(dtype or np.float32)), requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high): ``randint(high, size)``, ``randint(high, size=...)``,
    ``randint(high=..., size=...)`` or ``randint(low, high, size)``, as ``torch.randint``;
    int64 unless ``dtype`` says otherwise."""
    if high is None and size is not None:  # randint(high, size=...)
        low, high = 0, low
    elif size is None:  # randint(high, size)
        if not isinstance(high, (tuple, list)):
            raise TypeError("randint: give (high, size) or (low, high, size), the size a tuple; "
                            f"got low/high {low!r}, {high!r} and no size")
        low, high, size = 0, low, high
    if not high > low:
        raise ValueError(f"randint: need low < high, got low={low}, high={high}")
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    device = backend.normalize_device(device or "cpu")
    gen = generator or default_generator(device)
    if gen.device != device:
        raise backend.DeviceError(f"randint: generator on {gen.device} but device {device}")
    arr = gen.integers(int(low), int(high), _shape(size))
    if gen.device == "cpu":  # (a NumPy scalar for size (): an array, as a tensor needs)
        arr = np.asarray(arr)
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype))
    return _make(arr, requires_grad)
