"""CPU Winograd F(2x2, 2x2): a stride-1 correlation with a 2x2 kernel in 9 GEMMs instead of 16.

Where it is used: a transposed conv whose kernel is twice its stride (DCGAN's k=4, s=2, p=1)
runs in conv.py's sub-pixel form, one correlation of the channels-last, padded input with a
2x2 kernel whose output channels are the s*s output phases:

    z[n, r, c, :] = sum_{e, f in {0, 1}} xn[n, r + e, c + f, :] @ w[e, f]      (Cin -> Cout)

That is also how a conv2d's input gradient runs (a transposed conv), so it covers the
generator's upsampling layers and the backward pass through the discriminator's downsampling
ones. As one GEMM it is (N*R*C, 4*Cin) @ (4*Cin, Cout): 4 multiplies per output value and input
channel. On a 2-core CPU those GEMMs are already at BLAS's peak, so fewer multiplies is the only
way left to make them faster.

**The algorithm.** Cut the output into 2x2 tiles; tile (t, u) reads the 3x3 input patch d at
rows 2t..2t+2 and columns 2u..2u+2. In one dimension the two outputs of a 2-tap correlation,
y0 = d0 g0 + d1 g1 and y1 = d1 g0 + d2 g1, take three products instead of four:

    m0 = (d0 - d1) g0,   m1 = d1 (g0 + g1),   m2 = (d2 - d1) g1,   y0 = m0 + m1,   y1 = m1 + m2,

i.e. y = A^T [(G g) * (B^T d)] with B^T = [[1, -1, 0], [0, 1, 0], [0, -1, 1]],
G = [[1, 0], [1, 1], [0, 1]] and A^T = [[1, 1, 0], [0, 1, 1]]. Nested over rows and columns, a
2x2 tile takes 9 products instead of 16, and over channels each product is a matrix product:
with V[k, l] = (B^T d B)[k, l] (one (tiles, Cin) matrix for each of the 9 (k, l)) and
W[k, l] = (G w G^T)[k, l] (Cin, Cout), M[k, l] = V[k, l] @ W[k, l], and the tile's outputs are
A^T M A. The GEMMs do 9/16 of the direct form's multiply-adds. Every transform coefficient is
0 or +-1, so the transforms are exact adds and subtracts: the result differs from the direct
GEMM's by rounding only (about 1e-6 relative in float32, 1e-15 in float64).

**Cost.** The transforms are elementwise passes over the input (9/4 of its size) and over the 9
products (9/4 of the output), a few ms at DCGAN sizes against the tens of ms the GEMMs save.
An odd number of output rows or columns is rounded up to whole tiles (the caller pads the input
with zeros), which costs at most one extra row and column of tiles; ``worthwhile`` refuses
grids where that would cost more than half again the work.

**Threads.** The images are cut into one block per pool thread, and each thread runs the whole
pipeline (input transform, 9 single-threaded GEMMs, output transform) on its own block, a few
images at a time so that its temporaries stay small. There is no barrier between the stages.
"""
from __future__ import annotations

import numpy as np

from . import parallel
from .workspace import _workspace

__all__ = ["correlate2x2", "correlate2x2_and_grad_weight", "correlate2x2_grad_weight",
           "transform_weight", "worthwhile"]

# Below these channel counts the GEMMs are too narrow for the 7/16 of their work saved to pay
# for the transforms (measured on the benchmark VM; see benchmarks/README.md).
MIN_IN_CHANNELS = 64
MIN_OUT_CHANNELS = 128
# Tiles (GEMM rows) per chunk of images: enough rows for BLAS to run near its peak, few enough
# that a chunk's temporaries (9 * rows * (Cin + Cout) values) stay a few MB.
_ROWS_PER_CHUNK = 512
# at most this much more work from rounding an odd grid up to whole tiles
MAX_TILE_GROWTH = 1.5


