"""Pooling and nearest upsampling kernels on (N, C, H, W) arrays, with PyTorch's semantics.

Windows of size k = (kh, kw) start at (a*s - p, b*s - p) for output pixel (a, b), with
Ho = floor((H + 2p - k) / s) + 1 (no ceil mode) and p <= k/2, as PyTorch requires:

    max_pool2d:  y[n,c,a,b] = max of the window over real pixels (padding is never chosen);
                 index[n,c,a,b] = h*W + w of the first maximum in row-major window order, a NaN
                 counting as a maximum (so NaN propagates), exactly as PyTorch's return_indices.
                 Backward: gx[n,c,h,w] = sum of gy[n,c,a,b] over the windows whose index is h*W+w.
    avg_pool2d:  y = window sum / (kh*kw) (count_include_pad=True: padding counts as zeros).
                 Backward: gx[n,c,h,w] = sum over the windows containing (h, w) of gy / (kh*kw).
    upsample_nearest2d (integer factor s): y[n,c,h,w] = x[n,c,h//s,w//s]; its adjoint sums
                 each s x s block of gy.

CPU: a loop over the kh*kw window taps, each a strided slice operation on the whole batch (no
loop over pixels). GPU: one RawKernel/ElementwiseKernel per call, in gather form (each output
element written by one thread, so the backward passes need no atomics and are deterministic).
"""
from __future__ import annotations

import functools

import numpy as np

from .. import backend
from .conv import (
    _check_4d,
    _check_dtypes,
    _index_type,
    _indexed_kernel,
    _launch,
    _offset_slices,
    _pair,
)
from .workspace import is_channels_last

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "pool_output_size",
    "upsample_nearest2d_backward",
    "upsample_nearest2d_forward",
]


def _pool_geometry(what, hw, kernel_size, stride, padding):
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    if any(2 * p[t] > k[t] for t in range(2)):
        raise ValueError(f"{what}: padding {p} must be at most half the kernel size {k}")
    out = pool_output_size(hw, k, s, p)
    if min(out) <= 0:
        raise ValueError(f"{what}: output size {out} is not positive for input size "
                         f"{tuple(hw)}, kernel {k}, stride {s}, padding {p}")
    return k, s, p, out


