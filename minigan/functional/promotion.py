"""PyTorch's type promotion for mixed operands (``torch.result_type``, ``torch.promote_types``).

NumPy and PyTorch agree inside one category (bool < integer < floating), but not across them,
and not on numbers or 0-d operands. PyTorch's rule, which minigan follows:

- Operands are ranked: tensors with dimensions, then 0-d tensors, then plain numbers (Python
  or NumPy scalars, "wrapped numbers"). Each rank promotes within itself.
- A lower rank changes the result only when it is of a higher category: an integer tensor
  plus a 0-d float32 tensor is float32, but a float32 tensor plus a 0-d float64 tensor stays
  float32, and a uint8 tensor plus 300 stays uint8 (wrapping, as torch does).
- A float number counts as the default dtype, float32: ``int_tensor + 1.5`` and
  ``int_tensor / 2`` are float32 (NumPy says float64).
- An integer and a float dtype promote to the float one (NumPy: int64 + float32 is float64).
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Tensor

__all__ = ["promote_types", "result_type"]

DEFAULT_FLOAT = np.dtype(np.float32)
_BOOL, _INT64 = np.dtype(bool), np.dtype(np.int64)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def _category(dt: np.dtype) -> int:
    try:
        return _CATEGORY[dt.kind]
    except KeyError:
        raise TypeError(f"dtype {dt} is not supported (bool, integer and floating dtypes "
                        "are)") from None


def promote_types(type1, type2) -> np.dtype:
    """``torch.promote_types``: the smallest dtype both can be cast to, where an integer or
    bool meeting a floating dtype gives that floating dtype."""
    a, b = np.dtype(type1), np.dtype(type2)
    ca, cb = _category(a), _category(b)
    if ca == cb or min(ca, cb) == 0 or max(ca, cb) < 2:
        return np.promote_types(a, b)
    return a if ca > cb else b


def _combine(higher, lower):
    """torch's rule for a higher-ranked result meeting a lower-ranked one (None: no operand)."""
    if higher is None:
        return lower
    if lower is None or _category(higher) == 2:
        return higher
    if higher == _BOOL or _category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def _number_dtype(x):
    """A wrapped number's dtype as torch ranks it (a float is the default float dtype)."""
    if isinstance(x, (bool, np.bool_)):
        return _BOOL
    if isinstance(x, (int, np.integer)):
        return _INT64
    if isinstance(x, (float, np.floating)):
        return DEFAULT_FLOAT
    raise TypeError(f"result_type: expected tensors, arrays or real numbers, got a "
                    f"{type(x).__name__} ({x!r})")


def result_type(*operands) -> np.dtype:
    """``torch.result_type`` for any number of tensors, arrays and numbers."""
    ranks = [None, None, None]  # tensors with dims, 0-d tensors, numbers
    for x in operands:
        dt = x.data.dtype if isinstance(x, Tensor) else getattr(x, "dtype", None)
        if dt is not None and not isinstance(x, np.generic):
            r = 0 if len(x.shape) else 1
        else:
            dt, r = _number_dtype(x), 2
        _category(np.dtype(dt))
        ranks[r] = np.dtype(dt) if ranks[r] is None else promote_types(ranks[r], dt)
    if all(r is None for r in ranks):  # (not ==: np.dtype(None) is float64)
        raise ValueError("result_type: needs at least one operand")
    return _combine(ranks[0], _combine(ranks[1], ranks[2]))


def number_like(c, dtype, like: Tensor) -> Tensor:
    """The number ``c`` as a 0-d constant of ``dtype`` on ``like``'s device. An integer outside
    an integer dtype's range wraps, as in torch; on the GPU the value is filled in by a
    kernel, not copied from the host."""
    value = np.asarray(c).astype(dtype)
    xp = backend.get_array_module(like.data)
    return Tensor(value if xp is np else xp.full((), value[()], dtype=dtype))
