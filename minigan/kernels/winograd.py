"""CPU Winograd: a stride-1 correlation with a 2x2 kernel in fewer multiplies than the direct GEMM.

Where it is used: a transposed conv whose kernel is twice its stride (DCGAN's k=4, s=2, p=1)
runs in conv.py's sub-pixel form, one correlation of the channels-last, padded input with a
2x2 kernel whose output channels are the s*s output phases:

    z[n, r, c, :] = sum_{e, f in {0, 1}} xn[n, r + e, c + f, :] @ w[e, f]      (Cin -> Cout)

That is also how a conv2d's input gradient runs (a transposed conv), so it covers the
generator's upsampling layers and the backward pass through the discriminator's downsampling
ones; a 4x4 stride-2 conv2d becomes one by space-to-depth. As one GEMM it is
(N*R*C, 4*Cin) @ (4*Cin, Cout): 4 multiplies per output value and input channel. On a 2-core
CPU those GEMMs are already at BLAS's peak, so fewer multiplies is the only way left to make
them faster.

**The algorithm.** Each axis of outputs is cut into tiles. In one dimension the two outputs of
a 2-tap correlation, y0 = d0 g0 + d1 g1 and y1 = d1 g0 + d2 g1, take three products instead of
four (Winograd's F(2, 2)):

    m0 = (d0 - d1) g0,   m1 = d1 (g0 + g1),   m2 = (d2 - d1) g1,   y0 = m0 + m1,   y1 = m1 + m2.

An odd axis (dcgan's 7x7 grids) ends in one tile of three outputs, F(3, 2), four products
instead of six (the transpose of F(2, 3), points 0, 1, -1 and infinity):

    m0 = (d0 - d2) g0,   m1 = (d1 + d2)/2 (g0 + g1),   m2 = (d3 - d1) g1,
    m3 = (d2 - d1)/2 (g0 - g1),   y0 = m0 + m1 + m3,   y1 = m1 - m3,   y2 = m1 + m2 + m3,

and an axis of length 1 in one direct "tile" (m0 = d0 g0, m2 = d1 g1, y0 = m0 + m2). So 7
outputs take 3 + 3 + 4 = 10 products instead of 14, and a 7x7 grid 100 instead of 196, where
rounding it up to 8x8 tiles would take 144. Every product ("slot") pairs transformed input
values with one of four transformed weights, its type: g0 (0), g0 + g1 (1), g1 (2) and
g0 - g1 (3, F(3, 2) only). Nested over rows and columns, a slot pair (u, v) multiplies by
U[u, v] = (G w G^T)[u, v], and over channels the products of all the slot pairs of one type
pair, in every tile, are one GEMM: (slots, Cin) @ U[u, v] (Cin, Cout). The outputs are
A^T M A. Every transform coefficient is 0, +-1 or +-1/2, so the transforms are exact up to the
rounding of adds: results differ from the direct GEMM's by about 1e-6 relative in float32,
1e-15 in float64.

**Layout.** For a block of nb images, the slots of each column type v are one C-contiguous
(row slots, column slots of type v, nb, C) array, its row slots sorted by type, all carved
from one flat buffer (``_Plan.blocks``). The slots of type pair (u, v) are then a contiguous
run of it, one GEMM operand as it stands, and with the images just before the channels the
transforms' passes run over long contiguous stretches. The output transform works on the
products in place (see ``_output_transform``).

**Cost.** The transforms are elementwise passes over the input and over the products, a few
ms at DCGAN sizes against the tens of ms the GEMMs save. No tile reads past the direct form's
inputs, so nothing is wasted on rounding a grid up.

**Threads.** For the correlation, the images are cut into one block per pool thread, and each
thread runs the whole pipeline (input transform, the GEMMs, output transform) on its own
block, a few images at a time so that its temporaries stay small, with no barrier between the
stages (measured faster than whole-batch stages with split GEMMs: see benchmarks/README.md).
The weight gradient needs every image's slots in each GEMM, so it and the fused pair run stage
by stage over the whole batch: the transforms split by images, the GEMMs by output channels
(the gradient) or by rows (the pair's correlation).
"""
from __future__ import annotations

