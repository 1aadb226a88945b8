"""Elementwise activation and loss kernels: arrays in, arrays out.

Each kernel has its NumPy version (written to make few temporaries) and, beside it, its CuPy
version: one fused ``ElementwiseKernel`` that reads each input once and writes the output once,
where the NumPy expression would have launched a kernel per operator.

Scalars are handed to the GPU kernels as NumPy scalars of the array's own dtype (``_scalar``), so
that CuPy binds the type placeholder ``T`` to the array dtype and never has to guess.

Every kernel takes 0-d arrays too, and returns arrays for them. A NumPy ufunc whose operands are
all 0-d returns a NumPy scalar, not a 0-d array, and a scalar can be neither an ``out=`` nor a
tensor's data: the CPU paths wrap the first temporary they make (``_array``).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import backend
from . import parallel
from . import random as _random
from .workspace import SCRATCH, take_like

__all__ = [
    "add_scaled",
    "bce_with_logits_backward",
    "bce_with_logits_const_mean_pair",
    "bce_with_logits_const_mean_pair_backward",
    "bce_with_logits_forward",
    "dropout_mask",
    "leaky_relu_backward",
    "leaky_relu_backward_colsum",
    "leaky_relu_forward",
    "leaky_relu_inplace",
    "leading_strides",
    "lerp",
    "norm_penalty",
    "norm_penalty_backward",
    "out_like",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "sigmoid_mean_pair",
    "softplus_forward",
    "std_all",
    "sum_all_scaled",
    "tanh_backward",
    "tanh_backward_colsum",
    "tanh_forward",
    "tanh_inplace",
    "with_leading_strides",
]


def _scalar(x, value):
    return x.dtype.type(value)


def _array(a):
    """``a`` as an array: a NumPy ufunc given only 0-d arrays returns a NumPy scalar, which is
    wrapped (writable, so it can be the ``out=`` of the steps after); an array, NumPy's or
    CuPy's (some fallbacks below take either), is returned as it is."""
    return np.asarray(a) if isinstance(a, np.generic) else a


def _inplace(ufunc, a, b):
    """``ufunc(a, b)``, written into ``a`` when broadcasting leaves a's shape unchanged."""
    if np.broadcast_shapes(a.shape, np.shape(b)) == a.shape:
        return ufunc(a, b, out=a)
    return ufunc(a, b)


def split_rows(fn, out, *arrays) -> None:
    """``fn(out, *arrays)`` for a CPU elementwise pass, run as ``fn`` on blocks of the first
    axis across minigan's CPU threads (``kernels.parallel``) when every array has out's shape
    (each block then touches only its own rows) and none but out itself overlaps out in
    memory. Otherwise one call on the whole arrays."""
    if out.ndim == 0 or any(a.shape != out.shape or (a is not out and
                                                     np.may_share_memory(a, out))
                            for a in arrays):
        fn(out, *arrays)
        return
    parallel.run(lambda lo, hi: fn(out[lo:hi], *(a[lo:hi] for a in arrays)), out.shape[0],
                 (len(arrays) + 1) * out.nbytes)


def out_like(x, *others):
    """The output argument for a GPU elementwise kernel: a new array in x's memory layout, where
    CuPy would allocate C order. A channel-major GPU conv output (see kernels.conv) keeps that
    layout through the activations after it, and its gradient through their backward, which is
    how the next conv reads it and how that conv's backward wants it: no copies between. Empty
    (CuPy's own allocation) when x is C-contiguous or ``others`` differ from x in shape or
    dtype."""
    if x.flags.c_contiguous:
        return ()
    for o in others:  # (a loop, not any(): this runs for every activation on the GPU)
        if o.shape != x.shape or o.dtype != x.dtype:
            return ()
    return (backend.cupy.empty_like(x),)


def leading_strides(a):
    """For a GPU kernel that walks (n, c) with its own strides: a's element strides along its
    first two axes, when its remaining axes form one C-contiguous block (NCHW, or the
    channel-major layout of a GPU conv output, see kernels.conv); else None (copy first).
    Remembered by shape, strides and item size: every batch-norm, activation and im2col call
    asks, with the same few layouts each step."""
    key = (a.shape, a.strides, a.dtype.itemsize)
    st = _LEADING.get(key, _UNKNOWN)
    if st is _UNKNOWN:
        st = _leading_strides(*key)
        if len(_LEADING) < 4096:
            _LEADING[key] = st
    return st


_LEADING: dict = {}
_UNKNOWN = object()


def _leading_strides(shape, strides, item):
    expect = item
    for size, stride in zip(shape[:1:-1], strides[:1:-1]):  # the trailing axes, last first
        if size > 1 and stride != expect:
            return None
        expect *= size
    sn, sc = strides[:2]
    if sn < 0 or sc < 0 or sn % item or sc % item:
        return None
    return sn // item, sc // item


def row_stride(a):
    """For a GPU kernel that reads a 2-D array row by row: the stride between rows in elements,
    when each row is contiguous and rows do not overlap (one row: its length); else None
    (copy first)."""
    item = a.dtype.itemsize
    (r, c), (s0, s1) = a.shape, a.strides
    if (s1 != item and c > 1) or s0 % item:
        return None
    if r == 1:
        return c
    row = s0 // item
    return row if row >= c else None


def with_leading_strides(a):
    """``(a, leading_strides(a))``, with a made C-contiguous first when it has none."""
    st = _LEADING.get((a.shape, a.strides, a.dtype.itemsize), _UNKNOWN)  # (inlined lookup)
    if st is _UNKNOWN:
        st = leading_strides(a)
    if st is None:
        a = backend.cupy.ascontiguousarray(a)
        st = leading_strides(a)
    return a, st


def _ew(in_params, out_params, operation, name, preamble=""):
    return backend.elementwise_kernel(in_params, out_params, operation, name, preamble)