def worthwhile(cin: int, cout: int, rows: int, cols: int) -> bool:
    """Whether a (rows x cols)-output, Cin -> Cout 2x2 correlation should take this path."""
    if cin < MIN_IN_CHANNELS or cout < MIN_OUT_CHANNELS or rows < 2 or cols < 2:
        return False
    grown = (rows + (rows & 1)) * (cols + (cols & 1))
    return grown <= MAX_TILE_GROWTH * rows * cols


def transform_weight(w, out=None):
    """w (2, 2, Cin, Cout) -> G w G^T, (3, 3, Cin, Cout) C-contiguous: rows and columns each
    become (g0, g0 + g1, g1). Written into ``out`` when given."""
    u = np.empty((3, 3) + w.shape[2:], w.dtype) if out is None else out

    def rows(lo, hi):  # input channels lo..hi-1
        wb, ub = w[:, :, lo:hi], u[:, :, lo:hi]
        # rows: u[0, :2] = w[0], u[2, :2] = w[1], u[1, :2] = w[0] + w[1]; then the columns
        ub[0, :2], ub[2, :2] = wb[0], wb[1]
        np.add(wb[0], wb[1], out=ub[1, :2])
        ub[:, 2] = ub[:, 1]
        ub[:, 1] += ub[:, 0]

    parallel.run(rows, w.shape[2], w.nbytes + u.nbytes)
    return u