import numpy as np

from . import parallel
from .workspace import _workspace

__all__ = ["correlate2x2", "correlate2x2_and_grad_weight", "correlate2x2_grad_weight",
           "transform_weight", "weight_types", "worthwhile"]

# Below these channel counts the GEMMs are too narrow for the work saved to pay for the
# transforms (measured on the benchmark VM; see benchmarks/README.md).
MIN_IN_CHANNELS = 64
MIN_OUT_CHANNELS = 128
# GEMM rows per chunk of images (of the largest slot type pair): enough rows for BLAS to run
# near its peak, few enough that a chunk's temporaries stay a few MB.
_ROWS_PER_CHUNK = 512


def worthwhile(cin: int, cout: int, rows: int, cols: int) -> bool:
    """Whether a (rows x cols)-output, Cin -> Cout 2x2 correlation should take this path."""
    return cin >= MIN_IN_CHANNELS and cout >= MIN_OUT_CHANNELS and rows >= 2 and cols >= 2


def weight_types(rows: int, cols: int) -> int:
    """How many weight types an R x Q output needs (``transform_weight``'s ``types``): 4 when
    an axis has an F(3, 2) tile (an odd length of 3 or more), else 3."""
    return 4 if 3 in (_Axis(rows).end, _Axis(cols).end) else 3


# the 2-tap weight each slot type multiplies by: (coefficient of g0, of g1)
_G = ((1, 0), (1, 1), (0, 1), (1, -1))


class _Axis:
    """The tiles of one axis of ``length`` outputs: ``pairs`` F(2, 2) tiles, then ``end``
    (3: one F(3, 2) tile; 1: one direct tile; None: nothing). ``counts[u]``: how many tiles
    have a slot of type u (the pairs' come first, then the end tile's); ``offsets[u]``: where
    type u's slots start when all of them are in one axis, sorted by type."""

    __slots__ = ("length", "pairs", "end", "counts", "offsets", "slots")

    def __init__(self, length: int):
        self.length = length
        if length % 2 == 0:
            self.pairs, self.end = length // 2, None
        else:
            self.pairs, self.end = (length - 3) // 2 if length > 1 else 0, min(length, 3)
        ends = {None: (), 1: (0, 2), 3: (0, 1, 2, 3)}[self.end]
        self.counts = tuple((self.pairs if u < 3 else 0) + (u in ends) for u in range(4))
        self.offsets = tuple(sum(self.counts[:u]) for u in range(4))
        self.slots = sum(self.counts)

    def split(self, a) -> list:
        """a's first axis (all slots, sorted by type) as one view per type (None if none)."""
        return [a[o:o + c] if c else None for o, c in zip(self.offsets, self.counts)]


