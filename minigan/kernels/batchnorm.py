"""Batch normalisation kernels for (N, C) and (N, C, *spatial) arrays, statistics per channel C.

PyTorch's semantics. With m = N * prod(spatial) values per channel:

    mean = sum(x) / m,   var = sum((x - mean)^2) / m   (biased, two passes: no E[x^2] - E[x]^2)
    invstd = 1 / sqrt(var + eps),   xhat = (x - mean) * invstd,   y = w * xhat + b
    running = (1 - momentum) * running + momentum * stat,  with the UNBIASED var * m / (m - 1)

Backward (first order, the closed form):

    gb = sum(gy),   gw = sum(gy * xhat),   gx = w * invstd * (gy - gb / m - xhat * gw / m)

Both devices view x as (N, C, S) with S = prod(spatial) (S = 1 for (N, C)), so per-channel
vectors broadcast as (1, C, 1) and the reductions run over axes (0, 2).

GPU: no host synchronisation anywhere (nothing is read back to Python). Training forward is
one statistics kernel (a thread block per channel: mean, the centred sum of squares, invstd,
scale and the in-place running-stat update, all accumulated in double) which, up to
_FUSED_MAX values per channel, also writes the normalised output (with a fused LeakyReLU);
past that a fused normalise+affine ElementwiseKernel runs over the whole GPU. Backward is the
same: one per-channel reduction (gb and gw together) that also writes gx, or is followed by an
ElementwiseKernel for gx. For 2-D input within that size the kernels can also add a shift (the
bias of the Linear layer before) as they read x, and sum the shift's gradient (``takes_shift``).
Evaluation is a single fused kernel.

CPU: NumPy with one full-size scratch buffer (reused across calls) besides the result, which
comes back in x's layout (``_Layout``). For NCHW input the per-channel sums add contiguous rows
over N first and reduce the small (C, S) rest in double (``_channel_sum_numpy``), and
per-channel vectors are repeated to (C*S,), so that the elementwise ops run over long rows. For
input stored channels-last (as the CPU conv kernels return it) x is the (N*H*W, C) view, the
sums add slabs of rows (``_row_sum_numpy``) and per-channel vectors broadcast as they are.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import backend
from . import parallel
from .elementwise import (
    BLOCK_SUM_CUDA,
    FLOAT_CTYPES,
    leading_strides,
    leaky_relu_backward,
    leaky_relu_inplace,
    out_like,
    with_leading_strides,
)
from .workspace import SCRATCH, _workspace, is_channels_last

__all__ = ["batch_norm_backward_train", "batch_norm_forward_eval", "batch_norm_forward_train",
           "takes_shift"]


def _as3d(x):
    """x as (N, C, S) (a view when x is contiguous) and m = N * S."""
    if x.ndim < 2:
        raise ValueError(f"batch norm expects (N, C) or (N, C, ...), got shape {x.shape}")
    n, c = x.shape[:2]
    x3 = x.reshape(n, c, -1)
    return x3, n * x3.shape[2]


def _col(v):
    """A per-channel vector (C,) as (1, C, 1), to broadcast against (N, C, S)."""
    return v.reshape(1, -1, 1)


def _check_m(m: int) -> None:
    if m <= 1:
        raise ValueError(f"batch norm in training needs more than 1 value per channel, got {m}")


# Forward, training

def takes_shift(x) -> bool:
    """Whether ``batch_norm_forward_train`` and ``batch_norm_backward_train`` take a
    ``shift`` for x: a 2-D float32/float64 GPU array with at most _FUSED_MAX rows, whose
    statistics and output (and gradient) kernels then read x + shift without a launch of
    their own. Elsewhere the caller adds the shift first."""
    return (backend.is_cupy_array(x) and x.ndim == 2 and x.dtype in FLOAT_CTYPES
            and 1 < x.shape[0] <= _FUSED_MAX)


def batch_norm_forward_train(x, weight, bias, running_mean, running_var, momentum: float,
                             eps: float, negative_slope: float | None = None, counter=None,
                             shift=None, channel_major: bool = False):
    """Normalise with batch statistics; returns ``(y, mean, invstd)``, the last two of shape (C,).

    ``running_mean``/``running_var`` (or None) are updated in place with the unbiased variance.
    ``weight``/``bias`` may be None (no affine transform). With ``negative_slope`` a LeakyReLU of
    that slope (0: ReLU) is applied to the result in the same pass on the GPU (one launch
    fewer) and in place on the CPU, with ``leaky_relu_forward``'s arithmetic. ``counter`` (a
    layer's ``num_batches_tracked``, a 0-d integer array, or None) is advanced by one; on the
    GPU by the statistics kernel when it is int64, so that it costs no launch of its own.

    ``shift`` (C,), for x that ``takes_shift`` accepts: normalise x + shift (per channel,
    added in x's dtype), the output of a Linear layer whose bias is ``shift``, without that
    layer's add launch.

    ``channel_major``: on the GPU's one-kernel path, y is stored channel-major (C, N, H, W)
    and viewed as x's (N, C, H, W), whatever x's layout: the (C, N*H*W) matrix that a
    transposed conv after it multiplies, and its backward again, without copies (see
    kernels.conv). Elsewhere y keeps x's layout. The values are the same either way.
    """
    if shift is not None and not takes_shift(x):
        raise ValueError(f"batch norm: a shift is taken only with a 2-D float GPU input of at "
                         f"most {_FUSED_MAX} rows, got {x.dtype}{tuple(x.shape)} on "
                         f"{backend.device_of(x)}")
    if backend.is_cupy_array(x):
        x3, m = _as3d(x)
        _check_m(m)
        y, mean, invstd = _forward_train_cupy(x3, m, weight, bias, running_mean, running_var,
                                              float(momentum), float(eps), negative_slope,
                                              counter, shift, channel_major)
        return y.reshape(x.shape), mean, invstd
    lay = _Layout(x)
    _check_m(lay.m)
    if counter is not None:
        counter += 1  # in place
    y, mean, invstd = _forward_train_numpy(lay.rows(x), lay, weight, bias, running_mean,
                                           running_var, float(momentum), float(eps))
    if negative_slope is not None:
        leaky_relu_inplace(y, negative_slope)
    return lay.back(y), mean, invstd


def _forward_train_numpy(x2, lay, weight, bias, running_mean, running_var, momentum, eps):
    dt, m = x2.dtype, lay.m
    mean64 = lay.sum(x2) / m
    mean = mean64.astype(dt)
    y = np.empty(x2.shape, dt)  # centred x; becomes y
    sq = _workspace.take(SCRATCH, y.shape, dt)
    vmean = lay.vec(mean)

    def centre(lo, hi):  # (every pass below runs on blocks of rows across the CPU threads)
        np.subtract(x2[lo:hi], vmean, out=y[lo:hi])
        np.square(y[lo:hi], out=sq[lo:hi])

    parallel.run(centre, len(y), 3 * y.nbytes)
    var64 = lay.sum(sq) / m
    # per-channel numbers in double, in the same order as the GPU's per-channel kernel
    invstd64 = 1.0 / np.sqrt(var64 + eps)
    invstd = invstd64.astype(dt)
    scale = invstd if weight is None else (weight * invstd64).astype(dt)
    vscale = lay.vec(scale)
    vbias = None if bias is None else lay.vec(bias)

    def affine(lo, hi):
        y[lo:hi] *= vscale
        if vbias is not None:
            y[lo:hi] += vbias

    parallel.run(affine, len(y), 2 * y.nbytes)
    if running_mean is not None:
        running_mean[...] = ((1.0 - momentum) * running_mean.astype(np.float64)
                             + momentum * mean.astype(np.float64))
    if running_var is not None:
        running_var[...] = ((1.0 - momentum) * running_var.astype(np.float64)
                            + momentum * (m / (m - 1)) * var64)
    return y, mean, invstd


class _Layout:
    """How the NumPy paths see x: as rows whose per-channel vectors broadcast cheaply.

    * NCHW (or any other layout, copied to C order): x as (N, C*S) with S = prod(spatial); a
      per-channel vector is repeated to (C*S,) and the sums add rows over N first.
    * Stored channels-last (a 4-D array whose (N, H, W, C) transpose is C-contiguous, as the
      CPU conv kernels return): x as the (N*H*W, C) view, no copy; a per-channel vector
      broadcasts as it is and the sums add slabs of rows.
    Results come back in x's layout."""

    def __init__(self, x):
        if x.ndim < 2:
            raise ValueError(f"batch norm expects (N, C) or (N, C, ...), got shape {x.shape}")
        self.shape = x.shape
        n = x.shape[0]
        self.s = math.prod(x.shape[2:])
        self.m = n * self.s
        self.last = is_channels_last(x)

    def rows(self, a):
        """a (shaped as x, any layout) as this layout's 2-D rows, a view where it can be."""
        n, c = self.shape[:2]
        if self.last:
            return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(-1, c)
        return np.ascontiguousarray(a).reshape(n, c * self.s)

    def back(self, a2):
        if self.last:
            n, c, h, w = self.shape
            return a2.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return a2.reshape(self.shape)

    def vec(self, v):
        return v if self.last or self.s == 1 else np.repeat(v, self.s)

    def sum(self, a2):
        """Per-channel sums of rows(...)-shaped a2, as float64 of shape (C,)."""
        if self.last:
            return _row_sum_numpy(a2)
        n, c = self.shape[:2]
        return _channel_sum_numpy(a2.reshape(n, c, self.s))


# CPU reductions. NumPy runs a reduction over axes (0, 2) of (N, C, S) as short strided inner
# loops, far below memory bandwidth. Summing over N first instead adds whole contiguous rows of
# C*S values (vectorised, at copy speed); only the small (C, S) partial sums are then reduced
# over S, in double. The row additions run in the array's dtype, sequentially over N, so at
# most _SUM_ROWS rows go into one partial sum (float32 error about _SUM_ROWS * 6e-8 at worst).
_SUM_ROWS = 64


def _channel_sum_numpy(a3):
    """Per-channel sums of a C-contiguous (N, C, S) array, as float64 of shape (C,)."""
    n, c, s = a3.shape
    a2 = a3.reshape(n, c * s)
    if n <= _SUM_ROWS:
        part = _sum_outer(a2)
    else:
        full = n - n % _SUM_ROWS
        part = a2[:full].reshape(-1, _SUM_ROWS, c * s).sum(axis=1)
        if full < n:
            part = np.concatenate([part, a2[full:].sum(axis=0, keepdims=True)])
    return part.reshape(-1, c, s).sum(axis=(0, 2), dtype=np.float64)


def _sum_outer(a):
    """``a.sum(axis=0)`` of an (R, K) or (R, L, K) array, computed on blocks of its second axis
    across the CPU threads. Each output element is the same sequential sum over the first
    axis as unsplit, so the values do not depend on the thread count."""
    out = np.empty(a.shape[1:], a.dtype)
    parallel.run(lambda lo, hi: a[:, lo:hi].sum(axis=0, out=out[lo:hi]), a.shape[1], a.nbytes)
    return out


def _row_sum_numpy(a2):
    """Per-column sums of a C-contiguous (M, C) array, as float64 of shape (C,). The rows are
    cut into _SUM_ROWS equal slabs, which are added to one another in the array's dtype (each
    partial sum then holds _SUM_ROWS values, and every add runs over a whole contiguous slab:
    2.5x faster than adding blocks of consecutive rows); the partial sums are added in double."""
    m, c = a2.shape
    full = m - m % _SUM_ROWS
    total = _sum_outer(a2[:full].reshape(_SUM_ROWS, -1, c)).sum(axis=0, dtype=np.float64)
    if full < m:
        total += a2[full:].sum(axis=0, dtype=np.float64)
    return total


# GPU statistics: one thread block per channel c of x viewed as (N, C, S). The block walks the
# channel's m = N*S values (element (n, s) sits at c*sc + n*sn + s: NCHW, or the channel-major
# layout of a GPU conv output) and sums them in double with a warp-shuffle block reduction. The
# kernel launch is the only host action: nothing is synced.
_BN_CUDA = BLOCK_SUM_CUDA + r"""
// Walks k = threadIdx.x, +blockDim.x, ... < m as (n, s) without a 64-bit division per element.
struct MiniganChannelWalk {
    long long n, s, dn, ds, S;
    __device__ MiniganChannelWalk(long long S_) : S(S_) {
        n = threadIdx.x / S; s = threadIdx.x - n * S;
        dn = blockDim.x / S; ds = blockDim.x - dn * S;
    }
    __device__ void next() { s += ds; n += dn; if (s >= S) { s -= S; ++n; } }
};

// Two passes (sum, then sum of squared deviations: no E[x^2] - E[x]^2 cancellation); thread 0
// writes mean, invstd, scale = w * invstd and moves the running statistics (unbiased variance).
// With flag 16 a third pass writes the normalised channel, y = (x - mean) * scale + b (+ a
// LeakyReLU of slope `slope` with flag 64), in T from the T-rounded mean and scale: the values
// minigan_bn_normalize(_leaky) computes, without its launch.
extern "C" __global__ void minigan_bn_stats_DTYPE(
        const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ mean_out,
        T* __restrict__ invstd_out, T* __restrict__ scale_out, T* __restrict__ run_mean,
        T* __restrict__ run_var, const long long N, const long long C, const long long S,
        const long long sn, const long long sc, const double eps, const double momentum,
        const int flags, long long* __restrict__ counter, T* __restrict__ y,
        const long long ysn, const long long ysc, const T* __restrict__ b, const T slope,
        const T* __restrict__ shift) {
    // flags: 1 = weight given, 2 = update run_mean, 4 = update run_var, 8 = advance the
    // layer's num_batches_tracked (one thread of the grid), 16 = write y, 32 = bias given,
    // 64 = LeakyReLU on y, 128 = the input is x + shift[c] (the bias of the Linear layer
    // before, added in T as that layer's add would: with 16 only)
    __shared__ double sh[33];
    if (flags & 8 && blockIdx.x == 0 && threadIdx.x == 0) counter[0] += 1;
    const long long c = blockIdx.x;
    const T* xc = x + c * sc;
    const bool shifted = flags & 128;
    const T xs = shifted ? shift[c] : (T)0;
    double acc = 0.0;
    for (MiniganChannelWalk it(S); it.n < N; it.next()) {
        const T v = xc[it.n * sn + it.s];
        acc += (double)(shifted ? v + xs : v);
    }
    const double m = (double)(N * S);
    const double mean = minigan_block_sum(acc, sh) / m;
    acc = 0.0;
    for (MiniganChannelWalk it(S); it.n < N; it.next()) {
        const T v = xc[it.n * sn + it.s];
        const double d = (double)(shifted ? v + xs : v) - mean;
        acc += d * d;
    }
    const double var = minigan_block_sum(acc, sh) / m;  // every thread holds the sums
    const double invstd = 1.0 / sqrt(var + eps);
    const T scale = (T)((flags & 1 ? (double)w[c] : 1.0) * invstd);
    if (threadIdx.x == 0) {
        mean_out[c] = (T)mean;
        invstd_out[c] = (T)invstd;
        scale_out[c] = scale;
        if (flags & 2) run_mean[c] = (T)((1.0 - momentum) * (double)run_mean[c] + momentum * mean);
        if (flags & 4) {
            run_var[c] = (T)((1.0 - momentum) * (double)run_var[c]
                             + momentum * (m / (m - 1.0)) * var);
        }
    }
    if (flags & 16) {
        const T mu = (T)mean;
        const T bc = flags & 32 ? b[c] : (T)0;
        T* yc = y + c * ysc;
        for (MiniganChannelWalk it(S); it.n < N; it.next()) {
            const T xv = xc[it.n * sn + it.s];
            const T v = ((shifted ? xv + xs : xv) - mu) * scale + bc;
            yc[it.n * ysn + it.s] = flags & 64
                ? (v < (T)0 ? (slope == (T)0 ? (T)0 : v * slope) : v) : v;
        }
    }
}

// One pass: gb = sum(gy), gw = invstd * sum(gy * (x - mean)). With flag 2 a second pass
// writes gx = w * invstd * (gy - gb * inv_m - xhat * (gw * inv_m)) (w = 1 without flag 4), in
// T from the T-rounded gb and gw: the values of minigan_bn_grad_input(_masked), without its
// launch.
extern "C" __global__ void minigan_bn_grad_stats_DTYPE(
        const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ mean,
        const T* __restrict__ invstd, T* __restrict__ gw_out, T* __restrict__ gb_out,
        const long long N, const long long C, const long long S, const long long gsn,
        const long long gsc, const long long xsn, const long long xsc,
        const T* __restrict__ y, const long long ysn, const long long ysc, const double slope,
        const int flags, T* __restrict__ gx, const long long gxsn, const long long gxsc,
        const T* __restrict__ w, const T inv_m, const T* __restrict__ shift,
        T* __restrict__ gs_out) {
    // flags: 1 = gy is first masked by a fused LeakyReLU on this batch norm's output y, as
    // leaky_relu_backward does (gy where y > 0, else gy * slope, in T); 2 = write gx;
    // 4 = weight given; 8 = add gw and gb into gw_out and gb_out (the parameters' .grad, in
    // T, as a separate add would) instead of storing them; 16 = the input was x + shift[c]
    // (the forward's flag 128), and gs_out[c] gets the sum of gx over the channel, the
    // gradient of that shift (with 2 only); 32 = add it into gs_out[c] instead
    __shared__ double sh[33];
    const long long c = blockIdx.x;
    const bool masked = flags & 1, shifted = flags & 16;
    const T xs = shifted ? shift[c] : (T)0;
    const double mu = (double)mean[c];
    double sg = 0.0, sgx = 0.0;
    for (MiniganChannelWalk it(S); it.n < N; it.next()) {
        const long long kg = c * gsc + it.n * gsn + it.s;
        const double g = masked && !(y[c * ysc + it.n * ysn + it.s] > (T)0)
            ? (slope == 0.0 ? 0.0 : (double)(gy[kg] * (T)slope)) : (double)gy[kg];
        const T xv = x[c * xsc + it.n * xsn + it.s];
        sg += g;
        sgx += g * ((double)(shifted ? xv + xs : xv) - mu);
    }
    sg = minigan_block_sum(sg, sh);
    sgx = minigan_block_sum(sgx, sh);  // every thread holds the sums
    const T gb = (T)sg;
    const T gw = (T)(sgx * (double)invstd[c]);
    if (threadIdx.x == 0) {
        gb_out[c] = flags & 8 ? (T)(gb_out[c] + gb) : gb;
        gw_out[c] = flags & 8 ? (T)(gw_out[c] + gw) : gw;
    }
    if (flags & 2) {
        const T mc = mean[c], ic = invstd[c], wc = flags & 4 ? w[c] : (T)1, s = (T)slope;
        double sgs = 0.0;
        for (MiniganChannelWalk it(S); it.n < N; it.next()) {
            const T gyv = gy[c * gsc + it.n * gsn + it.s];
            const T g = masked && !(y[c * ysc + it.n * ysn + it.s] > (T)0) ? (s == (T)0 ? (T)0 : gyv * s) : gyv;
            const T xv = x[c * xsc + it.n * xsn + it.s];
            const T xhat = ((shifted ? xv + xs : xv) - mc) * ic;
            const T gxv = wc * ic * (g - gb * inv_m - xhat * (gw * inv_m));
            gx[c * gxsc + it.n * gxsn + it.s] = gxv;
            sgs += (double)gxv;
        }
        if (shifted) {
            sgs = minigan_block_sum(sgs, sh);
            if (threadIdx.x == 0) gs_out[c] = flags & 32 ? (T)(gs_out[c] + (T)sgs) : (T)sgs;
        }
    }
}
"""


@functools.lru_cache(maxsize=None)
def _bn_raw_kernel(which: str, dtype):
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    code = f"typedef {ctype} T;\n" + _BN_CUDA.replace("DTYPE", tag)
    return backend.raw_kernel(code, f"minigan_bn_{which}_{tag}")


def _block(m: int) -> int:
    """Threads per channel block: enough to keep many loads in flight, at most 1024."""
    return int(min(1024, max(32, -(-m // 32) * 32)))


# Up to this many values per channel, the statistics kernel also writes the normalised output
# (and the gradient kernel the input gradient): one launch instead of two. Beyond it, the
# second pass runs as an elementwise kernel over the whole GPU, as the per-channel blocks
# would leave SMs idle on a long pass (a layer with few channels at a large batch).
_FUSED_MAX = 1 << 16


def _fused_out(x3, m, channel_major: bool = False):
    """The output array of a fused batch-norm kernel, in x3's layout (or, with
    ``channel_major``, stored as (C, N, S) and viewed as x3's (N, C, S)), with its leading
    strides; (None, None) when the layer takes the two-launch path."""
    if m > _FUSED_MAX:
        return None, None
    cp = backend.cupy
    if channel_major:
        n, c, s = x3.shape
        out = cp.empty((c, n, s), dtype=x3.dtype).transpose(1, 0, 2)
    else:
        out = cp.empty_like(x3)  # x3's layout (a channel-major conv output stays so)
    st = leading_strides(out)
    return (out, st) if st is not None else (None, None)


@functools.lru_cache(maxsize=512)
def _stats_scalars(n, c, s, sn, sc, eps, momentum, flags, yst, m):
    """The statistics kernel's block size and scalar arguments, the same for a layer at every
    step: (block, (n, c, s, sn, sc, eps, momentum, flags), (the output's two strides))."""
    i64 = np.int64
    return (_block(m), (i64(n), i64(c), i64(s), i64(sn), i64(sc), np.float64(eps),
                        np.float64(momentum), np.int32(flags)), (i64(yst[0]), i64(yst[1])))


@functools.lru_cache(maxsize=512)
def _grad_stats_scalars(n, c, s, gsn, gsc, xsn, xsc, yst, flags, gxst, m, dt):
    """The gradient kernel's block size and scalar arguments, the same for a layer at every
    step: (block, (n, c, s and the strides of gy and x), y's strides, the flags, gx's strides,
    1/m in the layer's dtype)."""
    i64 = np.int64
    return (_block(m), tuple(map(i64, (n, c, s, gsn, gsc, xsn, xsc))), (i64(yst[0]), i64(yst[1])),
            np.int32(flags), (i64(gxst[0]), i64(gxst[1])), dt.type(1.0 / m))


def _forward_train_cupy(x3, m, weight, bias, running_mean, running_var, momentum, eps,
                       negative_slope=None, counter=None, shift=None, channel_major=False):
    cp = backend.cupy
    x3, (sn, sc) = with_leading_strides(x3)  # no copy of a channel-major conv output
    n, c, s = x3.shape
    dt = x3.dtype
    mean, invstd, scale = cp.empty((3, c), dtype=dt)  # one allocation, three contiguous rows
    # unused pointer arguments get `mean`, which the flags keep the kernel from touching
    w = cp.ascontiguousarray(weight, dtype=dt) if weight is not None else mean
    # running buffers of another dtype or layout are updated through a copy (rare)
    run = [r if r is None or (r.dtype == dt and r.flags.c_contiguous) else r.astype(dt)
           for r in (running_mean, running_var)]
    flags = (weight is not None) | (run[0] is not None) << 1 | (run[1] is not None) << 2
    count = counter is not None and counter.dtype == np.int64 and counter.size == 1
    if counter is not None and not count:
        counter += 1  # another integer type (a hand-made buffer): a launch of its own
    y, yst = _fused_out(x3, m, channel_major)
    b = cp.ascontiguousarray(bias, dtype=dt) if bias is not None and y is not None else mean
    if y is not None:
        flags |= 16 | (bias is not None) << 5 | (negative_slope is not None) << 6
    elif shift is not None:  # (takes_shift promised the one-kernel path)
        raise AssertionError("batch norm: a shift without the one-kernel path")
    sh = mean
    if shift is not None:
        sh = cp.ascontiguousarray(shift, dtype=dt)
        flags |= 128
    block, head, ys = _stats_scalars(n, c, s, sn, sc, eps, momentum, flags | count << 3,
                                     yst if y is not None else (0, 0), m)
    _bn_raw_kernel("stats", dt)(
        (c,), (block,),
        (x3, w, mean, invstd, scale, mean if run[0] is None else run[0],
         mean if run[1] is None else run[1], *head, counter if count else mean,
         mean if y is None else y, *ys, b,
         dt.type(0 if negative_slope is None else negative_slope), sh))
    for r, new in zip((running_mean, running_var), run):
        if r is not new:
            r[...] = new
    if y is not None:
        return y, mean, invstd
    b = _col(bias) if bias is not None else dt.type(0)
    if negative_slope is None:
        norm = backend.elementwise_kernel("T x, T mean, T scale, T b", "T y",
                                          "y = (x - mean) * scale + b", "minigan_bn_normalize")
        return norm(x3, _col(mean), _col(scale), b, *out_like(x3)), mean, invstd
    # with the activation of leaky_relu_forward's kernel (the same expression, so the same
    # values) on the normalised value
    norm = backend.elementwise_kernel(
        "T x, T mean, T scale, T b, T s", "T y",
        "const T v = (x - mean) * scale + b; y = v < (T)0 ? (s == (T)0 ? (T)0 : v * s) : v",
        "minigan_bn_normalize_leaky")
    return (norm(x3, _col(mean), _col(scale), b, dt.type(negative_slope), *out_like(x3)),
            mean, invstd)


# Forward, evaluation

def batch_norm_forward_eval(x, weight, bias, running_mean, running_var, eps: float):
    """y = (x - running_mean) / sqrt(running_var + eps) * w + b, per channel."""
    if backend.is_cupy_array(x):
        x3, _ = _as3d(x)
        dt = x.dtype.type
        k = backend.elementwise_kernel(
            "T x, T rm, T rv, T w, T b, float64 eps", "T y",
            "y = (x - rm) * (T)((double)w / sqrt((double)rv + eps)) + b",
            "minigan_bn_eval")
        w = dt(1) if weight is None else _col(weight)
        b = dt(0) if bias is None else _col(bias)
        y = k(x3, _col(running_mean), _col(running_var), w, b, float(eps), *out_like(x3))
        return y.reshape(x.shape)
    if x.ndim < 2:
        raise ValueError(f"batch norm expects (N, C) or (N, C, ...), got shape {x.shape}")
    scale = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    if weight is not None:
        scale *= weight
    col = (1, -1) + (1,) * (x.ndim - 2)  # per-channel vectors against x as it is (any layout)
    y = x - running_mean.reshape(col)
    y *= scale.astype(x.dtype).reshape(col)
    if bias is not None:
        y += bias.reshape(col)
    return y


# Backward, training

def batch_norm_backward_train(gy, x, weight, mean, invstd, y=None, negative_slope=None,
                              accumulate_into=None, shift=None, shift_into=None):
    """First-order gradients ``(gx, gweight, gbias)`` from the forward's mean and invstd.

    gweight and gbias are computed even when ``weight`` is None (the caller may drop them).
    With ``y`` (this batch norm's output) and ``negative_slope``, gy is first masked by the
    LeakyReLU fused on that output (``leaky_relu_backward(gy, y, s)``): on the GPU inside the
    two backward kernels, not as a launch of its own.

    ``accumulate_into``: a pair of (C,) GPU arrays (the weight's and the bias's ``.grad``).
    Where the GPU's one-kernel path runs, gweight and gbias are added into them by that kernel
    and the pair is returned in their place; else they are returned as usual.

    ``shift``: the forward's (``takes_shift``); x is then the unshifted input, and a fourth
    result is the shift's gradient, gx summed per channel, from the same kernel (added into
    ``shift_into``, a (C,) array, and that array returned, where it can be).
    """
    masked = y is not None and negative_slope is not None
    if shift is not None and not takes_shift(x):
        raise ValueError(f"batch norm backward: a shift is taken only with a 2-D float GPU "
                         f"input of at most {_FUSED_MAX} rows, got {x.dtype}{tuple(x.shape)} "
                         f"on {backend.device_of(x)}")
    if backend.is_cupy_array(x):
        x3, m = _as3d(x)
        out = _backward_cupy(gy.reshape(x3.shape), x3, m, weight, mean, invstd,
                             y.reshape(x3.shape) if masked else None, negative_slope,
                             accumulate_into, shift, shift_into)
        return (out[0].reshape(x.shape),) + out[1:]
    if masked:
        gy = leaky_relu_backward(gy, y, negative_slope)
    lay = _Layout(x)
    if tuple(gy.shape) != tuple(x.shape):
        raise ValueError(f"batch norm backward: grad_output of shape {tuple(gy.shape)} for an "
                         f"input of shape {tuple(x.shape)}")
    gx, gw, gb = _backward_numpy(lay.rows(gy), lay.rows(x), lay, weight, mean, invstd)
    return lay.back(gx), gw, gb


def _backward_numpy(gy2, x2, lay, weight, mean, invstd):
    dt, m = x2.dtype, lay.m
    gb64 = lay.sum(gy2)
    # x - mean, kept in scratch (no cancellation below); tmp becomes gx
    xc = _workspace.take(SCRATCH, x2.shape, dt)
    tmp = np.empty(x2.shape, np.result_type(gy2, xc))
    vmean = lay.vec(mean)

    def centre(lo, hi):  # (passes on blocks of rows across the CPU threads, as in the forward)
        np.subtract(x2[lo:hi], vmean, out=xc[lo:hi])
        np.multiply(gy2[lo:hi], xc[lo:hi], out=tmp[lo:hi])

    parallel.run(centre, len(tmp), 4 * tmp.nbytes)
    gw64 = lay.sum(tmp) * invstd.astype(np.float64)
    gw, gb = gw64.astype(dt), gb64.astype(dt)
    # gx = a * (gy - gb/m - xhat * gw/m) with a = w * invstd and xhat = (x - mean) * invstd:
    # a*gy - (x - mean) * (a * invstd * gw/m) - a * gb/m, built in tmp
    a = invstd if weight is None else weight * invstd
    va, vk, vg = lay.vec(a), lay.vec(a * invstd * (gw / m)), lay.vec(a * (gb / m))

    def grad_input(lo, hi):
        t, c = tmp[lo:hi], xc[lo:hi]
        np.multiply(gy2[lo:hi], va, out=t)
        c *= vk
        t -= c
        t -= vg

    parallel.run(grad_input, len(tmp), 5 * tmp.nbytes)
    return tmp, gw, gb


_GX_OP = """
    const T xhat = (x - mean) * invstd;
    gx = w * invstd * (gy - gb * inv_m - xhat * (gw * inv_m));
"""


def _backward_cupy(gy3, x3, m, weight, mean, invstd, y3=None, negative_slope=None,
                   accumulate_into=None, shift=None, shift_into=None):
    cp = backend.cupy
    gy3, (gsn, gsc) = with_leading_strides(gy3)
    x3, (xsn, xsc) = with_leading_strides(x3)
    masked = y3 is not None
    if masked:
        y3, (ysn, ysc) = with_leading_strides(y3)
    n, c, s = x3.shape
    dt = x3.dtype
    mean, invstd = cp.ascontiguousarray(mean, dtype=dt), cp.ascontiguousarray(invstd, dtype=dt)
    # gx in x's layout: for the channel-major output of a GPU conv, the gradient that conv's
    # backward reads as its (C, N*S) matrix without a copy
    gx, gxst = _fused_out(x3, m)
    add = (gx is not None and accumulate_into is not None
           and all(backend.is_cupy_array(a) and a.shape == (c,) and a.dtype == dt
                   and a.flags.c_contiguous for a in accumulate_into))
    # two arrays of their own (not rows of one): as a parameter's .grad, a later gradient can
    # be added into each in place
    gw, gb = accumulate_into if add else (cp.empty(c, dtype=dt), cp.empty(c, dtype=dt))
    wc = cp.ascontiguousarray(weight, dtype=dt) if weight is not None and gx is not None else mean
    flags = (masked | (gx is not None) << 1 | (weight is not None and gx is not None) << 2
             | add << 3)
    sh = gs = mean
    if shift is not None:
        if gx is None:  # (takes_shift promised the one-kernel path)
            raise AssertionError("batch norm backward: a shift without the one-kernel path")
        sh = cp.ascontiguousarray(shift, dtype=dt)
        add_s = (backend.is_cupy_array(shift_into) and shift_into.shape == (c,)
                 and shift_into.dtype == dt and shift_into.flags.c_contiguous)
        gs = shift_into if add_s else cp.empty(c, dtype=dt)
        flags |= 16 | add_s << 5
    block, head, ys, flags32, gxs, inv_m = _grad_stats_scalars(
        n, c, s, gsn, gsc, xsn, xsc, (ysn, ysc) if masked else (0, 0), flags,
        gxst if gx is not None else (0, 0), m, dt)
    _bn_raw_kernel("grad_stats", dt)(
        (c,), (block,), (gy3, x3, mean, invstd, gw, gb, *head, y3 if masked else x3, *ys,
                         np.float64(negative_slope if masked else 0.0), flags32,
                         mean if gx is None else gx, *gxs, wc, inv_m, sh, gs))
    if shift is not None:
        return gx, gw, gb, gs
    if gx is not None:
        return gx, gw, gb
    w = dt.type(1) if weight is None else _col(weight)
    stats = (_col(mean), _col(invstd), w, _col(gb), _col(gw), dt.type(1.0 / m))
    if not masked:
        k = backend.elementwise_kernel("T gy, T x, T mean, T invstd, T w, T gb, T gw, T inv_m",
                                       "T gx", _GX_OP, "minigan_bn_grad_input")
        return k(gy3, x3, *stats, *out_like(x3)), gw, gb
    k = backend.elementwise_kernel(
        "T gy_in, T y, T s, T x, T mean, T invstd, T w, T gb, T gw, T inv_m", "T gx",
        "const T gy = y > (T)0 ? gy_in : (s == (T)0 ? (T)0 : gy_in * s);" + _GX_OP, "minigan_bn_grad_input_masked")
    return k(gy3, y3, dt.type(negative_slope), x3, *stats, *out_like(x3)), gw, gb
