"""2-D convolution kernels (groups=1): arrays in, arrays out, in PyTorch's layouts.

Notation: x is (N, C, H, W); a conv weight is (O, C, kh, kw), a conv-transpose weight
(Cin, Cout, kh, kw); stride s, padding p, dilation d, each an (h, w) pair. With xpad the input
zero-padded by p,

    conv2d:              y[n,o,a,b]  = b[o] + sum_{c,i,j} w[o,c,i,j] xpad[n,c, a*s+i*d, b*s+j*d]
    conv2d_grad_weight:  gw[o,c,i,j] =        sum_{n,a,b} gy[n,o,a,b] xpad[n,c, a*s+i*d, b*s+j*d]
    conv_transpose2d:    the adjoint of conv2d in x: every x[n,c,a,b] spreads w[c,:,i,j] onto
                         output pixel (a*s - p + i*d, b*s - p + j*d), so that
                         <conv2d(x, w), g> = <x, conv_transpose2d(g, w)>.

All three are one GEMM plus an index shuffle. im2col copies every window into a column,

    cols[(c,i,j), (n,a,b)] = xpad[n, c, a*s + i*d, b*s + j*d]     shape (C*kh*kw, N*Ho*Wo),

so conv2d is ``w.reshape(O, -1) @ cols`` and the weight gradient ``gy^T @ cols^T``. col2im is
the adjoint of im2col (each column entry is added back onto the pixel it was copied from), so
conv_transpose2d is ``col2im(w.reshape(Cin, -1)^T @ x)``.

The rows of cols are ordered (c, i, j), as in the weight, so weights reshape for free; the
columns are ordered (n, a, b) so that one GEMM covers the whole batch (BLAS and cuBLAS are far
more efficient on one big product than on N small ones).

CPU: im2col is a strided view of the padded input (``as_strided``) copied once into a reused
workspace; col2im is at most kh*kw strided slice-adds (no loop over batch or pixels). GEMMs are
NumPy's BLAS ``matmul``, split across minigan's CPU threads (``kernels.parallel``), as are the
big copies. With 16 or more channels both run channels-last internally (cols as
(N*Ho*Wo, kh*kw*C)), so that NumPy's innermost loops run over channels rather than over short
image rows, and an output with 16 or more channels is returned stored channels-last: an
(N, C, H, W) array that is the transpose of a C-contiguous (N, H, W, C) one, which is how the
GEMM produces it. The other CPU kernels (batch norm, activations) keep that layout, so the next
conv's channels-last im2col reads it with a plain copy and no layout copy is made between
layers. A transposed conv whose kernel is a multiple of its stride (DCGAN's k=4, s=2) skips
col2im: its output phases come from one im2col of the input and one GEMM (the "sub-pixel" form,
see ``_conv_transpose_subpixel_numpy``). Where channels are wide (64+ in, 128+ out), the 2x2
correlations in two DCGAN shapes run by Winograd (``kernels.winograd``: F(2, 2) tiles, 9
products per 2x2 outputs instead of 16, and an F(3, 2) tile ending each odd axis, so a 7x7
grid takes 100 instead of 196): that sub-pixel form, whose windows are 2x2 for k = 2s, and a
4x4, stride-2 conv2d, rewritten by space-to-depth as a 2x2 stride-1 correlation of 4C
channels (forward, weight gradient, and the two from one input transform). Temporaries live
in per-thread workspaces because allocating tens of MB per call costs page faults that can
exceed the copy itself.

GPU: im2col and col2im are RawKernels in gather form (every output element is written by one
thread, no atomics, deterministic); GEMMs are cuBLAS through ``cupy.matmul``. Kernels are
compiled on first use for float32/float64 and for 32-bit or 64-bit indexing (32-bit whenever
every array has fewer than 2**31 elements: integer division is much cheaper).
"""
from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import backend
from .elementwise import FLOAT_CTYPES, tanh_backward, tanh_forward, with_leading_strides
from .gemm import matmul as _gemm
from .gemm import try_gemm_into as _try_gemm_into
from . import parallel, winograd
from .parallel import matmul as _cpu_matmul
from .workspace import _workspace, is_channels_last, release_workspace  # noqa: F401 (re-exported)

__all__ = [
    "col2im",
    "conv2d_forward",
    "conv2d_forward_and_grad_weight",
    "conv2d_grad_weight",
    "conv2d_input_and_weight_grads",
    "conv_output_size",
    "conv_transpose2d_forward",
    "conv_transpose_output_padding",
    "conv_transpose_output_size",
    "im2col",
    "release_workspace",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT32_LIMIT = 2**31 - 1


# Argument checking and output sizes

_PAIRS: dict = {}  # (type, value, name, minimum) -> checked pair: every layer call asks again


def _pair(v, name: str, minimum: int) -> tuple:
    """An int or an (h, w) pair as a pair of Python ints, each >= minimum."""
    try:
        key = (type(v), v, name, minimum)
        return _PAIRS[key]
    except (KeyError, TypeError):  # new, or unhashable (a list): check it the long way
        pass
    pair = _check_pair(v, name, minimum)
    if len(_PAIRS) < 4096 and isinstance(v, (int, np.integer, tuple)):
        _PAIRS[key] = pair
    return pair


def _check_pair(v, name: str, minimum: int) -> tuple:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    else:
        try:
            pair = tuple(int(i) for i in v)
            exact = all(i == j for i, j in zip(pair, v))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an int or an (h, w) pair, got {v!r}") from None
        if not exact:
            raise TypeError(f"{name} must hold whole numbers, got {v!r}")
        v = pair
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {v}")
    if min(v) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _same_form(template, values):
    """Return ints when the caller passed an int size, else a tuple."""
    return values[0] if isinstance(template, (int, np.integer)) else tuple(values)


def conv_output_size(in_size, kernel_size, stride=1, padding=0, dilation=1):
    """Output size of a convolution: floor((H + 2p - d*(k-1) - 1) / s) + 1.

    Every argument is an int or an (h, w) pair; the result is an int when ``in_size`` is an int.
    The result may be <= 0 (the checking callers turn that into an error).
    """
    h = _pair(in_size, "input size", 0)
    k, s = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    p, d = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    return _same_form(in_size, [(h[t] + 2 * p[t] - d[t] * (k[t] - 1) - 1) // s[t] + 1
                                for t in range(2)])


def conv_transpose_output_size(in_size, kernel_size, stride=1, padding=0, output_padding=0,
                               dilation=1):
    """Output size of a transposed convolution: (H - 1)*s - 2p + d*(k-1) + output_padding + 1."""
    h = _pair(in_size, "input size", 0)
    k, s = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    p, d = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    op = _pair(output_padding, "output_padding", 0)
    return _same_form(in_size, [(h[t] - 1) * s[t] - 2 * p[t] + d[t] * (k[t] - 1) + op[t] + 1
                                for t in range(2)])


def conv_transpose_output_padding(in_size, out_size, kernel_size, stride=1, padding=0,
                                  dilation=1):
    """The output_padding that makes conv_transpose2d map a conv's output size ``out_size``
    back to the conv's input size ``in_size``: in - ((out - 1)*s - 2p + d*(k-1) + 1).

    A conv with stride s maps s different input sizes to one output size, so the input gradient
    (a transposed conv) needs this to know which one to produce; the result is < s.
    """
    args = (in_size, out_size, kernel_size, stride, padding, dilation)
    try:  # every conv layer's backward asks, with the same sizes each step
        key = (*args, *map(type, args))
        return _OUTPUT_PADDINGS[key]
    except (KeyError, TypeError):  # new, or unhashable (a list): work it out
        pass
    op = _output_padding_checked(*args)
    if len(_OUTPUT_PADDINGS) < 4096 and all(isinstance(a, (int, tuple)) for a in args):
        _OUTPUT_PADDINGS[key] = op
    return op


_OUTPUT_PADDINGS: dict = {}  # conv_transpose_output_padding's arguments and types -> result


def _output_padding_checked(in_size, out_size, kernel_size, stride, padding, dilation):
    h, o = _pair(in_size, "input size", 0), _pair(out_size, "output size", 0)
    k, s = _pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1)
    p, d = _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    op = [h[t] - ((o[t] - 1) * s[t] - 2 * p[t] + d[t] * (k[t] - 1) + 1) for t in range(2)]
    if min(op) < 0 or any(op[t] >= max(s[t], d[t]) for t in range(2)):
        raise ValueError(
            f"conv_transpose_output_padding: no output_padding maps size {o} back to {h} with "
            f"kernel {k}, stride {s}, padding {p}, dilation {d} (got {tuple(op)})")
    return _same_form(in_size, op)


def _check_4d(what, name, a):
    if a.ndim != 4:
        raise ValueError(f"{what}: {name} must be 4-D, got shape {tuple(a.shape)}")


