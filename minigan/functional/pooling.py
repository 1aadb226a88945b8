"""torch's 1-D and adaptive pooling, lp-pooling and max-unpooling, exact at every order.

Two building blocks cover them all, both linear in the input, so each one's backward is the
other one's (or its own) forward and higher derivatives need no extra code:

* Average pooling of every kind (adaptive, sliding with padding, ``ceil_mode``, either
  divisor) is separable: along each spatial axis each window is a contiguous range of
  positions, summed then divided by the window's divisor. ``_WindowSum`` gathers each window
  through an index table (Out, widest window) with a validity mask, so an inf or NaN reaches
  only its own windows and the cost is linear in the length; gx is the same gather over the
  transposed table (the windows that hold each position), whose backward is this one again.
* Max pooling picks one input per window. The windows are index tables made from the
  geometry alone (no loops over pixels); the forward finds each window's argmax on the arrays
  (a piecewise-constant choice, like ReLU's mask), then the output is ``x[argmax]`` as a
  ``GetItem``, whose backward scatters gy to the argmax and whose second derivative gathers
  again. As in torch, ties go to the first maximum in row-major order, a window holding NaN
  gives its last NaN, and padded positions never win.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor
from . import basic as B
from .activation import relu
from .basic import GetItem
from .pointwise import sign

__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "avg_pool1d", "lp_pool1d", "lp_pool2d", "max_pool1d",
           "max_pool2d_with_indices", "max_unpool2d"]


# ----- arguments

def _input(fn: str, input, ranks: tuple, what: str, int64: bool = False,
           why: str = "") -> Tensor:
    """``input`` as a tensor of one of ``ranks`` dimensions (``what`` names them), floating or,
    where ``int64`` (torch's CPU avg_pool takes int64 and no other integer type), int64;
    ``why`` replaces the error's reason."""
    x = as_tensor(input)
    if x.ndim not in ranks:
        raise ValueError(f"{fn}: expected a {' or '.join(f'{r}-D' for r in ranks)} input "
                         f"({what}), got shape {tuple(x.shape)}")
    if x.dtype.kind != "f" and not (int64 and x.dtype == np.int64):
        kinds = "floating-point or int64" if int64 else "floating-point"
        raise TypeError(f"{fn}: expected a {kinds} input, got dtype {x.dtype} "
                        f"({why or f'as torch, whose {fn} refuses it too'})")
    return x


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _tuple(fn: str, name: str, v, n: int, minimum=None, allow_none: bool = False) -> tuple:
    """An int (repeated n times) or a sequence of n ints as a tuple of ints, each at least
    ``minimum``; None entries pass where ``allow_none``."""
    items = (v,) * n if _is_int(v) else v
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or len(items) != n or not all(
            _is_int(i) or (allow_none and i is None) for i in items):
        raise TypeError(f"{fn}: {name} must be an int or a sequence of {n} int"
                        f"{'s or None' if allow_none else 's'}, got {v!r}")
    items = tuple(None if i is None else int(i) for i in items)
    if minimum is not None:
        for i in items:
            if i is not None and i < minimum:
                raise ValueError(f"{fn}: {name} must be >= {minimum}, got {v!r}")
    return items


def _non_empty_planes(fn: str, x: Tensor, nsp: int) -> None:
    """Every dimension but an optional batch one must be non-empty (torch's rule)."""
    first = x.ndim - nsp - 1  # the channel dimension
    for d in range(first, x.ndim):
        if x.shape[d] == 0:
            raise ValueError(f"{fn}: expected non-zero sizes outside the batch dimension, got "
                             f"input of shape {tuple(x.shape)} (dimension {d} is empty)")


def _out_size(fn: str, size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape: the number of windows along one axis."""
    span = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside
        out -= 1
    if out < 1:
        raise ValueError(f"{fn}: the output would be empty: an input of size {size} with "
                         f"kernel_size={k}, stride={s}, padding={p}, dilation={d} gives "
                         f"{out} windows")
    return out


def _sliding_args(fn: str, x: Tensor, nsp: int, kernel_size, stride, padding, dilation,
                  ceil_mode) -> tuple:
    """(k, s, p, d, out) per spatial axis, checked as torch checks them."""
    k = _tuple(fn, "kernel_size", kernel_size, nsp, 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        s = k  # torch's default: the window's size
    else:
        s = _tuple(fn, "stride", stride, nsp, 1)
    p = _tuple(fn, "padding", padding, nsp, 0)
    d = _tuple(fn, "dilation", dilation, nsp, 1)
    for kk, pp in zip(k, p):
        if 2 * pp > kk:
            raise ValueError(f"{fn}: padding must be at most half of kernel_size, got "
                             f"padding={padding!r}, kernel_size={kernel_size!r}")
    _non_empty_planes(fn, x, nsp)
    sizes = x.shape[x.ndim - nsp:]
    out = tuple(_out_size(fn, n, kk, ss, pp, dd, bool(ceil_mode))
                for n, kk, ss, pp, dd in zip(sizes, k, s, p, d))
    return k, s, p, d, out


def _adaptive_size(fn: str, x: Tensor, output_size, nsp: int) -> tuple:
    """The output size per spatial axis; None entries (2-D only) keep the input's size."""
    sizes = x.shape[x.ndim - nsp:]
    out = _tuple(fn, "output_size", output_size, nsp, 0, allow_none=nsp > 1)
    return tuple(n if o is None else o for o, n in zip(out, sizes))


def _bins(xp, size: int, out: int):
    """torch's adaptive bins along one axis: start = floor(i*In/Out), end = ceil((i+1)*In/Out)."""
    i = xp.arange(out, dtype=np.int64)
    return (i * size) // out, ((i + 1) * size + out - 1) // out


# ----- average pooling: a gather of each window's positions

class _Windows:
    """Contiguous windows along one axis: window o covers input positions [lo[o], hi[o]) of
    ``size``, at most ``width`` of them; ``width_t`` bounds how many windows one position lies
    in. lo and hi never decrease with o (true of sliding and adaptive windows), so the windows
    holding one position are contiguous too: ``transpose()`` gives them, in this same form."""

    def __init__(self, lo, hi, size: int, width: int, width_t: int):
        self.lo, self.hi, self.size = lo, hi, size
        self.width, self.width_t = max(int(width), 0), max(int(width_t), 0)
        self._table = self._t = None

    def table(self):
        """(positions, valid), each (Out, width): window o reads lo[o] + j where valid; the
        other slots read a real position (clipped) that the mask then drops."""
        if self._table is None:
            xp = backend.get_array_module(self.lo)
            pos = self.lo[:, None] + xp.arange(self.width, dtype=np.int64)
            valid = pos < self.hi[:, None]
            self._table = xp.clip(pos, 0, max(self.size - 1, 0)), valid
        return self._table

    def transpose(self) -> "_Windows":
        """The windows holding each input position i: o from #{hi <= i} to #{lo <= i}."""
        if self._t is None:
            xp = backend.get_array_module(self.lo)
            i = xp.arange(self.size, dtype=np.int64)
            lo = xp.searchsorted(self.hi, i, side="right").astype(np.int64)
            hi = xp.searchsorted(self.lo, i, side="right").astype(np.int64)
            self._t = _Windows(lo, hi, self.lo.shape[0], self.width_t, self.width)
            self._t._t = self
        return self._t


def _trunc_div(xp, a, d):
    """a / d rounded toward zero, as C's (and torch's) integer division."""
    q = xp.abs(a) // d
    return xp.where(a < 0, -q, q)


class _WindowSum(Function):
    """y[.., o, ..] = sum over window o (along ``axis``) of (x / pre)[.., i, ..], then / post
    (``pre``/``post``: per-position and per-window divisors, or None). Linear: gx is the same
    sum over the transposed windows with pre and post swapped, whose backward is this one
    again, so every order is exact. Each output reads only its own window's inputs, so an inf
    or NaN reaches only the windows that hold it, and time and memory are O(Out * width)."""

    saves_inputs = False  # its gradient does not read the input's values

    def __init__(self, windows: _Windows, axis: int, pre=None, post=None):
        self.windows, self.axis, self.pre, self.post = windows, axis, pre, post

    def _along_axis(self, v, ndim: int, extra: int = 0):
        """``v`` (n,) or (n, k) shaped to broadcast along ``self.axis`` of an ndim array."""
        return v.reshape(v.shape + (1,) * (ndim - self.axis - 1 - extra))

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.pre is not None:
            x = x / self._along_axis(self.pre, x.ndim)
        pos, valid = self.windows.table()
        g = xp.take(x, pos, axis=self.axis)  # (.., Out, width, ..)
        # where, not a multiply by 0: a dropped slot holding inf or NaN must not leak
        g = xp.where(self._along_axis(valid, x.ndim + 1, 1), g, x.dtype.type(0))
        y = g.sum(axis=self.axis + 1, dtype=x.dtype)
        if self.post is not None:
            post = self._along_axis(self.post, y.ndim)
            y = _trunc_div(xp, y, post) if y.dtype.kind in "iu" else y / post
        return y

    def backward(self, gy):
        return _WindowSum(self.windows.transpose(), self.axis, self.post, self.pre)(gy)


def _pool_axes(x: Tensor, pools) -> Tensor:
    """x with each of its last len(pools) axes averaged over ``(windows, divisor)`` (None:
    kept)."""
    nsp = len(pools)
    for j, pool in enumerate(pools):
        if pool is not None:
            windows, div = pool
            x = _WindowSum(windows, x.ndim - nsp + j, post=div.astype(x.dtype))(x)
    return x


def _adaptive_avg_windows(xp, size: int, out: int):
    """torch's adaptive bins and their sizes as divisors; a bin spans at most ceil(In/Out) + 1
    positions and a position lies in at most ceil(Out/In) + 1 bins."""
    lo, hi = _bins(xp, size, out)
    windows = _Windows(lo, hi, size, -(-size // out) + 1 if out else 0,
                       -(-out // size) + 1 if size else 0)
    return windows, hi - lo


def _avg_windows(xp, size, k, s, p, out, count_include_pad):
    """torch's avg_pool windows along one axis: [o*s - p, o*s - p + k) clipped to the input;
    the divisor is the window's size up to the padded end (count_include_pad) or the number
    of real positions in it. A position lies in at most ceil(k/s) windows."""
    start = xp.arange(out, dtype=np.int64) * s - p
    end = xp.minimum(start + k, size + p)
    pool = end - start
    lo, hi = xp.maximum(start, 0), xp.minimum(end, size)
    windows = _Windows(lo, hi, size, min(k, size), -(-k // s))
    return windows, pool if count_include_pad else hi - lo


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """torch's ``F.adaptive_avg_pool1d``: (N, C, L) or (C, L) to length ``output_size``, bin o
    averaging [floor(o L / Out), ceil((o + 1) L / Out))."""
    fn = "adaptive_avg_pool1d"
    x = _input(fn, input, (2, 3), "(N, C, L) or (C, L)")
    (out,) = _adaptive_size(fn, x, output_size, 1)
    _non_empty_planes(fn, x, 1)
    xp = backend.get_array_module(x.data)
    return _pool_axes(x, [_adaptive_avg_windows(xp, x.shape[-1], out)])


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """torch's ``F.adaptive_avg_pool2d``: (N, C, H, W) or (C, H, W) to ``output_size`` (an int,
    or a pair whose None entries keep the input's size); sizes need not divide the input."""
    fn = "adaptive_avg_pool2d"
    x = _input(fn, input, (3, 4), "(N, C, H, W) or (C, H, W)")
    out = _adaptive_size(fn, x, output_size, 2)
    _non_empty_planes(fn, x, 2)
    if out == (1, 1):  # global average pooling: a mean
        if x.ndim == 4:
            from .conv import adaptive_avg_pool2d_1
            return adaptive_avg_pool2d_1(x)
        return B.mean(x, (-2, -1), keepdims=True)
    xp = backend.get_array_module(x.data)
    return _pool_axes(x, [None if o == n else _adaptive_avg_windows(xp, n, o)
                          for o, n in zip(out, x.shape[-2:])])


def _avg_pool(fn, x, nsp, kernel_size, stride, padding, ceil_mode, count_include_pad):
    k, s, p, _, out = _sliding_args(fn, x, nsp, kernel_size, stride, padding, 1, ceil_mode)
    xp = backend.get_array_module(x.data)
    sizes = x.shape[x.ndim - nsp:]
    return _pool_axes(x, [_avg_windows(xp, n, kk, ss, pp, o, count_include_pad)
                          for n, kk, ss, pp, o in zip(sizes, k, s, p, out)])


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    """torch's ``F.avg_pool1d`` on (N, C, L) or (C, L): each window's sum over its real
    positions divided by its size including padding (``count_include_pad``) or by the number
    of real positions; ``ceil_mode`` adds a last partial window where it starts inside. An
    int64 input gives int64 averages rounded toward zero, as torch's (CPU) ones."""
    x = _input("avg_pool1d", input, (2, 3), "(N, C, L) or (C, L)", int64=True)
    return _avg_pool("avg_pool1d", x, 1, kernel_size, stride, padding, ceil_mode,
                     count_include_pad)


# ----- max pooling: index tables and the argmax

def _sliding_table(xp, size, k, s, p, d, out):
    """(positions, valid), each (out, k): window o reads o*s - p + j*d."""
    pos = xp.arange(out, dtype=np.int64)[:, None] * s - p + xp.arange(k, dtype=np.int64) * d
    return pos, (pos >= 0) & (pos < size)


def _adaptive_table(xp, size, out):
    """(positions, valid), each (out, widest bin): bin o reads [start[o], end[o])."""
    start, end = _bins(xp, size, out)
    k = max(-(-size // out) + 1, 1) if out else 1  # at least the widest bin
    pos = start[:, None] + xp.arange(k, dtype=np.int64)
    return pos, pos < end[:, None]


def _fill_invalid(xp, pos, valid):
    """Invalid slots read the window's first real position: they then never change the max,
    nor which position the first maximum is (they come before it only in padding)."""
    first = xp.take_along_axis(pos, xp.argmax(valid, axis=1)[:, None], axis=1)
    return xp.clip(xp.where(valid, pos, first), 0, None)


def _max_pool(x: Tensor, tables, out_shape):
    """(y, indices) for windows given per spatial axis as (positions, valid) tables; indices
    are flat positions in each input plane, as torch's."""
    xp = backend.get_array_module(x.data)
    nsp = len(tables)
    sizes = x.shape[x.ndim - nsp:]
    if nsp == 1:
        (pos, valid), = tables
        flat, ok = _fill_invalid(xp, pos, valid), valid
    else:
        (ph, vh), (pw, vw) = tables
        ph, pw = _fill_invalid(xp, ph, vh), _fill_invalid(xp, pw, vw)
        flat = (ph[:, None, :, None] * sizes[1] + pw[None, :, None, :])
        ok = vh[:, None, :, None] & vw[None, :, None, :]
        m, kk = flat.shape[0] * flat.shape[1], flat.shape[2] * flat.shape[3]
        flat, ok = flat.reshape(m, kk), ok.reshape(m, kk)
    lead = x.shape[:x.ndim - nsp]
    planes, plane = math.prod(lead), math.prod(sizes)
    x2 = x.data.reshape(planes, plane)
    vals = x2[:, flat]  # (planes, windows, window size)
    arg = xp.argmax(vals, axis=-1)  # the first maximum
    nan = xp.isnan(vals) & ok
    last_nan = nan.shape[-1] - 1 - xp.argmax(nan[..., ::-1], axis=-1)
    arg = xp.where(nan.any(axis=-1), last_nan, arg)  # torch: a window with NaN gives its last
    idx = flat[xp.arange(flat.shape[0])[None, :], arg]
    rows = xp.arange(planes)[:, None]
    y = GetItem((rows, idx))(B.reshape(x, (planes, plane)))
    shape = lead + tuple(out_shape)
    return B.reshape(y, shape), Tensor(idx.reshape(shape))


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """torch's ``F.adaptive_max_pool1d`` on (N, C, L) or (C, L); with ``return_indices``,
    ``(output, indices)``, each index a position in its input row (int64)."""
    fn = "adaptive_max_pool1d"
    x = _input(fn, input, (2, 3), "(N, C, L) or (C, L)")
    (out,) = _adaptive_size(fn, x, output_size, 1)
    _non_empty_planes(fn, x, 1)
    xp = backend.get_array_module(x.data)
    y, idx = _max_pool(x, [_adaptive_table(xp, x.shape[-1], out)], (out,))
    return (y, idx) if return_indices else y


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """torch's ``F.adaptive_max_pool2d`` on (N, C, H, W) or (C, H, W) (``output_size`` as for
    ``adaptive_avg_pool2d``); indices are h*W + w in each input plane (int64), as torch's."""
    fn = "adaptive_max_pool2d"
    x = _input(fn, input, (3, 4), "(N, C, H, W) or (C, H, W)")
    out = _adaptive_size(fn, x, output_size, 2)
    _non_empty_planes(fn, x, 2)
    xp = backend.get_array_module(x.data)
    tables = [_adaptive_table(xp, n, o) for n, o in zip(x.shape[-2:], out)]
    y, idx = _max_pool(x, tables, out)
    return (y, idx) if return_indices else y


def _sliding_max(fn, x, nsp, kernel_size, stride, padding, dilation, ceil_mode):
    k, s, p, d, out = _sliding_args(fn, x, nsp, kernel_size, stride, padding, dilation,
                                    ceil_mode)
    xp = backend.get_array_module(x.data)
    sizes = x.shape[x.ndim - nsp:]
    tables = [_sliding_table(xp, *args) for args in zip(sizes, k, s, p, d, out)]
    return _max_pool(x, tables, out)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch's ``F.max_pool1d`` on (N, C, L) or (C, L) (its argument order: ``ceil_mode``
    before ``return_indices``); padding is -inf and never selected."""
    x = _input("max_pool1d", input, (2, 3), "(N, C, L) or (C, L)")
    y, idx = _sliding_max("max_pool1d", x, 1, kernel_size, stride, padding, dilation,
                          ceil_mode)
    return (y, idx) if return_indices else y


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    """torch's ``F.max_pool2d_with_indices``: always ``(output, indices)`` (h*W + w in each
    plane, int64); with dilation and ceil_mode, and exact second derivatives."""
    x = _input("max_pool2d_with_indices", input, (3, 4), "(N, C, H, W) or (C, H, W)")
    return _sliding_max("max_pool2d_with_indices", x, 2, kernel_size, stride, padding,
                        dilation, ceil_mode)


# ----- unpooling and lp-pooling

class _Unpool(Function):
    """y = zeros(shape) with x written at ``index`` (a repeated index keeps one of its
    values); gx = gy[index], as torch's max_unpool backward (a gather), whose own backward
    scatters back."""

    saves_inputs = False

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, x):
        y = backend.get_array_module(x).zeros(self.shape, dtype=x.dtype)
        y[self.index] = x
        return y

    def backward(self, gy):
        return GetItem(self.index)(gy)


def _unpool_size(fn, x, k, s, p, output_size) -> tuple:
    """torch's _unpool_output_size: (in - 1)*s - 2p + k per axis, or ``output_size`` (its last
    two entries may be given with the batch and channel ones) within a stride of that."""
    default = tuple((n - 1) * ss + kk - 2 * pp
                    for n, kk, ss, pp in zip(x.shape[-2:], k, s, p))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"{fn}: output_size should have 2 or 4 entries, got "
                             f"{output_size!r}")
        for dim, (o, dflt, ss) in enumerate(zip(size, default, s)):
            if not dflt - ss < int(o) < dflt + ss:
                raise ValueError(f"{fn}: invalid output_size {tuple(output_size)} (dim {dim} "
                                 f"must be between {dflt - ss} and {dflt + ss}, exclusive)")
        size = tuple(int(o) for o in size)
    if min(size) < 0:
        raise ValueError(f"{fn}: the output size {size} is negative")
    return size


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """torch's ``F.max_unpool2d``: the partial inverse of ``max_pool2d``: each value of
    ``input`` (N, C, H, W) or (C, H, W) placed at its index (h*W + w of the output plane, as
    ``max_pool2d(..., return_indices=True)`` gives), zeros elsewhere. On the CPU an index
    outside the plane raises IndexError; on the GPU the indices are not checked, since that
    would sync with the host every call (torch's CUDA kernel does not check them either)."""
    fn = "max_unpool2d"
    x = _input(fn, input, (3, 4), "(N, C, H, W) or (C, H, W)")
    idx = indices.data if isinstance(indices, Tensor) else indices
    if not hasattr(idx, "dtype") or idx.dtype.kind not in "iu":
        raise TypeError(f"{fn}: indices must be an integer tensor, got "
                        f"{getattr(idx, 'dtype', type(idx).__name__)}")
    if tuple(idx.shape) != tuple(x.shape):
        raise ValueError(f"{fn}: indices of shape {tuple(idx.shape)} must have the input's "
                         f"shape {tuple(x.shape)}")
    backend.check_same_device(x.data, idx, what=fn)
    k = _tuple(fn, "kernel_size", kernel_size, 2, 1)
    s = k if stride is None else _tuple(fn, "stride", stride, 2, 1)
    p = _tuple(fn, "padding", padding, 2, 0)
    size = _unpool_size(fn, x, k, s, p, output_size)
    lead = x.shape[:-2]
    planes, plane = math.prod(lead), size[0] * size[1]
    idx2 = idx.reshape(planes, -1).astype(np.int64, copy=False)
    xp = backend.get_array_module(x.data)
    # Checking the indices reads a device value back, a host sync each call: on the GPU they
    # go unchecked (as in torch's CUDA kernel), and an index outside [0, H*W) is undefined.
    if xp is np and idx2.size and (idx2.min() < 0 or idx2.max() >= plane):
        bad = idx2[(idx2 < 0) | (idx2 >= plane)].ravel()[0]
        raise IndexError(f"{fn}: found an invalid max index {int(bad)} (output planes are of "
                         f"size {size[0]}x{size[1]})")
    rows = xp.arange(planes)[:, None]
    y = _Unpool((rows, idx2), (planes, plane))(B.reshape(x, (planes, x.shape[-2] * x.shape[-1])))
    return B.reshape(y, lead + size)


_LP_INT = ("torch's own gives float32 p-th roots of int64 window averages rounded toward "
           "zero; convert the input to a floating type first")


def _lp(x: Tensor, norm_type, pooled_avg, pooled_max, area: int) -> Tensor:
    """torch's lp_pool: (sign(a) relu(|a|) * area)^(1/p) with a = avg_pool(x^p), or max
    pooling of |x| for p = +-inf."""
    if norm_type == math.inf:
        return pooled_max(B.abs(x))
    if norm_type == -math.inf:
        return -pooled_max(-B.abs(x))
    out = pooled_avg(B.pow(x, norm_type))
    return B.pow(sign(out) * relu(B.abs(out)) * area, 1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """torch's ``F.lp_pool1d``: the p-norm (p = ``norm_type``) of each window, no padding."""
    x = _input("lp_pool1d", input, (2, 3), "(N, C, L) or (C, L)", why=_LP_INT)
    (k,) = _tuple("lp_pool1d", "kernel_size", kernel_size, 1, 1)
    return _lp(x, norm_type,
               lambda t: avg_pool1d(t, k, stride, 0, ceil_mode),
               lambda t: max_pool1d(t, k, stride, 0, 1, ceil_mode), k)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    """torch's ``F.lp_pool2d``: the p-norm (p = ``norm_type``) of each window, no padding."""
    fn = "lp_pool2d"
    x = _input(fn, input, (3, 4), "(N, C, H, W) or (C, H, W)", why=_LP_INT)
    kh, kw = _tuple(fn, "kernel_size", kernel_size, 2, 1)
    return _lp(x, norm_type,
               lambda t: _avg_pool(fn, t, 2, (kh, kw), stride, 0, ceil_mode, True),
               lambda t: _sliding_max(fn, t, 2, (kh, kw), stride, 0, 1, ceil_mode)[0],
               kh * kw)