def _check_fit(what, xn, out_shape):
    n, h1, w1, _ = xn.shape
    rows, cols = out_shape[1:3]
    t, v = -(-rows // 2), -(-cols // 2)
    if out_shape[0] != n or h1 < 2 * t + 1 or w1 < 2 * v + 1 \
            or (xn.size and xn.strides[3] != xn.itemsize):
        raise ValueError(f"{what}: input {xn.shape} and output {tuple(out_shape)} do not fit: "
                         f"expected (N, >= 2*ceil(R/2) + 1, >= 2*ceil(Q/2) + 1, Cin) with a "
                         f"unit stride in Cin, and (N, R, Q, Cout)")
    return t, v


def _blas_blocks(fn, total: int, flops: int) -> None:
    """fn(lo, hi) over one block of range(total) per pool thread, each making single-threaded
    BLAS calls (as parallel.matmul's blocks); in the calling thread alone (BLAS then splits
    each GEMM itself) when there is one thread, little work, or a BLAS minigan cannot set."""
    threads = parallel.get_num_threads()
    if threads < 2 or total < 2 or flops < parallel.MIN_GEMM_FLOPS \
            or not parallel.blas_controllable():
        fn(0, total)
        return
    with parallel.single_threaded_blas():
        parallel._pool().run([(lambda lo=lo, hi=hi: fn(lo, hi))
                              for lo, hi in parallel.blocks(total, threads)])


def correlate2x2(xn, u, out):
    """out[n, r, c, :] = sum_{e, f} xn[n, r + e, c + f, :] @ w[e, f] for every (r, c) of out.

    out: (N, R, Q, Cout), written in place (any strides); u: ``transform_weight(w)``,
    (3, 3, Cin, Cout); xn: (N, >= 2T + 1, >= 2V + 1, Cin) with T = ceil(R / 2) and
    V = ceil(Q / 2), unit-strided in its last axis (a channels-last padded image). With R odd,
    the row after the last one read by the direct form is read too (it must hold finite
    values, zeros in practice): its products go into an output row that is not written.
    Columns likewise. Returns out."""
    t, v = _check_fit("correlate2x2", xn, out.shape)
    n, cin, cout = xn.shape[0], xn.shape[3], out.shape[3]
    if u.shape != (3, 3, cin, cout):
        raise ValueError(f"correlate2x2: transformed weight {u.shape} does not fit input "
                         f"{xn.shape} and output {out.shape}: expected (3, 3, {cin}, {cout})")
    if out.size == 0:
        return out
    xn = xn[:, :2 * t + 1, :2 * v + 1]
    u9 = u.reshape(9, cin, cout)
    chunk = max(1, _ROWS_PER_CHUNK // (t * v))

    def images(lo, hi):  # the whole pipeline, a few images at a time
        for s in range(lo, hi, chunk):
            e = min(hi, s + chunk)
            vm = _workspace.take("winograd_v", (3, 3, e - s, t, v, cin), xn.dtype)
            _input_transform(xn[s:e], vm)
            _products(vm, u9, out[s:e])

    _blas_blocks(images, n, 18 * n * t * v * cin * cout)
    return out


def _products(vm, u9, out):
    """M = V[k] @ U[k] for V (3, 3, nb, t, v, Cin), then out (nb, R, Q, Cout) = A^T M A (the
    last tile row or column cut short where R or Q is odd), in the calling thread."""
    nb, t, v, cin = vm.shape[2:]
    cout = u9.shape[-1]
    m = _workspace.take("winograd_m", (9, nb * t * v, cout), vm.dtype)
    np.matmul(vm.reshape(9, nb * t * v, cin), u9, out=m)
    _output_transform(m.reshape(3, 3, nb, t, v, cout), lambda i, j: out[:, i::2, j::2])


def _input_transform(x, vm):
    """V = B^T d B for every 3x3 patch d (step 2) of x (nb, 2t + 1, 2v + 1, C), into
    vm (3, 3, nb, t, v, C)."""
    nb, _, w1, c = x.shape
    t, v = vm.shape[3:5]
    # rows first (B^T d), into r0 and r2 (the middle row is d1 itself) ...
    xe, xo = x[:, 0::2], x[:, 1::2]  # rows 0, 2, .., 2t and 1, 3, .., 2t - 1
    r = _workspace.take("winograd_rows", (2, nb, t, w1, c), x.dtype)
    np.subtract(xe[:, :t], xo, out=r[0])
    np.subtract(xe[:, 1:], xo, out=r[1])
    # ... then columns (d B)
    for k, src in ((0, r[0]), (1, xo), (2, r[1])):
        ce, co = src[:, :, 0::2], src[:, :, 1::2]
        np.subtract(ce[:, :, :v], co, out=vm[k, 0])
        np.copyto(vm[k, 1], co)
        np.subtract(ce[:, :, 1:], co, out=vm[k, 2])


def _output_transform(m, out):
    """A^T M A from m (3, 3, ...): columns first, in place (M[k, 0] += M[k, 1],
    M[k, 2] += M[k, 1]); then output (i, j) is M'[i, j'] + M'[i + 1, j'] (j' = 0, 2), written
    into out(i, j), an array that may be shorter than m's (then m is cut to its shape)."""
    np.add(m[:, 0], m[:, 1], out=m[:, 0])
    np.add(m[:, 2], m[:, 1], out=m[:, 2])
    for i in range(2):
        for j, col in ((0, 0), (1, 2)):
            dst = out(i, j)
            cut = tuple(slice(0, n) for n in dst.shape)
            np.add(m[i, col][cut], m[i + 1, col][cut], out=dst)


def correlate2x2_grad_weight(xn, gy):
    """gw[e, f] = sum_{n, r, q} gy[n, r, q, :]^T xn[n, r + e, q + f, :], (2, 2, Cout, Cin): the
    weight gradient of ``correlate2x2`` (out = gy's shape (N, R, Q, Cout), any strides; xn as
    there).

    The same algorithm with the roles swapped: within a 2x2 tile of gy positions, the four
    taps' sums sum_{i, j} d[i + e, j + f] g[i, j] are a 2-tap correlation of the 3x3 input
    patch d with the tile g as its kernel, so gw = A^T [sum over tiles of (B^T d B) * (G g G^T)]
    A, and the sum over tiles (and channels' pairs) is 9 GEMMs (G g G^T)[k, l]^T @ V[k, l],
    of (Cout, tiles) @ (tiles, Cin). An odd R or Q adds a zero row or column to gy. (Cout
    first: a conv's weight is (O, C, kh, kw).)"""
    t, v = _check_fit("correlate2x2_grad_weight", xn, gy.shape)
    if gy.size == 0:
        return np.zeros((2, 2, gy.shape[3], xn.shape[3]), np.result_type(xn.dtype, gy.dtype))
    return _grad_weight(_transformed_input(xn, t, v), gy)


def correlate2x2_and_grad_weight(xn, u, out, gy):
    """``(correlate2x2(xn, u, out), correlate2x2_grad_weight(xn, gy))`` with one input
    transform of xn for both (gy must have out's shape): a transposed conv's backward, whose
    input gradient and weight gradient both read its output gradient's windows."""
    t, v = _check_fit("correlate2x2_and_grad_weight", xn, out.shape)
    n, cin, cout = xn.shape[0], xn.shape[3], out.shape[3]
    if gy.shape[:3] != out.shape[:3] or u.shape != (3, 3, cin, cout):
        raise ValueError(f"correlate2x2_and_grad_weight: input {xn.shape}, transformed weight "
                         f"{u.shape}, output {out.shape} and gradient {gy.shape} do not fit")
    if out.size == 0 or gy.size == 0:
        return correlate2x2(xn, u, out), correlate2x2_grad_weight(xn, gy)
    vm = _transformed_input(xn, t, v)
    gw = _grad_weight(vm, gy)
    u9 = u.reshape(9, cin, cout)
    chunk = max(1, _ROWS_PER_CHUNK // (t * v))

    def images(lo, hi):
        for s in range(lo, hi, chunk):
            e = min(hi, s + chunk)
            _products(vm[:, :, s:e], u9, out[s:e])

    _blas_blocks(images, n, 18 * n * t * v * cin * cout)
    return out, gw


def _transformed_input(xn, t, v):
    """V (3, 3, N, t, v, Cin) of the whole batch, in a workspace buffer."""
    n, cin = xn.shape[0], xn.shape[3]
    xn = xn[:, :2 * t + 1, :2 * v + 1]
    vm = _workspace.take("winograd_gv", (3, 3, n, t, v, cin), xn.dtype)
    parallel.run(lambda lo, hi: _input_transform(xn[lo:hi], vm[:, :, lo:hi]), n,
                 4 * vm.nbytes)
    return vm


def _grad_weight(vm, gy):
    """correlate2x2_grad_weight from V = _transformed_input(xn)."""
    n, t, v, cin = vm.shape[2:]
    rows, cols, cout = gy.shape[1:]
    gw = np.zeros((2, 2, cout, cin), np.result_type(vm.dtype, gy.dtype))
    gm = _workspace.take("winograd_gg", (3, 3, n, t, v, cout), gy.dtype)

    def transform(lo, hi):  # images lo..hi-1
        # G g G^T of each 2x2 tile of gy (rows, then columns, each (g0, g0 + g1, g1)); a
        # missing last row or column of an odd count is zero
        g = gy[lo:hi]
        gr = _workspace.take("winograd_grows", (3, hi - lo, t, 2 * v, cout), gy.dtype)
        ge, go = g[:, 0::2], g[:, 1::2]
        k = go.shape[1]
        gr[:, :, :, cols:] = 0
        np.copyto(gr[0, :, :, :cols], ge)
        np.copyto(gr[1, :, :, :cols], ge)
        np.add(gr[1, :, :k, :cols], go, out=gr[1, :, :k, :cols])
        gr[2, :, k:] = 0
        np.copyto(gr[2, :, :k, :cols], go)
        ce, co = gr[:, :, :, 0::2], gr[:, :, :, 1::2]
        gk = gm[:, :, lo:hi]
        np.copyto(gk[:, 0], ce)
        np.add(ce, co, out=gk[:, 1])
        np.copyto(gk[:, 2], co)

    parallel.run(transform, n, 4 * gm.nbytes)
    v9 = vm.reshape(9, n * t * v, cin)
    g9 = gm.reshape(9, n * t * v, cout)
    m = _workspace.take("winograd_m", (9, cout, cin), gw.dtype)

    def products(lo, hi):  # rows lo..hi-1 of every product (output channels)
        for k in range(9):
            np.matmul(g9[k, :, lo:hi].T, v9[k], out=m[k, lo:hi])

    _blas_blocks(products, cout, 18 * n * t * v * cin * cout)
    _output_transform(m.reshape(3, 3, cout, cin), lambda i, j: gw[i, j])
    return gw