def _check_dtypes(what, **arrays):
    """All arrays float32 or float64 and of one dtype (there is no silent promotion here)."""
    items = [(k, a) for k, a in arrays.items() if a is not None]
    dt = items[0][1].dtype
    if dt not in _FLOATS:
        raise TypeError(f"{what}: supported dtypes are float32 and float64, got {items[0][0]} "
                        f"of dtype {dt}")
    for k, a in items[1:]:
        if a.dtype != dt:
            raise TypeError(f"{what}: {items[0][0]} has dtype {dt} but {k} has dtype {a.dtype}")


def _check_bias(what, b, channels):
    if b is not None and tuple(b.shape) != (channels,):
        raise ValueError(f"{what}: bias must have shape ({channels},), got {tuple(b.shape)}")


def _conv_out_or_raise(what, hw, k, s, p, d):
    out = conv_output_size(hw, k, s, p, d)
    if min(out) <= 0:
        raise ValueError(
            f"{what}: output size {out} is not positive for input size {tuple(hw)}, kernel {k}, "
            f"stride {s}, padding {p}, dilation {d} (the dilated kernel d*(k-1)+1 = "
            f"{tuple(d[t] * (k[t] - 1) + 1 for t in range(2))} must fit in the padded input "
            f"{tuple(hw[t] + 2 * p[t] for t in range(2))})")
    return out


def _geometry(kernel_size, stride, padding, dilation):
    return (_pair(kernel_size, "kernel_size", 1), _pair(stride, "stride", 1),
            _pair(padding, "padding", 0), _pair(dilation, "dilation", 1))


# CPU: im2col and col2im

def _pad_cpu(x, p, role="pad"):
    """x zero-padded by p = (ph, pw), in a workspace buffer (x itself when p is 0)."""
    ph, pw = p
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    xp = _workspace.take(role, (n, c, h + 2 * ph, w + 2 * pw), x.dtype)
    # the buffer is reused with other shapes, so the border is zeroed each time (4 thin strips)
    xp[:, :, :ph] = 0
    xp[:, :, h + ph:] = 0
    xp[:, :, ph:h + ph, :pw] = 0
    xp[:, :, ph:h + ph, w + pw:] = 0
    parallel.copyto(xp[:, :, ph:h + ph, pw:w + pw], x)
    return xp


def _im2col_cpu(x, k, s, p, d, out_hw, out=None):
    """cols (C*kh*kw, N*Ho*Wo) of x, written into ``out`` or a workspace buffer."""
    n, c = x.shape[:2]
    ho, wo = out_hw
    xp = _pad_cpu(x, p)
    sn, sc, sh, sw = xp.strides
    # a read-only 6-D view (c, i, j, n, a, b) -> xpad[n, c, a*s + i*d, b*s + j*d]; copying it
    # in C order is the whole im2col. Its innermost run is a row of the output grid.
    windows = as_strided(xp, (c, k[0], k[1], n, ho, wo),
                         (sc, d[0] * sh, d[1] * sw, sn, s[0] * sh, s[1] * sw), writeable=False)
    if out is None:
        out = _workspace.take("cols", (c * k[0] * k[1], n * ho * wo), x.dtype)
    parallel.copyto(out.reshape(windows.shape), windows)
    return out


