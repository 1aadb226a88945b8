"""Shape, indexing and sorting ops with PyTorch's names: ``chunk``/``split``/``unbind``,
``flip``/``roll``, ``repeat``/``tile``, ``gather``/``scatter``/``index_select``/``masked_fill``,
``tril``/``diag``/``trace``, ``movedim``/``hstack``/``meshgrid``, ``sort``/``topk``, and the
``Tensor`` methods that go with them (``view_as``, ``new_zeros``, ``mT``, ...).

Most are compositions of the differentiable ops of ``basic`` (getitem, reshape, concat, where),
so their gradients of every order come with them. Index tensors hold integers and live on the
input's device. Out-of-range indices raise an IndexError on the CPU; on the GPU checking them
would be a device-to-host read per call, so there they are not checked.
"""
from __future__ import annotations

import collections
import itertools
import math
import warnings

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor, tensor
from .basic import (
    GetItem,
    GetItemGrad,
    _dim,
    _int,
    _norm_axis,
    _shape_str,
    astype,
    broadcast_to,
    clone,
    concat,
    expand,
    permute,
    reshape,
    transpose,
)
from .basic import sum as _sum
from .basic import where as _where
from .promotion import result_type

__all__ = [
    "argsort", "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_shapes",
    "broadcast_tensors", "chunk", "column_stack", "diag", "diagonal", "dstack", "flip",
    "fliplr", "flipud", "gather", "hstack", "index_select", "kthvalue", "masked_fill",
    "masked_select", "median", "meshgrid", "moveaxis", "movedim", "narrow", "repeat_interleave",
    "roll", "rot90", "scatter", "scatter_add", "sort", "split", "swapaxes", "swapdims",
    "take_along_dim", "tensor_split", "tile", "topk", "trace", "tril", "triu", "unbind",
    "unflatten", "vstack",
] + [
    "argwhere", "bincount", "bucketize", "cummax", "cummin", "histc", "index_add", "index_copy",
    "index_fill", "index_put", "nonzero", "searchsorted", "select", "take", "unique",
    "unique_consecutive", "where",
]


def _fresh(y: Tensor, x: Tensor) -> Tensor:
    """``y``, or a copy of it where it is x itself or a view of x's memory (an op that changed
    nothing: torch's result is a new tensor, so an in-place change of it must not reach x)."""
    if y is x or backend.get_array_module(y.data).may_share_memory(y.data, x.data):
        return clone(y)
    return y


def _ints(fn: str, name: str, values) -> tuple:
    """An int or a sequence of ints (varargs given as one tuple or list are unpacked)."""
    if len(values) == 1 and isinstance(values[0], (tuple, list)):
        values = values[0]
    return tuple(_int(fn, name, v) for v in values)


def _at_least_1d(fn: str, x: Tensor) -> None:
    if x.ndim == 0:
        raise ValueError(f"{fn}: expects a tensor with at least one dimension, got a 0-d tensor")


def _slice_at(dim: int, start: int, stop: int) -> tuple:
    return (slice(None),) * dim + (slice(start, stop),)


# ----------------------------------------------------------------------------- splitting

def _pieces(x: Tensor, dim: int, bounds) -> tuple:
    """The slices of ``x`` along ``dim`` between each (start, stop). A loop over the pieces;
    each piece's backward writes its slice of a zero gradient of x's shape."""
    return tuple(GetItem(_slice_at(dim, a, b))(x) for a, b in bounds)