class _Plan:
    """The slots of an R x Q output. For nb images, the slots of column type v are one
    (row slots, column slots of type v, nb, C) array; the slots of the type pair (u, v) are
    its C-contiguous run of the row slots of type u: one GEMM operand as it stands. (The
    images innermost but for the channels: the transforms' passes then run over long
    contiguous stretches.)"""

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = _Axis(rows), _Axis(cols)
        self.slots = self.rows.slots * self.cols.slots
        self.pairs = [(u, v) for u in range(4) for v in range(4)
                      if self.rows.counts[u] and self.cols.counts[v]]
        # images per chunk: about _ROWS_PER_CHUNK rows in the largest GEMM
        self.chunk = max(1, _ROWS_PER_CHUNK // (max(self.rows.counts) * max(self.cols.counts)))

    def blocks(self, flat, nb: int, c: int) -> list:
        """Per column type v, the (row slots, column slots of type v, nb, c) view of a flat
        buffer of nb * slots * c values (None for a type without slots)."""
        out, at = [], 0
        for k in self.cols.counts:
            size = self.rows.slots * nb * k * c
            out.append(flat[at:at + size].reshape(self.rows.slots, k, nb, c) if k else None)
            at += size
        return out

    def operand(self, blocks, u: int, v: int):
        """The (rows, c) matrix of slot type pair (u, v) in ``blocks``."""
        o, k = self.rows.offsets[u], self.rows.counts[u]
        b = blocks[v][o:o + k]
        return b.reshape(-1, b.shape[-1])


def _forward(a, axis: int):
    """A view of a with ``axis`` moved to the front."""
    return np.moveaxis(a, axis, 0)


def _axis_input(take, ax: _Axis, dst) -> None:
    """B^T d along one axis: dst[u] (type u's slots first, then anything) from the inputs,
    take(start, stop, step) giving those positions (that axis first, as dst)."""
    p, e = ax.pairs, 2 * ax.pairs
    if p:
        od = take(1, e, 2)
        np.subtract(take(0, e, 2), od, out=dst[0][:p])
        np.copyto(dst[1][:p], od)
        np.subtract(take(2, e + 1, 2), od, out=dst[2][:p])
    if ax.end == 1:
        np.copyto(dst[0][p:], take(e, e + 1))
        np.copyto(dst[2][p:], take(e + 1, e + 2))
    elif ax.end == 3:
        s = [take(e + i, e + i + 1) for i in range(4)]
        m1, m3 = dst[1][p:], dst[3]  # (the end tile's type 3 is the only one)
        np.subtract(s[0], s[2], out=dst[0][p:])
        np.add(s[1], s[2], out=m1)
        np.multiply(m1, 0.5, out=m1)
        np.subtract(s[3], s[1], out=dst[2][p:])
        np.subtract(s[2], s[1], out=m3)
        np.multiply(m3, 0.5, out=m3)


def _axis_output(m, ax: _Axis, put) -> None:
    """A^T M along one axis, from m[u] (type u's slots first): put(start, stop, step) gives
    the output positions to write (that axis first)."""
    p, e = ax.pairs, 2 * ax.pairs
    if p:
        m1 = m[1][:p]
        np.add(m[0][:p], m1, out=put(0, e, 2))
        np.add(m1, m[2][:p], out=put(1, e, 2))
    if ax.end == 1:
        np.add(m[0][p:], m[2][p:], out=put(e, e + 1))
    elif ax.end == 3:
        m1 = m[1][p:]
        y0, y1, y2 = (put(e + i, e + i + 1) for i in range(3))
        np.add(m1, m[3], out=y0)
        np.subtract(m1, m[3], out=y1)
        np.add(y0, m[2][p:], out=y2)
        np.add(y0, m[0][p:], out=y0)


def _axis_gradient(take, ax: _Axis, dst) -> None:
    """The adjoint of ``_axis_output``: dst[u] (type u's slots first) = A g of the gradient,
    take(start, stop, step) giving its positions (that axis first)."""
    p, e = ax.pairs, 2 * ax.pairs
    if p:
        ge, go = take(0, e, 2), take(1, e, 2)
        np.copyto(dst[0][:p], ge)
        np.add(ge, go, out=dst[1][:p])
        np.copyto(dst[2][:p], go)
    if ax.end:
        g0 = take(e, e + 1)
        np.copyto(dst[0][p:], g0)
        if ax.end == 1:
            np.copyto(dst[2][p:], g0)
        else:
            g1, g2, m3 = take(e + 1, e + 2), take(e + 2, e + 3), dst[3]
            np.copyto(dst[2][p:], g2)
            np.add(g0, g2, out=m3)
            np.add(m3, g1, out=dst[1][p:])
            np.subtract(m3, g1, out=m3)


def _along(a, axis: int):
    """take/put for _axis_*: positions start:stop:step of a's ``axis``, that axis first."""
    lead = (slice(None),) * axis
    return lambda start, stop, step=1: _forward(a[lead + (slice(start, stop, step),)], axis)


def _rows_of(a):
    """take/put for _axis_* over the rows of an image array a (nb, rows, cols, C): positions
    start:stop:step of its rows, as (rows, cols, nb, C) (the blocks' order)."""
    return lambda start, stop, step=1: a[:, start:stop:step].transpose(1, 2, 0, 3)


def _input_transform(x, plan: _Plan, vb) -> None:
    """The slots B^T d B of x (nb, >= R + 1, >= Q + 1, C) into the blocks vb
    (``plan.blocks``): rows into a (row slots, Q + 1, nb, C) scratch array, then columns."""
    nb, c = x.shape[0], x.shape[3]
    q1 = plan.cols.length + 1
    r = _workspace.take("winograd_rows", (plan.rows.slots, q1, nb, c), x.dtype)
    _axis_input(_rows_of(x[:, :, :q1]), plan.rows, plan.rows.split(r))
    _axis_input(_along(r, 1), plan.cols, [None if b is None else _forward(b, 1) for b in vb])


def _output_transform(mb, plan: _Plan, out) -> None:
    """out (nb, R, Q, Cout), any strides, = A^T M A from the product blocks mb (overwritten).

    Columns first, in place: the blocks of column types 0 and 2 end up holding the even and
    the odd output columns (and the F(3, 2) tile's last column, if any, is type 3's block),
    so that each group is one (row slots, columns, nb, Cout) array; then rows, from each group
    into its columns of out."""
    ax = plan.cols
    p, e = ax.pairs, 2 * ax.pairs
    m = mb
    if p:
        m1 = m[1][:, :p]
        np.add(m[0][:, :p], m1, out=m[0][:, :p])
        np.add(m[2][:, :p], m1, out=m[2][:, :p])
    evens, odds, last = m[0][:, :p + (ax.end is not None)], m[2][:, :p], None
    if ax.end == 1:
        np.add(m[0][:, p:], m[2][:, p:], out=m[0][:, p:])
    elif ax.end == 3:
        m0, m1, m2, m3 = m[0][:, p:], m[1][:, p:], m[2][:, p:], m[3]
        np.add(m0, m1, out=m0)
        np.add(m0, m3, out=m0)      # y0 = m0 + m1 + m3
        np.add(m2, m1, out=m2)
        np.subtract(m1, m3, out=m1)  # y1 = m1 - m3
        np.add(m3, m2, out=m3)      # y2 = m1 + m2 + m3
        np.copyto(m2, m1)           # (y1 after the pairs' odd columns)
        odds, last = m[2][:, :p + 1], m3
    for group, cols in ((evens, slice(0, e + 1, 2)), (odds, slice(1, e + 2, 2)),
                        (last, slice(e + 2, e + 3))):
        if group is not None and group.shape[1]:
            _axis_output(plan.rows.split(group), plan.rows, _rows_of(out[:, :, cols]))


def _check_fit(what, xn, out_shape):
    n, h1, w1, _ = xn.shape
    rows, cols = out_shape[1:3]
    if out_shape[0] != n or h1 < rows + 1 or w1 < cols + 1 \
            or (xn.size and xn.strides[3] != xn.itemsize):
        raise ValueError(f"{what}: input {xn.shape} and output {tuple(out_shape)} do not fit: "
                         f"expected (N, >= R + 1, >= Q + 1, Cin) with a unit stride in Cin, "
                         f"and (N, R, Q, Cout)")
    return _Plan(rows, cols)


def _check_weight(what, u, xn, out_shape):
    t = weight_types(*out_shape[1:3])
    cin, cout = xn.shape[3], out_shape[3]
    if u.shape != (t, t, cin, cout):
        raise ValueError(f"{what}: transformed weight {u.shape} does not fit input "
                         f"{xn.shape} and output {tuple(out_shape)}: expected "
                         f"({t}, {t}, {cin}, {cout})")


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


def transform_weight(w, out=None, types: int = 3):
    """w (2, 2, Cin, Cout) -> G w G^T, (types, types, Cin, Cout) C-contiguous: rows and
    columns each become (g0, g0 + g1, g1) and, with ``types=4`` (``weight_types``), g0 - g1.
    Written into ``out`` when given (its shape then gives the types)."""
    if out is not None:
        types = out.shape[0]
    if types not in (3, 4):
        raise ValueError(f"transform_weight: types must be 3 or 4, got {types}")
    u = np.empty((types, types) + w.shape[2:], w.dtype) if out is None else out

    def rows(lo, hi):  # input channels lo..hi-1
        wb, ub = w[:, :, lo:hi], u[:, :, lo:hi]
        # rows: u[0, :2] = w[0], u[2, :2] = w[1], u[1, :2] = w[0] + w[1] (u[3, :2] the
        # difference); then the columns, the same way in place
        ub[0, :2], ub[2, :2] = wb[0], wb[1]
        np.add(wb[0], wb[1], out=ub[1, :2])
        if types == 4:
            np.subtract(wb[0], wb[1], out=ub[3, :2])
            np.subtract(ub[:, 0], ub[:, 1], out=ub[:, 3])
        ub[:, 2] = ub[:, 1]
        ub[:, 1] += ub[:, 0]

    parallel.run(rows, w.shape[2], w.nbytes + u.nbytes)
    return u


def correlate2x2(xn, u, out):
    """out[n, r, c, :] = sum_{e, f} xn[n, r + e, c + f, :] @ w[e, f] for every (r, c) of out.

    out: (N, R, Q, Cout), written in place (any strides); u: ``transform_weight(w,
    types=weight_types(R, Q))``; xn: (N, >= R + 1, >= Q + 1, Cin), unit-strided in its last
    axis (a channels-last padded image; rows and columns past R + 1 and Q + 1 are not read).
    Returns out."""
    plan = _check_fit("correlate2x2", xn, out.shape)
    _check_weight("correlate2x2", u, xn, out.shape)
    n, cin, cout = xn.shape[0], xn.shape[3], out.shape[3]
    if out.size == 0:
        return out

    def images(lo, hi):  # the whole pipeline, a few images at a time
        for s in range(lo, hi, plan.chunk):
            e = min(hi, s + plan.chunk)
            vb = plan.blocks(_workspace.take("winograd_v", ((e - s) * plan.slots * cin,),
                                             xn.dtype), e - s, cin)
            _input_transform(xn[s:e], plan, vb)
            mb = plan.blocks(_workspace.take("winograd_m", ((e - s) * plan.slots * cout,),
                                             out.dtype), e - s, cout)
            for uv in plan.pairs:
                np.matmul(plan.operand(vb, *uv), u[uv], out=plan.operand(mb, *uv))
            _output_transform(mb, plan, out[s:e])

    _blas_blocks(images, n, 2 * n * plan.slots * cin * cout)
    return out


def correlate2x2_grad_weight(xn, gy):
    """gw[e, f] = sum_{n, r, q} gy[n, r, q, :]^T xn[n, r + e, q + f, :], (2, 2, Cout, Cin): the
    weight gradient of ``correlate2x2`` (out = gy's shape (N, R, Q, Cout), any strides; xn as
    there).

    The same algorithm with the roles swapped: gw = G^T [sum over slots of V * (A g)] G, where
    A g is the adjoint of the output transform applied to gy, and the sum over slots (and
    channels' pairs) is one GEMM per slot type pair, (A g)[u, v]^T @ V[u, v], of
    (Cout, slots) @ (slots, Cin). (Cout first: a conv's weight is (O, C, kh, kw).)"""
    plan = _check_fit("correlate2x2_grad_weight", xn, gy.shape)
    if gy.size == 0:
        return np.zeros((2, 2, gy.shape[3], xn.shape[3]), np.result_type(xn.dtype, gy.dtype))
    return _grad_weight(plan, _transformed_input(xn, plan), gy)


def correlate2x2_and_grad_weight(xn, u, out, gy):
    """``(correlate2x2(xn, u, out), correlate2x2_grad_weight(xn, gy))`` with one input
    transform of xn for both (gy must have out's shape): a transposed conv's backward, whose
    input gradient and weight gradient both read its output gradient's windows. Here each
    stage runs over the whole batch (the products as split GEMMs), one after the other."""
    plan = _check_fit("correlate2x2_and_grad_weight", xn, out.shape)
    n, cout = xn.shape[0], out.shape[3]
    if gy.shape[:3] != out.shape[:3]:
        raise ValueError(f"correlate2x2_and_grad_weight: input {xn.shape}, transformed weight "
                         f"{u.shape}, output {out.shape} and gradient {gy.shape} do not fit")
    _check_weight("correlate2x2_and_grad_weight", u, xn, out.shape)
    if out.size == 0 or gy.size == 0:
        return correlate2x2(xn, u, out), correlate2x2_grad_weight(xn, gy)
    vb = _transformed_input(xn, plan)
    gw = _grad_weight(plan, vb, gy)
    # (the products go where the gradient's slots were: the same size, and spent by now)
    mb = plan.blocks(_workspace.take("winograd_m", (n * plan.slots * cout,), out.dtype), n,
                     cout)
    for uv in plan.pairs:
        parallel.matmul(plan.operand(vb, *uv), u[uv], out=plan.operand(mb, *uv))
    parallel.run(lambda lo, hi: _output_transform(_images(mb, lo, hi), plan, out[lo:hi]), n,
                 4 * out.nbytes)
    return out, gw


def _images(blocks, lo: int, hi: int) -> list:
    """Images lo..hi-1 of ``plan.blocks`` views."""
    return [None if b is None else b[:, :, lo:hi] for b in blocks]


def _transformed_input(xn, plan: _Plan) -> list:
    """The slot blocks V (``plan.blocks``, Cin) of the whole batch, in a workspace buffer."""
    n, cin = xn.shape[0], xn.shape[3]
    flat = _workspace.take("winograd_v", (n * plan.slots * cin,), xn.dtype)
    vb = plan.blocks(flat, n, cin)
    parallel.run(lambda lo, hi: _input_transform(xn[lo:hi], plan, _images(vb, lo, hi)), n,
                 4 * flat.nbytes)
    return vb


def _grad_weight(plan: _Plan, vb, gy):
    """correlate2x2_grad_weight from V = _transformed_input(xn, plan)."""
    n, cin = vb[0].shape[2], vb[0].shape[3]
    cout = gy.shape[3]
    dtype = np.result_type(vb[0].dtype, gy.dtype)
    gw = np.empty((2, 2, cout, cin), dtype)
    gflat = _workspace.take("winograd_m", (n * plan.slots * cout,), gy.dtype)
    gb = plan.blocks(gflat, n, cout)
    q = plan.cols.length

    def transform(lo, hi):  # A g A^T of images lo..hi-1: rows, then columns
        r = _workspace.take("winograd_rows", (plan.rows.slots, q, hi - lo, cout), gy.dtype)
        _axis_gradient(_rows_of(gy[lo:hi]), plan.rows, plan.rows.split(r))
        _axis_gradient(_along(r, 1), plan.cols,
                       [None if b is None else _forward(b[:, :, lo:hi], 1) for b in gb])

    parallel.run(transform, n, 4 * gflat.nbytes)
    # gw[e, f] = sum_{u, v} G[u, e] G[v, f] M[u, v]: each pair's M is added into the (up to
    # four) gw[e, f] it enters as soon as it is made, so only one is held at a time
    terms = {uv: [(e, f, _G[uv[0]][e] * _G[uv[1]][f]) for e in range(2) for f in range(2)
                  if _G[uv[0]][e] * _G[uv[1]][f]] for uv in plan.pairs}

    def products(lo, hi):  # output channels lo..hi-1
        m = _workspace.take("winograd_mg", (hi - lo, cin), dtype)
        gw[:, :, lo:hi] = 0
        for uv in plan.pairs:
            np.matmul(plan.operand(gb, *uv)[:, lo:hi].T, plan.operand(vb, *uv), out=m)
            for e, f, c in terms[uv]:
                dst = gw[e, f, lo:hi]
                (np.add if c == 1 else np.subtract)(dst, m, out=dst)

    _blas_blocks(products, cout, 2 * n * plan.slots * cin * cout)
    return gw
