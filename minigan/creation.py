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
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    vals = np.linspace(float(start), float(end), int(steps)).astype(
        np.dtype(dtype or np.float32))
    return _make(backend.to_device(vals, backend.normalize_device(device or "cpu")),
                 requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    return _make(_xp(device).eye(n, m, dtype=np.dtype(dtype or np.float32)), requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniform on [low, high): ``randint(high, size)`` or ``randint(low, high,
    size)``, as ``torch.randint``; int64 unless ``dtype`` says otherwise."""
    if size is None:  # randint(high, size)
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
    if dtype is not None:
        arr = arr.astype(np.dtype(dtype))
    return _make(arr, requires_grad)