def _bounds(sizes) -> list:
    out, start = [], 0
    for s in sizes:
        out.append((start, start + s))
        start += s
    return out


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``split_size_or_sections`` along ``dim`` (the last one smaller when the size
    does not divide), or of the sizes in a list, which must add up to the dimension's size."""
    x = as_tensor(tensor)
    _at_least_1d("split", x)
    d = _dim("split", dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [_int("split", "a section size", s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes):
            raise ValueError(f"split: section sizes must be non-negative, got {sizes}")
        if sum(sizes) != n:
            raise ValueError(f"split: section sizes {sizes} add up to {sum(sizes)}, "
                             f"not to the size {n} of dimension {d}")
        return _pieces(x, d, _bounds(sizes))
    size = _int("split", "split_size", split_size_or_sections)
    if size < 0:
        raise ValueError(f"split: split_size must be non-negative, got {size}")
    if size == 0:
        if n:
            raise ValueError(f"split: split_size can be 0 only for an empty dimension, but "
                             f"dimension {d} has size {n}")
        return _pieces(x, d, [(0, 0)])
    return _pieces(x, d, [(a, min(a + size, n)) for a in range(0, n, size)] or [(0, 0)])


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    """``chunks`` pieces of size ceil(n / chunks) along ``dim`` (fewer when that covers the
    dimension sooner, as in torch)."""
    x = as_tensor(input)
    chunks = _int("chunk", "chunks", chunks)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be greater than 0, got {chunks}")
    _at_least_1d("chunk", x)
    d = _dim("chunk", dim, x.ndim)
    n = x.shape[d]
    if n == 0:  # torch: `chunks` empty pieces
        return _pieces(x, d, [(0, 0)] * chunks)
    return split(x, -(-n // chunks), d)


def tensor_split(input, indices_or_sections, dim: int = 0) -> tuple:
    """NumPy's ``array_split``: an int gives that many pieces, the first ``n % sections`` one
    longer; a list of indices gives the pieces between them (read as Python slice bounds). A
    tensor argument must be an integer tensor on the CPU (its values are read on the host)."""
    x = as_tensor(input)
    _at_least_1d("tensor_split", x)
    d = _dim("tensor_split", dim, x.ndim)
    n = x.shape[d]
    arg = indices_or_sections
    if isinstance(arg, Tensor):
        if arg.device != "cpu" or arg.dtype.kind not in "iu" or arg.ndim > 1:
            raise TypeError(f"tensor_split: a tensor indices_or_sections must be a 0-d or 1-d "
                            f"integer tensor on the CPU, got {arg.ndim}-d {arg.dtype} on "
                            f"{arg.device}")
        arg = arg.tolist()
    if isinstance(arg, (list, tuple)):
        cuts = [0] + [_int("tensor_split", "an index", i) for i in arg] + [n]
        return _pieces(x, d, [slice(a, b).indices(n)[:2] for a, b in itertools.pairwise(cuts)])
    sections = _int("tensor_split", "sections", arg)
    if sections <= 0:
        raise ValueError(f"tensor_split: the number of sections must be greater than 0, got "
                         f"{sections}")
    q, r = divmod(n, sections)
    return _pieces(x, d, _bounds([q + 1] * r + [q] * (sections - r)))


def unbind(input, dim: int = 0) -> tuple:
    """The slices of ``input`` along ``dim``, with that dimension removed. A loop over the
    slices; for many small ones, prefer indexing or a reshape."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise IndexError("unbind: a 0-d tensor has no dimension to unbind")
    d = _dim("unbind", dim, x.ndim)
    return tuple(GetItem((slice(None),) * d + (i,))(x) for i in range(x.shape[d]))


def narrow(input, dim: int, start: int, length: int) -> Tensor:
    """``length`` entries of ``dim`` from ``start``, as torch: start is in [-n, n] (a negative
    one counts from the end) and start + length may not pass n."""
    x = as_tensor(input)
    _at_least_1d("narrow", x)
    d = _dim("narrow", dim, x.ndim)
    n = x.shape[d]
    if isinstance(start, Tensor) and start.ndim == 0 and start.dtype.kind in "iu":
        start = int(start.item())  # (torch takes a 0-d integer tensor too)
    start = _int("narrow", "start", start)
    length = _int("narrow", "length", length)
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dimension {d} of size {n} "
                         f"(expected one in [{-n}, {n}])")
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    if start < 0:
        start += n  # (start = n stays n: only an empty piece fits there)
    if start + length > n:
        raise ValueError(f"narrow: start ({start}) + length ({length}) exceeds the size {n} of "
                         f"dimension {d}")
    return GetItem(_slice_at(d, start, start + length))(x)


# ----------------------------------------------------------------------------- flips, rolls

class _CopiedItem(GetItem):
    """y = a copy of x[index] (for ops that torch does not make views); gx as GetItem's."""

    def forward(self, x):
        return x[self.index].copy()


def flip(input, dims) -> Tensor:
    """Reverse the order of entries along each of ``dims`` (a copy, as torch's)."""
    x = as_tensor(input)
    dims = _norm_axis(dims, x.ndim, "flip", empty_is_all=False)
    if not dims or x.ndim == 0:
        return clone(x)
    return _CopiedItem(tuple(slice(None, None, -1) if i in dims else slice(None)
                             for i in range(x.ndim)))(x)


def fliplr(input) -> Tensor:
    """Flip dimension 1 (left-right); the input needs at least 2 dimensions."""
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"fliplr: expects a tensor with at least 2 dimensions, got shape "
                         f"{_shape_str(x.shape)}")
    return flip(x, 1)


def flipud(input) -> Tensor:
    """Flip dimension 0 (up-down); the input needs at least 1 dimension."""
    x = as_tensor(input)
    _at_least_1d("flipud", x)
    return flip(x, 0)


def roll(input, shifts, dims=None) -> Tensor:
    """Shift entries along ``dims`` by ``shifts``, wrapping around; without ``dims`` the
    tensor is rolled as if flattened. gx = gy rolled back (two slices and a concat per dim)."""
    x = as_tensor(input)
    shifts = (shifts,) if not isinstance(shifts, (tuple, list)) else tuple(shifts)
    shifts = tuple(_int("roll", "a shift", s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise ValueError(f"roll: {len(shifts)} shifts need as many dims, got none")
        if x.ndim == 0:
            return clone(x)
        return reshape(roll(reshape(x, (-1,)), shifts, 0), x.shape)
    dims = (dims,) if not isinstance(dims, (tuple, list)) else tuple(dims)
    if not shifts:
        raise ValueError("roll: shifts must not be empty")
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    if x.ndim == 0:
        raise IndexError(f"roll: a 0-d tensor has no dimension {dims[0]}")
    y = x
    for s, dim in zip(shifts, dims):
        d = _dim("roll", dim, x.ndim)
        n = x.shape[d]
        s = s % n if n else 0
        if s:
            y = concat([GetItem(_slice_at(d, n - s, n))(y), GetItem(_slice_at(d, 0, n - s))(y)],
                       d)
    return _fresh(y, x)


def rot90(input, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane of ``dims``, from the first dim towards
    the second."""
    x = as_tensor(input)
    k = _int("rot90", "k", k)
    dims = tuple(dims)
    if len(dims) != 2:
        raise ValueError(f"rot90: expects exactly 2 rotation dims, got {dims}")
    if x.ndim < 2:
        raise ValueError(f"rot90: expects a tensor with at least 2 dimensions, got shape "
                         f"{_shape_str(x.shape)}")
    d0, d1 = _dim("rot90", dims[0], x.ndim), _dim("rot90", dims[1], x.ndim)
    if d0 == d1:
        raise ValueError(f"rot90: the rotation dims must differ, got {dims}")
    k %= 4
    if k == 1:
        return transpose(flip(x, d1), d0, d1)
    if k == 2:
        return flip(x, (d0, d1))
    if k == 3:
        return flip(transpose(x, d0, d1), d1)
    return clone(x)


# ----------------------------------------------------------------------------- repeats

def _repeat(input, *sizes) -> Tensor:
    """``Tensor.repeat``: tile the tensor ``sizes[i]`` times along dim i; extra leading sizes
    add new dimensions. gx = gy summed over the copies (a reshape, broadcast and reshape)."""
    x = as_tensor(input)
    if not sizes:
        raise TypeError("repeat: missing the repeat counts (x.repeat(*sizes), one per "
                        "dimension at least; x.repeat(()) for a 0-d x)")
    sizes = _ints("repeat", "a repeat count", sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeat counts for a tensor of shape "
                         f"{_shape_str(x.shape)}; give at least one per dimension")
    if any(r < 0 for r in sizes):
        raise ValueError(f"repeat: repeat counts must be non-negative, got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    y = reshape(x, tuple(v for s in shape for v in (1, s)))
    y = broadcast_to(y, tuple(v for r, s in zip(sizes, shape) for v in (r, s)))
    return _fresh(reshape(y, tuple(r * s for r, s in zip(sizes, shape))), x)


def tile(input, dims) -> Tensor:
    """``repeat`` with ``dims`` padded with leading 1s to the tensor's number of dimensions."""
    x = as_tensor(input)
    dims = _ints("tile", "a repeat count", (dims,))
    return _repeat(x, (1,) * (x.ndim - len(dims)) + dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None) -> Tensor:
    """Repeat each entry along ``dim`` (of the flattened tensor without one) ``repeats`` times.

    ``repeats`` is an int or a 1-d integer tensor with one count per entry (or a single one).
    With a tensor the output's length is the sum of the counts: read on the host, which on the
    GPU waits for the device unless ``output_size`` gives it. ``repeat_interleave(counts)``
    alone gives the indices ``repeat_interleave(arange(len(counts)), counts)``."""
    if repeats is None:
        counts = _index("repeat_interleave", input, None, "repeats")
        if counts.ndim != 1:
            raise ValueError(f"repeat_interleave: repeats must be 1-d, got shape "
                             f"{_shape_str(counts.shape)}")
        xp = backend.get_array_module(counts)
        return _repeat_counts(Tensor(xp.arange(counts.shape[0], dtype=np.int64)), counts, 0,
                              output_size)
    x = as_tensor(input)
    if dim is None:
        x, d = reshape(x, (-1,)), 0
    else:
        if x.ndim == 0:
            raise IndexError(f"repeat_interleave: a 0-d tensor has no dimension {dim} (torch "
                             "refuses it too); pass dim=None to repeat its entry")
        d = _dim("repeat_interleave", dim, x.ndim)
    if isinstance(repeats, (int, np.integer)) and not isinstance(repeats, (bool, np.bool_)):
        r = int(repeats)
        if r < 0:
            raise ValueError(f"repeat_interleave: repeats must be non-negative, got {r}")
        shape = x.shape[:d + 1] + (r,) + x.shape[d + 1:]
        y = broadcast_to(reshape(x, x.shape[:d + 1] + (1,) + x.shape[d + 1:]), shape)
        return _fresh(reshape(y, x.shape[:d] + (x.shape[d] * r,) + x.shape[d + 1:]), x)
    counts = _index("repeat_interleave", repeats, x, "repeats")
    if counts.ndim == 0 or counts.shape == (1,):
        counts = backend.get_array_module(counts).broadcast_to(counts.reshape(()),
                                                               (x.shape[d],))
    if counts.ndim != 1 or counts.shape[0] != x.shape[d]:
        raise ValueError(f"repeat_interleave: repeats of shape {_shape_str(counts.shape)} for "
                         f"dimension {d} of size {x.shape[d]}; give one count per entry")
    return _repeat_counts(x, counts, d, output_size)


def _repeat_counts(x: Tensor, counts, d: int, output_size) -> Tensor:
    xp = backend.get_array_module(counts)
    if not backend.is_cupy_array(counts) and counts.size and counts.min() < 0:
        raise ValueError("repeat_interleave: repeats must be non-negative")
    ends = xp.cumsum(counts.astype(np.int64))
    if output_size is None:  # the output's length: a host read (a sync on the GPU)
        output_size = int(ends[-1]) if counts.size else 0
    idx = xp.searchsorted(ends, xp.arange(output_size, dtype=np.int64), side="right")
    return GetItem((slice(None),) * d + (idx.astype(np.int64),))(x)


# ----------------------------------------------------------------------------- gather, scatter

def _index(fn: str, index, x: Tensor | None, what: str = "index"):
    """``index`` as an integer array on x's device: a Tensor, a NumPy or CuPy array, or Python
    ints (copied to x's device). Floats and bools are refused, as is another device."""
    if isinstance(index, Tensor):
        arr = index.data
    elif isinstance(index, np.ndarray) or backend.is_cupy_array(index):
        arr = index
    elif isinstance(index, (list, tuple, int, np.integer)):
        arr = np.asarray(index)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype.kind in "iu" and x is not None:
            arr = backend.to_device(arr, x.device)
    else:
        raise TypeError(f"{fn}: {what} must be an integer tensor, got {type(index).__name__}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {what} must be an integer (int64) tensor, got dtype {arr.dtype}")
    if x is not None:
        backend.check_same_device(x.data, arr, what=fn)
    return arr


def _check_range(fn: str, idx, n: int, dim: int) -> None:
    """Raise unless every index is in [0, n); on the CPU only (see the module's docstring)."""
    if backend.is_cupy_array(idx) or idx.size == 0:
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= n:
        raise IndexError(f"{fn}: index {lo if lo < 0 else hi} is out of bounds for dimension "
                         f"{dim} with size {n}")


def _along(idx, dim: int) -> tuple:
    """The advanced index that reads ``x[..., idx[i, j, k], ...]`` at every position (i, j, k)
    of ``idx``, ``idx`` standing at ``dim``: its shape is the result's."""
    xp = backend.get_array_module(idx)
    nd = idx.ndim
    return tuple(idx if d == dim else
                 xp.arange(idx.shape[d]).reshape((1,) * d + (-1,) + (1,) * (nd - d - 1))
                 for d in range(nd))


def _as_1d(x: Tensor) -> Tensor:
    return reshape(x, (1,)) if x.ndim == 0 else x


def _check_index_shape(fn: str, idx, dim: int, **others) -> None:
    for name, shape in others.items():
        if len(shape) != idx.ndim:
            raise ValueError(f"{fn}: index of shape {_shape_str(idx.shape)} must have as many "
                             f"dimensions as {name} of shape {_shape_str(shape)}")
        for d, (i, s) in enumerate(zip(idx.shape, shape)):
            if i > s and (d != dim or name == "src"):
                raise ValueError(f"{fn}: index of shape {_shape_str(idx.shape)} is larger than "
                                 f"{name} of shape {_shape_str(shape)} in dimension {d}"
                                 + (f" (only dimension {dim} may differ)" if name != "src"
                                    else ""))


def gather(input, dim: int, index, *, sparse_grad: bool = False) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0 (and so on): ``index`` has input's
    number of dimensions, and may be smaller than input outside ``dim``; the result has its
    shape. gx = zeros with gy added at the gathered places (repeats accumulate); minigan has
    no sparse gradients (``sparse_grad=False`` only)."""
    if sparse_grad:
        raise NotImplementedError(f"gather: sparse_grad={sparse_grad!r} is not supported; "
                                  "minigan supports only sparse_grad=False")
    x = as_tensor(input)
    idx = _index("gather", index, x)
    d = _dim("gather", dim, x.ndim)
    x1, idx1 = _as_1d(x), (idx.reshape(1) if idx.ndim == 0 else idx)
    _check_index_shape("gather", idx1, d, input=x1.shape)
    _check_range("gather", idx1, x1.shape[d], d)
    y = GetItem(_along(idx1, d))(x1)
    return reshape(y, idx.shape) if idx.ndim == 0 else y


class _Scatter(Function):
    """y = x with src written at ``index``; gx = gy with zeros where src was written,
    gsrc = gy[index] (torch's gradients; a repeated index gives each of its src entries the
    gradient, though only one of them lands)."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, index):
        self.index = index

    def forward(self, x, src):
        y = x.copy()
        y[self.index] = src
        return y

    def backward(self, gy):
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = _where(_written(self.index, gy), _zero(gy), gy)
        if self.needs_input_grad[1]:
            gsrc = GetItem(self.index)(gy)
        return gx, gsrc


class _ScatterAdd(Function):
    """y = x with src added at ``index`` (repeats accumulate, in index order on the CPU as in
    torch); gx = gy, gsrc = gy[index]."""

    saves_inputs = False  # its gradient does not read the inputs' values

    def __init__(self, index):
        self.index = index

    def forward(self, x, src):
        y = x.copy()
        backend.scatter_add(y, self.index, src)
        return y

    def backward(self, gy):
        return (gy if self.needs_input_grad[0] else None,
                GetItem(self.index)(gy) if self.needs_input_grad[1] else None)


def _written(index, like: Tensor):
    """A bool mask of ``like``'s shape, True at ``index``."""
    xp = backend.get_array_module(like.data)
    mask = xp.zeros(like.shape, dtype=bool)
    mask[index] = True
    return mask


def _zero(like: Tensor) -> Tensor:
    return Tensor(backend.get_array_module(like.data).zeros((), dtype=like.dtype))


def _fill_value(fn: str, value, x: Tensor) -> Tensor:
    """A fill value as a 0-d tensor of x's dtype (a 0-d tensor stays differentiable)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"{fn}: a tensor value must be 0-d, got shape "
                             f"{_shape_str(value.shape)}")
        backend.check_same_device(x.data, value.data, what=fn)
        if value.dtype == x.dtype:
            return value
        return astype(value if x.dtype.kind == "f" else value.detach(), x.dtype)
    if not isinstance(value, (int, float, np.number, bool, np.bool_)):
        raise TypeError(f"{fn}: value must be a number or a 0-d tensor, got "
                        f"{type(value).__name__}")
    return Tensor(backend.get_array_module(x.data).full((), value, dtype=x.dtype))


def _scatter_args(fn: str, x: Tensor, dim, index, src):
    """(dim, the advanced index of the written places, src cut to index's shape or None)."""
    idx = _index(fn, index, x)
    d = _dim(fn, dim, x.ndim)
    x1 = _as_1d(x)
    idx1 = idx.reshape(1) if idx.ndim == 0 else idx
    shapes = {"input": x1.shape}
    if isinstance(src, Tensor):
        shapes["src"] = _as_1d(src).shape
    _check_index_shape(fn, idx1, d, **shapes)
    _check_range(fn, idx1, x1.shape[d], d)
    if isinstance(src, Tensor):
        if src.dtype != x.dtype:
            raise TypeError(f"{fn}: src has dtype {src.dtype} but input has {x.dtype}; they "
                            "must match")
        backend.check_same_device(x.data, src.data, what=fn)
        src1 = _as_1d(src)
        if src1.shape != idx1.shape:
            src1 = GetItem(tuple(slice(0, n) for n in idx1.shape))(src1)
        return d, _along(idx1, d), src1
    return d, _along(idx1, d), None


def scatter(input, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """A copy of ``input`` with ``src[i][j]`` written at ``[index[i][j]][j]`` for dim 0 (and so
    on); ``src`` (or ``value``) may be a number. Where an index repeats, which write lands is
    unspecified, as in torch. ``reduce="add"`` is ``scatter_add``."""
    x = as_tensor(input)
    if src is None and value is None:
        raise TypeError("scatter: give src or value")
    if src is not None and value is not None:
        raise TypeError("scatter: give src or value, not both")
    if reduce is not None:
        if reduce != "add":
            raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported (only "
                                      "'add')")
        if not isinstance(src, Tensor):
            raise TypeError("scatter: reduce='add' needs a src tensor")
        return scatter_add(x, dim, index, src)
    if src is not None and hasattr(src, "shape") and not isinstance(src, Tensor):
        src = as_tensor(src)  # a NumPy or CuPy array
    if not isinstance(src, Tensor):
        fill = _fill_value("scatter", value if src is None else src, x)
        _, where_idx, _ = _scatter_args("scatter", x, dim, index, None)
        x1 = _as_1d(x)
        y = _where(_written(where_idx, x1), fill, x1)
        return reshape(y, ()) if x.ndim == 0 else y
    _, where_idx, src1 = _scatter_args("scatter", x, dim, index, src)
    y = _Scatter(where_idx)(_as_1d(x), src1)
    return reshape(y, ()) if x.ndim == 0 else y


def scatter_add(input, dim: int, index, src) -> Tensor:
    """A copy of ``input`` with ``src[i][j]`` added at ``[index[i][j]][j]`` for dim 0 (and so
    on); repeated indices accumulate. gx = gy, gsrc = gy[index]."""
    x = as_tensor(input)
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add: src must be a tensor, got {type(src).__name__}")
    _, where_idx, src1 = _scatter_args("scatter_add", x, dim, index, src)
    x1 = _as_1d(x)
    y = _ScatterAdd(where_idx)(x1, src1)
    return reshape(y, ()) if x.ndim == 0 else y


def index_select(input, dim: int, index) -> Tensor:
    """The entries of ``dim`` at the 1-d integer ``index`` (repeats allowed), in its order."""
    x = as_tensor(input)
    idx = _index("index_select", index, x)
    d = _dim("index_select", dim, x.ndim)
    if idx.ndim > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-d, got shape "
                         f"{_shape_str(idx.shape)}")
    if x.ndim == 0:
        if idx.size != 1:
            raise ValueError(f"index_select: a 0-d input takes one index, got {idx.size}")
        _check_range("index_select", idx, 1, d)
        return reshape(GetItem(idx.reshape(1))(reshape(x, (1,))), ())
    _check_range("index_select", idx, x.shape[d], d)
    return GetItem((slice(None),) * d + (idx.reshape(-1),))(x)


def _bool_mask(fn: str, mask, x: Tensor):
    m = mask.data if isinstance(mask, Tensor) else mask
    if not hasattr(m, "dtype"):
        m = np.asarray(m)
        if m.dtype == np.bool_:
            m = backend.to_device(m, x.device)
    if m.dtype != np.bool_:
        raise TypeError(f"{fn}: the mask must be a bool tensor, got dtype {m.dtype}")
    backend.check_same_device(x.data, m, what=fn)
    return m


def masked_fill(input, mask, value) -> Tensor:
    """``value`` where the bool ``mask`` (broadcast with input) is True, input elsewhere; the
    result keeps input's dtype. gx = gy where not filled, 0 where filled; a 0-d tensor value
    gets the sum of gy over the filled places."""
    x = as_tensor(input)
    m = _bool_mask("masked_fill", mask, x)
    fill = _fill_value("masked_fill", value, x)
    try:
        np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {_shape_str(m.shape)} cannot be broadcast "
                         f"with input of shape {_shape_str(x.shape)}") from None
    return _where(m, fill, x)


def masked_select(input, mask) -> Tensor:
    """The entries where the bool ``mask`` (broadcast with input) is True, as a 1-d tensor.
    Its length depends on the mask's values: on the GPU finding it waits for the device."""
    x = as_tensor(input)
    m = _bool_mask("masked_select", mask, x)
    try:
        shape = tuple(np.broadcast_shapes(m.shape, x.shape))
    except ValueError:
        raise ValueError(f"masked_select: mask of shape {_shape_str(m.shape)} cannot be "
                         f"broadcast with input of shape {_shape_str(x.shape)}") from None
    xp = backend.get_array_module(m)
    xb, mb = broadcast_to(x, shape), xp.broadcast_to(m, shape)
    if not shape:  # (nonzero needs a dimension)
        xb, mb = reshape(xb, (1,)), mb.reshape(1)
    return GetItem(xp.nonzero(mb))(xb)


def take_along_dim(input, indices, dim=None) -> Tensor:
    """``gather`` with input and indices broadcast against each other outside ``dim``, each
    index taken modulo the size of ``dim`` as torch does (-1 is the last entry); without
    ``dim`` both are flattened first and the indices must be in range, as gather's."""
    x = as_tensor(input)
    idx = _index("take_along_dim", indices, x, "indices")
    if dim is None:
        return gather(reshape(x, (-1,)), 0, idx.reshape(-1))
    if x.ndim == 0:
        raise IndexError(f"take_along_dim: a 0-d input has no dimension {dim} (torch refuses "
                         "it too); pass dim=None")
    d = _dim("take_along_dim", dim, x.ndim)
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_dim: input of shape {_shape_str(x.shape)} and indices of "
                         f"shape {_shape_str(idx.shape)} must have the same number of "
                         "dimensions")
    outer = [1 if i == d else s for i, s in enumerate(x.shape)]
    outer_i = [1 if i == d else s for i, s in enumerate(idx.shape)]
    try:
        common = list(np.broadcast_shapes(tuple(outer), tuple(outer_i)))
    except ValueError:
        raise ValueError(f"take_along_dim: input of shape {_shape_str(x.shape)} and indices of "
                         f"shape {_shape_str(idx.shape)} cannot be broadcast outside dimension "
                         f"{d}") from None
    xs = tuple(x.shape[d] if i == d else s for i, s in enumerate(common))
    ids = tuple(idx.shape[d] if i == d else s for i, s in enumerate(common))
    xp = backend.get_array_module(idx)
    n = x.shape[d]
    if n == 0 and idx.size:
        raise IndexError(f"take_along_dim: indices of shape {_shape_str(idx.shape)} into "
                         f"dimension {d} of size 0 (input of shape {_shape_str(x.shape)})")
    # torch wraps every index into [0, n) (index % n): -1 is the last entry, n the first
    return gather(broadcast_to(x, xs), d, xp.broadcast_to(idx % max(n, 1), ids))


# ----------------------------------------------------------------------------- triangles, diagonals

def _triangle(fn: str, input, diagonal: int, lower: bool) -> Tensor:
    x = as_tensor(input)
    k = _int(fn, "diagonal", diagonal)
    if x.ndim < 2:
        raise ValueError(f"{fn}: expects a tensor with at least 2 dimensions, got shape "
                         f"{_shape_str(x.shape)}")
    xp = backend.get_array_module(x.data)
    m, n = x.shape[-2:]
    offset = xp.arange(n).reshape(1, n) - xp.arange(m).reshape(m, 1)  # column - row
    keep = offset <= k if lower else offset >= k
    return _where(keep, x, _zero(x))


def tril(input, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (entries with column - row <= diagonal), zeros
    above it. gx = tril(gy)."""
    return _triangle("tril", input, diagonal, True)


def triu(input, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (column - row >= diagonal), zeros below it."""
    return _triangle("triu", input, diagonal, False)


def _diagonal_index(xp, m: int, n: int, offset: int):
    """Row and column indices of diagonal ``offset`` of an (m, n) matrix."""
    r0, c0 = max(-offset, 0), max(offset, 0)
    length = max(min(m - r0, n - c0), 0)
    i = xp.arange(length)
    return i + r0, i + c0


def diagonal(input, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """Diagonal ``offset`` of the matrices in dims (dim1, dim2), as a last dimension (a copy;
    torch's is a view). gx = zeros with gy on that diagonal."""
    return _diagonal(as_tensor(input), offset, dim1, dim2)


def _diagonal(x: Tensor, offset, dim1, dim2) -> Tensor:
    offset = _int("diagonal", "offset", offset)
    d1, d2 = _dim("diagonal", dim1, x.ndim), _dim("diagonal", dim2, x.ndim)
    if d1 == d2:
        raise ValueError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    rest = [i for i in range(x.ndim) if i not in (d1, d2)]
    y = permute(x, rest + [d1, d2]) if rest + [d1, d2] != list(range(x.ndim)) else x
    rows, cols = _diagonal_index(backend.get_array_module(x.data), x.shape[d1], x.shape[d2],
                                 offset)
    return GetItem((Ellipsis, rows, cols))(y)


def diag(input, diagonal: int = 0) -> Tensor:
    """1-d input: a square matrix with it on diagonal ``diagonal``, zeros elsewhere. 2-d input:
    that diagonal, as a 1-d tensor."""
    x = as_tensor(input)
    k = _int("diag", "diagonal", diagonal)
    if x.ndim == 2:
        return _diagonal(x, k, 0, 1)
    if x.ndim != 1:
        raise ValueError(f"diag: expects a 1-d or 2-d tensor, got shape {_shape_str(x.shape)}")
    n = x.shape[0] + abs(k)
    return GetItemGrad(_diagonal_index(backend.get_array_module(x.data), n, n, k), (n, n))(x)


def trace(input) -> Tensor:
    """The sum of a matrix's main diagonal; integer inputs give int64, as in torch."""
    x = as_tensor(input)
    if x.ndim != 2:
        raise ValueError(f"trace: expects a matrix (2-d), got shape {_shape_str(x.shape)}")
    if x.dtype == np.bool_:
        raise TypeError("trace: not defined for bool tensors")
    d = _diagonal(x, 0, 0, 1)
    return _sum(astype(d, np.int64) if x.dtype.kind in "iu" else d)


# ----------------------------------------------------------------------------- dims, stacking

def movedim(input, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (ints or sequences of ints); the
    other dims keep their order."""
    x = as_tensor(input)
    src = (source,) if not isinstance(source, (tuple, list)) else tuple(source)
    dst = (destination,) if not isinstance(destination, (tuple, list)) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {src} and destination {dst} must name as many dims")
    src = [_dim("movedim", s, x.ndim) for s in src]
    dst = [_dim("movedim", s, x.ndim) for s in dst]
    for name, dims in (("source", src), ("destination", dst)):
        if len(set(dims)) != len(dims):
            raise ValueError(f"movedim: a dim is repeated in {name} {dims}")
    if x.ndim == 0:
        return x
    order = [None] * x.ndim
    for s, t in zip(src, dst):
        order[t] = s
    rest = iter(i for i in range(x.ndim) if i not in src)
    order = [next(rest) if o is None else o for o in order]
    return permute(x, order)


moveaxis = movedim


def swapaxes(input, axis0: int, axis1: int) -> Tensor:
    """``transpose`` under NumPy's name."""
    return transpose(input, axis0, axis1)


def swapdims(input, dim0: int, dim1: int) -> Tensor:
    """``transpose`` under another of torch's names."""
    return transpose(input, dim0, dim1)


def unflatten(input, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one of them may be -1: the size that makes the
    product right, worked out here, so that it also works on tensors with no entries)."""
    x = as_tensor(input)
    d = _dim("unflatten", dim, x.ndim)
    sizes = tuple(_int("unflatten", "a size", s) for s in sizes)
    if not sizes:
        raise ValueError("unflatten: sizes must not be empty")
    n = x.shape[d]
    if sizes.count(-1) > 1:
        raise ValueError(f"unflatten: only one size may be -1, got {sizes}")
    if any(s < -1 for s in sizes):
        raise ValueError(f"unflatten: sizes must be non-negative (or one -1), got {sizes}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes and known == 0 and n == 0:
        raise ValueError(f"unflatten: sizes {sizes} leave the -1 undetermined (any size times "
                         "0 gives 0)")
    if (-1 in sizes and (known == 0 or n % known)) or (-1 not in sizes and known != n):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply up to the size {n} of "
                         f"dimension {d}")
    sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1:])


def _tensors(fn: str, tensors, allow_varargs=False) -> list:
    if allow_varargs and len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tensors[0]
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{fn}: expects a non-empty sequence of tensors")
    like = next((t for t in tensors if isinstance(t, Tensor)), None)
    return [as_tensor(t, like) for t in tensors]


def _atleast(fn: str, tensors, nd: int):
    ts = _tensors(fn, tensors, allow_varargs=True)
    out = []
    for t in ts:
        if t.ndim >= nd:
            out.append(t)
        elif nd == 3 and t.ndim == 2:
            out.append(reshape(t, t.shape + (1,)))
        elif nd == 3:
            out.append(reshape(t, (1, t.size, 1)))
        else:
            out.append(reshape(t, (1,) * (nd - t.ndim) + t.shape))
    return out[0] if len(tensors) == 1 and not isinstance(tensors[0], (list, tuple)) \
        else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dimension (a 0-d one becomes shape (1,))."""
    return _atleast("atleast_1d", tensors, 1)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dimensions (leading 1s added)."""
    return _atleast("atleast_2d", tensors, 2)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dimensions: (n,) becomes (1, n, 1), (m, n) (m, n, 1)."""
    return _atleast("atleast_3d", tensors, 3)


def _joined(fn: str, tensors, dim: int) -> Tensor:
    try:
        y = concat(tensors, dim)
    except ValueError as exc:
        raise ValueError(f"{fn}: " + str(exc).removeprefix("concat: ")) from None
    return _fresh(y, tensors[0])


def hstack(tensors) -> Tensor:
    """Join along dim 1, or along dim 0 when the tensors are 1-d (0-d ones count as 1-d)."""
    ts = [_as_1d(t) for t in _tensors("hstack", tensors)]
    return _joined("hstack", ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Join along dim 0 after making each tensor at least 2-d ((n,) becomes (1, n))."""
    ts = _tensors("vstack", tensors)
    return _joined("vstack", [atleast_2d(t) for t in ts], 0)


def dstack(tensors) -> Tensor:
    """Join along dim 2 after making each tensor at least 3-d."""
    ts = _tensors("dstack", tensors)
    return _joined("dstack", [atleast_3d(t) for t in ts], 2)


def column_stack(tensors) -> Tensor:
    """Join along dim 1, 0-d and 1-d tensors becoming columns of shape (n, 1)."""
    ts = _tensors("column_stack", tensors)
    return _joined("column_stack", [reshape(t, (t.size, 1)) if t.ndim <= 1 else t for t in ts],
                   1)


def meshgrid(*tensors, indexing=None) -> tuple:
    """Grids from 0-d or 1-d tensors (expanded views): with ``indexing="ij"`` (the default,
    None, which torch will require to be named) grid i varies along dim i; ``"xy"`` swaps the
    first two dims, as NumPy's default."""
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = _tensors("meshgrid", tensors, allow_varargs=True)
    for t in ts:
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-d or 1-d tensors, got shape "
                             f"{_shape_str(t.shape)}")
        if t.dtype != ts[0].dtype:
            raise TypeError(f"meshgrid: expects tensors of one dtype, got {ts[0].dtype} and "
                            f"{t.dtype}")
        backend.check_same_device(ts[0].data, t.data, what="meshgrid")
    sizes = [t.size for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(ts):
        pos = (1 - i if i < 2 else i) if swap else i
        shape = [1] * len(ts)
        shape[pos] = t.size
        out.append(expand(reshape(t, tuple(shape)), tuple(sizes)))
    return tuple(out)


def broadcast_shapes(*shapes) -> tuple:
    """The shape that tensors of ``shapes`` broadcast to (an int counts as a 1-d shape)."""
    norm = []
    for s in shapes:
        s = (s,) if isinstance(s, (int, np.integer)) else tuple(s)
        if any(not isinstance(v, (int, np.integer)) or v < 0 for v in s):
            raise ValueError(f"broadcast_shapes: sizes must be non-negative ints, got {s}")
        norm.append(s)
    try:
        return tuple(int(v) for v in np.broadcast_shapes(*norm))
    except ValueError:
        raise ValueError("broadcast_shapes: shapes " + ", ".join(_shape_str(s) for s in norm)
                         + " cannot be broadcast together") from None


def broadcast_tensors(*tensors) -> tuple:
    """The tensors broadcast to their common shape (expanded views)."""
    ts = _tensors("broadcast_tensors", tensors, allow_varargs=True)
    for t in ts[1:]:
        backend.check_same_device(ts[0].data, t.data, what="broadcast_tensors")
    shape = broadcast_shapes(*[t.shape for t in ts])
    return tuple(broadcast_to(t, shape) for t in ts)


# ----------------------------------------------------------------------------- sorting

SortResult = collections.namedtuple("sort", ["values", "indices"])
TopkResult = collections.namedtuple("topk", ["values", "indices"])
KthvalueResult = collections.namedtuple("kthvalue", ["values", "indices"])
MedianResult = collections.namedtuple("median", ["values", "indices"])


def _argsort_array(a, axis: int, descending: bool):
    """Stable argsort along ``axis`` as int64 (NaN counts as the largest value, as in torch);
    descending keeps ties in their input order too: the input is reversed, sorted stably and
    the order read backwards."""
    xp = backend.get_array_module(a)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable").astype(np.int64, copy=False)
    rev = (slice(None),) * axis + (slice(None, None, -1),)
    idx = xp.argsort(a[rev], axis=axis, kind="stable")[rev]
    return (a.shape[axis] - 1 - idx).astype(np.int64, copy=False)


def _no_bool(fn: str, x: Tensor) -> None:
    if x.dtype == np.bool_:
        raise TypeError(f"{fn}: not implemented for bool tensors (torch refuses them too); "
                        "cast first, e.g. x.long()")


def _take(x: Tensor, idx, d: int) -> Tensor:
    """x's entries at ``idx`` along ``d`` (idx of x's shape outside d): gradient through it."""
    return GetItem(_along(idx, d))(x)


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """``(values, indices)`` sorted along ``dim``; indices are int64 and ties keep their input
    order (a stable sort, whatever ``stable`` says). NaN sorts as the largest value. The
    values' gradient goes back to the entries they came from."""
    x = as_tensor(input)
    d = _dim("sort", dim, x.ndim)
    x1 = _as_1d(x)
    idx = _argsort_array(x1.data, d, bool(descending))
    values = _take(x1, idx, d)
    if x.ndim == 0:
        return SortResult(reshape(values, ()), Tensor(idx.reshape(())))
    return SortResult(values, Tensor(idx))


def argsort(input, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
    """The int64 indices that sort ``input`` along ``dim`` (``sort(...).indices``)."""
    x = as_tensor(input)
    d = _dim("argsort", dim, x.ndim)
    idx = _argsort_array(_as_1d(x).data, d, bool(descending))
    return Tensor(idx.reshape(()) if x.ndim == 0 else idx)


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """``(values, indices)`` of the ``k`` largest (or smallest) entries along ``dim``, in
    order; among equal values the earlier entry comes first (torch's choice among ties is its
    kernel's). ``sorted=False`` is accepted and the result is sorted anyway."""
    x = as_tensor(input)
    _no_bool("topk", x)
    k = _int("topk", "k", k)
    d = _dim("topk", dim, x.ndim)
    x1 = _as_1d(x)
    if not 0 <= k <= x1.shape[d]:
        raise ValueError(f"topk: k={k} is out of range for dimension {d} of size "
                         f"{x1.shape[d]}")
    # the whole dim is sorted; the k first are copied out, so the full order is not kept alive
    idx = _argsort_array(x1.data, d, bool(largest))[_slice_at(d, 0, k)].copy()
    values = _take(x1, idx, d)
    if x.ndim == 0 and k == 1:
        return TopkResult(reshape(values, ()), Tensor(idx.reshape(())))
    return TopkResult(values, Tensor(idx))


def _select_kth(x: Tensor, d: int, pos, keepdim: bool, result):
    """The entries at sorted position ``pos`` (an int array broadcast over d) along ``d``."""
    x1 = _as_1d(x)
    order = _argsort_array(x1.data, d, False)
    xp = backend.get_array_module(order)
    idx = xp.take_along_axis(order, pos, axis=d)
    values = _take(x1, idx, d)
    if x.ndim == 0:
        return result(reshape(values, ()), Tensor(idx.reshape(())))
    if not keepdim:
        values = reshape(values, values.shape[:d] + values.shape[d + 1:])
        idx = idx.reshape(idx.shape[:d] + idx.shape[d + 1:])
    return result(values, Tensor(idx))


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False):
    """``(values, indices)`` of the k-th smallest entry (k from 1) along ``dim``. Among equal
    values the index is that of a stable sort (torch may pick another of them)."""
    x = as_tensor(input)
    if x.ndim:  # (torch takes a 0-d bool tensor)
        _no_bool("kthvalue", x)
    k = _int("kthvalue", "k", k)
    d = _dim("kthvalue", dim, x.ndim)
    n = _as_1d(x).shape[d]
    if not 1 <= k <= n:
        raise ValueError(f"kthvalue: k={k} is out of range for dimension {d} of size {n}")
    shape = tuple(1 if i == d else s for i, s in enumerate(_as_1d(x).shape))
    pos = backend.get_array_module(x.data).full(shape, k - 1, dtype=np.int64)
    return _select_kth(x, d, pos, keepdim, KthvalueResult)


class _EvenlyDistributed(Function):
    """y = the median of all of x (the lower one for an even count; NaN if x holds one);
    gx = gy split evenly among the entries equal to y (torch's ``median()`` gradient). It is
    linear in gy with a piecewise-constant weight, so every order is exact."""

    saves_inputs = False  # the weights are kept from the forward

    def forward(self, x):
        xp = backend.get_array_module(x)
        flat = x.reshape(-1)
        if flat.size == 0:
            self.saved = xp.zeros(x.shape, dtype=x.dtype)
            return xp.full((), np.nan, dtype=x.dtype)
        srt = flat[_argsort_array(flat, 0, False)]
        v = srt[(flat.size - 1) // 2]
        hit = x == v
        if x.dtype.kind == "f":  # a NaN sorts last: the median is NaN if there is one
            last = srt[-1]
            v = xp.where(xp.isnan(last), last, v)
            hit = (x == v) | (xp.isnan(x) & xp.isnan(v))
        w = hit.astype(x.dtype)
        self.saved = xp.asarray(w / w.sum())  # (NumPy gives a scalar for a 0-d x)
        return xp.asarray(v).reshape(()).copy()

    def backward(self, gy):
        return gy * Tensor(self.saved)


def median(input, dim=None, keepdim: bool = False):
    """Without ``dim``: the lower median of all entries (NaN if any is NaN); its gradient is
    split evenly among the entries equal to it. With ``dim``: ``(values, indices)`` along it,
    the index of a NaN where a row holds one, else that of a stable sort (torch may pick
    another of several equal entries); the gradient goes to that index."""
    x = as_tensor(input)
    _no_bool("median", x)
    if dim is None:
        if x.size == 0 and x.dtype.kind != "f":
            raise ValueError("median: an empty integer tensor has no median")
        return _EvenlyDistributed()(x)
    d = _dim("median", dim, x.ndim)
    x1 = _as_1d(x)
    n = x1.shape[d]
    if n == 0:
        raise IndexError(f"median: dimension {d} to reduce has size 0")
    xp = backend.get_array_module(x.data)
    shape = tuple(1 if i == d else s for i, s in enumerate(x1.shape))
    pos = xp.full(shape, (n - 1) // 2, dtype=np.int64)
    if x.dtype.kind == "f":  # the first NaN, where a row holds one (NaNs sort last)
        nans = xp.isnan(x1.data).sum(axis=d, keepdims=True)
        pos = xp.where(nans > 0, n - nans, pos).astype(np.int64)
    return _select_kth(x, d, pos, keepdim, MedianResult)


# ----------------------------------------------------------------------------- searching, indexing

CummaxResult = collections.namedtuple("cummax", ["values", "indices"])
CumminResult = collections.namedtuple("cummin", ["values", "indices"])


def nonzero(input, *, as_tuple: bool = False):
    """The int64 indices of the nonzero entries, one row each: shape (n, ndim), in C order.
    ``as_tuple=True`` gives one 1-d index tensor per dimension instead (a 0-d input counts as
    1-d there, as in torch). n depends on the values: on the GPU finding it waits for the
    device, as torch's does."""
    x = as_tensor(input)
    a = x.data
    xp = backend.get_array_module(a)
    if a.ndim == 0:
        (hits,) = xp.nonzero(a.reshape(1))
        hits = hits.astype(np.int64, copy=False)
        if as_tuple:
            return (Tensor(hits),)
        return Tensor(xp.zeros((hits.shape[0], 0), dtype=np.int64))
    parts = [i.astype(np.int64, copy=False) for i in xp.nonzero(a)]
    if as_tuple:
        return tuple(Tensor(i) for i in parts)
    return Tensor(xp.stack(parts, axis=1))


def argwhere(input) -> Tensor:
    """``nonzero(input)``: the (n, ndim) int64 indices of the nonzero entries."""
    return nonzero(input)


def where(condition, input=None, other=None):
    """``where(condition, input, other)``: ``input`` where the bool ``condition`` holds, else
    ``other`` (basic's differentiable choice). ``where(condition)`` alone is
    ``nonzero(condition, as_tuple=True)``: one int64 index tensor per dimension."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither (where(condition) is "
                        "nonzero(condition, as_tuple=True))")
    return _where(condition, input, other)


def _unique(fn: str, input, return_inverse, return_counts, dim, consecutive: bool):
    """unique/unique_consecutive: runs of equal entries (or slices along ``dim``) after a
    stable sort (or in input order), found by comparing neighbours. NaNs are never equal, so
    each one is its own entry, as in torch. Constants: torch has no gradient for them."""
    x = as_tensor(input)
    a = x.data
    xp = backend.get_array_module(a)
    if dim is None:
        rows = a.reshape(-1, 1)
        inverse_shape = x.shape
    else:
        if x.ndim == 0:
            raise IndexError(f"{fn}: dimension {dim} given for a 0-d tensor, which has none")
        d = _dim(fn, dim, x.ndim)
        if x.size == 0 and x.shape[d]:
            raise ValueError(f"{fn}: tensor of shape {_shape_str(x.shape)} has a 0-sized "
                             f"dimension other than dim {d}, so its slices along dim {d} "
                             "cannot be compared (torch refuses it too)")
        moved = xp.moveaxis(a, d, 0)
        rows = moved.reshape(moved.shape[0], math.prod(moved.shape[1:]))
        inverse_shape = (rows.shape[0],)
    n = rows.shape[0]
    order = None
    if not consecutive and n:
        if rows.shape[1] == 1:
            order = _argsort_array(rows[:, 0], 0, False)
        else:  # lexicographic, first column first (lexsort's primary key is its last)
            keys = rows.astype(np.uint8) if rows.dtype == np.bool_ else rows
            order = xp.lexsort(keys.T[::-1]).astype(np.int64, copy=False)
        rows = rows[order]
    starts = xp.ones(n, dtype=bool)
    starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    first = xp.nonzero(starts)[0]  # (the output's length: a host read on the GPU)
    picked = rows[first]
    if dim is None:
        values = picked.reshape(-1)
    else:
        rest = tuple(s for i, s in enumerate(x.shape) if i != d)
        values = xp.moveaxis(picked.reshape((first.shape[0],) + rest), 0, d)
    out = [Tensor(xp.ascontiguousarray(values).astype(a.dtype, copy=False))]
    if return_inverse:
        group = xp.cumsum(starts, dtype=np.int64) - 1
        if order is not None:
            inverse = xp.empty(n, dtype=np.int64)
            inverse[order] = group
            group = inverse
        out.append(Tensor(group.reshape(inverse_shape)))
    if return_counts:
        ends = xp.concatenate([first[1:], xp.full(1, n, dtype=first.dtype)])
        out.append(Tensor((ends - first).astype(np.int64, copy=False)))
    return out[0] if len(out) == 1 else tuple(out)


def unique(input, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct entries of ``input`` (flattened), or its distinct slices along ``dim``,
    sorted (lexicographically for slices; ``sorted=False`` sorts too, as torch's kernels do).
    Optionally also the int64 ``inverse`` (where each entry went, input's shape, or one per
    slice) and ``counts``. The output's size depends on the values: on the GPU finding it
    waits for the device. No gradient flows, as in torch."""
    return _unique("unique", input, return_inverse, return_counts, dim, consecutive=False)


def unique_consecutive(input, return_inverse: bool = False, return_counts: bool = False,
                       dim=None):
    """``unique`` of runs only: each run of equal consecutive entries (or slices along
    ``dim``) becomes one, in input order."""
    return _unique("unique_consecutive", input, return_inverse, return_counts, dim,
                   consecutive=True)


def _vector_index(fn: str, x: Tensor, dim, index):
    """(dim, the 1-d int index array) for the index_* ops: index is 0-d or 1-d."""
    idx = _index(fn, index, x)
    if idx.ndim > 1:
        raise ValueError(f"{fn}: index must be 0-d or 1-d, got shape {_shape_str(idx.shape)}")
    return _dim(fn, dim, x.ndim), idx.reshape(-1)


def _source(fn: str, x: Tensor, d: int, idx, source) -> Tensor:
    """``source`` checked against input: same dtype, device and number of dims, and input's
    shape outside ``dim``, with len(index) entries along it; returned at least 1-d."""
    if not isinstance(source, Tensor):
        raise TypeError(f"{fn}: source must be a tensor, got {type(source).__name__}")
    backend.check_same_device(x.data, source.data, what=fn)
    if source.dtype != x.dtype:
        raise TypeError(f"{fn}: source has dtype {source.dtype} but input has {x.dtype}; "
                        "they must match")
    want = _as_1d(x).shape[:d] + (idx.shape[0],) + _as_1d(x).shape[d + 1:]
    if source.ndim != x.ndim or _as_1d(source).shape != want:
        raise ValueError(f"{fn}: source of shape {_shape_str(source.shape)} does not fit input "
                         f"of shape {_shape_str(x.shape)} with {idx.shape[0]} indices along "
                         f"dim {d} (expected shape {_shape_str(want if x.ndim else ())})")
    return _as_1d(source)


def _index_op(fn: str, input, dim, index, source, op) -> Tensor:
    x = as_tensor(input)
    d, idx = _vector_index(fn, x, dim, index)
    src = _source(fn, x, d, idx, source)
    _check_range(fn, idx, _as_1d(x).shape[d], d)
    y = op((slice(None),) * d + (idx,))(_as_1d(x), src)
    return reshape(y, ()) if x.ndim == 0 else y


def index_add(input, dim: int, index, source, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added at ``index`` along ``dim``; repeated
    indices accumulate. gx = gy, gsource = alpha * gy at index. As torch, an integer input
    takes a float alpha truncated to an int."""
    x = as_tensor(input)
    if isinstance(alpha, Tensor) or not isinstance(alpha, (int, float, np.number, bool)):
        raise TypeError(f"index_add: alpha must be a number, got {type(alpha).__name__}")
    if isinstance(source, Tensor) and alpha != 1:
        scale = int(alpha) if x.dtype.kind in "biu" else alpha
        source = astype(source * scale, source.dtype)
    return _index_op("index_add", x, dim, index, source, _ScatterAdd)


def index_copy(input, dim: int, index, source) -> Tensor:
    """A copy of ``input`` with the slices of ``source`` written at ``index`` along ``dim``.
    gx = gy with zeros at the written slices, gsource = gy at index. Which write lands for a
    repeated index is unspecified, as in torch."""
    return _index_op("index_copy", input, dim, index, source, _Scatter)


def index_fill(input, dim: int, index, value) -> Tensor:
    """A copy of ``input`` with the slices at ``index`` along ``dim`` set to ``value`` (a
    number, or a 0-d tensor that gets the gradient summed over the filled places); negative
    indices count from the end. gx = gy with zeros at the filled slices."""
    x = as_tensor(input)
    d, idx = _vector_index("index_fill", x, dim, index)
    x1 = _as_1d(x)
    n = x1.shape[d]
    if not backend.is_cupy_array(idx) and idx.size and not (
            -n <= int(idx.min()) and int(idx.max()) < n):
        bad = int(idx.min()) if int(idx.min()) < -n else int(idx.max())
        raise IndexError(f"index_fill: index {bad} is out of bounds for dimension {d} with "
                         f"size {n}")
    fill = _fill_value("index_fill", value, x)
    y = _where(_written((slice(None),) * d + (idx,), x1), fill, x1)
    return reshape(y, ()) if x.ndim == 0 else y


def _put_indices(x: Tensor, indices) -> tuple:
    """index_put's indices as a tuple of integer arrays from dim 0 on (a bool mask becomes
    the integer indices of its True entries: a host read on the GPU, as in torch), and the
    number of dims they index."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put: indices must be a tuple of tensors, got "
                        f"{type(indices).__name__}")
    if not indices:
        raise ValueError("index_put: indices must not be empty")
    parts, pos = [], 0
    for k, i in enumerate(indices):
        if i is None:
            raise TypeError(f"index_put: index {k} is None; give a tensor for each dim")
        arr = i.data if isinstance(i, Tensor) else i
        if not hasattr(arr, "dtype"):
            arr = backend.to_device(np.asarray(arr), x.device)
        backend.check_same_device(x.data, arr, what="index_put")
        if arr.dtype == np.bool_:
            if arr.ndim == 0 or tuple(arr.shape) != x.shape[pos:pos + arr.ndim]:
                raise IndexError(f"index_put: the mask of shape {_shape_str(arr.shape)} at "
                                 f"index {k} does not match the shape {_shape_str(x.shape)} "
                                 f"of the tensor from dim {pos}")
            parts.extend(backend.get_array_module(arr).nonzero(arr))
            pos += arr.ndim
        elif arr.dtype.kind in "iu":
            if pos >= x.ndim:
                raise IndexError(f"index_put: too many indices for a tensor of shape "
                                 f"{_shape_str(x.shape)}")
            n = x.shape[pos]
            if not backend.is_cupy_array(arr) and arr.size:
                lo, hi = int(arr.min()), int(arr.max())
                if lo < -n or hi >= n:
                    raise IndexError(f"index_put: index {lo if lo < -n else hi} is out of "
                                     f"bounds for dimension {pos} with size {n}")
            parts.append(arr)
            pos += 1
        else:
            raise TypeError(f"index_put: index {k} must be an integer or bool tensor, got "
                            f"dtype {arr.dtype}")
    if pos > x.ndim:
        raise IndexError(f"index_put: too many indices for a tensor of shape "
                         f"{_shape_str(x.shape)}")
    return tuple(parts), pos


def index_put(input, indices, values, accumulate: bool = False) -> Tensor:
    """A copy of ``input`` with ``input[indices] = values`` (``+=`` with ``accumulate``,
    where repeated indices add up), indices a tuple of integer or bool tensors for the
    leading dims and values broadcast to the indexed shape. gx = gy (accumulate) or gy with
    zeros at the written places; gvalues = gy at indices, summed to values' shape. Without
    accumulate, which of repeated writes lands is unspecified, as in torch."""
    x = as_tensor(input)
    index, ndims = _put_indices(x, indices)
    if not isinstance(values, Tensor):
        raise TypeError(f"index_put: values must be a tensor, got {type(values).__name__}")
    backend.check_same_device(x.data, values.data, what="index_put")
    if values.dtype != x.dtype:
        raise TypeError(f"index_put: values have dtype {values.dtype} but input has "
                        f"{x.dtype}; they must match")
    try:
        lead = tuple(np.broadcast_shapes(*[i.shape for i in index]))
    except ValueError:
        raise ValueError("index_put: index shapes " + ", ".join(_shape_str(i.shape)
                         for i in index) + " cannot be broadcast together") from None
    shape = lead + x.shape[ndims:]
    try:
        ok = tuple(np.broadcast_shapes(values.shape, shape)) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"index_put: values of shape {_shape_str(values.shape)} cannot be "
                         f"broadcast to the indexed shape {_shape_str(shape)}")
    v = broadcast_to(values, shape) if values.shape != shape else values
    return (_ScatterAdd if accumulate else _Scatter)(index)(x, v)


def select(input, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, with that dim removed (negative indices count
    from the end). gx = zeros with gy in that slice."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise IndexError("select: a 0-d tensor has no dimension to select from")
    d = _dim("select", dim, x.ndim)
    if isinstance(index, Tensor) and index.ndim == 0 and index.dtype.kind in "iu":
        index = int(index.item())
    i = _int("select", "index", index)
    n = x.shape[d]
    if not -n <= i < n:
        raise IndexError(f"select: index {i} is out of range for dimension {d} of size {n} "
                         f"(shape {_shape_str(x.shape)})")
    return GetItem((slice(None),) * d + (i % n,))(x)


def take(input, index) -> Tensor:
    """The entries of ``input`` read as a flat 1-d tensor at the integer ``index`` (negative
    ones count from the end), in index's shape. gx = zeros with gy added at those places."""
    x = as_tensor(input)
    idx = _index("take", index, x)
    n = x.size
    if not backend.is_cupy_array(idx) and idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -n or hi >= n:
            raise IndexError(f"take: index {lo if lo < -n else hi} is out of range for a "
                             f"tensor of {n} entries (shape {_shape_str(x.shape)})")
    if idx.ndim == 0:  # (NumPy reads one entry as a scalar, not a 0-d array)
        return reshape(GetItem(idx.reshape(1))(reshape(x, (n,))), ())
    return GetItem(idx)(reshape(x, (n,)))


def _unfold(self, dimension: int, size: int, step: int) -> Tensor:
    """``Tensor.unfold``: every window of ``size`` entries along ``dimension``, ``step``
    apart, as a new last dim (torch's is a view; this is a gather, whose gradient adds up
    the overlaps)."""
    x = as_tensor(self)
    d = _dim("unfold", dimension, x.ndim)
    size, step = _int("unfold", "size", size), _int("unfold", "step", step)
    x1 = _as_1d(x)
    n = x1.shape[d]
    if size < 0:
        raise ValueError(f"unfold: size must be non-negative, got {size}")
    if step <= 0:
        raise ValueError(f"unfold: step must be positive, got {step}")
    if size > n:
        raise ValueError(f"unfold: size {size} is larger than the size {n} of dimension {d} "
                         f"(shape {_shape_str(x.shape)})")
    xp = backend.get_array_module(x.data)
    count = (n - size) // step + 1
    idx = xp.arange(count, dtype=np.int64).reshape(-1, 1) * step + xp.arange(size,
                                                                              dtype=np.int64)
    y = movedim(GetItem((slice(None),) * d + (idx,))(x1), d + 1, -1)
    return reshape(y, (size,)) if x.ndim == 0 else y


def _beats(xp, p, c, largest: bool):
    """Where ``p`` strictly beats ``c`` (greater, or smaller): NaN beats any number."""
    out = p > c if largest else p < c
    if p.dtype.kind == "f":
        out = out | (xp.isnan(p) & ~xp.isnan(c))
    return out


def _cumulative_extreme(fn: str, input, dim, largest: bool, result):
    """cummax/cummin: the running extreme's index by a scan in log2(n) doubling steps, each
    comparing every entry with the best of the stretch before it (the later index wins a
    tie, and a NaN wins from then on, as in torch); the values are gathered there."""
    x = as_tensor(input)
    d = _dim(fn, dim, x.ndim)
    x1 = _as_1d(x)
    a = x1.data
    xp = backend.get_array_module(a)
    n = a.shape[d]
    idx = xp.broadcast_to(xp.arange(n, dtype=np.int64).reshape((-1,) + (1,) * (a.ndim - d - 1)),
                          a.shape)
    best, k = a, 1
    while k < n:
        head, tail = _slice_at(d, 0, n - k), _slice_at(d, k, n)
        keep = _beats(xp, best[head], best[tail], largest)
        best = xp.concatenate([best[_slice_at(d, 0, k)],
                               xp.where(keep, best[head], best[tail])], axis=d)
        idx = xp.concatenate([idx[_slice_at(d, 0, k)],
                              xp.where(keep, idx[head], idx[tail])], axis=d)
        k *= 2
    idx = xp.ascontiguousarray(idx)
    values = _take(x1, idx, d)
    if x.ndim == 0:
        return result(reshape(values, ()), Tensor(idx.reshape(())))
    return result(values, Tensor(idx))


def cummax(input, dim: int):
    """``(values, indices)``: the running maximum along ``dim`` and the int64 index where it
    was reached (the latest of equal ones; NaN propagates). The values' gradient goes back
    to those indices."""
    return _cumulative_extreme("cummax", input, dim, True, CummaxResult)


def cummin(input, dim: int):
    """``(values, indices)``: the running minimum along ``dim``, as cummax."""
    return _cumulative_extreme("cummin", input, dim, False, CumminResult)


def bincount(input, weights=None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in the 1-d non-negative integer ``input`` (int64),
    or the sum of ``weights`` at each (float32 weights give float32, other ones float64), with
    at least ``minlength`` bins. The length depends on the values: on the GPU finding it waits
    for the device. Float weights get a gradient (gy at input), which torch does not have."""
    idx = _index("bincount", input, None, "input")
    if idx.ndim != 1:
        raise ValueError(f"bincount: input must be 1-d, got shape {_shape_str(idx.shape)}")
    minlength = _int("bincount", "minlength", minlength)
    if minlength < 0:
        raise ValueError(f"bincount: minlength must be non-negative, got {minlength}")
    xp = backend.get_array_module(idx)
    size = minlength
    if idx.size:  # (one host read of both ends)
        lo, hi = (int(v) for v in backend.to_numpy(xp.stack([idx.min(), idx.max()])))
        if lo < 0:
            raise ValueError(f"bincount: input must be non-negative, got {lo}")
        size = max(hi + 1, minlength)
    if weights is None:
        if not backend.is_cupy_array(idx):
            return Tensor(np.bincount(idx.astype(np.int64, copy=False), minlength=size))
        counts = xp.zeros(size, dtype=np.uint64)  # (CuPy's add.at has no int64)
        backend.scatter_add(counts, idx, xp.ones((), dtype=np.uint64))
        return Tensor(counts.astype(np.int64))
    w = as_tensor(weights)
    backend.check_same_device(idx, w.data, what="bincount")
    if w.shape != idx.shape:
        raise ValueError(f"bincount: weights of shape {_shape_str(w.shape)} must be 1-d with "
                         f"one weight per input entry ({idx.shape[0]})")
    if w.dtype not in (np.float32, np.float64):
        w = astype(w.detach(), np.float64)
    zeros = Tensor(xp.zeros(size, dtype=w.dtype))
    return _ScatterAdd((idx,))(zeros, w)


def histc(input, bins: int = 100, min=0, max=0) -> Tensor:  # noqa: A002
    """A histogram of the entries in ``bins`` equal bins over [min, max] (entries outside,
    and NaNs, are left out; max itself goes in the last bin), of input's float dtype. With
    min == max the data's own range is used, widened by 1 each way if that is one value.
    Without a gradient, as in torch; on the GPU it never waits for the device."""
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"histc: expects a floating point tensor, got dtype {x.dtype} (torch "
                        "refuses others too); cast first, e.g. x.float()")
    bins = _int("histc", "bins", bins)
    if bins <= 0:
        raise ValueError(f"histc: bins must be positive, got {bins}")
    for name, v in (("min", min), ("max", max)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
            raise TypeError(f"histc: {name} must be a number, got {v!r}")
    if min > max:
        raise ValueError(f"histc: max must be larger than min, got min={min} and max={max}")
    a = x.data.reshape(-1)
    xp = backend.get_array_module(a)
    lo, hi = xp.asarray(min, dtype=a.dtype), xp.asarray(max, dtype=a.dtype)
    if min == max and a.size:
        lo, hi = a.min(), a.max()
    same = lo == hi
    lo, hi = xp.where(same, lo - 1, lo), xp.where(same, hi + 1, hi)
    if not backend.is_cupy_array(a) and not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"histc: the range [{lo}, {hi}] is not finite")
    inside = (a >= lo) & (a <= hi)
    # torch's formula, in input's dtype: bin = int((x - min) * bins / (max - min))
    pos = xp.where(inside, (a - lo) * bins / (hi - lo), 0).astype(np.int64)
    pos = xp.where(inside, xp.minimum(pos, bins - 1), bins)  # (bin `bins`: the left-outs)
    acc = np.float64 if a.dtype == np.float64 else np.float32
    counts = xp.zeros(bins + 1, dtype=acc)
    backend.scatter_add(counts, pos, xp.ones((), dtype=acc))
    return Tensor(counts[:bins].astype(a.dtype))


def _search_operands(fn: str, seq: Tensor, values):
    """(sequence array, values array) on one device, promoted to their common dtype."""
    if isinstance(values, Tensor):
        backend.check_same_device(seq.data, values.data, what=fn)
    elif isinstance(values, (bool, int, float, np.number)):
        pass
    else:
        raise TypeError(f"{fn}: values must be a tensor or a number, got "
                        f"{type(values).__name__}")
    dt = result_type(seq, values)
    xp = backend.get_array_module(seq.data)
    v = values.data if isinstance(values, Tensor) else xp.asarray(values)
    return seq.data.astype(dt, copy=False), v.astype(dt, copy=False)


def _binary_search(s, v, right: bool):
    """torch's search, vectorised: for each value the first position whose entry is >= it
    (> it with ``right``) in the last dim of ``s`` (1-d, or with v's leading dims), in
    bit_length(len) halving steps over all values at once. torch's comparisons (NaN compares
    false) and midpoints are kept, so NaNs land where torch puts them."""
    xp = backend.get_array_module(s)
    m = s.shape[-1]
    lo = xp.zeros(v.shape, dtype=np.int64)
    hi = xp.full(v.shape, m, dtype=np.int64)
    for _ in range(m.bit_length()):
        mid = lo + ((hi - lo) >> 1)
        at = xp.minimum(mid, m - 1)  # (mid == m only where lo == hi: that entry is not used)
        entry = s[at] if s.ndim == 1 else xp.take_along_axis(s, at, axis=-1)
        go_right = ~(entry > v) if right else ~(entry >= v)
        open_ = lo < hi
        lo = xp.where(open_ & go_right, mid + 1, lo)
        hi = xp.where(open_ & ~go_right, mid, hi)
    return lo


def searchsorted(sorted_sequence, values, *, out_int32: bool = False, right: bool = False,
                 side=None, sorter=None) -> Tensor:
    """For each value, the index at which inserting it keeps ``sorted_sequence`` sorted along
    its last dim: the first place with an entry >= the value (> with ``right=True`` or
    ``side="right"``). A sequence of more than 1 dim searches row by row: its leading dims
    must be values'. ``sorter`` holds indices that sort an unsorted sequence. int64, or int32
    with ``out_int32``; a number gives a 0-d result."""
    seq = as_tensor(sorted_sequence)
    if side not in (None, "left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if side == "left" and right:
        raise ValueError("searchsorted: side='left' and right=True contradict each other")
    right = bool(right) or side == "right"
    if seq.ndim == 0:
        raise ValueError("searchsorted: sorted_sequence must have at least 1 dimension, got "
                         "a 0-d tensor")
    s, v = _search_operands("searchsorted", seq, values)
    if seq.ndim > 1 and (v.ndim != seq.ndim or v.shape[:-1] != seq.shape[:-1]):
        raise ValueError(f"searchsorted: sorted_sequence of shape {_shape_str(seq.shape)} "
                         f"searches row by row, so values need the same leading dims, got "
                         f"shape {_shape_str(v.shape)} (or use a 1-d sequence)")
    if sorter is not None:
        order = _index("searchsorted", sorter, seq, "sorter")
        if order.shape != seq.shape:
            raise ValueError(f"searchsorted: sorter of shape {_shape_str(order.shape)} must "
                             f"have sorted_sequence's shape {_shape_str(seq.shape)}")
        _check_range("searchsorted", order, seq.shape[-1], seq.ndim - 1)
        xp = backend.get_array_module(s)
        s = xp.take_along_axis(s, order.astype(np.int64, copy=False), axis=-1)
    out = _binary_search(s, v, right)
    return Tensor(out.astype(np.int32) if out_int32 else out)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each entry of ``input`` (a tensor or a number) among the 1-d sorted
    ``boundaries``: i with boundaries[i-1] < x <= boundaries[i] (boundaries[i-1] <= x <
    boundaries[i] with ``right=True``); ``searchsorted(boundaries, input)``."""
    b = as_tensor(boundaries)
    if b.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-d, got shape {_shape_str(b.shape)}")
    return searchsorted(b, input, out_int32=out_int32, right=right)


# ----------------------------------------------------------------------------- Tensor methods

def _shape_of(fn: str, other) -> tuple:
    if isinstance(other, Tensor) or hasattr(other, "shape"):
        return tuple(other.shape)
    raise TypeError(f"{fn}: expects a tensor, got {type(other).__name__}")


def _size_args(fn: str, size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = tuple(_int(fn, "a size", s) for s in size)
    if any(s < 0 for s in out):
        raise ValueError(f"{fn}: sizes must be non-negative, got {out}")
    return out


def _new(self: Tensor, size, fill, dtype, device, requires_grad) -> Tensor:
    """A new tensor of ``size`` on self's device with self's dtype unless given."""
    dtype = np.dtype(dtype) if dtype is not None else self.dtype
    xp = backend.xp_for(device if device is not None else self.device)
    arr = xp.empty(size, dtype=dtype) if fill is None else xp.full(size, fill, dtype=dtype)
    return Tensor(arr, requires_grad=requires_grad)


def _new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(self, _size_args("new_zeros", size), 0, dtype, device,
                requires_grad)


def _new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(self, _size_args("new_ones", size), 1, dtype, device,
                requires_grad)


def _new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _new(self, _size_args("new_empty", size), None, dtype, device,
                requires_grad)


def _new_full(self, size, fill_value, *, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    return _new(self, _size_args("new_full", (size,)), fill_value, dtype, device,
                requires_grad)


def _new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A copy of ``data`` with self's dtype and device unless given (int data included)."""
    return tensor(data, requires_grad=requires_grad,
                  device=device if device is not None else self.device,
                  dtype=dtype if dtype is not None else self.dtype)


def _matrix_transpose(name: str, batched: bool):
    def get(self):
        if self.ndim == 0:  # torch 2.13: the identity, with a deprecation warning
            warnings.warn(f"tensor.{name} on a 0-d tensor is deprecated (torch warns too): it "
                          "returns the tensor itself", UserWarning, stacklevel=2)
            return self
        if (self.ndim < 2) if batched else (self.ndim != 2):
            what = "matrices or batches of matrices" if batched else "matrices (2-d tensors)"
            raise ValueError(f"tensor.{name} is only supported on {what}, got shape "
                             f"{_shape_str(self.shape)}")
        return transpose(self, -2, -1)
    return property(get, doc=f"``{name}``: the last two dims swapped (real tensors); a 0-d "
                             "tensor is returned as it is, with a warning, as torch does.")


def _missing(method: str, what: str):
    raise TypeError(f"{method}: missing {what}")


def _contiguous(self, memory_format=None) -> Tensor:
    """The tensor itself where it is C-contiguous, else a C-contiguous copy, as torch's (a new
    tensor: an in-place change of it does not reach the tensor it was made from)."""
    if self.data.flags.c_contiguous:
        return self
    return clone(self)  # (an array's copy() is C-ordered)


TENSOR_METHODS = {
    "chunk": lambda self, chunks, dim=0: chunk(self, chunks, dim),
    "split": lambda self, split_size, dim=0: split(self, split_size, dim),
    "tensor_split": lambda self, indices_or_sections, dim=0: tensor_split(
        self, indices_or_sections, dim),
    "unbind": lambda self, dim=0: unbind(self, dim),
    "narrow": lambda self, dim, start, length: narrow(self, dim, start, length),
    "flip": lambda self, *dims: flip(self, _ints("flip", "a dim", dims)),
    "fliplr": lambda self: fliplr(self),
    "flipud": lambda self: flipud(self),
    "roll": lambda self, shifts, dims=None: roll(self, shifts, dims),
    "rot90": lambda self, k=1, dims=(0, 1): rot90(self, k, dims),
    "repeat": _repeat,
    "repeat_interleave": lambda self, repeats=None, dim=None, *, output_size=None:
        repeat_interleave(self, repeats, dim, output_size=output_size),
    "tile": lambda self, *dims: tile(self, _ints("tile", "a repeat count", dims)) if dims
        else _missing("tile", "the repeat counts (x.tile(*dims))"),
    "gather": lambda self, dim, index: gather(self, dim, index),
    "scatter": lambda self, dim, index, src=None, *, value=None, reduce=None: scatter(
        self, dim, index, src, value=value, reduce=reduce),
    "scatter_add": lambda self, dim, index, src: scatter_add(self, dim, index, src),
    "index_select": lambda self, dim, index: index_select(self, dim, index),
    "masked_fill": lambda self, mask, value: masked_fill(self, mask, value),
    "masked_select": lambda self, mask: masked_select(self, mask),
    "take_along_dim": lambda self, indices, dim=None: take_along_dim(self, indices, dim),
    "tril": lambda self, diagonal=0: tril(self, diagonal),
    "triu": lambda self, diagonal=0: triu(self, diagonal),
    "diag": lambda self, diagonal=0: diag(self, diagonal),
    "diagonal": lambda self, offset=0, dim1=0, dim2=1: diagonal(self, offset, dim1, dim2),
    "trace": lambda self: trace(self),
    "movedim": lambda self, source, destination: movedim(self, source, destination),
    "moveaxis": lambda self, source, destination: movedim(self, source, destination),
    "swapaxes": lambda self, axis0, axis1: transpose(self, axis0, axis1),
    "swapdims": lambda self, dim0, dim1: transpose(self, dim0, dim1),
    "unflatten": lambda self, dim, sizes: unflatten(self, dim, sizes),
    "sort": lambda self, dim=-1, descending=False, *, stable=False: sort(
        self, dim, descending, stable=stable),
    "argsort": lambda self, dim=-1, descending=False, *, stable=False: argsort(
        self, dim, descending, stable=stable),
    "topk": lambda self, k, dim=-1, largest=True, sorted=True: topk(
        self, k, dim, largest, sorted),
    "kthvalue": lambda self, k, dim=-1, keepdim=False: kthvalue(self, k, dim, keepdim),
    "median": lambda self, dim=None, keepdim=False: median(self, dim, keepdim),
    "view_as": lambda self, other: reshape(self, _shape_of("view_as", other)),
    "reshape_as": lambda self, other: reshape(self, _shape_of("reshape_as", other)),
    "expand_as": lambda self, other: expand(self, _shape_of("expand_as", other)),
    "type_as": lambda self, other: self.to(other.device, other.dtype),
    "new_zeros": _new_zeros,
    "new_ones": _new_ones,
    "new_empty": _new_empty,
    "new_full": _new_full,
    "new_tensor": _new_tensor,
    "contiguous": _contiguous,
    "is_contiguous": lambda self, memory_format=None: bool(self.data.flags.c_contiguous),
    "nonzero": lambda self, *, as_tuple=False: nonzero(self, as_tuple=as_tuple),
    "argwhere": lambda self: argwhere(self),
    "where": lambda self, condition, y: _where(condition, self, y),
    "unique": lambda self, sorted=True, return_inverse=False, return_counts=False, dim=None:
        unique(self, sorted, return_inverse, return_counts, dim),
    "unique_consecutive": lambda self, return_inverse=False, return_counts=False, dim=None:
        unique_consecutive(self, return_inverse, return_counts, dim),
    "index_add": lambda self, dim, index, source, *, alpha=1: index_add(
        self, dim, index, source, alpha=alpha),
    "index_copy": lambda self, dim, index, source: index_copy(self, dim, index, source),
    "index_fill": lambda self, dim, index, value: index_fill(self, dim, index, value),
    "index_put": lambda self, indices, values, accumulate=False: index_put(
        self, indices, values, accumulate),
    "select": lambda self, dim, index: select(self, dim, index),
    "take": lambda self, index: take(self, index),
    "unfold": _unfold,
    "cummax": lambda self, dim: cummax(self, dim),
    "cummin": lambda self, dim: cummin(self, dim),
    "bincount": lambda self, weights=None, minlength=0: bincount(self, weights, minlength),
    "histc": lambda self, bins=100, min=0, max=0: histc(self, bins, min, max),
    "mT": _matrix_transpose("mT", True),
    "mH": _matrix_transpose("mH", True),
    "H": _matrix_transpose("H", False),
}
