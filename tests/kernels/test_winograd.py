"""kernels.winograd (F(2, 2) tiles, with an F(3, 2) tile ending each odd axis) against the
direct sums in float64 and float32, odd and even grids, one and two threads, small chunks; the
conv paths that use it (the sub-pixel transposed
conv, the space-to-depth 4x4 stride-2 conv, its weight gradient and the fused pair) against the
naive loops, with spies showing the Winograd path ran; first- and second-order gradient checks
through F.conv2d and F.conv_transpose2d with the size thresholds lowered so that small shapes
take it; and the errors."""
import numpy as np
import pytest

import minigan.nn.functional as F
from minigan.kernels import conv as KC
from minigan.kernels import parallel as P
from minigan.kernels import winograd as WG
from minigan.testing import check_backward, check_double_backward

from .test_conv_kernels import ref_conv2d, ref_conv_transpose2d, ref_grad_weight


def direct(xn, w, rows, cols):
    """out[n, r, c] = sum_{e, f} xn[n, r + e, c + f] @ w[e, f]: the definition, by einsum."""
    out = 0
    for e in range(2):
        for f in range(2):
            out = out + np.einsum("nrqi,io->nrqo", xn[:, e:e + rows, f:f + cols], w[e, f])
    return out


def direct_grad_weight(xn, gy):
    rows, cols = gy.shape[1:3]
    gw = np.empty((2, 2, gy.shape[3], xn.shape[3]))
    for e in range(2):
        for f in range(2):
            gw[e, f] = np.einsum("nrqo,nrqi->oi", gy, xn[:, e:e + rows, f:f + cols])
    return gw


def padded_input(rng, n, rows, cols, cin, dtype=np.float64):
    """An input for an R x Q output: exactly the R + 1 rows and Q + 1 columns it reads."""
    return rng.standard_normal((n, rows + 1, cols + 1, cin)).astype(dtype)


def transformed(w, rows, cols):
    return WG.transform_weight(w, types=WG.weight_types(rows, cols))


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, monkeypatch):
    """The thread count for one test, with the pool's size thresholds at their minimum so that
    small test arrays are split too (each pool block makes single-threaded BLAS calls)."""
    before = P.get_num_threads()
    monkeypatch.setattr(P, "MIN_BYTES", 2)
    monkeypatch.setattr(P, "MIN_GEMM_FLOPS", 1)
    P.set_num_threads(request.param)
    yield request.param
    P.set_num_threads(before)


# even, odd (one F(3, 2) tile: 3, 5, 7, 9 and after pairs), mixed, and length-1 axes
GRIDS = [(2, 2), (4, 6), (3, 4), (5, 3), (7, 7), (3, 3), (9, 5), (1, 1), (1, 4), (2, 1), (1, 3)]