# LeakyReLU and ReLU

# The negative side of a LeakyReLU in CUDA: v * s, but 0 when s is 0 (ReLU), where -inf * 0
# would be NaN
_NEGATIVE_PART = "(s == (T)0 ? (T)0 : {v} * s)"
_LEAKY_FWD = "y = x < (T)0 ? " + _NEGATIVE_PART.format(v="x") + " : x"
_LEAKY_INPLACE = "y = y < (T)0 ? " + _NEGATIVE_PART.format(v="y") + " : y"
_BIAS_LEAKY_INPLACE = "const T v = y + b; y = v < (T)0 ? " + _NEGATIVE_PART.format(v="v") + " : v"


# ReLU on the CPU is np.maximum against zeros, but not against a scalar 0: NumPy's loop for
# an array and a broadcast scalar is not vectorised for maximum (it branches per element),
# and it ran 2-4x slower than maximum of two contiguous arrays (measured on AVX2 with NumPy
# 2.4, random signs). So the data is viewed as rows of _ZEROS_LEN values and each row is
# taken against one cached row of zeros, which stays in cache. Same values (the maximum of
# x and +0 either way: NaN propagates, -0 gives +0).
_ZEROS_LEN = 16384
_ZEROS_ROWS: dict = {}


def memory_order_flat(a):
    """A 1-D view of a's elements in the order they lie in memory, when a is dense (C, F or
    any permuted contiguous layout, like the channels-last conv outputs); else None."""
    if a.flags.c_contiguous:
        return a.reshape(-1)
    if a.flags.f_contiguous:
        return a.T.reshape(-1)
    t = a.transpose(sorted(range(a.ndim), key=lambda i: -a.strides[i]))
    return t.reshape(-1) if t.flags.c_contiguous else None


def _relu_cpu(x, out):
    """``np.maximum(x, 0, out=out)`` for NumPy arrays of one shape and dtype (out may be x),
    through rows of cached zeros where x and out are dense in the same layout."""
    xf = memory_order_flat(x) if x.strides == out.strides and x.dtype == out.dtype else None
    yf = memory_order_flat(out) if xf is not None else None
    if yf is None or x.ndim == 0:
        return _array(np.maximum(x, x.dtype.type(0), out=out))
    length = _ZEROS_LEN
    zeros = _ZEROS_ROWS.get((x.dtype, length))
    if zeros is None:
        zeros = _ZEROS_ROWS.setdefault((x.dtype, length), np.zeros(length, x.dtype))
    n = xf.size
    rows = n // length
    body = rows * length
    if rows:
        y2 = yf[:body].reshape(rows, length)
        if out is x:
            split_rows(lambda yb: np.maximum(yb, zeros, out=yb), y2)
        else:
            split_rows(lambda yb, xb: np.maximum(xb, zeros, out=yb), y2,
                       xf[:body].reshape(rows, length))
    if body < n:
        np.maximum(xf[body:], zeros[:n - body], out=yf[body:])
    return out


def leaky_relu_forward(x, negative_slope: float):
    """y = x if x >= 0 else s*x (NaN propagates; a slope of 0 gives 0 for -inf, not 0*inf)."""
    if backend.is_cupy_array(x):
        k = _ew("T x, T s", "T y", _LEAKY_FWD, "minigan_leaky_relu_fwd")
        return k(x, _scalar(x, negative_slope), *out_like(x))
    if negative_slope == 0.0:
        return _relu_cpu(x, np.empty_like(x))
    # One temporary: leaky_relu(x) = max(x, s*x) for s <= 1 and min(x, s*x) for s > 1.
    pick = np.maximum if negative_slope <= 1.0 else np.minimum
    if x.dtype.kind != "f":
        y = _array(x * negative_slope)
        return pick(x, y, out=y)
    s = _scalar(x, negative_slope)

    def block(yb, xb):
        np.multiply(xb, s, out=yb)
        pick(xb, yb, out=yb)

    y = np.empty_like(x)  # (in x's layout)
    split_rows(block, y, x)
    return y


def leaky_relu_inplace(y, negative_slope: float, bias=None):
    """``y[...] = leaky_relu_forward(y + bias, s)`` (no bias when None), in place, with
    ``leaky_relu_forward``'s arithmetic, so the same values. For an activation fused into the
    op before it (batch norm, a Linear layer): one GPU launch, bias included, and on the CPU a
    scratch temporary instead of a new array."""
    s = _scalar(y, negative_slope)
    if backend.is_cupy_array(y):
        if bias is None:
            _ew("T s", "T y", _LEAKY_INPLACE, "minigan_leaky_relu_inplace")(s, y)
        else:
            _ew("T b, T s", "T y", _BIAS_LEAKY_INPLACE, "minigan_bias_leaky_relu_inplace")(
                bias, s, y)
        return y
    if bias is not None:
        y += bias
    if negative_slope == 0.0:
        return _relu_cpu(y, y)
    pick = np.maximum if negative_slope <= 1.0 else np.minimum

    def block(yb, tb):  # (on blocks of rows across the CPU threads)
        np.multiply(yb, s, out=tb)
        pick(yb, tb, out=yb)

    split_rows(block, y, take_like(SCRATCH, y, y.dtype))
    return y


def leaky_relu_grad_cuda(gy: str, x: str, s: str) -> str:
    """LeakyReLU's masked gradient as a CUDA expression of the expressions gy, x and s, for
    every kernel that computes it: gy where x > 0, else gy * s, and for s = 0 (ReLU) a
    selection: 0, not gy * 0, which is NaN for an infinite gy (PyTorch's ReLU gives 0). s is
    the same for every thread, so the added branch costs nothing."""
    return f"({x} > (T)0 ? {gy} : ({s} == (T)0 ? (T)0 : {gy} * {s}))"