def _offset_slices(offset, stride, pad, grid_len, image_len):
    """For one kernel tap at ``offset`` = i*d: the grid positions a whose image row
    a*s - p + offset lies inside [0, image_len), as (grid slice, image slice), or None."""
    first = offset - pad  # image row of grid position 0
    lo = max(0, -(first // stride))  # ceil(-first / s)
    hi = min(grid_len, (image_len - 1 - first) // stride + 1)
    if hi <= lo:
        return None
    row = lo * stride + first
    return slice(lo, hi), slice(row, row + (hi - lo - 1) * stride + 1, stride)


def _tap_slices(k, s, p, d, grid_hw, image_hw):
    """For every kernel tap (i, j) that lands inside the image: (i, j, rows, cols), each of rows
    and cols a (grid slice, image slice) pair from _offset_slices."""
    for i in range(k[0]):
        rows = _offset_slices(i * d[0], s[0], p[0], grid_hw[0], image_hw[0])
        if rows is None:
            continue
        for j in range(k[1]):
            cs = _offset_slices(j * d[1], s[1], p[1], grid_hw[1], image_hw[1])
            if cs is not None:
                yield i, j, rows, cs


def _col2im_cpu(cols, image_shape, grid_hw, k, s, p, d, bias=None):
    """Adjoint of im2col: y[n,c,a*s-p+i*d, b*s-p+j*d] += cols[(c,i,j),(n,a,b)], plus bias[c].

    One strided slice-add per kernel tap (kh*kw of them), clipped to the image so no padded
    buffer or final crop is needed.
    """
    n, c, h, w = image_shape
    gh, gw = grid_hw
    y = np.empty(image_shape, cols.dtype)
    if bias is None:
        y.fill(0)
    else:
        np.copyto(y, bias.reshape(1, c, 1, 1))
    taps = cols.reshape(c, k[0], k[1], n, gh, gw)
    slices = list(_tap_slices(k, s, p, d, grid_hw, (h, w)))

    def add_taps(lo, hi):  # images lo..hi-1 (every block adds into its own images only)
        for i, j, rows, cs in slices:
            dst = y[lo:hi, :, rows[1], cs[1]]
            # (c, n, a, b) -> (n, c, a, b): a transposed read, while the inner run stays a row
            np.add(dst, taps[:, i, j, lo:hi, rows[0], cs[0]].transpose(1, 0, 2, 3), out=dst)

    parallel.run(add_taps, n, (len(slices) + 1) * y.nbytes)
    return y


# CPU, channels-last variants. NumPy's copies and adds pay a fixed cost per innermost run, and
# in NCHW that run is one row of the output grid (7 to 32 values for DCGAN). With the channels
# innermost it is kw*C (im2col) or Cout (col2im) values instead, 10-50x fewer runs, at the price
# of transposing x and y once. Used when there are enough channels to make the runs long.
_CHANNELS_LAST_MIN = 16
_PLANE_PAD = 16  # elements added to each H*W plane of the scratch copy in _to_channels_last


def _channels_last_view(a):
    """a (N, C, H, W) as its C-contiguous (N, H, W, C) transpose when a is stored
    channels-last (as the CPU conv kernels return their outputs), else None."""
    return a.transpose(0, 2, 3, 1) if is_channels_last(a) else None


def _to_channels_last(x, out):
    """``np.copyto(out, x.transpose(0, 2, 3, 1))`` for x (N, C, H, W) and out (N, H, W, C), which
    may be a view (the interior of a padded buffer).

    Copied straight, the inner loop reads x a whole H*W plane apart per element. When a plane
    is a multiple of 1 KiB, those reads land on a few cache sets and evict one another: the
    64x64x32x32 input of dcgan64's second D conv took 14 ms. Going through a scratch copy of x
    whose planes are 16 elements longer breaks the pattern, and the two copies take 5 ms."""
    n, c, h, w = x.shape
    plane_bytes = h * w * x.itemsize
    xt = x.transpose(0, 2, 3, 1)
    if c < _CHANNELS_LAST_MIN or plane_bytes < 1024 or plane_bytes % 1024 \
            or xt.flags.c_contiguous:
        parallel.copyto(out, xt)  # (a plain copy when x is already stored channels-last)
        return out
    planes = _workspace.take("planes", (n, c, h * w + _PLANE_PAD), x.dtype)[:, :, :h * w]
    planes = planes.reshape(n, c, h, w)
    parallel.copyto(planes, x)
    parallel.copyto(out, planes.transpose(0, 2, 3, 1))
    return out


def _im2col_cpu_nhwc(x, k, s, p, d, out_hw):
    """cols (N*Ho*Wo, kh*kw*C), rows (n, a, b), columns (i, j, c), in a workspace buffer."""
    n, c, h, w = x.shape
    ho, wo = out_hw
    xn = _workspace.take("pad", (n, h + 2 * p[0], w + 2 * p[1], c), x.dtype)
    if p[0]:
        xn[:, :p[0]] = 0
        xn[:, h + p[0]:] = 0
    if p[1]:
        xn[:, p[0]:h + p[0], :p[1]] = 0
        xn[:, p[0]:h + p[0], w + p[1]:] = 0
    _to_channels_last(x, xn[:, p[0]:h + p[0], p[1]:w + p[1]])
    sn, sh, sw, sc = xn.strides
    windows = as_strided(xn, (n, ho, wo, k[0], k[1], c),
                         (sn, s[0] * sh, s[1] * sw, d[0] * sh, d[1] * sw, sc), writeable=False)
    cols = _workspace.take("cols", (n * ho * wo, k[0] * k[1] * c), x.dtype)
    parallel.copyto(cols.reshape(windows.shape), windows)
    return cols


def _col2im_cpu_nhwc(cols, image_shape, grid_hw, k, s, p, d, bias=None):
    """Adjoint of _im2col_cpu_nhwc: cols (N*gh*gw, kh*kw*C) summed into an (N, C, H, W) image
    that is stored channels-last (the transpose of a fresh (N, H, W, C) array)."""
    n, c, h, w = image_shape
    gh, gw = grid_hw
    yn = np.empty((n, h, w, c), cols.dtype)
    taps = cols.reshape(n, gh, gw, k[0], k[1], c)
    slices = list(_tap_slices(k, s, p, d, grid_hw, (h, w)))

    def add_taps(lo, hi):  # images lo..hi-1
        if bias is None:
            yn[lo:hi].fill(0)
        else:
            np.copyto(yn[lo:hi], bias)
        for i, j, rows, cs in slices:
            dst = yn[lo:hi, rows[1], cs[1]]
            np.add(dst, taps[lo:hi, rows[0], cs[0], i, j], out=dst)

    parallel.run(add_taps, n, (len(slices) + 1) * yn.nbytes)
    return yn.transpose(0, 3, 1, 2)


def _channels_last_weight(w):
    """w (A, B, kh, kw) as (A, kh, kw, B), copied into a workspace buffer (weights are up to a
    few MB, and a fresh copy each call would fault in its pages)."""
    wt = _workspace.take("weight", (w.shape[0], w.shape[2], w.shape[3], w.shape[1]), w.dtype)
    parallel.copyto(wt, w.transpose(0, 2, 3, 1))
    return wt


# GPU: im2col and col2im kernels (gather form)

_CONV_CUDA = r"""
// im2col: one thread per (c, n, a, b), looping over the kh*kw taps. Consecutive threads differ
// in b, so both the reads of x and the writes of cols are (strided-)coalesced. cols element
// ((c*kh + i)*kw + j, n, a, b) lives at ((c*kh + i)*kw + j)*strideK + n*strideN + a*Wo + b:
// (K, N*Ho*Wo) is strideK = N*Ho*Wo, strideN = Ho*Wo. (A batch-major (N, K, Ho*Wo) layout with
// one broadcast batched GEMM writing NCHW directly measured 10-50% slower on an H100.)
// x's element (n, c, h, w) is at n*xsN + c*xsC + h*W + w: NCHW (xsN = C*H*W, xsC = H*W) or
// channel-major (xsN = H*W, xsC = N*H*W), the layout of a GPU conv output.
// TANH: each value x is first multiplied by (1 - ty^2) at its own (n, c, h, w): the gradient
// through a Tanh whose output is ty (tanh_backward's expression), ty laid out as x is but with
// strides tysN, tysC. A template, so that the plain kernel keeps its registers.
template <bool TANH>
__device__ __forceinline__ void minigan_im2col_body(
        const T* __restrict__ x, T* __restrict__ cols, const I total,
        const I N, const I C, const I H, const I W, const I Ho, const I Wo,
        const int kh, const int kw, const int sh, const int sw, const int ph, const int pw,
        const int dh, const int dw, const I strideK, const I strideN, const I xsN,
        const I xsC, const T* __restrict__ ty, const I tysN, const I tysC) {
    const I t = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
    if (t >= total) return;
    const I b = t % Wo;
    I r = t / Wo;
    const I a = r % Ho;
    r /= Ho;
    const I n = r % N;
    const I c = r / N;
    const T* xc = x + n * xsN + c * xsC;
    const T* yc = TANH ? ty + n * tysN + c * tysC : xc;
    T* out = cols + c * (I)(kh * kw) * strideK + n * strideN + a * Wo + b;
    const I h0 = a * sh - ph, w0 = b * sw - pw;
    for (int i = 0; i < kh; ++i) {
        const I h = h0 + (I)i * dh;
        const bool row_in = h >= 0 && h < H;
        for (int j = 0; j < kw; ++j) {
            const I w = w0 + (I)j * dw;
            T v = (T)0;
            if (row_in && w >= 0 && w < W) {
                v = xc[h * W + w];
                if (TANH) {
                    const T yv = yc[h * W + w];
                    v = v * ((T)1 - yv * yv);
                }
            }
            out[(I)(i * kw + j) * strideK] = v;
        }
    }
}

extern "C" __global__ void minigan_im2col_SUFFIX(
        const T* __restrict__ x, T* __restrict__ cols, const I total,
        const I N, const I C, const I H, const I W, const I Ho, const I Wo,
        const int kh, const int kw, const int sh, const int sw, const int ph, const int pw,
        const int dh, const int dw, const I strideK, const I strideN, const I xsN,
        const I xsC) {
    minigan_im2col_body<false>(x, cols, total, N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw,
                               dh, dw, strideK, strideN, xsN, xsC, x, 0, 0);
}

extern "C" __global__ void minigan_im2col_tanh_SUFFIX(
        const T* __restrict__ x, T* __restrict__ cols, const I total,
        const I N, const I C, const I H, const I W, const I Ho, const I Wo,
        const int kh, const int kw, const int sh, const int sw, const int ph, const int pw,
        const int dh, const int dw, const I strideK, const I strideN, const I xsN,
        const I xsC, const T* __restrict__ ty, const I tysN, const I tysC) {
    minigan_im2col_body<true>(x, cols, total, N, C, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw,
                              dh, dw, strideK, strideN, xsN, xsC, ty, tysN, tysC);
}

// col2im: one thread per image pixel (n, c, h, w) gathers every cols entry that im2col copied
// from it: tap (i, j) at grid position (a, b) with a*s - p + i*d = h, i.e. a = (h + p - i*d)/s
// when that divides exactly and 0 <= a < Ho. No atomics, so the sum is deterministic. Adds the
// bias when flags & 1, then takes the tanh of the sum when flags & 2 (a transposed conv and
// the Tanh after it, as one launch: the tanh ufunc's function on the same T value). (h + p -
// i*d) falls as i grows, so the loop stops at the first negative.
// y's element (n, c, h, w) is written at n*ysN + c*ysC + h*W + w (as im2col reads x).
extern "C" __global__ void minigan_col2im_SUFFIX(
        const T* __restrict__ cols, const T* __restrict__ bias, T* __restrict__ y,
        const I total, const I C, const I H, const I W, const I Ho, const I Wo,
        const int kh, const int kw, const int sh, const int sw, const int ph, const int pw,
        const int dh, const int dw, const I strideK, const I strideN, const I ysN,
        const I ysC, const int flags) {
    const I t = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x;
    if (t >= total) return;
    const I w = t % W;
    I r = t / W;
    const I h = r % H;
    r /= H;
    const I c = r % C;
    const I n = r / C;
    const T* base = cols + c * (I)(kh * kw) * strideK + n * strideN;
    T acc = (T)0;
    for (int i = 0; i < kh; ++i) {
        const I hh = h + ph - (I)i * dh;
        if (hh < 0) break;
        if (hh % sh != 0) continue;
        const I a = hh / sh;
        if (a >= Ho) continue;
        for (int j = 0; j < kw; ++j) {
            const I ww = w + pw - (I)j * dw;
            if (ww < 0) break;
            if (ww % sw != 0) continue;
            const I b = ww / sw;
            if (b >= Wo) continue;
            acc += base[(I)(i * kw + j) * strideK + a * Wo + b];
        }
    }
    const T v = flags & 1 ? acc + bias[c] : acc;
    y[n * ysN + c * ysC + h * W + w] = flags & 2 ? tanh(v) : v;
}
"""


def _index_type(*sizes):
    """("int", np.int32) when every size fits in 31 bits, else ("long long", np.int64)."""
    return ("int", np.int32) if max(sizes) <= _INT32_LIMIT else ("long long", np.int64)


def _indexed_kernel(source: str, which: str, dtype, idx_ctype: str):
    """Kernel ``minigan_{which}_SUFFIX`` of ``source``, a CUDA source written for an element
    type T and an index type I (int or long long), built for ``dtype`` and ``idx_ctype``
    (uncached: the callers cache it)."""
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    suffix = f"{tag}_{'i32' if idx_ctype == 'int' else 'i64'}"
    code = (f"typedef {ctype} T;\ntypedef {idx_ctype} I;\n"
            + source.replace("SUFFIX", suffix))
    return backend.raw_kernel(code, f"minigan_{which}_{suffix}")


@functools.lru_cache(maxsize=None)
def _conv_kernel(which: str, dtype, idx_ctype: str):
    return _indexed_kernel(_CONV_CUDA, which, dtype, idx_ctype)


_BLOCK = 256


def _launch(kernel, total, args):
    if total > 0:
        kernel(((total + _BLOCK - 1) // _BLOCK,), (_BLOCK,), args)


@functools.lru_cache(maxsize=256)
def _geometry_args(k, s, p, d):
    """The kernels' eight geometry arguments, as int32 (the same few per layer, every call)."""
    return tuple(np.int32(v) for v in (*k, *s, *p, *d))


@functools.lru_cache(maxsize=512)
def _im2col_plan(dtype, shape, st, k, s, p, d, out_hw, tanh: bool):
    """What ``_im2col_cupy`` launches for one geometry, worked out once (a layer asks for the
    same one every step): the kernel, cols' shape, the thread count and the scalar arguments
    that follow x and cols."""
    n, c, h, w = shape
    ho, wo = out_hw
    kk = c * k[0] * k[1]
    total = c * n * ho * wo
    ictype, itype = _index_type(n * c * h * w, kk * n * ho * wo)
    scalars = (itype(total), *map(itype, (n, c, h, w, ho, wo)), *_geometry_args(k, s, p, d),
               itype(n * ho * wo), itype(ho * wo), itype(st[0]), itype(st[1]))
    kernel = _conv_kernel("im2col_tanh" if tanh else "im2col", dtype, ictype)
    return kernel, (kk, n * ho * wo), total, scalars, itype


def _im2col_cupy(x, k, s, p, d, out_hw, tanh_y=None):
    """cols (C*kh*kw, N*Ho*Wo) on the GPU, from x in NCHW or channel-major order; with
    ``tanh_y`` (x's shape), from ``tanh_backward(x, tanh_y)`` computed as it gathers."""
    x, st = with_leading_strides(x)  # NCHW or channel-major: no copy
    kernel, cols_shape, total, scalars, itype = _im2col_plan(
        x.dtype, x.shape, st, k, s, p, d, out_hw, tanh_y is not None)
    cols = backend.cupy.empty(cols_shape, x.dtype)
    if tanh_y is None:
        _launch(kernel, total, (x, cols, *scalars))
    else:
        tanh_y, yst = with_leading_strides(tanh_y)
        _launch(kernel, total, (x, cols, *scalars, tanh_y, itype(yst[0]), itype(yst[1])))
    return cols


@functools.lru_cache(maxsize=512)
def _col2im_plan(dtype, cols_shape, image_shape, grid_hw, k, s, p, d, flags: int):
    """What ``_col2im_cupy`` launches for one geometry, worked out once: the kernel, the
    output's size and the scalar arguments that follow cols, the bias and the output."""
    n, c, h, w = image_shape
    gh, gw = grid_hw
    size = n * c * h * w
    ictype, itype = _index_type(size, cols_shape[0] * cols_shape[1])
    scalars = (itype(size), *map(itype, (c, h, w, gh, gw)), *_geometry_args(k, s, p, d),
               itype(n * gh * gw), itype(gh * gw), itype(h * w), itype(n * h * w),
               np.int32(flags))
    return _conv_kernel("col2im", dtype, ictype), size, scalars


def _col2im_cupy(cols, image_shape, grid_hw, k, s, p, d, bias=None, tanh=False):
    """Adjoint of im2col on the GPU, plus bias[c]: an (N, C, H, W) array stored channel-major,
    (C, N, H, W), like conv2d's GPU output (the layout the GEMMs around it read directly)."""
    cp = backend.cupy
    cols = cp.ascontiguousarray(cols)
    n, c, h, w = image_shape
    kernel, size, scalars = _col2im_plan(cols.dtype, cols.shape, (n, c, h, w), tuple(grid_hw),
                                         k, s, p, d, (bias is not None) | bool(tanh) << 1)
    y = cp.empty((c, n, h, w), cols.dtype)
    b = y if bias is None else cp.ascontiguousarray(bias)  # y only fills an unused pointer
    _launch(kernel, size, (cols, b, y, *scalars))
    return y.transpose(1, 0, 2, 3)


# Public im2col / col2im

def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """cols[(c,i,j), (n,a,b)] = xpad[n, c, a*s + i*d, b*s + j*d], of shape (C*kh*kw, N*Ho*Wo)."""
    _check_4d("im2col", "input", x)
    k, s, p, d = _geometry(kernel_size, stride, padding, dilation)
    out_hw = _conv_out_or_raise("im2col", x.shape[2:], k, s, p, d)
    if backend.is_cupy_array(x):
        _check_dtypes("im2col", input=x)
        return _im2col_cupy(x, k, s, p, d, out_hw)
    n, c = x.shape[:2]
    out = np.empty((c * k[0] * k[1], n * out_hw[0] * out_hw[1]), x.dtype)
    return _im2col_cpu(x, k, s, p, d, out_hw, out=out)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """The adjoint of im2col: an array of shape ``x_shape`` = (N, C, H, W) where every pixel
    is the sum of the cols entries that im2col copied from it."""
    k, s, p, d = _geometry(kernel_size, stride, padding, dilation)
    if len(x_shape) != 4:
        raise ValueError(f"col2im: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    n, c, h, w = (int(v) for v in x_shape)
    grid = _conv_out_or_raise("col2im", (h, w), k, s, p, d)
    want = (c * k[0] * k[1], n * grid[0] * grid[1])
    if tuple(cols.shape) != want:
        raise ValueError(f"col2im: cols of shape {tuple(cols.shape)} do not match x_shape "
                         f"{(n, c, h, w)} with kernel {k}: expected {want}")
    _check_dtypes("col2im", cols=cols)
    if backend.is_cupy_array(cols):
        return _col2im_cupy(cols, (n, c, h, w), grid, k, s, p, d)
    return _col2im_cpu(cols, (n, c, h, w), grid, k, s, p, d)


# conv2d

def _is_dense(hw, k, p, d):
    """True when the single window covers the whole unpadded input: im2col is then a
    reshape of x (no copy), as for a DCGAN discriminator's last k=7 layer on a 7x7 map."""
    return tuple(hw) == tuple(k) and p == (0, 0) and d == (1, 1)


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, keep_cols: bool = False):
    """y = conv2d(x, w) + b: x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> (N, O, Ho, Wo).

    Computed as the GEMM ``w.reshape(O, C*kh*kw) @ im2col(x)``.

    ``keep_cols``: return ``(y, cols)``, where cols is the GPU's im2col of x when there is one
    of at most KEEP_COLS_MAX values (else None), for the weight gradient to reuse
    (``conv2d_grad_weight(..., cols=)``) instead of gathering it again: one launch fewer per
    backward, for that array's memory until then.
    """
    k, s, p, d, out_hw = _conv2d_args(x, w, b, stride, padding, dilation)
    if backend.is_cupy_array(x):
        kept = [] if keep_cols else None
        y = _conv2d_forward_cupy(x, w, b, k, s, p, d, out_hw, keep=kept)
        return (y, kept[0] if kept else None) if keep_cols else y
    y = _conv2d_forward_numpy(x, w, b, k, s, p, d, out_hw)
    return (y, None) if keep_cols else y


# The most values of an im2col matrix that a GPU conv forward keeps for its weight gradient
# (``conv2d_forward(keep_cols=True)``): 32 MiB of float32. Below it a batch-64 DCGAN step is
# bound by the host, where the launch saved counts; above it the memory would.
KEEP_COLS_MAX = 1 << 23


def _cols_for(cols, x, k, out_hw):
    """``cols`` if it is the (C*kh*kw, N*Ho*Wo) im2col matrix of x's geometry, else None."""
    if cols is None:
        return None
    n, c = x.shape[:2]
    if (cols.shape != (c * k[0] * k[1], n * out_hw[0] * out_hw[1]) or cols.dtype != x.dtype
            or not backend.is_cupy_array(cols)):
        return None
    return cols


_CHECKED: dict = {}  # (which check, shapes, dtypes, geometry) -> what the check returned


def _checked(check, a, b, c, *geometry):
    """``check(a, b, c, *geometry)``, remembered for arguments that passed, by the arrays'
    shapes and dtypes (``c`` may be None) and the geometry: each layer asks again at every
    call, forward and backward, and on the GPU that host time is the step's. What fails is
    checked again, and raises, every time."""
    try:
        key = (check, a.shape, a.dtype, b.shape, b.dtype,
               None if c is None else (c.shape, c.dtype), *geometry,
               *map(type, geometry))  # (2.0 is refused where 2 is not)
        out = _CHECKED.get(key)
    except (TypeError, AttributeError):  # unhashable (a list), or not arrays: the long way
        return check(a, b, c, *geometry)
    if out is None:
        out = check(a, b, c, *geometry)
        if len(_CHECKED) < 4096:
            _CHECKED[key] = out
    return out


def _conv2d_args(x, w, b, stride, padding, dilation):
    """conv2d's checks; returns the geometry (k, s, p, d) and the output size."""
    return _checked(_check_conv2d_args, x, w, b, stride, padding, dilation)


def _check_conv2d_args(x, w, b, stride, padding, dilation):
    _check_4d("conv2d", "input", x)
    _check_4d("conv2d", "weight", w)
    c, h, wd = x.shape[1:]
    o, cw, kh, kw = w.shape
    if c != cw:
        raise ValueError(f"conv2d: input {tuple(x.shape)} has {c} channels but weight "
                         f"{tuple(w.shape)} expects {cw}")
    _check_dtypes("conv2d", input=x, weight=w, bias=b)
    _check_bias("conv2d", b, o)
    k, s, p, d = _geometry((kh, kw), stride, padding, dilation)
    return k, s, p, d, _conv_out_or_raise("conv2d", (h, wd), k, s, p, d)


def conv2d_forward_and_grad_weight(x, w, gy, stride=1, padding=0, dilation=1, tanh_y=None):
    """``(conv2d_forward(x, w), conv2d_grad_weight(x, gy, w's kernel size))`` from ONE im2col
    of x: both are products of it. A transposed conv's backward needs exactly these two, with
    x its output gradient and gy its input, and im2col of an output gradient is the largest
    gather of a generator's backward. When gy is not conv2d's full output (n, O, Ho, Wo) in
    x's dtype and device, or the window is the whole input (no im2col), it is the two calls.

    ``tanh_y`` (x's shape): x is first taken through a Tanh's backward,
    ``tanh_backward(x, tanh_y)``, the gradient of a transposed conv followed by a Tanh whose
    output is tanh_y. On the GPU's im2col path that runs inside the gather (one launch fewer)."""
    k, s, p, d, out_hw = _conv2d_args(x, w, None, stride, padding, dilation)
    n, o = x.shape[0], w.shape[0]
    two_calls = (getattr(gy, "ndim", 0) != 4 or tuple(gy.shape) != (n, o, *out_hw)
                 or gy.dtype != x.dtype or backend.device_of(gy) != backend.device_of(x)
                 or _is_dense(x.shape[2:], k, p, d))
    if tanh_y is not None and (two_calls or not backend.is_cupy_array(x)
                               or not backend.is_cupy_array(tanh_y)
                               or tanh_y.shape != x.shape or tanh_y.dtype != x.dtype):
        x, tanh_y = tanh_backward(x, tanh_y), None  # no gather to fold it into
    if two_calls:
        return (conv2d_forward(x, w, None, stride, padding, dilation),
                conv2d_grad_weight(x, gy, k, stride, padding, dilation))
    if backend.is_cupy_array(x):
        cols = _im2col_cupy(x, k, s, p, d, out_hw, tanh_y)
        return (_conv2d_forward_cupy(x, w, None, k, s, p, d, out_hw, cols),
                _grad_weight_cupy(x, gy, k, s, p, d, out_hw, cols))
    if _s2d_winograd(x.shape[1], o, k, s, d, out_hw):  # (no im2col: one transform for both)
        return _conv2d_s2d_winograd(x, w, p, out_hw, gy=gy)
    # the layout each NumPy path below picks for its cols (their conditions are the same);
    # neither takes the workspace's "cols" buffer for anything else
    if x.shape[1] >= _CHANNELS_LAST_MIN:
        cols = _im2col_cpu_nhwc(x, k, s, p, d, out_hw)
        gyn = _channels_last_view(gy)
        if gyn is not None:
            return _forward_and_grad_weight_nhwc(x, w, gyn, k, out_hw, cols)
    else:
        cols = _im2col_cpu(x, k, s, p, d, out_hw)
    return (_conv2d_forward_numpy(x, w, None, k, s, p, d, out_hw, cols),
            _grad_weight_numpy(x, gy, k, s, p, d, out_hw, cols))


def _forward_and_grad_weight_nhwc(x, w, gyn, k, out_hw, cols):
    """The channels-last pair from one im2col ``cols`` (N*Ho*Wo, kh*kw*C), with gyn the output
    gradient's (N, Ho, Wo, O) view: the conv, cols @ W^T, and the weight gradient,
    gy^T @ cols. The two GEMMs have the same work and run side by side
    (``parallel.matmul_pair``); each is then what ``_conv2d_forward_numpy`` and
    ``_grad_weight_numpy`` make of it."""
    n = x.shape[0]
    o = w.shape[0]
    w2 = _channels_last_weight(w).reshape(o, -1)  # (O, kh*kw*C)
    yn = np.empty((cols.shape[0], o), x.dtype)
    gw = _workspace.take("gemm", (o, cols.shape[1]), x.dtype)
    parallel.matmul_pair((cols, w2.T, yn), (gyn.reshape(-1, o).T, cols, gw))
    return yn.reshape(n, *out_hw, o).transpose(0, 3, 1, 2), _weight_from_channels_last(gw, w.shape)


def _weight_from_channels_last(gw, shape):
    """A fresh (O, C, kh, kw) weight from its (O, kh*kw*C) channels-last product (a workspace
    buffer: always copied, never a view of it)."""
    o, c, kh, kw = shape
    out = np.empty(shape, gw.dtype)
    parallel.copyto(out, gw.reshape(o, kh, kw, c).transpose(0, 3, 1, 2))
    return out


def conv2d_input_and_weight_grads(x, w, gy, stride=1, padding=0, dilation=1,
                                  accumulate_into=None, cols=None):
    """conv2d's backward: ``(conv_transpose2d_forward(gy, w) at x's size,
    conv2d_grad_weight(x, gy))``. On the GPU both GEMMs read gy as an (O, N*Ho*Wo) matrix, a
    transposed copy of gy that is made once here instead of once in each. On the CPU (whose
    paths read gy channels-last for free) and for shapes without that copy, the two calls.
    ``accumulate_into``, ``cols``: as for ``conv2d_grad_weight``."""
    k, s, p, d, out_hw = _conv2d_args(x, w, None, stride, padding, dilation)
    n, o = x.shape[0], w.shape[0]
    op = conv_transpose_output_padding(x.shape[2:], out_hw, k, s, p, d)
    if (not backend.is_cupy_array(x) or getattr(gy, "ndim", 0) != 4
            or tuple(gy.shape) != (n, o, *out_hw) or gy.dtype != x.dtype
            or not backend.is_cupy_array(gy) or _is_dense(x.shape[2:], k, p, d)
            or tuple(out_hw) == (1, 1)):
        return (conv_transpose2d_forward(gy, w, None, stride, padding, op, dilation),
                conv2d_grad_weight(x, gy, k, stride, padding, dilation,
                                   accumulate_into=accumulate_into, cols=cols))
    gyt = _channel_major(gy)
    return (_conv_transpose_cupy(gy, w, None, k, s, p, d, tuple(x.shape[2:]), xt=gyt),
            _grad_weight_cupy(x, gy, k, s, p, d, out_hw, _cols_for(cols, x, k, out_hw),
                              gyt=gyt, into=accumulate_into))


def _conv2d_forward_numpy(x, w, b, k, s, p, d, out_hw, cols=None):
    n, c = x.shape[:2]
    o = w.shape[0]
    ho, wo = out_hw
    if _is_dense(x.shape[2:], k, p, d):
        xl = _channels_last_view(x)
        if xl is not None:  # x stored channels-last: the weight as (O, kh*kw*C) instead
            y = _cpu_matmul(xl.reshape(n, c * k[0] * k[1]),
                            _channels_last_weight(w).reshape(o, -1).T)
        else:
            y = _cpu_matmul(np.ascontiguousarray(x).reshape(n, c * k[0] * k[1]),  # (n may be 0)
                            np.ascontiguousarray(w).reshape(o, -1).T)
        if b is not None:
            y += b
        return y.reshape(n, o, 1, 1)
    if c >= _CHANNELS_LAST_MIN:
        if _s2d_winograd(c, o, k, s, d, out_hw):
            yn = _conv2d_s2d_winograd(x, w, p, out_hw)
            if b is not None:
                yn += b
            return yn.transpose(0, 3, 1, 2)
        # the GEMM's (N*Ho*Wo, O) product is the output itself, stored channels-last
        if cols is None:
            cols = _im2col_cpu_nhwc(x, k, s, p, d, out_hw)
        w2 = _channels_last_weight(w).reshape(o, -1)  # (O, kh*kw*C)
        yn = _cpu_matmul(cols, w2.T, out=np.empty((cols.shape[0], o), x.dtype))
        if b is not None:
            yn += b
        return yn.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    if cols is None:
        cols = _im2col_cpu(x, k, s, p, d, out_hw)
    w2 = np.ascontiguousarray(w).reshape(o, -1)
    if o >= _CHANNELS_LAST_MIN:
        # few input channels (an image) but many output ones: the transposed product
        # cols^T @ w2^T is the output stored channels-last, like the branch above. (Its C-order
        # output is given: left to itself, matmul returns F-order for these F-order operands.)
        yn = _cpu_matmul(cols.T, w2.T, out=np.empty((cols.shape[1], o), x.dtype))
        if b is not None:
            yn += b
        return yn.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    prod = _cpu_matmul(w2, cols, out=_workspace.take("gemm", (o, cols.shape[1]), x.dtype))
    src = prod.reshape(o, n, ho * wo).transpose(1, 0, 2)
    y = np.empty((n, o, ho * wo), x.dtype)
    # One GEMM over the whole batch; its move to (N, O, Ho*Wo) is a copy of the (smaller)
    # output, fused with the bias add. Per-sample GEMMs avoided that copy but ran slower on
    # the deep layers, where BLAS wants the long N*Ho*Wo dimension.
    if b is None:
        np.copyto(y, src)
    else:
        np.add(src, b.reshape(1, o, 1), out=y)
    return y.reshape(n, o, ho, wo)


# CPU conv2d with a 4x4 kernel, stride 2 and no dilation (DCGAN's downsampling layers, and a
# transposed conv's input gradient), by space-to-depth: with xpad the input padded by p, output
# pixel (r, q) reads xpad rows 2r .. 2r + 3, i.e. rows r and r + 1 of
#     xs[n, R, Q, (a, b, c)] = xpad[n, 2R + a, 2Q + b, c],
# so the conv is a stride-1 2x2 correlation of xs (4C channels) with the kernel
#     W[e, f][(a, b, c), o] = w[o, c, 2e + a, 2f + b],
# which kernels.winograd computes, forward and weight gradient, with 9/16 of the direct GEMM's
# multiplies (100/196 on dcgan's odd 7x7 outputs). xs is four strided copies of x (one per
# parity of row and column), smaller than the im2col matrix it replaces.

def _s2d_winograd(c, o, k, s, d, out_hw) -> bool:
    return (k == (4, 4) and s == (2, 2) and d == (1, 1) and c >= _CHANNELS_LAST_MIN
            and winograd.worthwhile(4 * c, o, *out_hw))


def _space_to_depth(x, p, out_hw):
    """xs (N, Ho + 1, Wo + 1, 4C) as above, in a workspace buffer (zeros outside x): what
    winograd.correlate2x2 reads for an Ho x Wo output."""
    n, c, h, wd = x.shape
    rows, cols = out_hw[0] + 1, out_hw[1] + 1
    xs = _workspace.take("pad", (n, rows, cols, 2, 2, c), x.dtype)
    xl = x.transpose(0, 2, 3, 1)  # (N, H, W, C): a plain view when x is stored channels-last

    def parity(a, first, size, count):
        """xs positions lo..hi-1 of parity a hold x's indices i0, i0 + 2, .."""
        lo = max(0, -((a - first) // 2))  # ceil((first - a) / 2)
        hi = max(lo, min(count, (size - 1 + first - a) // 2 + 1))
        return lo, hi, 2 * lo + a - first

    parities = [(a, b, parity(a, p[0], h, rows), parity(b, p[1], wd, cols))
                for a in range(2) for b in range(2)]

    def images(lo, hi):  # all four parities of images lo..hi-1 (one pool call, not four)
        for a, b, (r0, r1, h0), (c0, c1, w0) in parities:
            plane = xs[lo:hi, :, :, a, b]
            plane[:, :r0] = 0
            plane[:, r1:] = 0
            plane[:, r0:r1, :c0] = 0
            plane[:, r0:r1, c1:] = 0
            if r1 > r0 and c1 > c0:
                np.copyto(plane[:, r0:r1, c0:c1],
                          xl[lo:hi, h0:h0 + 2 * (r1 - r0) - 1:2, w0:w0 + 2 * (c1 - c0) - 1:2])

    parallel.run(images, n, 2 * xs.nbytes)
    return xs.reshape(n, rows, cols, 4 * c)


def _conv2d_s2d_winograd(x, w, p, out_hw, gy=None):
    """The conv, (N, Ho, Wo, O) C-contiguous; with ``gy`` (N, O, Ho, Wo), the pair (the conv
    as an (N, O, Ho, Wo) array stored channels-last, the weight gradient)."""
    n, c = x.shape[:2]
    o = w.shape[0]
    xs = _space_to_depth(x, p, out_hw)
    wt = _workspace.take("weight", (2, 2, 2, 2, c, o), w.dtype)  # (e, f, a, b, c, o)
    parallel.copyto(wt, w.reshape(o, c, 2, 2, 2, 2).transpose(2, 4, 3, 5, 1, 0))
    t = winograd.weight_types(*out_hw)
    u = winograd.transform_weight(wt.reshape(2, 2, 4 * c, o),
                                  out=_workspace.take("winograd_u", (t, t, 4 * c, o), w.dtype))
    yn = np.empty((n, *out_hw, o), x.dtype)
    if gy is None:
        return winograd.correlate2x2(xs, u, yn)
    _, g4 = winograd.correlate2x2_and_grad_weight(xs, u, yn, gy.transpose(0, 2, 3, 1))
    return yn.transpose(0, 3, 1, 2), _weight_from_s2d(g4, c)


def _grad_weight_s2d_winograd(x, gy, p):
    """The weight gradient, (O, C, 4, 4)."""
    xs = _space_to_depth(x, p, gy.shape[2:])
    return _weight_from_s2d(winograd.correlate2x2_grad_weight(xs, gy.transpose(0, 2, 3, 1)),
                            x.shape[1])


def _weight_from_s2d(g4, c):
    """The (O, C, 4, 4) weight of a space-to-depth kernel g4 (e, f, O, (a, b, c)):
    gw[o, c, 2e + a, 2f + b] = g4[e, f, o, (a, b, c)]. In two copies, each with a contiguous
    inner run on one side: (e, f, o, a, b, c) -> (o, e, a, f, b, c), rows of C values; then
    each o's (16, C) block -> (C, 16). The one-step gather, whose every write read 4C values
    apart, took 2.5-2.8x as long for dcgan64's (512, 256) and (256, 128) weights."""
    o = g4.shape[2]
    rows = np.empty((o, 2, 2, 2, 2, c), g4.dtype)  # (o, e, a, f, b, c)
    parallel.copyto(rows, g4.reshape(2, 2, o, 2, 2, c).transpose(2, 0, 3, 1, 4, 5))
    gw = np.empty((o, c, 4, 4), g4.dtype)
    parallel.copyto(gw.reshape(o, c, 16), rows.reshape(o, 16, c).transpose(0, 2, 1))
    return gw


def _conv2d_forward_cupy(x, w, b, k, s, p, d, out_hw, cols=None, keep=None):
    cp = backend.cupy
    n, o = x.shape[0], w.shape[0]
    ho, wo = out_hw
    w2 = cp.ascontiguousarray(w).reshape(o, -1)
    if _is_dense(x.shape[2:], k, p, d) and x.flags.c_contiguous:
        # (a channel-major x takes im2col below: one gather instead of a copy into NCHW, and
        # an output in the same channel-major layout as every other conv's)
        y = _gemm(x.reshape(n, w2.shape[1]), w2.T)
        if b is not None:
            y += b
        return y.reshape(n, o, 1, 1)
    if cols is None:
        cols = _im2col_cupy(x, k, s, p, d, out_hw)
        if keep is not None and cols.size <= KEEP_COLS_MAX:
            keep.append(cols)
    prod = _gemm(w2, cols)  # (O, N*Ho*Wo)
    if b is not None:
        prod += b.reshape(o, 1)
    # The product is the output stored channel-major, (O, N, Ho, Wo). It is returned as that
    # view, of shape (N, O, Ho, Wo), instead of being copied into N-major order: elementwise
    # kernels read it as it is (and write their outputs in C order), batch norm reads it
    # through its strides, and the gradient that comes back to this conv in the same layout
    # (batch norm and the activations' backward write gx in their input's layout) is the
    # (O, N*Ho*Wo) matrix conv backward's GEMMs want, again without a copy.
    return prod.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)



# conv2d weight gradient

def conv2d_grad_weight(x, gy, kernel_size, stride=1, padding=0, dilation=1,
                       accumulate_into=None, cols=None):
    """gw[o,c,i,j] = sum_{n,a,b} gy[n,o,a,b] * xpad[n, c, a*s + i*d, b*s + j*d], (O, C, kh, kw).

    The gradient of sum(gy * conv2d(x, w)) with respect to w, as ``gy^T @ im2col(x)^T``. It is
    generic in its two arguments: conv_transpose2d's weight gradient is
    ``conv2d_grad_weight(gy, x)``. gy's spatial size may be smaller than conv2d's output (as
    for a transposed conv whose output_padding is >= its stride); only the positions gy has
    enter the sum.

    ``accumulate_into``: an (O, C, kh, kw) GPU array (a weight's ``.grad``) into which, on the
    GPU and where one GEMM can, the gradient is added instead of returned: the GEMM runs with
    beta = 1 and that array is returned. Elsewhere the gradient is returned as usual.

    ``cols``: the im2col matrix of x that ``conv2d_forward(keep_cols=True)`` kept (GPU), used
    instead of a new gather when it has this call's geometry (else ignored).
    """
    k, s, p, d = _checked(_check_grad_weight_args, x, gy, None, kernel_size, stride, padding,
                          dilation)
    out_hw = tuple(gy.shape[2:])
    if backend.is_cupy_array(x):
        return _grad_weight_cupy(x, gy, k, s, p, d, out_hw, _cols_for(cols, x, k, out_hw),
                                 into=accumulate_into)
    return _grad_weight_numpy(x, gy, k, s, p, d, out_hw)


def _check_grad_weight_args(x, gy, _, kernel_size, stride, padding, dilation):
    """conv2d_grad_weight's checks; returns the geometry (k, s, p, d)."""
    _check_4d("conv2d_grad_weight", "input", x)
    _check_4d("conv2d_grad_weight", "grad_output", gy)
    _check_dtypes("conv2d_grad_weight", input=x, grad_output=gy)
    k, s, p, d = _geometry(kernel_size, stride, padding, dilation)
    full = _conv_out_or_raise("conv2d_grad_weight", x.shape[2:], k, s, p, d)
    n = x.shape[0]
    if gy.shape[0] != n or gy.shape[2] > full[0] or gy.shape[3] > full[1]:
        raise ValueError(
            f"conv2d_grad_weight: grad_output {tuple(gy.shape)} does not match input "
            f"{tuple(x.shape)}: expected ({n}, O, {full[0]}, {full[1]}) for kernel {k}, "
            f"stride {s}, padding {p}, dilation {d}")
    return k, s, p, d


def _grad_weight_numpy(x, gy, k, s, p, d, out_hw, cols=None):
    n, c = x.shape[:2]
    o = gy.shape[1]
    if _is_dense(x.shape[2:], k, p, d):
        g2 = np.ascontiguousarray(gy).reshape(n, o).T
        xl = _channels_last_view(x)
        if xl is not None:  # x stored channels-last: the product comes out as (O, kh, kw, C)
            return _cpu_matmul(g2, xl.reshape(n, c * k[0] * k[1])).reshape(
                o, k[0], k[1], c).transpose(0, 3, 1, 2).copy()
        gw = _cpu_matmul(g2, np.ascontiguousarray(x).reshape(n, c * k[0] * k[1]))
        return gw.reshape(o, c, k[0], k[1])
    if _s2d_winograd(c, o, k, s, d, out_hw):
        return _grad_weight_s2d_winograd(x, gy, p)
    gyn = _channels_last_view(gy)  # gy as (N*Ho*Wo, O): free when stored channels-last
    if c >= _CHANNELS_LAST_MIN:
        if cols is None:
            cols = _im2col_cpu_nhwc(x, k, s, p, d, out_hw)
        if gyn is None:
            gyn = _workspace.take("gyt", (n, out_hw[0], out_hw[1], o), x.dtype)
            parallel.copyto(gyn, gy.transpose(0, 2, 3, 1))
        gw = _cpu_matmul(gyn.reshape(-1, o).T, cols,  # (O, kh*kw*C)
                         out=_workspace.take("gemm", (o, cols.shape[1]), x.dtype))
        # always a copy (never a view of the workspace, which ascontiguousarray would give for
        # 1x1 kernels or one channel)
        return _weight_from_channels_last(gw, (o, c, k[0], k[1]))
    if cols is None:
        cols = _im2col_cpu(x, k, s, p, d, out_hw)
    if gyn is not None:
        return _cpu_matmul(gyn.reshape(-1, o).T, cols.T).reshape(o, c, k[0], k[1])
    # gy as (O, N*Ho*Wo): a copy of gy, far smaller than cols, so the GEMM can use cols^T as is
    gyt = _workspace.take("gyt", (o, n) + tuple(out_hw), x.dtype)
    # (any layout of gy: no reshape, which may copy)
    parallel.copyto(gyt, gy.transpose(1, 0, 2, 3))
    gw = _cpu_matmul(gyt.reshape(o, -1), cols.T)
    return gw.reshape(o, c, k[0], k[1])


def _grad_weight_cupy(x, gy, k, s, p, d, out_hw, cols=None, gyt=None, into=None):
    """The weight gradient's GEMM; with ``into`` (an (O, C, kh, kw) C-contiguous array), the
    product is added into it by the GEMM itself (beta = 1) where that applies, and ``into``
    is returned."""
    cp = backend.cupy
    n, c = x.shape[:2]
    o = gy.shape[1]
    if _is_dense(x.shape[2:], k, p, d) and x.flags.c_contiguous:  # (as in the forward)
        a, b = cp.ascontiguousarray(gy).reshape(n, o).T, x.reshape(n, c * k[0] * k[1])
    else:
        if cols is None:
            cols = _im2col_cupy(x, k, s, p, d, out_hw)
        if gyt is None:
            gyt = _channel_major(gy)
        a, b = gyt, cols.T
    # (into is checked C-contiguous first: reshaping anything else would give a copy)
    if (into is not None and backend.is_cupy_array(into) and into.flags.c_contiguous
            and into.shape == (o, c, k[0], k[1])
            and _try_gemm_into(a, b, into.reshape(o, -1), accumulate=True)):
        return into
    # the GEMM writes into an array of the weight's shape, which is then an array of its own
    # (a later gradient can be added into it in place), not a reshaped view of the product
    gw = cp.empty((o, c, k[0], k[1]), dtype=a.dtype)
    if _try_gemm_into(a, b, gw.reshape(o, -1)):
        return gw
    return _gemm(a, b).reshape(o, c, k[0], k[1])


def _channel_major(a):
    """(N, C, H, W) as the (C, N*H*W) matrix: a view when ``a`` is stored channel-major (a
    GPU conv output, or a gradient written in its layout), else one transposed copy."""
    n, c = a.shape[:2]
    return backend.cupy.ascontiguousarray(a.reshape(n, c, -1).transpose(1, 0, 2)).reshape(c, -1)


# conv_transpose2d

def _check_conv_transpose_args(x, w, b, stride, padding, output_padding, dilation):
    """conv_transpose2d's checks; returns the geometry (k, s, p, d), the output padding and
    the output size."""
    _check_4d("conv_transpose2d", "input", x)
    _check_4d("conv_transpose2d", "weight", w)
    n, cin, h, wd = x.shape
    cw, cout, kh, kw = w.shape
    if cin != cw:
        raise ValueError(f"conv_transpose2d: input {tuple(x.shape)} has {cin} channels but "
                         f"weight {tuple(w.shape)} expects {cw}")
    _check_dtypes("conv_transpose2d", input=x, weight=w, bias=b)
    _check_bias("conv_transpose2d", b, cout)
    k, s, p, d = _geometry((kh, kw), stride, padding, dilation)
    op = _pair(output_padding, "output_padding", 0)
    if any(op[t] >= max(s[t], d[t]) for t in range(2)):
        raise ValueError(f"conv_transpose2d: output_padding {op} must be smaller than either "
                         f"stride {s} or dilation {d}")
    out_hw = conv_transpose_output_size((h, wd), k, s, p, op, d)
    if min(out_hw) <= 0:
        raise ValueError(f"conv_transpose2d: output size {out_hw} is not positive for input size "
                         f"{(h, wd)}, kernel {k}, stride {s}, padding {p}, output_padding {op}, "
                         f"dilation {d}")
    return k, s, p, d, op, out_hw


def conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1,
                             tanh: bool = False):
    """y = conv_transpose2d(x, w) + b: x (N, Cin, H, W), w (Cin, Cout, kh, kw) -> (N, Cout,
    Ho, Wo) with Ho = (H - 1)*s - 2p + d*(kh - 1) + output_padding + 1.

    It is conv2d's input gradient: y = col2im(w.reshape(Cin, -1)^T @ x as (Cin, N*H*W)). An
    input of 1x1 pixels with padding 0 and dilation 1 (a generator's first layer) is a plain
    GEMM: y[n] = x[n] @ w.reshape(Cin, -1).

    ``tanh``: return tanh(y), the values of the tanh after the op (a generator's output
    layer): on the GPU's col2im path inside that kernel (one launch fewer), elsewhere in place
    on the new output.
    """
    y, done = _conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation, tanh)
    if tanh and not done:
        y = tanh_forward(y, out=y)
    return y


def _conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation, tanh):
    """``conv_transpose2d_forward``: ``(y, whether y already holds the tanh)``."""
    k, s, p, d, op, out_hw = _checked(_check_conv_transpose_args, x, w, b, stride, padding,
                                      output_padding, dilation)
    n, cin, h, wd = x.shape
    cout, kh, kw = w.shape[1:]
    xp = backend.get_array_module(x)
    if (h, wd) == (1, 1) and p == (0, 0) and d == (1, 1) and op == (0, 0):
        if xp is np and cin == 1:
            # an outer product: a broadcast multiply, where BLAS's K=1 GEMM ran 30x slower
            y = np.multiply(x.reshape(n, 1), w.reshape(1, -1)).reshape(n, cout, kh, kw)
        elif xp is np and cout >= _CHANNELS_LAST_MIN:
            # the weight's columns as (i, j, cout): the product is the output channels-last
            yn = _cpu_matmul(np.ascontiguousarray(x).reshape(n, cin),
                             _channels_last_weight(w).reshape(cin, -1),
                             out=np.empty((n, kh * kw * cout), x.dtype)).reshape(n, kh, kw, cout)
            if b is not None:
                yn += b
            return yn.transpose(0, 3, 1, 2), False
        else:
            y = _gemm(xp.ascontiguousarray(x).reshape(n, cin),
                          xp.ascontiguousarray(w).reshape(cin, -1)).reshape(n, cout, kh, kw)
        if b is not None:
            y += b.reshape(1, cout, 1, 1)
        return y, False
    if xp is not np:
        return _conv_transpose_cupy(x, w, b, k, s, p, d, out_hw, tanh=tanh), tanh
    return _conv_transpose_numpy(x, w, b, k, s, p, d, out_hw), False


def _conv_transpose_numpy(x, w, b, k, s, p, d, out_hw):
    n, cin, h, wd = x.shape
    cout = w.shape[1]
    if cout >= _CHANNELS_LAST_MIN:
        grid = _subpixel_grid(k, s, p, d, out_hw)
        if grid is not None and grid[0][2] * grid[1][2] <= _SUBPIXEL_MAX_GROWTH * h * wd:
            return _conv_transpose_subpixel_numpy(x, w, b, k, s, p, out_hw, grid)
        # x as (N*H*W, Cin) and w as (Cin, kh*kw*Cout): the GEMM's rows are input pixels and its
        # columns (i, j, cout), so every tap's slice-add runs over Cout contiguous values
        xn = _channels_last_view(x)  # free when x is stored channels-last, else a copy
        if xn is None:
            xn = _to_channels_last(x, _workspace.take("xt", (n, h, wd, cin), x.dtype))
        w2 = _channels_last_weight(w).reshape(cin, -1)
        cols = _cpu_matmul(xn.reshape(-1, cin), w2,
                           out=_workspace.take("cols", (n * h * wd, w2.shape[1]), x.dtype))
        return _col2im_cpu_nhwc(cols, (n, cout, *out_hw), (h, wd), k, s, p, d, bias=b)
    # x as (Cin, N*H*W), so that one GEMM covers the batch: the transpose of x's free
    # (N*H*W, Cin) view when x is stored channels-last, else a copy of the (small) input
    xl = _channels_last_view(x)
    if xl is not None:
        xt = xl.reshape(-1, cin).T
    else:
        xt = _workspace.take("xt", (cin, n, h, wd), x.dtype)
        # (any layout of x: no reshape, which may copy)
        parallel.copyto(xt, x.transpose(1, 0, 2, 3))
        xt = xt.reshape(cin, -1)
    w2 = np.ascontiguousarray(w).reshape(cin, -1)
    cols = _cpu_matmul(w2.T, xt,
                       out=_workspace.take("cols", (w2.shape[1], n * h * wd), x.dtype))
    return _col2im_cpu(cols, (n, cout, *out_hw), (h, wd), k, s, p, d, bias=b)


# CPU conv_transpose2d by output phases ("sub-pixel"), for a kernel that is a multiple of the
# stride and no dilation: output row q = oh + p = r*s + a (phase a in [0, s)) receives input row
# ih = r - t through tap i = t*s + a, for t in [0, m), m = k // s. So every output phase is a
# stride-1 correlation of x with an m x m slice of the kernel, and all s*s phases share the
# same m x m input windows: ONE im2col of x (windows of m x m pixels, N*R*Rw rows of m*m*Cin)
# and ONE GEMM against the kernel rearranged as (m*m*Cin, s*s*Cout) give every output pixel
# exactly once. That replaces the col2im scatter (kh*kw strided read-modify-write passes over
# the output, reading a cols matrix kh*kw*Cout wide) by a gather of the smaller input. The
# GEMM covers R x Rw window positions, slightly more than the H x W input pixels (one extra
# row and column for DCGAN's k=4, s=2, p=1), so it is used only while that growth is small.
_SUBPIXEL_MAX_GROWTH = 1.35


def _subpixel_axis(k, s, p, d, out_len):
    """One axis of the sub-pixel form: (m, r_first, R) with R window positions r_first..,
    or None when the kernel is not a multiple of the stride (or dilated)."""
    if d != 1 or s < 2 or k % s:
        return None
    r_first = p // s
    return k // s, r_first, (out_len - 1 + p) // s - r_first + 1


def _subpixel_grid(k, s, p, d, out_hw):
    rows = _subpixel_axis(k[0], s[0], p[0], d[0], out_hw[0])
    cols = _subpixel_axis(k[1], s[1], p[1], d[1], out_hw[1])
    return None if rows is None or cols is None else (rows, cols)


def _phase_slices(a, s, first, count, out_len):
    """For output phase a: the window positions r in [0, count) whose output index
    r*s + a - first lies in [0, out_len), as (window slice, output slice), or None."""
    lo = max(0, -((a - first) // s))  # ceil((first - a) / s)
    hi = min(count, (out_len - 1 + first - a) // s + 1)
    if hi <= lo:
        return None
    o = lo * s + a - first
    return slice(lo, hi), slice(o, o + (hi - lo - 1) * s + 1, s)


def _conv_transpose_subpixel_numpy(x, w, b, k, s, p, out_hw, grid):
    n, cin, h, wd = x.shape
    cout = w.shape[1]
    (mh, r0, rh), (mw, c0, rw) = grid
    wino = mh == mw == 2 and winograd.worthwhile(cin, s[0] * s[1] * cout, rh, rw)
    # the padded channels-last input holds input rows r0 - mh + 1 .. r0 + rh - 1 (zeros where
    # they fall outside x); window r covers its rows r .. r + mh - 1
    top, left = mh - 1 - r0, mw - 1 - c0
    ph_, pw_ = rh + mh - 1, rw + mw - 1
    xn = _workspace.take("pad", (n, ph_, pw_, cin), x.dtype)
    i0, i1 = max(0, -top), min(h, ph_ - top)
    j0, j1 = max(0, -left), min(wd, pw_ - left)
    u0, u1, v0, v1 = i0 + top, i1 + top, j0 + left, j1 + left
    xn[:, :u0] = 0
    xn[:, u1:] = 0
    xn[:, u0:u1, :v0] = 0
    xn[:, u0:u1, v1:] = 0
    _to_channels_last(x[:, :, i0:i1, j0:j1], xn[:, u0:u1, v0:v1])
    # wsub[(e, f, ci), (a, b, co)] = w[ci, co, (mh-1-e)*sh + a, (mw-1-f)*sw + b]
    wsub = _workspace.take("weight", (mh, mw, cin, s[0], s[1], cout), w.dtype)
    w6 = w.reshape(cin, cout, mh, s[0], mw, s[1])[:, :, ::-1, :, ::-1, :]
    parallel.copyto(wsub, w6.transpose(2, 4, 0, 3, 5, 1))
    z = _workspace.take("gemm", (n, rh, rw, s[0] * s[1] * cout), x.dtype)
    if wino:
        t = winograd.weight_types(rh, rw)
        u = _workspace.take("winograd_u", (t, t, cin, s[0] * s[1] * cout), w.dtype)
        winograd.correlate2x2(
            xn, winograd.transform_weight(wsub.reshape(2, 2, cin, -1), out=u), z)
    else:
        sn, sh, sw, sc = xn.strides
        windows = as_strided(xn, (n, rh, rw, mh, mw, cin), (sn, sh, sw, sh, sw, sc),
                             writeable=False)
        cols = _workspace.take("cols", (n * rh * rw, mh * mw * cin), x.dtype)
        parallel.copyto(cols.reshape(windows.shape), windows)
        _cpu_matmul(cols, wsub.reshape(mh * mw * cin, -1), out=z.reshape(cols.shape[0], -1))
    z = z.reshape(n, rh, rw, s[0], s[1], cout)
    yn = np.empty((n, *out_hw, cout), x.dtype)
    # window (r, c) phase (a, b) is output pixel (r*sh + a - (p - r0*sh), c*sw + b - ...)
    first_h, first_w = p[0] - r0 * s[0], p[1] - c0 * s[1]
    phases = []
    for a in range(s[0]):
        rows = _phase_slices(a, s[0], first_h, rh, out_hw[0])
        for b_ in range(s[1]):
            cs = _phase_slices(b_, s[1], first_w, rw, out_hw[1])
            if rows is not None and cs is not None:
                phases.append((a, b_, rows, cs))

    def write_phases(lo, hi):  # images lo..hi-1
        for a, b_, rows, cs in phases:
            src = z[lo:hi, rows[0], cs[0], a, b_]
            dst = yn[lo:hi, rows[1], cs[1]]
            if b is None:
                np.copyto(dst, src)
            else:
                np.add(src, b, out=dst)

    parallel.run(write_phases, n, 2 * yn.nbytes)
    return yn.transpose(0, 3, 1, 2)  # stored channels-last, as conv2d's output


def _conv_transpose_cupy(x, w, b, k, s, p, d, out_hw, xt=None, tanh=False):
    cp = backend.cupy
    n, cin, h, wd = x.shape
    cout = w.shape[1]
    w2 = cp.ascontiguousarray(w).reshape(cin, -1)
    if xt is None:  # x as (Cin, N*H*W)
        xt = _channel_major(x)
    cols = _gemm(w2.T, xt)  # (Cout*kh*kw, N*H*W)
    return _col2im_cupy(cols, (n, cout, *out_hw), (h, wd), k, s, p, d, bias=b, tanh=tanh)