@pytest.mark.parametrize("rows,cols", GRIDS)
@pytest.mark.parametrize("chunk", [512, 3])
def test_correlate2x2_is_the_direct_sum(rows, cols, chunk, threads, monkeypatch):
    monkeypatch.setattr(WG, "_ROWS_PER_CHUNK", chunk)  # 3: one image per chunk
    rng = np.random.default_rng(rows * 10 + cols)
    xn = padded_input(rng, 5, rows, cols, 3)
    w = rng.standard_normal((2, 2, 3, 4))
    out = np.full((5, rows, cols, 4), np.nan)
    got = WG.correlate2x2(xn, transformed(w, rows, cols), out)
    assert got is out
    np.testing.assert_allclose(out, direct(xn, w, rows, cols), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows,cols", GRIDS)
def test_grad_weight_and_fused_pair_are_the_direct_sums(rows, cols, threads):
    rng = np.random.default_rng(rows * 10 + cols + 1)
    xn = padded_input(rng, 3, rows, cols, 4)
    w = rng.standard_normal((2, 2, 4, 5))
    gy = rng.standard_normal((3, rows, cols, 5))
    ref_gw = direct_grad_weight(xn, gy)
    np.testing.assert_allclose(WG.correlate2x2_grad_weight(xn, gy), ref_gw,
                               rtol=1e-12, atol=1e-12)
    out = np.empty((3, rows, cols, 5))
    got, gw = WG.correlate2x2_and_grad_weight(xn, transformed(w, rows, cols), out, gy)
    assert got is out
    np.testing.assert_allclose(out, direct(xn, w, rows, cols), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, ref_gw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows,cols", [(4, 6), (5, 7)])
def test_strided_operands_and_junk_past_the_direct_form(rows, cols):
    """gy and out may be any views (a transposed NCHW array); no grid, even or odd, reads
    beyond the direct form's R + 1 rows and Q + 1 columns, so junk there changes nothing."""
    rng = np.random.default_rng(3)
    xn = rng.standard_normal((2, rows + 1, cols + 1, 3))
    xn_junk = np.full((2, rows + 3, cols + 2, 3), 1e30)
    xn_junk[:, :rows + 1, :cols + 1] = xn
    w = rng.standard_normal((2, 2, 3, 4))
    gy = rng.standard_normal((2, 4, rows, cols)).transpose(0, 2, 3, 1)  # strided
    out = np.empty((2, 4, rows, cols)).transpose(0, 2, 3, 1)
    WG.correlate2x2(xn_junk, transformed(w, rows, cols), out)
    np.testing.assert_allclose(out, direct(xn, w, rows, cols), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(WG.correlate2x2_grad_weight(xn_junk, gy),
                               direct_grad_weight(xn, gy), rtol=1e-12, atol=1e-12)
    out2 = np.empty((2, 4, rows, cols)).transpose(0, 2, 3, 1)
    _, gw = WG.correlate2x2_and_grad_weight(xn_junk, transformed(w, rows, cols), out2, gy)
    np.testing.assert_allclose(out2, direct(xn, w, rows, cols), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, direct_grad_weight(xn, gy), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows,cols", [(6, 5), (7, 7)])
def test_float32_stays_float32_and_close(rows, cols):
    rng = np.random.default_rng(4)
    xn = padded_input(rng, 4, rows, cols, 64)
    w = rng.standard_normal((2, 2, 64, 32))
    gy = rng.standard_normal((4, rows, cols, 32))
    x32, w32, g32 = xn.astype(np.float32), w.astype(np.float32), gy.astype(np.float32)
    out = np.empty((4, rows, cols, 32), np.float32)
    WG.correlate2x2(x32, transformed(w32, rows, cols), out)
    gw = WG.correlate2x2_grad_weight(x32, g32)
    assert out.dtype == gw.dtype == np.float32
    ref = direct(xn, w, rows, cols)
    ref_gw = direct_grad_weight(xn, gy)
    # (measured: 1e-6 and below; the direct float32 sums are about 4e-7)
    assert np.abs(out - ref).max() <= 5e-6 * np.abs(ref).max()
    assert np.abs(gw - ref_gw).max() <= 5e-6 * np.abs(ref_gw).max()


@pytest.mark.parametrize("cin", [1, 3, 7])
def test_transform_weight_is_g_w_gt(cin, threads):
    # (split over input channels across the pool's threads: 7 gives blocks of 4 and 3)
    rng = np.random.default_rng(5)
    w = rng.standard_normal((2, 2, cin, 4))
    g = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, -1.0]])
    for t in (3, 4):
        want = np.einsum("ke,efio,lf->klio", g[:t], w, g[:t])
        np.testing.assert_allclose(WG.transform_weight(w, types=t), want, rtol=1e-15,
                                   atol=1e-15)
        buf = np.full((t, t, cin, 4), np.nan)
        assert WG.transform_weight(w, out=buf) is buf  # (the types from out's shape)
        np.testing.assert_allclose(buf, want, rtol=1e-15, atol=1e-15)
    with pytest.raises(ValueError, match="types must be 3 or 4, got 5"):
        WG.transform_weight(w, types=5)


def test_weight_types_are_four_where_an_axis_has_an_f32_tile():
    assert WG.weight_types(4, 6) == WG.weight_types(1, 2) == WG.weight_types(1, 1) == 3
    assert WG.weight_types(3, 4) == WG.weight_types(2, 7) == WG.weight_types(7, 7) == 4


def test_worthwhile_needs_wide_channels_and_two_rows():
    assert WG.worthwhile(64, 128, 16, 16)
    assert WG.worthwhile(512, 512, 7, 7)          # 100 products instead of 196
    assert WG.worthwhile(512, 512, 3, 3)          # one F(3, 2) tile each way: 16 of 36
    assert not WG.worthwhile(63, 128, 16, 16)     # too few input channels
    assert not WG.worthwhile(64, 127, 16, 16)     # too few output channels
    assert not WG.worthwhile(512, 512, 1, 8)      # a single row


def test_shapes_that_do_not_fit_are_named():
    xn = np.zeros((2, 5, 5, 3))
    u = np.zeros((3, 3, 3, 4))
    with pytest.raises(ValueError, match=r"input \(2, 5, 5, 3\) and output \(2, 5, 4, 4\)"):
        WG.correlate2x2(xn, u, np.empty((2, 5, 4, 4)))  # 5 rows need 5 + 1 input rows
    with pytest.raises(ValueError, match=r"input \(2, 5, 5, 3\) and output \(3, 4, 4, 4\)"):
        WG.correlate2x2(xn, u, np.empty((3, 4, 4, 4)))  # batch sizes differ
    with pytest.raises(ValueError, match=r"transformed weight \(3, 3, 3, 5\)"):
        WG.correlate2x2(xn, np.zeros((3, 3, 3, 5)), np.empty((2, 4, 4, 4)))
    with pytest.raises(ValueError, match=r"weight \(3, 3, 3, 4\) .* expected \(4, 4, 3, 4\)"):
        WG.correlate2x2(xn, u, np.empty((2, 4, 3, 4)))  # an odd axis needs the 4 types
    with pytest.raises(ValueError, match="unit stride in Cin"):
        WG.correlate2x2(np.zeros((2, 3, 5, 5)).transpose(0, 2, 3, 1), u,
                        np.empty((2, 4, 4, 4)))
    with pytest.raises(ValueError, match=r"correlate2x2_grad_weight: input \(2, 5, 5, 3\)"):
        WG.correlate2x2_grad_weight(xn, np.zeros((2, 6, 4, 4)))
    with pytest.raises(ValueError, match=r"gradient \(2, 4, 2, 4\)"):
        WG.correlate2x2_and_grad_weight(xn, u, np.empty((2, 4, 4, 4)), np.zeros((2, 4, 2, 4)))


def test_empty_batches():
    xn = np.zeros((0, 5, 5, 3))
    out = np.empty((0, 4, 4, 2))
    assert WG.correlate2x2(xn, np.zeros((3, 3, 3, 2)), out) is out
    gw = WG.correlate2x2_grad_weight(xn, np.zeros((0, 4, 4, 2)))
    np.testing.assert_array_equal(gw, np.zeros((2, 2, 2, 3)))


# The conv paths that use it

@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Every size takes the Winograd paths: the channel thresholds down to 1, channels-last from
    one channel, and a transposed conv in sub-pixel form whatever its growth. Returns the list
    of the Winograd entry points called."""
    monkeypatch.setattr(WG, "MIN_IN_CHANNELS", 1)
    monkeypatch.setattr(WG, "MIN_OUT_CHANNELS", 1)
    monkeypatch.setattr(KC, "_CHANNELS_LAST_MIN", 1)
    monkeypatch.setattr(KC, "_SUBPIXEL_MAX_GROWTH", float("inf"))
    calls = []
    for name in ("correlate2x2", "correlate2x2_grad_weight", "correlate2x2_and_grad_weight"):
        real = getattr(WG, name)
        monkeypatch.setattr(WG, name, lambda *a, _n=name, _r=real: calls.append(_n) or _r(*a))
    return calls


def poison_workspace():
    """Every CPU scratch buffer to NaN bytes: a kernel that leaves part of one unwritten and
    then reads it (stale data from an earlier call would hide that) gives NaNs."""
    for buf in KC._workspace.buffers.values():
        buf[:] = 0xFF


@pytest.mark.parametrize("hw,p", [((8, 8), 1), ((12, 8), 1), ((9, 8), 1), ((6, 10), 0),
                                  ((6, 6), 2), ((14, 14), 1), ((10, 6), 1), ((7, 9), 1)])
# outputs 4x4, 6x4, 4x4, 2x4, 4x4, then odd ones: 7x7 (dcgan's), 5x3 and 3x4
def test_4x4_stride_2_conv_by_space_to_depth_matches_naive_loops(hw, p, winograd_everywhere,
                                                                  threads):
    # (batch 3 over 2 threads: the space-to-depth copy's blocks are 2 and 1 images)
    rng = np.random.default_rng(hw[0] * 7 + p)
    x, w, b = rng.standard_normal((3, 3, *hw)), rng.standard_normal((5, 3, 4, 4)), \
        rng.standard_normal(5)
    s, pp, d = (2, 2), (p, p), (1, 1)
    poison_workspace()
    y = KC.conv2d_forward(x, w, b, s, pp, d)
    assert winograd_everywhere == ["correlate2x2"]
    np.testing.assert_allclose(y, ref_conv2d(x, w, b, s, pp, d), rtol=1e-11, atol=1e-11)
    gy = rng.standard_normal(y.shape)
    ref_gw = ref_grad_weight(x, gy, (4, 4), s, pp, d)
    poison_workspace()
    gw = KC.conv2d_grad_weight(x, gy, (4, 4), s, pp, d)
    np.testing.assert_allclose(gw, ref_gw, rtol=1e-11, atol=1e-11)
    poison_workspace()
    y2, gw2 = KC.conv2d_forward_and_grad_weight(x, w, gy, s, pp, d)
    np.testing.assert_allclose(y2, ref_conv2d(x, w, None, s, pp, d), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(gw2, ref_gw, rtol=1e-11, atol=1e-11)
    assert winograd_everywhere == ["correlate2x2", "correlate2x2_grad_weight",
                                   "correlate2x2_and_grad_weight"]


def test_space_to_depth_skips_other_geometries(winograd_everywhere):
    """Other kernels, strides and dilations keep im2col."""
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((1, 2, 14, 14)), rng.standard_normal((3, 2, 4, 4))
    for s, p, d, ws in (((1, 1), (1, 1), (1, 1), w), ((2, 2), (1, 1), (2, 2), w),
                        ((2, 2), (1, 1), (1, 1), w[..., :3])):
        y = KC.conv2d_forward(x, ws, None, s, p, d)
        np.testing.assert_allclose(y, ref_conv2d(x, ws, None, s, p, d), rtol=1e-11, atol=1e-11)
    assert KC.conv_output_size((14, 14), (4, 4), (2, 2), (1, 1), (1, 1)) == (7, 7)
    assert winograd_everywhere == []


@pytest.mark.parametrize("hw,op", [((4, 4), 0), ((3, 5), 1), ((7, 7), 0), ((1, 2), 0)])
def test_subpixel_transposed_conv_by_winograd_matches_naive_loops(hw, op, winograd_everywhere):
    rng = np.random.default_rng(hw[0] + 10 * hw[1])
    x, w, b = rng.standard_normal((2, 3, *hw)), rng.standard_normal((3, 4, 4, 4)), \
        rng.standard_normal(4)
    y = KC.conv_transpose2d_forward(x, w, b, 2, 1, op)
    assert winograd_everywhere == ["correlate2x2"]
    ref = ref_conv_transpose2d(x, w, b, (2, 2), (1, 1), (op, op), (1, 1))
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-11, atol=1e-11)


def test_dcgan_sizes_take_winograd_by_default(monkeypatch):
    """With the default thresholds: the dcgan64 generator's 128 -> 64 channel 16x16 -> 32x32
    layer, its discriminator's 64 -> 128 channel 32x32 -> 16x16 layer and dcgan's 64 -> 128
    channel 14x14 -> 7x7 one (an odd grid) take Winograd; the 3-channel image layers do not."""
    calls = []
    real = WG.correlate2x2
    monkeypatch.setattr(WG, "correlate2x2", lambda *a: calls.append(a[2].shape) or real(*a))
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 128, 16, 16)).astype(np.float32)
    y = KC.conv_transpose2d_forward(x, rng.standard_normal((128, 64, 4, 4)).astype(np.float32),
                                    None, 2, 1, 0)
    # (the sub-pixel grid of a 16x16 -> 32x32 layer has 17 x 17 windows of 4 phases each)
    assert calls == [(2, 17, 17, 4 * 64)] and y.shape == (2, 64, 32, 32)
    d = KC.conv2d_forward(y, rng.standard_normal((128, 64, 4, 4)).astype(np.float32), None,
                          (2, 2), (1, 1), (1, 1))
    assert calls[1:] == [(2, 16, 16, 128)] and d.shape == (2, 128, 16, 16)
    d7 = KC.conv2d_forward(rng.standard_normal((2, 64, 14, 14)).astype(np.float32),
                           rng.standard_normal((128, 64, 4, 4)).astype(np.float32), None,
                           (2, 2), (1, 1), (1, 1))
    assert calls[2:] == [(2, 7, 7, 128)] and d7.shape == (2, 128, 7, 7)
    KC.conv2d_forward(rng.standard_normal((2, 3, 32, 32)).astype(np.float32),
                      rng.standard_normal((64, 3, 4, 4)).astype(np.float32), None,
                      (2, 2), (1, 1), (1, 1))
    assert len(calls) == 3


# Gradient checks through the functional API, float64, first and second order

@pytest.mark.parametrize("op,xs,ws,weight_grads", [
    # conv2d: outputs 2x2 and 4x2, so its weight gradient takes Winograd too; its input
    # gradient is the sub-pixel transposed conv
    (F.conv2d, (2, 2, 4, 4), (3, 2, 4, 4), True),
    (F.conv2d, (2, 2, 8, 5), (3, 2, 4, 4), True),
    # conv_transpose2d: its forward is the sub-pixel form; its weight gradient is a conv2d
    # weight gradient whose output has the input's size, 2x2 and 3x2 (an F(3, 2) tile)
    (F.conv_transpose2d, (2, 2, 2, 2), (2, 3, 4, 4), True),
    (F.conv_transpose2d, (2, 2, 3, 2), (2, 3, 4, 4), True),
    (F.conv2d, (2, 2, 6, 10), (3, 2, 4, 4), True),  # 3x5 output
])
def test_first_and_second_order_through_winograd(op, xs, ws, weight_grads, winograd_everywhere):
    rng = np.random.default_rng(11)
    cout = ws[0] if op is F.conv2d else ws[1]
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(cout)

    def f(x, w, b):
        return op(x, w, b, 2, 1)

    check_backward(f, [x, w, b])
    check_double_backward(f, [x, w, b])
    assert "correlate2x2" in winograd_everywhere
    took = {"correlate2x2_grad_weight", "correlate2x2_and_grad_weight"} & set(winograd_everywhere)
    assert bool(took) is weight_grads