def leaky_relu_backward(gy, x, negative_slope: float):
    """gx = gy if x > 0 else s*gy, and for s = 0 (ReLU) gx = gy if x > 0 else 0: selected, so
    that an infinite or NaN gy where x <= 0 gives 0, as PyTorch's ReLU does. Linear in gy
    with a mask that depends only on x, so the same call with the same x also computes its
    own derivative."""
    if backend.is_cupy_array(gy):
        k = _ew("T gy, T x, T s", "T gx", "gx = " + leaky_relu_grad_cuda("gy", "x", "s"),
                "minigan_leaky_relu_bwd")
        return k(gy, x, _scalar(gy, negative_slope), *out_like(x, gy))
    # gx = gy * f with the factor f = 1 where x > 0 else s, built from the bool mask by
    # arithmetic. Every pass is branch-free: a masked copy (copyto with where=) or np.where
    # branches per element and ran 10-20x slower on data whose sign is random.
    dt = np.result_type(gy.dtype, float(negative_slope))  # gy * slope's dtype
    s = dt.type(negative_slope)
    # 1 where x > 0, else 0 (NaN gives 0, i.e. slope); the bool mask lives in reused scratch
    # (a fresh temporary costs a page fault per 4 KiB, slower than the pass itself)
    mask = take_like(SCRATCH, x, np.bool_)  # in x's layout
    it = _INT_OF_SIZE.get(gy.dtype.itemsize) if gy.dtype == dt else None
    if gy.shape != x.shape or (s == 0 and it is None):
        np.greater(x, 0, out=mask)
        if s == 0:
            return _select(mask, gy, dt)
        return _leaky_factor_times(mask.astype(dt), gy, s, dt)
    if s == 0:  # _select's branch-free form, on blocks of rows
        out = np.empty_like(x, dtype=it)

        def select(ob, xb, gb, mb):
            np.greater(xb, 0, out=mb)
            np.copyto(ob, mb)
            ob *= gb.view(it)

        split_rows(select, out, x, gy, mask)
        return out.view(dt)
    f = np.empty_like(x, dtype=dt)

    def block(fb, xb, gb, mb):
        np.greater(xb, 0, out=mb)
        np.copyto(fb, mb)
        _leaky_factor_times(fb, gb, s, dt)

    split_rows(block, f, x, gy, mask)
    return f


def _leaky_factor_times(f, gy, s, dt):
    """f (the 0/1 mask as dtype dt, overwritten) turned into 1 or s, times gy: the result."""
    one_minus_s = dt.type(1) - s
    if one_minus_s + s == 1:  # f*(1 - s) + s is then exactly 1 or s
        f *= one_minus_s
        f += s
    else:
        np.copyto(f, s, where=f == 0)
    f *= gy
    return f


# the signed integer type of each float item size, for _select's bit patterns
_INT_OF_SIZE = {2: np.int16, 4: np.int32, 8: np.int64}


def _select(mask, gy, dt):
    """``where(mask, gy, 0)`` as dtype dt, in mask's layout, branch-free: the mask as 0/1
    integers times gy's bit patterns (as integers of its size), which keeps gy's bits where
    the mask is set and gives +0 elsewhere, whatever gy holds there (inf and NaN included)."""
    it = _INT_OF_SIZE.get(gy.dtype.itemsize) if gy.dtype == dt else None
    if it is None:
        return _array(np.where(mask, gy, dt.type(0)).astype(dt, copy=False))
    f = mask.astype(it)
    f *= gy.view(it)
    return f.view(dt)


# A block's sum in double, for kernels of one block per reduction (a multiple of 32 threads):
# a warp-shuffle sum in each warp, then the warps' sums in the first warp; every thread gets
# the total. sh holds 33 doubles of shared memory.
BLOCK_SUM_CUDA = r"""
__device__ __forceinline__ double minigan_block_sum(double v, double* sh) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
        #pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) sh[32] = v;
    }
    __syncthreads();
    v = sh[32];
    __syncthreads();  // sh is reused by the next call
    return v;
}
"""


# The activation's backward and a column sum in one GPU kernel: for a (M, N) gradient gy of a
# fused Linear + activation, g = the activation's backward of gy (from its output y) and gb = g
# summed over the M rows (the bias gradient). A block of 32 x 8 threads owns 32 columns: thread
# (tx, ty) walks rows ty, ty + 8, ... of column tx (the 32 threads of a row read and write 32
# consecutive values), and the 8 partial sums of a column are added in a fixed order, in
# double: deterministic. BWD is the expression of the activation's own backward kernel
# (leaky_relu_backward, tanh_backward), so g holds the values that kernel would.
_COLSUM_CUDA = r"""
extern "C" __global__ void minigan_WHICH_bwd_colsum_TAG(
        const T* __restrict__ gy_, const T* __restrict__ y, T* __restrict__ g,
        T* __restrict__ gb, const long long M, const long long N, const T s,
        const long long gy_row, const int add) {
    // gy's row i starts at gy_ + i * gy_row (a column slice of a wider matrix is read in
    // place); y and g are C-contiguous. add: gb += the column sums (rounded to T first, as a
    // separate add would take them), instead of gb = them
    __shared__ double part[8][33];
    const long long j = (long long)blockIdx.x * 32 + threadIdx.x;
    double acc = 0.0;
    if (j < N) {
        for (long long i = threadIdx.y; i < M; i += 8) {
            const long long k = i * N + j;
            const T gyk = gy_[i * gy_row + j];
            const T v = BWD;
            g[k] = v;
            acc += (double)v;
        }
    }
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < N) {
        double t = 0.0;
        for (int r = 0; r < 8; ++r) t += part[r][threadIdx.x];
        gb[j] = add ? (T)(gb[j] + (T)t) : (T)t;
    }
}
"""
_COLSUM_BWD = {"leaky": leaky_relu_grad_cuda("gyk", "y[k]", "s"),
               "tanh": "gyk * ((T)1 - y[k] * y[k])"}