def pool_output_size(in_size, kernel_size, stride=None, padding=0) -> tuple:
    """(Ho, Wo) = floor((H + 2p - k) / s) + 1 per dimension (stride defaults to the kernel)."""
    h = _pair(in_size, "input size", 0)
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    p = _pair(padding, "padding", 0)
    return tuple((h[t] + 2 * p[t] - k[t]) // s[t] + 1 for t in range(2))


def _check_grad(what, gy, x_shape, out_hw):
    if len(x_shape) != 4:
        raise ValueError(f"{what}: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    want = (*x_shape[:2], *out_hw)
    if tuple(gy.shape) != want:
        raise ValueError(f"{what}: grad_output has shape {tuple(gy.shape)} but the input "
                         f"{tuple(x_shape)} pools to {want}")


def _like_layout(x, shape, dtype):
    """A new (N, C, Ho, Wo) array stored as x is: channels-last when x is (the CPU conv
    kernels' outputs), so that the per-tap slices of x and of the result run over the same
    contiguous channel rows, and the next conv reads the result without a layout copy."""
    if is_channels_last(x):
        n, c, ho, wo = shape
        return np.empty((n, ho, wo, c), dtype).transpose(0, 3, 1, 2)
    return np.empty(shape, dtype)


def _taps(k, s, p, out_hw, in_hw):
    """(i, j, output-grid slices, input slices) for every kernel tap that touches the image."""
    for i in range(k[0]):
        rows = _offset_slices(i, s[0], p[0], out_hw[0], in_hw[0])
        if rows is None:
            continue
        for j in range(k[1]):
            cols = _offset_slices(j, s[1], p[1], out_hw[1], in_hw[1])
            if cols is not None:
                yield i, j, (rows[0], cols[0]), (rows[1], cols[1])


# GPU kernels

_POOL_CUDA = r"""
// Index helpers shared by the four kernels below (T and I are typedef'd before this source).
// Thread t's cell (nc, a, b) of an (NC, rows, cols) grid, row-major.
__device__ __forceinline__ void minigan_pool_cell(const I t, const I rows, const I cols,
                                                  I& nc, I& a, I& b) {
    b = t % cols;
    const I r = t / cols;
    a = r % rows;
    nc = r / rows;
}

// Window a's rows clipped to the image: [lo, hi) = [a*s - p, a*s - p + k) within [0, H).
__device__ __forceinline__ void minigan_pool_clip(const I a, const int s, const int p,
                                                  const int k, const I H, I& lo, I& hi) {
    const I o = a * s - p;
    lo = o > 0 ? o : 0;
    hi = o + k < H ? o + k : H;
}

// The windows that contain row h: a in [ceil((h + p - k + 1)/s), floor((h + p)/s)], within
// [0, Ho), as the half-open range [lo, hi).
__device__ __forceinline__ void minigan_pool_windows(const I h, const int s, const int p,
                                                     const int k, const I Ho, I& lo, I& hi) {
    lo = h + p < k ? 0 : (h + p - k) / s + 1;
    hi = (h + p) / s + 1 < Ho ? (h + p) / s + 1 : Ho;
}

// Max pooling: one thread per output (nc, a, b) scans its window clipped to the image, in
// row-major order, as PyTorch does: the first maximum wins, a NaN always wins.
extern "C" __global__ void minigan_maxpool_fwd_SUFFIX(
        const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ index,
        const I total, const I H, const I W, const I Ho, const I Wo, const int kh,
        const int kw, const int sh, const int sw, const int ph, const int pw, const T neg_inf) {
    const I t = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
    if (t >= total) return;
    I nc, a, b, hs, he, ws, we;
    minigan_pool_cell(t, Ho, Wo, nc, a, b);
    minigan_pool_clip(a, sh, ph, kh, H, hs, he);
    minigan_pool_clip(b, sw, pw, kw, W, ws, we);
    const T* xc = x + nc * H * W;
    T m = neg_inf;
    I arg = hs * W + ws;
    for (I h = hs; h < he; ++h) {
        for (I w = ws; w < we; ++w) {
            const T v = xc[h * W + w];
            if (v > m || v != v) { m = v; arg = h * W + w; }
        }
    }
    y[t] = m;
    index[t] = (long long)arg;
}

// Max-pool backward, gather form: one thread per input pixel (nc, h, w) visits the windows
// that contain it and adds the gy of those whose argmax is this pixel.
extern "C" __global__ void minigan_maxpool_bwd_SUFFIX(
        const T* __restrict__ gy, const long long* __restrict__ index, T* __restrict__ gx,
        const I total, const I H, const I W, const I Ho, const I Wo, const int kh,
        const int kw, const int sh, const int sw, const int ph, const int pw) {
    const I t = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
    if (t >= total) return;
    I nc, h, w, a_lo, a_hi, b_lo, b_hi;
    minigan_pool_cell(t, H, W, nc, h, w);
    minigan_pool_windows(h, sh, ph, kh, Ho, a_lo, a_hi);
    minigan_pool_windows(w, sw, pw, kw, Wo, b_lo, b_hi);
    const long long self = (long long)(h * W + w);
    const I base = nc * Ho * Wo;
    T acc = (T)0;
    for (I a = a_lo; a < a_hi; ++a) {
        for (I b = b_lo; b < b_hi; ++b) {
            const I o = base + a * Wo + b;
            if (index[o] == self) acc += gy[o];
        }
    }
    gx[t] = acc;
}

// Average pooling (count_include_pad): the window sum over real pixels divided by kh*kw.
extern "C" __global__ void minigan_avgpool_fwd_SUFFIX(
        const T* __restrict__ x, T* __restrict__ y, const I total, const I H, const I W,
        const I Ho, const I Wo, const int kh, const int kw, const int sh, const int sw,
        const int ph, const int pw) {
    const I t = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
    if (t >= total) return;
    I nc, a, b, hs, he, ws, we;
    minigan_pool_cell(t, Ho, Wo, nc, a, b);
    minigan_pool_clip(a, sh, ph, kh, H, hs, he);
    minigan_pool_clip(b, sw, pw, kw, W, ws, we);
    const T* xc = x + nc * H * W;
    T acc = (T)0;
    for (I h = hs; h < he; ++h) {
        for (I w = ws; w < we; ++w) acc += xc[h * W + w];
    }
    y[t] = acc / (T)(kh * kw);
}

// Average-pool backward, gather form: every window containing (h, w) contributes gy / (kh*kw).
extern "C" __global__ void minigan_avgpool_bwd_SUFFIX(
        const T* __restrict__ gy, T* __restrict__ gx, const I total, const I H, const I W,
        const I Ho, const I Wo, const int kh, const int kw, const int sh, const int sw,
        const int ph, const int pw) {
    const I t = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
    if (t >= total) return;
    I nc, h, w, a_lo, a_hi, b_lo, b_hi;
    minigan_pool_cell(t, H, W, nc, h, w);
    minigan_pool_windows(h, sh, ph, kh, Ho, a_lo, a_hi);
    minigan_pool_windows(w, sw, pw, kw, Wo, b_lo, b_hi);
    const T* g = gy + nc * Ho * Wo;
    T acc = (T)0;
    for (I a = a_lo; a < a_hi; ++a) {
        for (I b = b_lo; b < b_hi; ++b) acc += g[a * Wo + b];
    }
    gx[t] = acc / (T)(kh * kw);
}
"""

@functools.lru_cache(maxsize=None)
def _pool_kernel(which: str, dtype, idx_ctype: str):
    return _indexed_kernel(_POOL_CUDA, which, dtype, idx_ctype)


def _sizes(itype, in_hw, out_hw):
    return tuple(itype(v) for v in (*in_hw, *out_hw))


def _geom(k, s, p):
    return tuple(np.int32(v) for v in (*k, *s, *p))


# Max pooling

def max_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """(y, index): window maxima and the h*W + w position of each (int64, as PyTorch's)."""
    _check_4d("max_pool2d", "input", x)
    _check_dtypes("max_pool2d", input=x)
    n, c, h, w = x.shape
    k, s, p, (ho, wo) = _pool_geometry("max_pool2d", (h, w), kernel_size, stride, padding)
    if backend.is_cupy_array(x):
        cp = backend.cupy
        x = cp.ascontiguousarray(x)
        y = cp.empty((n, c, ho, wo), x.dtype)
        index = cp.empty((n, c, ho, wo), np.int64)
        ictype, itype = _index_type(x.size, y.size)
        _launch(_pool_kernel("maxpool_fwd", x.dtype, ictype), y.size,
                (x, y, index, itype(y.size), *_sizes(itype, (h, w), (ho, wo)),
                 *_geom(k, s, p), x.dtype.type(-np.inf)))
        return y, index
    y = _like_layout(x, (n, c, ho, wo), x.dtype)
    y.fill(-np.inf)
    # every window starts at its first real pixel, as in PyTorch (matters only when a window
    # holds nothing but -inf)
    hs = np.maximum(np.arange(ho) * s[0] - p[0], 0)
    ws = np.maximum(np.arange(wo) * s[1] - p[1], 0)
    index = _like_layout(x, (n, c, ho, wo), np.int64)
    index[...] = hs[:, None] * w + ws[None, :]
    rows_of, cols_of = np.arange(h), np.arange(w)
    for _, _, out_sl, in_sl in _taps(k, s, p, (ho, wo), (h, w)):
        v = x[(slice(None), slice(None)) + in_sl]
        m = y[(slice(None), slice(None)) + out_sl]
        # taps run in row-major window order, so a strict > keeps the first maximum; v != v
        # lets a NaN win (and stay), so NaN propagates as in PyTorch
        take = np.greater(v, m)
        take |= np.isnan(v)
        np.copyto(m, v, where=take)
        here = rows_of[in_sl[0]][:, None] * w + cols_of[in_sl[1]][None, :]
        np.copyto(index[(slice(None), slice(None)) + out_sl], here, where=take)
    return y, index


def max_pool2d_backward(gy, index, x_shape, kernel_size, stride=None, padding=0):
    """gx[n,c,h,w] = sum of gy[n,c,a,b] over the windows (a, b) whose argmax is (h, w)."""
    x_shape = tuple(int(v) for v in x_shape)
    n, c, h, w = x_shape
    k, s, p, out_hw = _pool_geometry("max_pool2d_backward", (h, w), kernel_size, stride, padding)
    _check_grad("max_pool2d_backward", gy, x_shape, out_hw)
    _check_dtypes("max_pool2d_backward", grad_output=gy)
    if tuple(index.shape) != tuple(gy.shape):
        raise ValueError(f"max_pool2d_backward: index has shape {tuple(index.shape)} but "
                         f"grad_output has shape {tuple(gy.shape)}")
    if backend.is_cupy_array(gy):
        cp = backend.cupy
        gy = cp.ascontiguousarray(gy)
        index = cp.ascontiguousarray(index, dtype=np.int64)
        gx = cp.empty(x_shape, gy.dtype)
        ictype, itype = _index_type(gx.size, gy.size)
        _launch(_pool_kernel("maxpool_bwd", gy.dtype, ictype), gx.size,
                (gy, index, gx, itype(gx.size), *_sizes(itype, (h, w), out_hw),
                 *_geom(k, s, p)))
        return gx
    plane = h * w
    flat = (index.reshape(n * c, -1) + (np.arange(n * c, dtype=np.int64) * plane)[:, None])
    if s[0] >= k[0] and s[1] >= k[1]:
        # disjoint windows: every argmax is hit at most once, so a plain indexed store is exact
        gx = np.zeros(n * c * plane, gy.dtype)
        gx[flat.ravel()] = gy.ravel()
    else:
        # overlapping windows can share an argmax: bincount sums them (in float64, then cast)
        gx = np.bincount(flat.ravel(), weights=gy.ravel(), minlength=n * c * plane)
        gx = gx.astype(gy.dtype, copy=False)
    return gx.reshape(x_shape)


# Average pooling

def avg_pool2d_forward(x, kernel_size, stride=None, padding=0):
    """y = sum of each window / (kh*kw) (count_include_pad=True)."""
    _check_4d("avg_pool2d", "input", x)
    _check_dtypes("avg_pool2d", input=x)
    n, c, h, w = x.shape
    k, s, p, (ho, wo) = _pool_geometry("avg_pool2d", (h, w), kernel_size, stride, padding)
    if backend.is_cupy_array(x):
        cp = backend.cupy
        x = cp.ascontiguousarray(x)
        y = cp.empty((n, c, ho, wo), x.dtype)
        ictype, itype = _index_type(x.size, y.size)
        _launch(_pool_kernel("avgpool_fwd", x.dtype, ictype), y.size,
                (x, y, itype(y.size), *_sizes(itype, (h, w), (ho, wo)), *_geom(k, s, p)))
        return y
    y = _like_layout(x, (n, c, ho, wo), x.dtype)
    y.fill(0)
    for _, _, out_sl, in_sl in _taps(k, s, p, (ho, wo), (h, w)):
        dst = y[(slice(None), slice(None)) + out_sl]
        np.add(dst, x[(slice(None), slice(None)) + in_sl], out=dst)
    y /= k[0] * k[1]
    return y


def avg_pool2d_backward(gy, x_shape, kernel_size, stride=None, padding=0):
    """gx[n,c,h,w] = sum of gy[n,c,a,b] / (kh*kw) over the windows (a, b) containing (h, w)."""
    x_shape = tuple(int(v) for v in x_shape)
    h, w = x_shape[2:]
    k, s, p, out_hw = _pool_geometry("avg_pool2d_backward", (h, w), kernel_size, stride, padding)
    _check_grad("avg_pool2d_backward", gy, x_shape, out_hw)
    _check_dtypes("avg_pool2d_backward", grad_output=gy)
    if backend.is_cupy_array(gy):
        cp = backend.cupy
        gy = cp.ascontiguousarray(gy)
        gx = cp.empty(x_shape, gy.dtype)
        ictype, itype = _index_type(gx.size, gy.size)
        _launch(_pool_kernel("avgpool_bwd", gy.dtype, ictype), gx.size,
                (gy, gx, itype(gx.size), *_sizes(itype, (h, w), out_hw), *_geom(k, s, p)))
        return gx
    gx = np.zeros(x_shape, gy.dtype)
    for _, _, out_sl, in_sl in _taps(k, s, p, out_hw, (h, w)):
        dst = gx[(slice(None), slice(None)) + in_sl]
        np.add(dst, gy[(slice(None), slice(None)) + out_sl], out=dst)
    gx /= k[0] * k[1]  # summed first and divided once, as the GPU kernel does
    return gx


# Nearest upsampling by an integer factor

_UPSAMPLE_FWD = """
    // y is (NC, H*s, W*s); i is its flat index
    const long long Wy = W * s, Hy = H * s;
    const long long col = i % Wy, r = i / Wy, row = r % Hy, nc = r / Hy;
    y = x[(nc * H + row / s) * W + col / s];
"""

_UPSAMPLE_BWD = """
    // gx is (NC, H, W); gy is (NC, H*s, W*s); each gx pixel sums its s x s block
    const long long col = i % W, r = i / W, row = r % H, nc = r / H;
    const T* g = &gy[((nc * H + row) * s) * (W * s) + col * s];
    T acc = (T)0;
    for (long long a = 0; a < s; ++a) {
        for (long long b = 0; b < s; ++b) acc += g[a * W * s + b];
    }
    gx = acc;
"""


def _check_scale(what, scale_factor):
    if int(scale_factor) != scale_factor or scale_factor < 1:
        raise ValueError(f"{what}: scale_factor must be a positive integer, got {scale_factor}")
    return int(scale_factor)


def upsample_nearest2d_forward(x, scale_factor: int):
    """y[n,c,h,w] = x[n,c,h//s,w//s], of shape (N, C, H*s, W*s)."""
    _check_4d("upsample_nearest2d", "input", x)
    s = _check_scale("upsample_nearest2d", scale_factor)
    n, c, h, w = x.shape
    if backend.is_cupy_array(x):
        cp = backend.cupy
        y = cp.empty((n, c, h * s, w * s), x.dtype)
        k = backend.elementwise_kernel("raw T x, int64 s, int64 H, int64 W", "T y",
                                       _UPSAMPLE_FWD, "minigan_upsample_nearest_fwd")
        # 1-D views: CuPy indexes a raw n-D argument by unravelling i, a needless cost here
        k(cp.ascontiguousarray(x).reshape(-1), np.int64(s), np.int64(h), np.int64(w),
          y.reshape(-1))
        return y
    y = np.empty((n, c, h, s, w, s), x.dtype)
    # s*s strided copies whose inner run is a whole input row (a broadcast copy instead would
    # run its inner loop over the s repeats only)
    for a in range(s):
        for b in range(s):
            y[:, :, :, a, :, b] = x
    return y.reshape(n, c, h * s, w * s)


def upsample_nearest2d_backward(gy, scale_factor: int):
    """gx[n,c,h,w] = sum of gy over the block [h*s, h*s+s) x [w*s, w*s+s), (N, C, H/s, W/s)."""
    _check_4d("upsample_nearest2d_backward", "grad_output", gy)
    s = _check_scale("upsample_nearest2d_backward", scale_factor)
    n, c, hs, ws = gy.shape
    if hs % s or ws % s:
        raise ValueError(f"upsample_nearest2d_backward: grad_output {tuple(gy.shape)} is not a "
                         f"whole number of {s}x{s} blocks")
    h, w = hs // s, ws // s
    if backend.is_cupy_array(gy):
        cp = backend.cupy
        gx = cp.empty((n, c, h, w), gy.dtype)
        k = backend.elementwise_kernel("raw T gy, int64 s, int64 H, int64 W", "T gx",
                                       _UPSAMPLE_BWD, "minigan_upsample_nearest_bwd")
        k(cp.ascontiguousarray(gy).reshape(-1), np.int64(s), np.int64(h), np.int64(w),
          gx.reshape(-1))
        return gx
    blocks = gy.reshape(n, c, h, s, w, s)
    gx = blocks[:, :, :, 0, :, 0].copy()
    for a in range(s):
        for b in range(s):
            if a or b:
                gx += blocks[:, :, :, a, :, b]
    return gx