# the C type and the name tag of each float dtype, for the CUDA sources of every kernel module
FLOAT_CTYPES = {np.dtype(np.float32): ("float", "f32"), np.dtype(np.float64): ("double", "f64")}


@functools.lru_cache(maxsize=None)
def _colsum_kernel(which: str, dtype):
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    code = (f"typedef {ctype} T;\n"
            + _COLSUM_CUDA.replace("WHICH", which).replace("TAG", tag)
            .replace("BWD", _COLSUM_BWD[which]))
    return backend.raw_kernel(code, f"minigan_{which}_bwd_colsum_{tag}")


def _backward_colsum(which: str, gy, y, slope, accumulate_into=None):
    """The GPU launch of _COLSUM_CUDA, or None where it does not apply (then the caller makes
    the two calls). With ``accumulate_into`` (an (N,) C-contiguous array of gy's dtype), the
    column sums are added into it, and it is returned as the second array."""
    if not (backend.is_cupy_array(gy) and gy.ndim == 2 and gy.shape == y.shape
            and gy.dtype == y.dtype and gy.dtype in FLOAT_CTYPES):
        return None
    cp = backend.cupy
    m, n = gy.shape
    row = row_stride(gy)
    if row is None:
        gy = cp.ascontiguousarray(gy)
        row = n
    y = cp.ascontiguousarray(y)
    g = cp.empty((m, n), dtype=gy.dtype)
    add = (accumulate_into is not None and backend.is_cupy_array(accumulate_into)
           and accumulate_into.shape == (n,) and accumulate_into.dtype == gy.dtype
           and accumulate_into.flags.c_contiguous)
    gb = accumulate_into if add else cp.empty(n, dtype=gy.dtype)
    if n:
        _colsum_kernel(which, gy.dtype)(((n + 31) // 32,), (32, 8),
                                        (gy, y, g, gb, np.int64(m), np.int64(n),
                                         _scalar(gy, slope), np.int64(row), np.int32(add)))
    return g, gb


def leaky_relu_backward_colsum(gy, y, negative_slope: float, accumulate_into=None):
    """``(g, g.sum(axis=0))`` with ``g = leaky_relu_backward(gy, y, s)``, for 2-D gy and y of
    one shape: a fused Linear + LeakyReLU's masked gradient and its bias gradient. One kernel
    on the GPU (float32/float64; other dtypes take the two calls), the two calls on the CPU.
    ``accumulate_into``: on that GPU path, the column sums are added into this array (a bias's
    ``.grad``), which is returned in their place."""
    out = _backward_colsum("leaky", gy, y, negative_slope, accumulate_into)
    if out is not None:
        return out
    g = leaky_relu_backward(gy, y, negative_slope)
    return g, g.sum(axis=0)


def tanh_backward_colsum(gy, y, accumulate_into=None):
    """``(g, g.sum(axis=0))`` with ``g = tanh_backward(gy, y)``: a fused Linear + Tanh's
    gradient before the activation and its bias gradient, as ``leaky_relu_backward_colsum``."""
    out = _backward_colsum("tanh", gy, y, 0, accumulate_into)
    if out is not None:
        return out
    g = tanh_backward(gy, y)
    return g, g.sum(axis=0)


def tanh_inplace(y, bias=None):
    """``y[...] = tanh(y + bias)`` (no bias when None), in place, the sum rounded to y's dtype
    before the tanh (as the add and the tanh one after the other): one GPU launch."""
    if backend.is_cupy_array(y):
        if bias is None:
            backend.cupy.tanh(y, out=y)
        else:
            _ew("T b", "T y", "const T v = y + b; y = tanh(v)", "minigan_bias_tanh_inplace")(
                bias, y)
        return y
    if bias is not None:
        y += bias
    return tanh_forward(y, out=y)


# Whole-array means in one GPU kernel each, where a sum and a multiply (and the elementwise
# op before them) would take two or three launches. One block sums the n values of x, each
# mapped by one of _MEAN_OF_MAPS, in double, and writes the sum (rounded to T) times `scale`:
# the mean of all of x (mean_all), of BCE-with-logits losses against a constant target a
# (bce_const_mean), or of sigmoid(x) (sigmoid_mean). Each map is the expression of the
# elementwise kernel it stands for, so each mapped value is the one that kernel would store.
_MEAN_OF_CUDA = r"""
extern "C" __global__ void minigan_WHICH_TAG(const T* __restrict__ x, T* __restrict__ y,
                                             const long long n, const T a, const T scale) {
    __shared__ double sh[33];
    double v = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const T xi = x[i];
        MAP
        v += (double)f;
    }
    v = minigan_block_sum(v, sh);
    if (threadIdx.x == 0) y[0] = (T)v * scale;
}
"""
_MEAN_OF_MAPS = {
    "mean_all": "const T f = xi;",
    "bce_const_mean": "const T f = fmax(xi, (T)0) - xi * a + log1p(exp(-fabs(xi)));",
    "sigmoid_mean": """const T e = exp(-fabs(xi));
        const T r = (T)1 / ((T)1 + e);
        const T f = xi >= (T)0 ? r : e * r;""",
}


@functools.lru_cache(maxsize=None)
def _mean_of_kernel(which: str, dtype, pair: bool = False):
    """The kernel of _MEAN_OF_CUDA, or with ``pair`` of _MEAN_OF_PAIR_CUDA, for one map."""
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    name = f"{which}_pair" if pair else which
    code = (f"typedef {ctype} T;\n" + BLOCK_SUM_CUDA
            + (_MEAN_OF_PAIR_CUDA if pair else _MEAN_OF_CUDA).replace("WHICH", which)
            .replace("TAG", tag).replace("MAP", _MEAN_OF_MAPS[which]))
    return backend.raw_kernel(code, f"minigan_{name}_{tag}")


def _mean_of(which: str, x, a, scale):
    """The GPU launch of _MEAN_OF_CUDA: a 0-d array of x's dtype (x float32/float64, not empty)."""
    cp = backend.cupy
    x = cp.ascontiguousarray(x)
    y = cp.empty((), dtype=x.dtype)
    threads = int(min(1024, max(32, -(-x.size // 32) * 32)))
    _mean_of_kernel(which, x.dtype)((1,), (threads,), (x, y, np.int64(x.size), _scalar(x, a),
                                                      _scalar(x, scale)))
    return y


# The population standard deviation of all n values of x (NumPy's std, ddof 0) in one block,
# where CuPy's std takes three launches (the mean, the variance, the square root): the mean,
# then the mean squared deviation from it, both summed in double.
_STD_ALL_CUDA = r"""
extern "C" __global__ void minigan_std_all_TAG(const T* __restrict__ x, T* __restrict__ y,
                                               const long long n) {
    __shared__ double sh[33];
    double v = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) v += (double)x[i];
    const double mean = minigan_block_sum(v, sh) / (double)n;
    double q = 0.0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const double d = (double)x[i] - mean;
        q += d * d;
    }
    q = minigan_block_sum(q, sh);
    if (threadIdx.x == 0) y[0] = (T)sqrt(q / (double)n);
}
"""
_STD_ALL_MAX = 1 << 20  # above this many values, CuPy's std (its launches use the whole GPU)


@functools.lru_cache(maxsize=None)
def _std_all_kernel(dtype):
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    code = f"typedef {ctype} T;\n" + BLOCK_SUM_CUDA + _STD_ALL_CUDA.replace("TAG", tag)
    return backend.raw_kernel(code, f"minigan_std_all_{tag}")


def std_all(x):
    """``x.std()`` (ddof 0) in x's dtype: on the GPU one kernel for float32/float64 arrays of
    1 to 2^20 values (a 0-d array), else the array library's std."""
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES and 0 < x.size <= _STD_ALL_MAX:
        cp = backend.cupy
        x = cp.ascontiguousarray(x)
        y = cp.empty((), dtype=x.dtype)
        threads = int(min(1024, max(32, -(-x.size // 32) * 32)))
        _std_all_kernel(x.dtype)((1,), (threads,), (x, y, np.int64(x.size)))
        return y
    return _array(backend.get_array_module(x).std(x).astype(x.dtype, copy=False))


# The same means of two arrays in one GPU kernel (a GAN's D loss on its real and its fake
# logits, and its D(x) and D(G(z)) statistics): the block sums x1's mapped values, then x2's,
# each in double, and writes out = [sum1 * scale1, sum2 * scale2, their sum], in T, as two
# _MEAN_OF_CUDA launches and an add would (the means rounded to T before the add).
_MEAN_OF_PAIR_CUDA = r"""
extern "C" __global__ void minigan_WHICH_pair_TAG(
        const T* __restrict__ x1, const T* __restrict__ x2, T* __restrict__ out,
        const long long n1, const long long n2, const T a1, const T a2, const T scale1,
        const T scale2) {
    __shared__ double sh[33];
    double v = 0.0;
    T a = a1;
    for (long long i = threadIdx.x; i < n1; i += blockDim.x) {
        const T xi = x1[i];
        MAP
        v += (double)f;
    }
    const T m1 = (T)minigan_block_sum(v, sh) * scale1;
    v = 0.0;
    a = a2;
    for (long long i = threadIdx.x; i < n2; i += blockDim.x) {
        const T xi = x2[i];
        MAP
        v += (double)f;
    }
    const T m2 = (T)minigan_block_sum(v, sh) * scale2;
    if (threadIdx.x == 0) {
        out[0] = m1;
        out[1] = m2;
        out[2] = m1 + m2;
    }
}
"""


def _pairable(x1, x2) -> bool:
    return (backend.is_cupy_array(x1) and backend.is_cupy_array(x2) and x1.dtype == x2.dtype
            and x1.dtype in FLOAT_CTYPES and x1.size > 0 and x2.size > 0)


def _mean_of_pair(which: str, x1, x2, a1, a2, scale1, scale2):
    """The GPU launch of _MEAN_OF_PAIR_CUDA (``_pairable`` inputs): a 3-vector of x1's dtype."""
    cp = backend.cupy
    x1, x2 = cp.ascontiguousarray(x1), cp.ascontiguousarray(x2)
    out = cp.empty((3,), dtype=x1.dtype)
    threads = int(min(1024, max(32, -(-max(x1.size, x2.size) // 32) * 32)))
    _mean_of_kernel(which, x1.dtype, True)((1,), (threads,), (
        x1, x2, out, np.int64(x1.size), np.int64(x2.size), _scalar(x1, a1), _scalar(x1, a2),
        _scalar(x1, scale1), _scalar(x1, scale2)))
    return out


def sum_all_scaled(x, scale):
    """``x.sum() * scale`` as a 0-d array of x's dtype (float32/float64), with the scale as a
    number of that dtype: on the GPU one kernel (the sum in double), on the CPU NumPy's sum
    and a multiply."""
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES and x.size:
        return _mean_of("mean_all", x, 0, scale)
    return _array(x.sum() * _scalar(x, scale))


# Products rounded on their own, as NumPy's separate ops round them. NVRTC contracts a*b + c
# into one fused multiply-add by default, which rounds once and so gives other bits.
_MUL_RN = r"""
__device__ __forceinline__ float minigan_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double minigan_mul_rn(double a, double b) { return __dmul_rn(a, b); }
"""


def add_scaled(x, d, a, c=1.0):
    """``x + (c * a) * d``: ``a`` an array broadcasting against ``d`` (or a 0-d array), ``c`` a
    number. Every product is rounded to x's dtype before the sum, as the separate NumPy ops
    round it, so both devices give the same bits. One kernel on the GPU (float32/float64),
    where the ops take three."""
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES:
        return _ew("T x, T d, T s, T c", "T y", "y = x + minigan_mul_rn(c * s, d)",
                   "minigan_add_scaled", _MUL_RN)(x, d, a, _scalar(x, c))
    return _array(x + (_scalar(x, c) * a) * d)


def lerp(x, e, a):
    """``x + a * (e - x)``, with ``a`` broadcasting against x, the product rounded before the
    sum (as ``add_scaled``). One kernel on the GPU (float32/float64), where the ops take three."""
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES:
        return _ew("T x, T e, T w", "T y", "y = x + minigan_mul_rn(w, e - x)",
                   "minigan_lerp_rn", _MUL_RN)(x, e, a)
    return _array(x + a * (e - x))


# The penalty of a gradient's norm (DRAGAN, WGAN-GP) in one GPU kernel, where its ops take
# eight. For a (rows, cols) x: n_i = sqrt(sum_j x_ij^2 + eps) and
# y = (sum_i (n_i - 1)^2 * inv_rows) * weight, in x's dtype but for the sums (in double). One
# block: warp w takes rows w, w + warps, ... (a row's 32 lanes read 32 consecutive values and
# add them with shuffles), and keeps its rows' (n_i - 1)^2 in row order; the warps' sums are
# then added in a fixed order: deterministic. The norms are written for the backward.
_NORM_PENALTY_CUDA = r"""
extern "C" __global__ void minigan_norm_penalty_TAG(
        const T* __restrict__ x, T* __restrict__ norms, T* __restrict__ y,
        const long long rows, const long long cols, const T eps, const T inv_rows,
        const T weight) {
    __shared__ double sh[33];
    const int lane = threadIdx.x & 31;
    const long long warps = blockDim.x >> 5;
    double acc = 0.0;
    for (long long i = threadIdx.x >> 5; i < rows; i += warps) {
        const T* r = x + i * cols;
        double s = 0.0;
        for (long long j = lane; j < cols; j += 32) {
            const T v = r[j];
            s += (double)(v * v);
        }
        #pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        const T n = sqrt((T)s + eps);  // every lane holds the same s, so the same n
        if (lane == 0) norms[i] = n;
        const T d = n - (T)1;
        acc += (double)(d * d);
    }
    acc = minigan_block_sum(lane == 0 ? acc : 0.0, sh);
    if (threadIdx.x == 0) y[0] = (T)acc * inv_rows * weight;
}
"""


@functools.lru_cache(maxsize=None)
def _norm_penalty_kernel(dtype):
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    code = (f"typedef {ctype} T;\n" + BLOCK_SUM_CUDA
            + _NORM_PENALTY_CUDA.replace("TAG", tag))
    return backend.raw_kernel(code, f"minigan_norm_penalty_{tag}")


def norm_penalty(x, eps, inv_rows, weight):
    """``(y, norms)`` for a 2-D x with at least one row: norms_i = sqrt(sum_j x_ij^2 + eps)
    and y = (sum_i (norms_i - 1)^2 * inv_rows) * weight, a 0-d array of x's dtype (the
    numbers are cast to it). One kernel on the GPU (float32/float64); on the CPU NumPy's ops
    in the order the unfused ops take."""
    rows, cols = x.shape
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES:
        cp = backend.cupy
        x = cp.ascontiguousarray(x)
        norms = cp.empty((rows,), dtype=x.dtype)
        y = cp.empty((), dtype=x.dtype)
        threads = 32 * int(min(32, rows))
        _norm_penalty_kernel(x.dtype)((1,), (threads,), (
            x, norms, y, np.int64(rows), np.int64(cols), _scalar(x, eps),
            _scalar(x, inv_rows), _scalar(x, weight)))
        return y, norms
    xp = backend.get_array_module(x)
    s = (x * x).sum(axis=1)
    norms = xp.sqrt(s + _scalar(x, eps))
    d = norms - _scalar(x, 1)
    return _array((d * d).sum() * _scalar(x, inv_rows) * _scalar(x, weight)), norms


def norm_penalty_backward(gy, x, norms, k):
    """The gradient of ``norm_penalty``'s y for a 0-d ``gy``, with k = 2 * inv_rows * weight:
    gx_ij = x_ij * (gy * k * (n_i - 1) / n_i). One kernel on the GPU, which reads gy there."""
    n = norms.reshape(-1, 1)
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES:
        op = "gx = x * (gy * k * (n - (T)1) / n)"
        return _ew("T x, T n, T gy, T k", "T gx", op, "minigan_norm_penalty_bwd")(
            x, n, gy, _scalar(x, k))
    return x * (gy * _scalar(x, k) * (n - _scalar(x, 1)) / n)


def relu_forward(x):
    """y = max(x, 0) (NaN propagates)."""
    if backend.is_cupy_array(x):
        return _ew("T x", "T y", "y = x < (T)0 ? (T)0 : x", "minigan_relu_fwd")(x, *out_like(x))
    return _relu_cpu(x, np.empty_like(x))


def relu_backward(gy, x):
    """gx = gy if x > 0 else 0 (selected: an infinite gy where x <= 0 gives 0)."""
    if backend.is_cupy_array(gy):
        return _ew("T gy, T x", "T gx", "gx = x > (T)0 ? gy : (T)0", "minigan_relu_bwd")(
            gy, x, *out_like(x, gy))
    return _array(np.where(x > 0, gy, np.zeros((), dtype=gy.dtype)))


# tanh and sigmoid

def tanh_forward(x, out=None):
    """``xp.tanh(x, out=out)``; on the CPU, for floating x, in blocks of rows across minigan's
    threads (NumPy's tanh is about 20x the cost of a multiply, so a generator's output layer
    is worth splitting), into a new array in x's layout when out is None (out may be x)."""
    if backend.is_cupy_array(x):
        return backend.cupy.tanh(x, out=out)
    if x.dtype.kind != "f" or x.ndim == 0 or (out is not None and out.shape != x.shape):
        return _array(np.tanh(x, out=out))
    if out is None:
        out = np.empty_like(x)
    if out is x:
        split_rows(lambda yb: np.tanh(yb, out=yb), out)
    else:
        split_rows(lambda yb, xb: np.tanh(xb, out=yb), out, x)
    return out


def tanh_backward(gy, y):
    """gx = gy * (1 - y^2), from the forward output y = tanh(x)."""
    if backend.is_cupy_array(gy):
        return _ew("T gy, T y", "T gx", "gx = gy * ((T)1 - y * y)", "minigan_tanh_bwd")(gy, y)
    if y.ndim == 0 or gy.shape != y.shape:
        gx = _array(np.multiply(y, y))
        np.subtract(1, gx, out=gx)
        gx *= gy
        return gx

    def block(gb, yb, gyb):
        np.multiply(yb, yb, out=gb)
        np.subtract(1, gb, out=gb)
        gb *= gyb

    gx = np.empty_like(y)  # (np.multiply(y, y)'s dtype and, for a dense y, its layout)
    split_rows(block, gx, y, gy)
    return gx


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), computed from e = exp(-|x|) so that nothing overflows:
    y = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0 (which keeps tiny outputs accurate)."""
    if backend.is_cupy_array(x):
        return _ew("T x", "T y", """
            const T e = exp(-fabs(x));
            const T r = (T)1 / ((T)1 + e);
            y = x >= (T)0 ? r : e * r;
            """, "minigan_sigmoid_fwd")(x)
    e = _array(np.abs(x))
    np.negative(e, out=e)
    np.exp(e, out=e)
    y = _array(np.add(e, 1))
    np.reciprocal(y, out=y)
    np.multiply(e, y, out=e)  # e now holds the x < 0 branch
    np.copyto(y, e, where=x < 0)
    return y


def sigmoid_mean(x):
    """The mean of sigmoid(x) over all of x, as a 0-d array of x's dtype (a GAN's D(x) and
    D(G(z)) statistics): each sigmoid_forward value summed in double; on the GPU one kernel
    instead of two (and no x-sized array)."""
    scale = 1.0 / x.size if x.size else math.nan
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES and x.size:
        return _mean_of("sigmoid_mean", x, 0, scale)
    return sum_all_scaled(sigmoid_forward(x), scale)


def sigmoid_mean_pair(x1, x2):
    """``(sigmoid_mean(x1), sigmoid_mean(x2))`` with the same values, as two 0-d arrays; on
    the GPU one kernel for both."""
    if _pairable(x1, x2):
        out = _mean_of_pair("sigmoid_mean", x1, x2, 0, 0, 1.0 / x1.size, 1.0 / x2.size)
        return out[0], out[1]
    return sigmoid_mean(x1), sigmoid_mean(x2)


def sigmoid_backward(gy, y):
    """gx = gy * y * (1 - y), from the forward output y = sigmoid(x)."""
    if backend.is_cupy_array(gy):
        return _ew("T gy, T y", "T gx", "gx = gy * y * ((T)1 - y)", "minigan_sigmoid_bwd")(gy, y)
    gx = _array(np.subtract(1, y))
    gx *= y
    gx *= gy
    return gx


# softplus

def softplus_forward(x, beta: float = 1.0, threshold: float = 20.0):
    """y = x where beta*x > threshold, else log(1 + exp(beta*x)) / beta (PyTorch's Softplus).

    log(1 + exp(z)) is evaluated as max(z, 0) + log1p(exp(-|z|)), which neither overflows for
    large z nor loses the small values for very negative z.
    """
    if backend.is_cupy_array(x):
        k = _ew("T x, T beta, T threshold", "T y", """
            const T z = x * beta;
            y = z > threshold ? x : (fmax(z, (T)0) + log1p(exp(-fabs(z)))) / beta;
            """, "minigan_softplus_fwd")
        return k(x, _scalar(x, beta), _scalar(x, threshold))
    z = _array(x * beta)  # a fresh buffer, reused below for max(z, 0)
    linear = z > threshold
    y = _array(np.abs(z))
    np.negative(y, out=y)
    np.exp(y, out=y)
    np.log1p(y, out=y)
    y += np.maximum(z, 0, out=z)
    if beta != 1.0:
        y /= beta
    np.copyto(y, x, where=linear)
    return y


# Binary cross-entropy with logits

def bce_with_logits_forward(x, t, weight=None):
    """Per-element loss l = w * (softplus(x) - x*t) = w * (max(x, 0) - x*t + log1p(exp(-|x|))).

    This is -w * (t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) without ever forming a log of
    a rounded probability. ``t`` and ``weight`` broadcast against ``x``.
    """
    if backend.is_cupy_array(x):
        op = "l = fmax(x, (T)0) - x * t + log1p(exp(-fabs(x)))"
        if weight is None:
            return _ew("T x, T t", "T l", op, "minigan_bce_logits_fwd")(x, t)
        return _ew("T x, T t, T w", "T l", op + "; l *= w", "minigan_bce_logits_fwd_w")(x, t,
                                                                                         weight)
    loss = _array(np.abs(x))
    np.negative(loss, out=loss)
    np.exp(loss, out=loss)
    np.log1p(loss, out=loss)
    loss += np.maximum(x, 0)
    loss = _inplace(np.subtract, loss, x * t)
    if weight is not None:
        loss = _inplace(np.multiply, loss, weight)
    return loss


def bce_with_logits_const_mean(x, t, scale):
    """``sum_all_scaled(bce_with_logits_forward(x, t), scale)`` for a number t: the mean loss
    against a constant target, as a 0-d array. On the GPU one kernel instead of two (and no
    loss-sized array)."""
    if backend.is_cupy_array(x) and x.dtype in FLOAT_CTYPES and x.size:
        return _mean_of("bce_const_mean", x, t, scale)
    return sum_all_scaled(bce_with_logits_forward(x, t), scale)


def bce_with_logits_const_mean_backward(gy, x, t, scale):
    """The gradient of ``bce_with_logits_const_mean`` for a 0-d ``gy``: gx = (gy * scale) *
    (sigmoid(x) - t), with gy * scale rounded to x's dtype first, as the mean's backward
    and the loss's backward compute it one after the other (on the GPU one kernel, which reads
    gy on the device)."""
    if backend.is_cupy_array(x):
        op = """
            const T g = gy * sc;
            const T e = exp(-fabs(x));
            const T r = (T)1 / ((T)1 + e);
            const T s = x >= (T)0 ? r : e * r;
            gx = g * (s - t)"""
        return _ew("T gy, T x, T t, T sc", "T gx", op, "minigan_bce_logits_mean_bwd")(
            gy, x, _scalar(x, t), _scalar(x, scale), *out_like(x))
    return bce_with_logits_backward(gy * _scalar(x, scale), x, t)


def bce_with_logits_const_mean_pair(x1, x2, t1, t2, scale1, scale2):
    """``bce_with_logits_const_mean(x1, t1, scale1) + bce_with_logits_const_mean(x2, t2,
    scale2)``, a 0-d array with the same values: on the GPU one kernel instead of three."""
    if _pairable(x1, x2):
        return _mean_of_pair("bce_const_mean", x1, x2, t1, t2, scale1, scale2)[2]
    return (bce_with_logits_const_mean(x1, t1, scale1)
            + bce_with_logits_const_mean(x2, t2, scale2))


def bce_with_logits_const_mean_pair_backward(gy, x1, x2, t1, t2, scale1, scale2, out=None):
    """The two gradients of ``bce_with_logits_const_mean_pair`` for a 0-d ``gy``: each that of
    ``bce_with_logits_const_mean_backward``; on the GPU one kernel for two inputs of one shape
    and layout (two otherwise). ``out``: two arrays of the inputs' shapes and dtype (e.g. the
    two halves of one gradient array) that receive the gradients, and are returned."""
    if out is not None:
        for o, x in zip(out, (x1, x2)):
            if o.shape != x.shape or o.dtype != x.dtype:
                raise ValueError(f"bce_with_logits_const_mean_pair_backward: out arrays must "
                                 f"match the inputs, got {o.shape} {o.dtype} for "
                                 f"{x.shape} {x.dtype}")
    if (_pairable(x1, x2) and x1.shape == x2.shape and x1.strides == x2.strides
            and x1.flags.c_contiguous
            and (out is None or (out[0].flags.c_contiguous and out[1].flags.c_contiguous))):
        op = """
            const T e1 = exp(-fabs(x1));
            const T r1 = (T)1 / ((T)1 + e1);
            const T s1 = x1 >= (T)0 ? r1 : e1 * r1;
            gx1 = (gy * sc1) * (s1 - t1);
            const T e2 = exp(-fabs(x2));
            const T r2 = (T)1 / ((T)1 + e2);
            const T s2 = x2 >= (T)0 ? r2 : e2 * r2;
            gx2 = (gy * sc2) * (s2 - t2)"""
        return _ew("T gy, T x1, T x2, T t1, T t2, T sc1, T sc2", "T gx1, T gx2", op,
                   "minigan_bce_logits_mean_pair_bwd")(
            gy, x1, x2, _scalar(x1, t1), _scalar(x1, t2), _scalar(x1, scale1),
            _scalar(x1, scale2), *(out or ()))
    g = (bce_with_logits_const_mean_backward(gy, x1, t1, scale1),
         bce_with_logits_const_mean_backward(gy, x2, t2, scale2))
    if out is None:
        return g
    for o, gi in zip(out, g):
        o[...] = gi
    return tuple(out)


def bce_with_logits_backward(gy, x, t, weight=None):
    """gx = gy * (sigmoid(x) - t) * w; gy, t and weight broadcast against x."""
    if backend.is_cupy_array(x):
        op = """
            const T e = exp(-fabs(x));
            const T r = (T)1 / ((T)1 + e);
            const T s = x >= (T)0 ? r : e * r;
            gx = gy * (s - t)"""
        if weight is None:
            return _ew("T gy, T x, T t", "T gx", op, "minigan_bce_logits_bwd")(gy, x, t)
        return _ew("T gy, T x, T t, T w", "T gx", op + " * w", "minigan_bce_logits_bwd_w")(
            gy, x, t, weight)
    gx = sigmoid_forward(x)
    gx = _inplace(np.subtract, gx, t)
    gx = _inplace(np.multiply, gx, gy)
    if weight is not None:
        gx = _inplace(np.multiply, gx, weight)
    return gx


# Dropout

def dropout_mask(shape, p: float, seed: int, offset: int, xp=np, dtype=np.float32):
    """The inverted-dropout multiplier: 0 with probability p, else 1/(1 - p).

    Drawn from the counter-based Philox stream at (seed, offset), one 32-bit word per element
    (``ceil(n/4)`` counters), so it is reproducible, identical on both devices and, on the GPU,
    a single kernel with no cuRAND call (it can sit inside a CUDA graph).
    """
    return _random.dropout_mask(shape, p, seed, offset, xp, dtype)
