"""Convolution kernels vs naive float64 loops (hypothesis over strides, paddings, dilations,
output paddings, odd and non-square sizes), adjoint identities, error messages, and GPU-vs-NumPy
parity for every kernel in float32 and float64."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minigan import backend
from minigan.kernels import conv as KC

to_np = backend.to_numpy
DEFAULT_SUBPIXEL_GROWTH = KC._SUBPIXEL_MAX_GROWTH  # read before the fixture below patches it
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True, params=["nchw", "nhwc", "nhwc-subpixel"])
def cpu_layout(request, monkeypatch):
    """Every CPU test runs through every CPU path: the channel-count switch is forced, and a
    transposed conv whose kernel is a multiple of its stride goes through col2im ("nhwc") or
    through the sub-pixel GEMM whatever its size ("nhwc-subpixel")."""
    monkeypatch.setattr(KC, "_CHANNELS_LAST_MIN", 10**9 if request.param == "nchw" else 1)
    monkeypatch.setattr(KC, "_SUBPIXEL_MAX_GROWTH",
                        float("inf") if request.param == "nhwc-subpixel" else 0.0)
    return request.param


# Naive references: loops straight from the definitions, float64

def _pad(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))


def ref_conv2d(x, w, b, s, p, d):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    xp = _pad(x, p)
    y = np.zeros((n, o, ho, wo))
    for nn in range(n):
        for oo in range(o):
            for a in range(ho):
                for bb in range(wo):
                    acc = 0.0 if b is None else b[oo]
                    for cc in range(c):
                        for i in range(kh):
                            for j in range(kw):
                                acc += w[oo, cc, i, j] * xp[nn, cc, a * s[0] + i * d[0],
                                                            bb * s[1] + j * d[1]]
                    y[nn, oo, a, bb] = acc
    return y


def ref_conv_transpose2d(x, w, b, s, p, op, d):
    """Scatter form: x[n,c,h,w] * w[c,o,i,j] lands on (h*s - p + i*d, w*s - p + j*d)."""
    n, cin, h, wd = x.shape
    _, cout, kh, kw = w.shape
    ho = (h - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    wo = (wd - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    big = np.zeros((n, cout, ho + 2 * p[0], wo + 2 * p[1]))
    for nn in range(n):
        for cc in range(cin):
            for hh in range(h):
                for ww in range(wd):
                    for i in range(kh):
                        for j in range(kw):
                            big[nn, :, hh * s[0] + i * d[0], ww * s[1] + j * d[1]] += (
                                x[nn, cc, hh, ww] * w[cc, :, i, j])
    y = big[:, :, p[0]:p[0] + ho, p[1]:p[1] + wo]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def ref_grad_weight(x, gy, k, s, p, d):
    n, c = x.shape[:2]
    o, ho, wo = gy.shape[1:]
    xp = _pad(x, p)
    gw = np.zeros((o, c, k[0], k[1]))
    for oo in range(o):
        for cc in range(c):
            for i in range(k[0]):
                for j in range(k[1]):
                    acc = 0.0
                    for nn in range(n):
                        for a in range(ho):
                            for bb in range(wo):
                                acc += gy[nn, oo, a, bb] * xp[nn, cc, a * s[0] + i * d[0],
                                                              bb * s[1] + j * d[1]]
                    gw[oo, cc, i, j] = acc
    return gw


# Random configurations

pairs = st.tuples


@st.composite
def conv_configs(draw):
    """A conv geometry with a positive output size; tiny so the naive loops stay fast."""
    k = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    s = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    p = draw(pairs(st.integers(0, 2), st.integers(0, 2)))
    d = draw(pairs(st.integers(1, 2), st.integers(1, 2)))
    hw = draw(pairs(st.integers(1, 9), st.integers(1, 9)))
    out = KC.conv_output_size(hw, k, s, p, d)
    assume(min(out) >= 1)
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return {"k": k, "s": s, "p": p, "d": d, "hw": hw, "n": n, "c": c, "o": o, "bias": bias,
            "seed": seed}


@st.composite
def transpose_configs(draw):
    k = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    s = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    p = draw(pairs(st.integers(0, 2), st.integers(0, 2)))
    d = draw(pairs(st.integers(1, 2), st.integers(1, 2)))
    op = draw(pairs(st.integers(0, max(s[0], d[0]) - 1), st.integers(0, max(s[1], d[1]) - 1)))
    hw = draw(pairs(st.integers(1, 6), st.integers(1, 6)))
    out = KC.conv_transpose_output_size(hw, k, s, p, op, d)
    assume(min(out) >= 1)
    n, cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return {"k": k, "s": s, "p": p, "op": op, "d": d, "hw": hw, "n": n, "cin": cin,
            "cout": cout, "bias": draw(st.booleans()), "seed": draw(st.integers(0, 2**31 - 1))}


def _rand(rng, *shape):
    return rng.standard_normal(shape)


# Forward passes and the weight gradient vs the naive loops

@FAST
@given(conv_configs())
def test_conv2d_forward_matches_naive_loops(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = _rand(rng, cfg["n"], cfg["c"], *cfg["hw"])
    w = _rand(rng, cfg["o"], cfg["c"], *cfg["k"])
    b = _rand(rng, cfg["o"]) if cfg["bias"] else None
    y = KC.conv2d_forward(x, w, b, cfg["s"], cfg["p"], cfg["d"])
    np.testing.assert_allclose(y, ref_conv2d(x, w, b, cfg["s"], cfg["p"], cfg["d"]),
                               rtol=1e-12, atol=1e-12)


@FAST
@given(conv_configs())
def test_conv2d_grad_weight_matches_naive_loops(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = _rand(rng, cfg["n"], cfg["c"], *cfg["hw"])
    out = KC.conv_output_size(cfg["hw"], cfg["k"], cfg["s"], cfg["p"], cfg["d"])
    gy = _rand(rng, cfg["n"], cfg["o"], *out)
    gw = KC.conv2d_grad_weight(x, gy, cfg["k"], cfg["s"], cfg["p"], cfg["d"])
    assert gw.shape == (cfg["o"], cfg["c"], *cfg["k"])
    np.testing.assert_allclose(gw, ref_grad_weight(x, gy, cfg["k"], cfg["s"], cfg["p"], cfg["d"]),
                               rtol=1e-12, atol=1e-12)


@FAST
@given(transpose_configs())
def test_conv_transpose2d_forward_matches_naive_loops(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = _rand(rng, cfg["n"], cfg["cin"], *cfg["hw"])
    w = _rand(rng, cfg["cin"], cfg["cout"], *cfg["k"])
    b = _rand(rng, cfg["cout"]) if cfg["bias"] else None
    y = KC.conv_transpose2d_forward(x, w, b, cfg["s"], cfg["p"], cfg["op"], cfg["d"])
    ref = ref_conv_transpose2d(x, w, b, cfg["s"], cfg["p"], cfg["op"], cfg["d"])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@FAST
@given(transpose_configs())
def test_conv_transpose_weight_grad_is_grad_weight_with_roles_swapped(cfg):
    """conv_transpose2d's weight gradient is conv2d_grad_weight(gy, x): check it against the
    derivative of the naive scatter, <d y / d w[c,o,i,j], gy>, via bilinearity."""
    rng = np.random.default_rng(cfg["seed"])
    s, p, op, d, k = cfg["s"], cfg["p"], cfg["op"], cfg["d"], cfg["k"]
    x = _rand(rng, cfg["n"], cfg["cin"], *cfg["hw"])
    w = _rand(rng, cfg["cin"], cfg["cout"], *k)
    out = KC.conv_transpose_output_size(cfg["hw"], k, s, p, op, d)
    gy = _rand(rng, cfg["n"], cfg["cout"], *out)
    gw = KC.conv2d_grad_weight(gy, x, k, s, p, d)
    assert gw.shape == w.shape
    # y is linear in w, so <y(w), gy> = <w, gw> for every w
    lhs = np.vdot(ref_conv_transpose2d(x, w, None, s, p, op, d), gy)
    assert np.isclose(lhs, np.vdot(w, gw), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cin", [5, 1])
def test_transpose_of_1x1_input_is_a_gemm_and_matches_general_path(cin):
    """The generator's first layer (1x1 input, k7 s1 p0) takes the GEMM-only shortcut; with one
    input channel (the input gradient of D's last layer) it is an outer product."""
    rng = np.random.default_rng(3)
    x, w, b = _rand(rng, 3, cin, 1, 1), _rand(rng, cin, 4, 7, 7), _rand(rng, 4)
    y = KC.conv_transpose2d_forward(x, w, b)
    np.testing.assert_allclose(y, ref_conv_transpose2d(x, w, b, (1, 1), (0, 0), (0, 0), (1, 1)),
                               rtol=1e-12, atol=1e-12)
    # stride is irrelevant for a single input pixel; output_padding leaves the shortcut
    y2 = KC.conv_transpose2d_forward(x, w, b, stride=2, output_padding=1)
    np.testing.assert_allclose(y2, ref_conv_transpose2d(x, w, b, (2, 2), (0, 0), (1, 1), (1, 1)),
                               rtol=1e-12, atol=1e-12)


def test_dense_window_conv_shortcut():
    """A kernel covering the whole input (D's last layer, k7 on 7x7) is a plain GEMM."""
    rng = np.random.default_rng(4)
    x, w, b = _rand(rng, 3, 4, 7, 5), _rand(rng, 2, 4, 7, 5), _rand(rng, 2)
    y = KC.conv2d_forward(x, w, b)
    np.testing.assert_allclose(y, ref_conv2d(x, w, b, (1, 1), (0, 0), (1, 1)), rtol=1e-12)
    gy = _rand(rng, 3, 2, 1, 1)
    np.testing.assert_allclose(KC.conv2d_grad_weight(x, gy, (7, 5)),
                               ref_grad_weight(x, gy, (7, 5), (1, 1), (0, 0), (1, 1)),
                               rtol=1e-12)


# Adjoint identities: <conv(x, w), gy> = <x, conv_transpose(gy, w)> = <w, grad_weight(x, gy)>

@FAST
@given(conv_configs())
def test_adjoint_identities(cfg):
    rng = np.random.default_rng(cfg["seed"])
    k, s, p, d = cfg["k"], cfg["s"], cfg["p"], cfg["d"]
    x = _rand(rng, cfg["n"], cfg["c"], *cfg["hw"])
    w = _rand(rng, cfg["o"], cfg["c"], *k)
    y = KC.conv2d_forward(x, w, None, s, p, d)
    gy = _rand(rng, *y.shape)
    op = KC.conv_transpose_output_padding(cfg["hw"], y.shape[2:], k, s, p, d)
    gx = KC.conv_transpose2d_forward(gy, w, None, s, p, op, d)
    assert gx.shape == x.shape
    gw = KC.conv2d_grad_weight(x, gy, k, s, p, d)
    lhs = np.vdot(y, gy)
    assert np.isclose(lhs, np.vdot(x, gx), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, np.vdot(w, gw), rtol=1e-10, atol=1e-10)


@FAST
@given(conv_configs())
def test_im2col_col2im_are_adjoint(cfg):
    rng = np.random.default_rng(cfg["seed"])
    k, s, p, d = cfg["k"], cfg["s"], cfg["p"], cfg["d"]
    x = _rand(rng, cfg["n"], cfg["c"], *cfg["hw"])
    cols = KC.im2col(x, k, s, p, d)
    ho, wo = KC.conv_output_size(cfg["hw"], k, s, p, d)
    assert cols.shape == (cfg["c"] * k[0] * k[1], cfg["n"] * ho * wo)
    g = _rand(rng, *cols.shape)
    back = KC.col2im(g, x.shape, k, s, p, d)
    assert back.shape == x.shape
    assert np.isclose(np.vdot(cols, g), np.vdot(x, back), rtol=1e-10, atol=1e-10)
    # and the columns really are the windows: conv = w2 @ cols
    w = _rand(rng, 2, cfg["c"], *k)
    y = (w.reshape(2, -1) @ cols).reshape(2, cfg["n"], ho, wo).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(y, ref_conv2d(x, w, None, s, p, d), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,c,hw,o,k,s,p,d", [
    (2, 3, (9, 8), 4, (3, 2), (2, 1), (1, 0), (1, 2)),
    (2, 20, (8, 8), 17, (4, 4), (2, 2), (1, 1), (1, 1)),  # a DCGAN layer, many channels
    (3, 18, (7, 7), 2, (4, 4), (2, 2), (1, 1), (1, 1)),
])
def test_conv2d_forward_and_grad_weight_is_the_two_calls_from_one_im2col(
        monkeypatch, n, c, hw, o, k, s, p, d):
    """Bit for bit what conv2d_forward and conv2d_grad_weight give, with im2col run once."""
    rng = np.random.default_rng(9)
    x = _rand(rng, n, c, *hw).astype(np.float32)
    w = _rand(rng, o, c, *k).astype(np.float32)
    y_ref = KC.conv2d_forward(x, w, None, s, p, d)
    gy = _rand(rng, *y_ref.shape).astype(np.float32)
    gw_ref = KC.conv2d_grad_weight(x, gy, k, s, p, d)
    calls = []
    for name in ("_im2col_cpu", "_im2col_cpu_nhwc"):
        real = getattr(KC, name)
        monkeypatch.setattr(KC, name, lambda *a, _real=real, **kw: calls.append(1) or _real(
            *a, **kw))
    for xin in (x, np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)):
        calls.clear()
        y, gw = KC.conv2d_forward_and_grad_weight(xin, w, gy, s, p, d)
        assert len(calls) == 1
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(gw, gw_ref)
        assert gw.flags.c_contiguous and not np.shares_memory(gw, y)
    # a gy smaller than the full output (a transposed conv's output_padding): the two calls
    small = np.ascontiguousarray(gy[:, :, :-1])
    y, gw = KC.conv2d_forward_and_grad_weight(x, w, small, s, p, d)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(gw, KC.conv2d_grad_weight(x, small, k, s, p, d))
    with pytest.raises(ValueError, match=r"conv2d_grad_weight: grad_output \(1,"):
        KC.conv2d_forward_and_grad_weight(x, w, gy[:1], s, p, d)


@pytest.mark.parametrize("threads", [1, 2])
def test_forward_and_grad_weight_channels_last_pair_runs_its_two_gemms_side_by_side(
        monkeypatch, threads, cpu_layout):
    """x and gy stored channels-last (a generator's layers): the pair's two GEMMs, the same
    work, run one per thread when there are two (no split ``matmul``), and either way give the
    naive loops' conv and weight gradient."""
    from minigan.kernels import parallel as P
    before = P.get_num_threads()
    monkeypatch.setattr(P, "MIN_BYTES", 2)
    monkeypatch.setattr(P, "MIN_GEMM_FLOPS", 1)
    split, pairs = [], []
    real_matmul, real_pair = P.matmul, P.matmul_pair
    monkeypatch.setattr(P, "matmul", lambda *a, **kw: split.append(1) or real_matmul(*a, **kw))
    monkeypatch.setattr(P, "matmul_pair", lambda *a: pairs.append(1) or real_pair(*a))
    rng = np.random.default_rng(21)
    n, c, hw, o, k, s, p, d = 3, 20, (8, 8), 17, (4, 4), (2, 2), (1, 1), (1, 1)

    def channels_last(a):
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x = channels_last(_rand(rng, n, c, *hw))
    w = _rand(rng, o, c, *k)
    gy = channels_last(_rand(rng, n, o, *KC.conv_output_size(hw, k, s, p, d)))
    P.set_num_threads(threads)
    try:
        y, gw = KC.conv2d_forward_and_grad_weight(x, w, gy, s, p, d)
    finally:
        P.set_num_threads(before)
    if cpu_layout == "nchw":  # the NCHW im2col path: its own two products, no pair
        assert not pairs
    else:  # one pair: whole on two threads, else each product through matmul
        assert len(pairs) == 1 and len(split) == (0 if threads == 2 else 2)
    np.testing.assert_allclose(y, ref_conv2d(x, w, None, s, p, d), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, ref_grad_weight(x, gy, k, s, p, d), rtol=1e-12, atol=1e-12)
    assert gw.shape == w.shape and gw.flags.c_contiguous and not np.shares_memory(gw, y)


def test_conv2d_input_and_weight_grads_is_the_two_calls():
    rng = np.random.default_rng(11)
    for (n, c, hw, o, k, s, p, d) in [(2, 3, (9, 8), 4, (3, 2), (2, 1), (1, 0), (1, 2)),
                                      (2, 20, (8, 8), 17, (4, 4), (2, 2), (1, 1), (1, 1)),
                                      (3, 5, (4, 4), 6, (4, 4), (1, 1), (0, 0), (1, 1))]:
        x, w = _rand(rng, n, c, *hw), _rand(rng, o, c, *k)
        out_hw = KC.conv_output_size(hw, k, s, p, d)
        gy = _rand(rng, n, o, *out_hw)
        gx, gw = KC.conv2d_input_and_weight_grads(x, w, gy, s, p, d)
        op = KC.conv_transpose_output_padding(hw, out_hw, k, s, p, d)
        np.testing.assert_array_equal(gx, KC.conv_transpose2d_forward(gy, w, None, s, p, op, d))
        np.testing.assert_array_equal(gw, KC.conv2d_grad_weight(x, gy, k, s, p, d))


def test_conv2d_forward_and_grad_weight_dense_window():
    """The window is the whole input (no im2col): the two calls."""
    rng = np.random.default_rng(10)
    x, w = _rand(rng, 3, 5, 4, 4), _rand(rng, 6, 5, 4, 4)
    gy = _rand(rng, 3, 6, 1, 1)
    y, gw = KC.conv2d_forward_and_grad_weight(x, w, gy)
    np.testing.assert_array_equal(y, KC.conv2d_forward(x, w))
    np.testing.assert_array_equal(gw, KC.conv2d_grad_weight(x, gy, (4, 4)))


def _stored_channels_last(a):
    return a.transpose(0, 2, 3, 1).flags.c_contiguous


def test_float32_in_float32_out_and_non_contiguous_inputs(cpu_layout):
    rng = np.random.default_rng(5)
    x = _rand(rng, 2, 3, 9, 8).astype(np.float32)
    w = _rand(rng, 4, 3, 3, 3).astype(np.float32)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # F-ish strides
    y = KC.conv2d_forward(xt, w, None, 2, 1)
    assert y.dtype == np.float32
    # the output is dense: NCHW, or (with many output channels) stored channels-last
    assert y.flags.c_contiguous if cpu_layout == "nchw" else _stored_channels_last(y)
    np.testing.assert_allclose(y, ref_conv2d(x.astype(np.float64), w.astype(np.float64), None,
                                             (2, 2), (1, 1), (1, 1)), rtol=1e-4, atol=1e-4)
    gy = _rand(rng, *y.shape).astype(np.float32)
    gy_nc = np.asfortranarray(gy)  # same values, non-C-contiguous
    op = KC.conv_transpose_output_padding(x.shape[2:], y.shape[2:], 3, 2, 1)
    gx = KC.conv_transpose2d_forward(gy_nc, w, None, 2, 1, op)
    assert gx.dtype == np.float32 and gx.shape == x.shape
    np.testing.assert_allclose(gx, KC.conv_transpose2d_forward(gy, w, None, 2, 1, op))
    assert KC.conv2d_grad_weight(x, gy, 3, 2, 1).dtype == np.float32


@pytest.mark.parametrize("shape, dtype", [
    ((2, 16, 16, 16), np.float32),   # 1 KiB planes: through the padded scratch copy
    ((2, 16, 16, 16), np.float64),   # 2 KiB planes
    ((2, 24, 32, 32), np.float32),   # 4 KiB planes
    ((2, 16, 9, 9), np.float32),     # planes not a multiple of 1 KiB: straight copy
    ((2, 3, 32, 32), np.float32),    # few channels: straight copy
])
def test_to_channels_last_is_the_transposed_copy(shape, dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    n, c, h, w = shape
    for src in (x, np.asfortranarray(x)):  # and a non-contiguous source
        out = np.full((n, h + 2, w + 2, c), 7, dtype)  # write into the interior of a pad
        KC._to_channels_last(src, out[:, 1:-1, 1:-1])
        np.testing.assert_array_equal(out[:, 1:-1, 1:-1], x.transpose(0, 2, 3, 1))
        assert (out[:, 0] == 7).all() and (out[:, :, -1] == 7).all()


def test_channels_last_convs_with_planes_a_multiple_of_1kib_match_naive_loops():
    """Shapes that take the padded-plane copy in im2col and in the transposed conv."""
    rng = np.random.default_rng(12)
    x, w = _rand(rng, 2, 16, 16, 16), _rand(rng, 4, 16, 4, 4)
    np.testing.assert_allclose(KC.conv2d_forward(x, w, None, 2, 1),
                               ref_conv2d(x, w, None, (2, 2), (1, 1), (1, 1)), rtol=1e-10,
                               atol=1e-10)
    xt, wt = _rand(rng, 2, 16, 16, 16), _rand(rng, 16, 16, 4, 4)  # channels-last, 2 KiB planes
    op = (0, 0)
    y = KC.conv_transpose2d_forward(xt, wt, None, 2, 1, op)
    # the transposed conv is the adjoint of conv2d's input map with the same weight
    gy = _rand(rng, *y.shape)
    lhs = float((y * gy).sum())
    rhs = float((xt * KC.conv2d_forward(gy, wt, None, 2, 1)).sum())
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


@pytest.mark.parametrize("k, s, p, op", [(4, 2, 1, 0), (4, 2, 1, 1), (3, 1, 1, 0), (5, 3, 2, 2),
                                         (2, 3, 0, 1), ((4, 3), (2, 1), (1, 0), (1, 0))])
def test_channels_last_transpose_with_many_channels_matches_naive_loops(k, s, p, op, cpu_layout):
    """Channels-last transposed convs with 16 output channels (the regime the NHWC col2im is
    for): kernels wider than, equal to and narrower than the stride, output padding, a bias."""
    rng = np.random.default_rng(13)
    x, w, b = _rand(rng, 2, 17, 5, 6), _rand(rng, 17, 16, *KC._pair(k, "k", 1)), _rand(rng, 16)
    pair = lambda v: KC._pair(v, "v", 0)
    y = KC.conv_transpose2d_forward(x, w, b, s, p, op)
    ref = ref_conv_transpose2d(x, w, b, pair(s), pair(p), pair(op), (1, 1))
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("k, s, p, op, hw", [
    (4, 2, 1, 0, (5, 5)),                      # DCGAN's layers
    (4, 2, 1, 1, (4, 3)),                      # output padding, odd sizes
    (4, 2, 3, 0, (6, 6)),                      # padding past half the kernel: rows cropped
    (2, 2, 2, 1, (5, 4)),                      # padding as large as the kernel
    (2, 2, 0, 0, (3, 4)),                      # m = 1: a pixel shuffle of one GEMM
    (3, 3, 0, 2, (2, 3)),
    ((4, 6), (2, 3), (1, 2), (1, 0), (4, 5)),  # different strides and kernels per axis
    ((6, 2), (3, 2), (2, 0), (0, 1), (1, 1)),  # a one-pixel input
])
def test_subpixel_transposed_conv_matches_naive_loops(k, s, p, op, hw, cpu_layout, monkeypatch):
    """Kernels that are a multiple of the stride: in the "nhwc-subpixel" layout every such
    call takes the sub-pixel GEMM (a spy checks it), in "nhwc" the col2im scatter."""
    calls = []
    real = KC._conv_transpose_subpixel_numpy
    monkeypatch.setattr(KC, "_conv_transpose_subpixel_numpy",
                        lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(14)
    pair = lambda v, m=0: KC._pair(v, "v", m)
    x, w, b = _rand(rng, 2, 5, *hw), _rand(rng, 5, 3, *pair(k, 1)), _rand(rng, 3)
    for bias in (None, b):
        y = KC.conv_transpose2d_forward(x, w, bias, s, p, op)
        ref = ref_conv_transpose2d(x, w, bias, pair(s), pair(p), pair(op), (1, 1))
        assert y.shape == ref.shape
        np.testing.assert_allclose(y, ref, rtol=1e-11, atol=1e-11)
    assert len(calls) == (2 if cpu_layout == "nhwc-subpixel" else 0)
    y32 = KC.conv_transpose2d_forward(x.astype(np.float32), w.astype(np.float32), None, s, p, op)
    assert y32.dtype == np.float32


def test_subpixel_is_chosen_only_while_its_gemm_grows_little():
    """The default switch: DCGAN's 16x16 -> 32x32 and 7x7 -> 14x14 layers (GEMM 13% and 31%
    larger) take the sub-pixel form, its 4x4 -> 8x8 layer (56% larger) keeps col2im, and so
    does any kernel that is not a multiple of the stride, or is dilated, or has stride 1."""
    for h, expected in ((16, True), (7, True), (4, False)):
        (_, _, r), (_, _, c) = KC._subpixel_grid((4, 4), (2, 2), (1, 1), (1, 1), (2 * h, 2 * h))
        assert (r * c <= DEFAULT_SUBPIXEL_GROWTH * h * h) is expected, h
    assert KC._subpixel_grid((3, 3), (2, 2), (1, 1), (1, 1), (8, 8)) is None
    assert KC._subpixel_grid((4, 4), (2, 2), (1, 1), (2, 2), (8, 8)) is None
    assert KC._subpixel_grid((3, 3), (1, 1), (1, 1), (1, 1), (8, 8)) is None


def test_kernels_take_channels_last_inputs_and_return_them_for_many_channels(cpu_layout):
    """The CPU kernels return outputs with 16+ channels stored channels-last (so the next
    layer's channels-last im2col is a plain copy); fed such arrays, every kernel gives what it
    gives for the same values stored NCHW."""
    rng = np.random.default_rng(15)
    x, w, b = _rand(rng, 2, 16, 9, 8), _rand(rng, 16, 16, 4, 4), _rand(rng, 16)
    as_nhwc = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    xl = as_nhwc(x)
    assert _stored_channels_last(xl) and not xl.flags.c_contiguous
    y = KC.conv2d_forward(x, w, b, 2, 1)
    np.testing.assert_array_equal(KC.conv2d_forward(xl, w, b, 2, 1), y)
    gy = _rand(rng, *y.shape)
    gyl = as_nhwc(gy)
    np.testing.assert_allclose(KC.conv2d_grad_weight(xl, gyl, 4, 2, 1),
                               KC.conv2d_grad_weight(x, gy, 4, 2, 1), rtol=1e-12, atol=1e-12)
    gx = KC.conv_transpose2d_forward(gy, w, None, 2, 1, (1, 0))
    np.testing.assert_allclose(KC.conv_transpose2d_forward(gyl, w, None, 2, 1, (1, 0)), gx,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, ref_conv_transpose2d(gy, w, None, (2, 2), (1, 1), (1, 0),
                                                        (1, 1)), rtol=1e-11, atol=1e-11)
    if cpu_layout != "nchw":
        assert _stored_channels_last(y) and _stored_channels_last(gx)
    # a window as large as the input (a discriminator's last layer): a plain GEMM either way
    wd = _rand(rng, 3, 16, 9, 8)
    np.testing.assert_allclose(KC.conv2d_forward(xl, wd, b[:3]), KC.conv2d_forward(x, wd, b[:3]),
                               rtol=1e-12, atol=1e-12)
    gyd = _rand(rng, 2, 3, 1, 1)
    gwd = KC.conv2d_grad_weight(xl, gyd, (9, 8))
    np.testing.assert_allclose(gwd, KC.conv2d_grad_weight(x, gyd, (9, 8)), rtol=1e-12,
                               atol=1e-12)
    assert gwd.flags.c_contiguous  # a weight gradient is a plain array, never channels-last
    # one input channel (an image) into many: the transposed GEMM gives channels-last too
    img = _rand(rng, 2, 1, 8, 8)
    w1 = _rand(rng, 16, 1, 4, 4)
    y1 = KC.conv2d_forward(img, w1, b, 2, 1)
    np.testing.assert_allclose(y1, ref_conv2d(img, w1, b, (2, 2), (1, 1), (1, 1)), rtol=1e-11,
                               atol=1e-11)
    assert _stored_channels_last(y1) is (cpu_layout != "nchw")


def test_workspace_reuse_across_shapes_keeps_padding_zero():
    """A larger call leaves garbage in the reused pad buffer; the next call must re-zero it."""
    rng = np.random.default_rng(6)
    big = _rand(rng, 2, 3, 11, 11) * 1e3
    KC.conv2d_forward(big, _rand(rng, 2, 3, 3, 3), None, 1, 2)
    x, w = _rand(rng, 1, 2, 5, 4), _rand(rng, 3, 2, 3, 3)
    np.testing.assert_allclose(KC.conv2d_forward(x, w, None, 1, 1),
                               ref_conv2d(x, w, None, (1, 1), (1, 1), (1, 1)), rtol=1e-12)
    KC.release_workspace()
    np.testing.assert_allclose(KC.conv2d_forward(x, w, None, 1, 1),
                               ref_conv2d(x, w, None, (1, 1), (1, 1), (1, 1)), rtol=1e-12)



@pytest.mark.parametrize("k", [(1, 1), (3, 2)])
def test_results_never_alias_the_workspace(k):
    """Every CPU result is a fresh array: a later call (which reuses the scratch buffers) must
    leave earlier results untouched, also for 1x1 kernels and single channels, where a
    transposed view of a workspace buffer is already contiguous."""
    rng = np.random.default_rng(7)
    for c, o in [(1, 3), (3, 1), (4, 5)]:
        x, w = _rand(rng, 2, c, 5, 6), _rand(rng, o, c, *k)
        gy = _rand(rng, 2, o, 5 - k[0] + 1, 6 - k[1] + 1)
        y, gw = KC.conv2d_forward(x, w), KC.conv2d_grad_weight(x, gy, k)
        gx = KC.conv_transpose2d_forward(gy, w)
        saved = [a.copy() for a in (y, gw, gx)]
        KC.conv2d_forward(x * 7, w * 3)
        KC.conv2d_grad_weight(x * 5, gy * 2, k)
        KC.conv_transpose2d_forward(gy * 3, w * 2)
        for a, b in zip((y, gw, gx), saved):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(gw, ref_grad_weight(x, gy, k, (1, 1), (0, 0), (1, 1)),
                                   rtol=1e-12, atol=1e-12)


# Output sizes

def test_output_size_helpers():
    assert KC.conv_output_size(28, 4, 2, 1) == 14
    assert KC.conv_output_size((28, 9), (4, 3), (2, 1), (1, 0), (1, 2)) == (14, 5)
    assert KC.conv_transpose_output_size(7, 4, 2, 1) == 14
    assert KC.conv_transpose_output_size(1, 7) == 7
    assert KC.conv_transpose_output_size((7, 3), (4, 2), 2, 1, (1, 0)) == (15, 4)
    for h in range(5, 12):  # stride 3 maps several sizes to one: output_padding picks back
        o = KC.conv_output_size(h, 3, 3, 1)
        op = KC.conv_transpose_output_padding(h, o, 3, 3, 1)
        assert KC.conv_transpose_output_size(o, 3, 3, 1, op) == h
        assert 0 <= op < 3
    assert KC.conv_transpose_output_padding((28, 27), (14, 13), 4, 2, 1) == (0, 1)
    with pytest.raises(ValueError, match="no output_padding"):
        KC.conv_transpose_output_padding(20, 14, 4, 2, 1)


def test_output_padding_answers_are_remembered_by_value_and_type():
    args = ((28, 27), (14, 13), 4, 2, 1)
    assert KC.conv_transpose_output_padding(*args) == (0, 1)
    assert KC.conv_transpose_output_padding(*args) == (0, 1)  # the remembered answer
    assert KC.conv_transpose_output_padding(28, 14, 4, 2, 1) == 0  # an int size: an int
    with pytest.raises(TypeError, match="input size must be an int"):  # 28.0 == 28, refused
        KC.conv_transpose_output_padding(28.0, 14, 4, 2, 1)
    assert KC.conv_transpose_output_padding((28, 28), (14, 14), 4, 2, 1) == (0, 0)
    assert KC.conv_transpose_output_padding([28, 27], [14, 13], 4, 2, 1) == (0, 1)  # a list
    for _ in range(2):  # a refusal is never remembered as an answer
        with pytest.raises(ValueError, match="no output_padding"):
            KC.conv_transpose_output_padding((20, 20), (14, 14), 4, 2, 1)
    with pytest.raises(TypeError, match="stride must hold whole numbers"):
        KC.conv_transpose_output_padding((28, 28), (14, 14), 4, (2.5, 2), 1)


# Error messages

def test_conv2d_channel_mismatch_names_shapes():
    x, w = np.zeros((2, 3, 8, 8)), np.zeros((8, 4, 3, 3))
    with pytest.raises(ValueError, match=r"input \(2, 3, 8, 8\) has 3 channels but weight "
                                         r"\(8, 4, 3, 3\) expects 4"):
        KC.conv2d_forward(x, w)


def test_conv_transpose_channel_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"has 3 channels but weight \(4, 8, 3, 3\) expects 4"):
        KC.conv_transpose2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((4, 8, 3, 3)))


def test_output_size_not_positive_names_everything():
    with pytest.raises(ValueError) as e:
        KC.conv2d_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 5, 5)), None, 1, 0, 1)
    msg = str(e.value)
    for part in ("input size (3, 3)", "kernel (5, 5)", "stride (1, 1)", "padding (0, 0)",
                 "dilation (1, 1)"):
        assert part in msg
    with pytest.raises(ValueError, match="output size"):
        KC.conv_transpose2d_forward(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), None, 1, 1)


def test_output_padding_must_be_below_stride_or_dilation():
    x, w = np.zeros((1, 2, 3, 3)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match=r"output_padding \(2, 2\) must be smaller than either "
                                         r"stride \(2, 2\) or dilation \(1, 1\)"):
        KC.conv_transpose2d_forward(x, w, None, 2, 1, 2)
    # allowed when smaller than the dilation, as in PyTorch
    assert KC.conv_transpose2d_forward(x, w, None, 1, 0, 1, 2).shape == (1, 2, 8, 8)


def test_dtype_errors_are_named():
    x, w = np.zeros((1, 2, 4, 4), np.float32), np.zeros((3, 2, 3, 3), np.float64)
    with pytest.raises(TypeError, match="input has dtype float32 but weight has dtype float64"):
        KC.conv2d_forward(x, w)
    with pytest.raises(TypeError, match="float32 and float64"):
        KC.conv2d_forward(x.astype(np.int64), w.astype(np.int64))
    with pytest.raises(TypeError, match="bias has dtype float32"):
        KC.conv2d_forward(x.astype(np.float64), w, np.zeros(3, np.float32))


def test_other_shape_errors():
    with pytest.raises(ValueError, match="4-D"):
        KC.conv2d_forward(np.zeros((2, 3, 4)), np.zeros((1, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        KC.conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((5, 3, 1, 1)), np.zeros(4))
    with pytest.raises(ValueError, match=r"grad_output \(2, 5, 4, 4\) does not match input"):
        KC.conv2d_grad_weight(np.zeros((2, 3, 4, 4)), np.zeros((2, 5, 4, 4)), 3)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        KC.conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((5, 3, 1, 1)), None, 0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        KC.conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((5, 3, 1, 1)), None, 1, -1)
    with pytest.raises(ValueError, match="do not match x_shape"):
        KC.col2im(np.zeros((9, 5)), (1, 1, 4, 4), 3)


# GPU parity: every kernel on the GPU vs the NumPy path

def _gpu_conv_cases():
    """Random geometries (seeded) plus the DCGAN layers, as (kind, config) pairs."""
    rng = np.random.default_rng(123)
    cases = []
    while len(cases) < 24:
        k = tuple(int(v) for v in rng.integers(1, 6, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(v) for v in rng.integers(0, 3, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        hw = tuple(int(v) for v in rng.integers(1, 14, 2))
        op = tuple(int(rng.integers(0, max(s[t], d[t]))) for t in range(2))
        if min(KC.conv_output_size(hw, k, s, p, d)) < 1:
            continue
        if min(KC.conv_transpose_output_size(hw, k, s, p, op, d)) < 1:
            continue
        cases.append({"n": int(rng.integers(1, 4)), "c": int(rng.integers(1, 6)),
                      "o": int(rng.integers(1, 6)), "hw": hw, "k": k, "s": s, "p": p, "d": d,
                      "op": op, "bias": bool(rng.integers(0, 2))})
    # the DCGAN layers as convs (c -> o); a generator layer is the input gradient of one of
    # them, e.g. 100 -> 256 on 1x1 (k7) is conv_transpose2d of the 256 -> 100 conv on 7x7
    dcgan = [(1, 64, 28, 4, 2, 1), (64, 128, 14, 4, 2, 1), (128, 1, 7, 7, 1, 0),
             (256, 100, 7, 7, 1, 0), (128, 256, 14, 4, 2, 1), (1, 128, 28, 4, 2, 1),
             (3, 64, 64, 4, 2, 1), (512, 100, 4, 4, 1, 0)]
    for c, o, hw, k, s, p in dcgan:
        cases.append({"n": 8, "c": c, "o": o, "hw": (hw, hw), "k": (k, k), "s": (s, s),
                      "p": (p, p), "d": (1, 1), "op": (0, 0), "bias": True})
    return cases


GPU_CASES = _gpu_conv_cases()


def _close(actual, desired, dtype):
    """float32 sums of thousands of products carry rounding relative to the largest entry."""
    desired = np.asarray(desired)
    scale = max(1.0, float(np.abs(desired).max(initial=0.0)))
    rtol, atol = (1e-4, 1e-5 * scale) if dtype == np.float32 else (1e-10, 1e-12 * scale)
    np.testing.assert_allclose(to_np(actual), desired, rtol=rtol, atol=atol)


@pytest.fixture(params=["i32", "i64"])
def index_width(request, monkeypatch):
    """Run the GPU kernels with 32-bit and (forced) 64-bit indexing."""
    if request.param == "i64":
        monkeypatch.setattr(KC, "_INT32_LIMIT", 0)
    return request.param


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(GPU_CASES)))
def test_gpu_parity_conv_family(cuda, dtype, case, index_width):
    cfg = GPU_CASES[case]
    rng = np.random.default_rng(case)
    k, s, p, d, op = cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["op"]
    x = _rand(rng, cfg["n"], cfg["c"], *cfg["hw"]).astype(dtype)
    w = (_rand(rng, cfg["o"], cfg["c"], *k) / np.sqrt(cfg["c"] * k[0] * k[1])).astype(dtype)
    b = _rand(rng, cfg["o"]).astype(dtype) if cfg["bias"] else None
    cb = _rand(rng, cfg["c"]).astype(dtype) if cfg["bias"] else None

    def g(a):
        return None if a is None else cuda.asarray(a)

    # conv2d
    y = KC.conv2d_forward(x, w, b, s, p, d)
    y_gpu = KC.conv2d_forward(g(x), g(w), g(b), s, p, d)
    assert isinstance(y_gpu, cuda.ndarray) and y_gpu.dtype == dtype and y_gpu.shape == y.shape
    _close(y_gpu, y, dtype)
    # its weight gradient, alone and with the forward from one im2col
    gy = _rand(rng, *y.shape).astype(dtype)
    gw = KC.conv2d_grad_weight(x, gy, k, s, p, d)
    _close(KC.conv2d_grad_weight(g(x), g(gy), k, s, p, d), gw, dtype)
    y_both, gw_both = KC.conv2d_forward_and_grad_weight(g(x), g(w), g(gy), s, p, d)
    _close(y_both, KC.conv2d_forward(x, w, None, s, p, d), dtype)
    _close(gw_both, gw, dtype)
    gx_both, gw_both = KC.conv2d_input_and_weight_grads(g(x), g(w), g(gy), s, p, d)
    opad = KC.conv_transpose_output_padding(cfg["hw"], y.shape[2:], k, s, p, d)
    _close(gx_both, KC.conv_transpose2d_forward(gy, w, None, s, p, opad, d), dtype)
    _close(gw_both, gw, dtype)
    # and im2col / col2im themselves
    cols = KC.im2col(x, k, s, p, d)
    _close(KC.im2col(g(x), k, s, p, d), cols, dtype)
    _close(KC.col2im(g(cols), x.shape, k, s, p, d), KC.col2im(cols, x.shape, k, s, p, d), dtype)
    # its input gradient: conv_transpose2d(gy, w) back to x's size
    opad = KC.conv_transpose_output_padding(cfg["hw"], y.shape[2:], k, s, p, d)
    gx = KC.conv_transpose2d_forward(g(gy), g(w), None, s, p, opad, d)
    assert gx.shape == x.shape
    _close(gx, KC.conv_transpose2d_forward(gy, w, None, s, p, opad, d), dtype)
    # a free-standing transposed conv (weight w read as (in=o, out=c)) with a random
    # output_padding and a bias, and its weight gradient conv2d_grad_weight(gy_t, x_t)
    if min(KC.conv_transpose_output_size(y.shape[2:], k, s, p, op, d)) >= 1:
        xt = _rand(rng, *y.shape).astype(dtype)
        yt = KC.conv_transpose2d_forward(xt, w, cb, s, p, op, d)
        _close(KC.conv_transpose2d_forward(g(xt), g(w), g(cb), s, p, op, d), yt, dtype)
        gyt = _rand(rng, *yt.shape).astype(dtype)
        _close(KC.conv2d_grad_weight(g(gyt), g(xt), k, s, p, d),
               KC.conv2d_grad_weight(gyt, xt, k, s, p, d), dtype)


@pytest.mark.gpu
def test_gpu_matches_naive_reference_in_float64(cuda):
    """Not only parity: one GPU conv, transpose and weight gradient against the loops."""
    rng = np.random.default_rng(9)
    s, p, d, op = (2, 1), (1, 2), (1, 2), (1, 0)
    x, w, b = _rand(rng, 2, 3, 7, 6), _rand(rng, 4, 3, 3, 2), _rand(rng, 4)
    y = to_np(KC.conv2d_forward(cuda.asarray(x), cuda.asarray(w), cuda.asarray(b), s, p, d))
    np.testing.assert_allclose(y, ref_conv2d(x, w, b, s, p, d), rtol=1e-12, atol=1e-12)
    gy = _rand(rng, *y.shape)
    gw = to_np(KC.conv2d_grad_weight(cuda.asarray(x), cuda.asarray(gy), (3, 2), s, p, d))
    np.testing.assert_allclose(gw, ref_grad_weight(x, gy, (3, 2), s, p, d), rtol=1e-12,
                               atol=1e-12)
    wt = _rand(rng, 3, 4, 3, 2)
    yt = to_np(KC.conv_transpose2d_forward(cuda.asarray(x), cuda.asarray(wt), cuda.asarray(b),
                                           s, p, op, d))
    np.testing.assert_allclose(yt, ref_conv_transpose2d(x, wt, b, s, p, op, d), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.gpu
def test_gpu_errors_and_non_contiguous(cuda):
    x = cuda.asarray(np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32))
    w = cuda.asarray(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32))
    with pytest.raises(TypeError, match="dtype"):
        KC.conv2d_forward(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="channels"):
        KC.conv2d_forward(x[:, :2], w)
    xs = x.transpose(0, 1, 3, 2)
    np.testing.assert_allclose(to_np(KC.conv2d_forward(xs, w, None, 2, 1)),
                               KC.conv2d_forward(to_np(xs), to_np(w), None, 2, 1),
                               rtol=1e-4, atol=1e-4)


def test_size_arguments_are_checked_on_every_call():
    """Checked pairs are memoised per (type, value); refusals must not be, and a value that
    was accepted once under one name stays subject to another name's minimum."""
    x, w = np.zeros((1, 3, 4, 4)), np.zeros((5, 3, 1, 1))
    for _ in range(2):
        with pytest.raises(ValueError, match="stride must be >= 1, got \\(0, 0\\)"):
            KC.conv2d_forward(x, w, None, 0)
        with pytest.raises(TypeError, match="stride must hold whole numbers, got \\(1.5, 1\\)"):
            KC.conv2d_forward(x, w, None, (1.5, 1))
        with pytest.raises(TypeError, match="padding must be an int or an \\(h, w\\) pair"):
            KC.conv2d_forward(x, w, None, 1, "ab")
    assert KC.conv2d_forward(x, w, None, 1, 0).shape == (1, 5, 4, 4)  # padding 0 is fine...
    with pytest.raises(ValueError, match="stride must be >= 1"):
        KC.conv2d_forward(x, w, None, 0, 0)  # ...stride 0 is not
    assert KC.conv2d_forward(x, w, None, [2, 2], (1, 1)).shape == (1, 5, 3, 3)  # lists work
    assert KC.conv2d_forward(x, w, None, np.int64(2)).shape == (1, 5, 2, 2)


def test_gpu_launch_plans_are_told_apart_by_layout_bias_and_tanh(emulated_gpu):
    """im2col and col2im remember their launch arguments per geometry: calls of one shape in
    turn with an NCHW and a channel-major input, with and without a bias, and with and without
    the tanh, each get their own (right) answer, the later ones from remembered plans."""
    cp = emulated_gpu
    rng = np.random.default_rng(3)
    k, s, p, d = (3, 3), (2, 2), (1, 1), (1, 1)
    x0 = rng.standard_normal((2, 3, 7, 6))
    want = KC.im2col(x0, k, s, p, d)
    cm = cp.asarray(np.ascontiguousarray(x0.transpose(1, 0, 2, 3))).transpose(1, 0, 2, 3)
    for _ in range(2):  # the second round runs from the plans the first one left
        np.testing.assert_array_equal(KC.im2col(cp.asarray(x0), k, s, p, d).get(), want)
        np.testing.assert_array_equal(KC.im2col(cm, k, s, p, d).get(), want)
    w0, b0 = rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(4)
    ref = KC.conv_transpose2d_forward(x0, w0, None, s, p, 0, d)
    x, w, b = cp.asarray(x0), cp.asarray(w0), cp.asarray(b0)
    for _ in range(2):
        np.testing.assert_allclose(KC.conv_transpose2d_forward(x, w, None, s, p, 0, d).get(),
                                   ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(KC.conv_transpose2d_forward(x, w, b, s, p, 0, d).get(),
                                   ref + b0.reshape(1, 4, 1, 1), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            KC.conv_transpose2d_forward(x, w, b, s, p, 0, d, tanh=True).get(),
            np.tanh(ref + b0.reshape(1, 4, 1, 1)), rtol=1e-12, atol=1e-12)


def test_a_kept_im2col_is_reused_by_the_weight_gradient(emulated_gpu, monkeypatch):
    """``conv2d_forward(keep_cols=True)`` on the GPU returns its im2col matrix; handed to
    ``conv2d_grad_weight`` (or ``conv2d_input_and_weight_grads``) it replaces that call's own
    gather, with the same gradient (bit for bit here). A matrix of another geometry is ignored,
    one over KEEP_COLS_MAX is not kept, and the CPU keeps none."""
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    rng = np.random.default_rng(0)
    x0, w0 = rng.standard_normal((3, 2, 9, 8)), rng.standard_normal((4, 2, 3, 3))
    x, w = cp.asarray(x0), cp.asarray(w0)
    y, cols = KC.conv2d_forward(x, w, None, 2, 1, 1, keep_cols=True)
    assert cols is not None and cols.shape == (2 * 9, 3 * 5 * 4)
    np.testing.assert_array_equal(y.get(), KC.conv2d_forward(x, w, None, 2, 1, 1).get())
    gy = cp.asarray(rng.standard_normal(y.shape))
    want = KC.conv2d_grad_weight(x, gy, (3, 3), 2, 1, 1).get()
    want_gx, _ = KC.conv2d_input_and_weight_grads(x, w, gy, 2, 1, 1)
    E.LOG.clear()
    got = KC.conv2d_grad_weight(x, gy, (3, 3), 2, 1, 1, cols=cols)
    assert ("raw", "minigan_im2col_f64_i32") not in E.LOG.launches, E.LOG.launches
    np.testing.assert_array_equal(got.get(), want)
    E.LOG.clear()
    gx, gw = KC.conv2d_input_and_weight_grads(x, w, gy, 2, 1, 1, cols=cols)
    assert ("raw", "minigan_im2col_f64_i32") not in E.LOG.launches, E.LOG.launches
    np.testing.assert_array_equal(gw.get(), want)
    np.testing.assert_array_equal(gx.get(), want_gx.get())
    # another geometry's matrix (stride 1): ignored, and the gradient is still right
    _, other = KC.conv2d_forward(x, w, None, 1, 1, 1, keep_cols=True)
    np.testing.assert_array_equal(
        KC.conv2d_grad_weight(x, gy, (3, 3), 2, 1, 1, cols=other).get(), want)
    monkeypatch.setattr(KC, "KEEP_COLS_MAX", cols.size - 1)
    assert KC.conv2d_forward(x, w, None, 2, 1, 1, keep_cols=True)[1] is None
    y_cpu, none = KC.conv2d_forward(x0, w0, None, 2, 1, 1, keep_cols=True)
    assert none is None and y_cpu.shape == y.shape


def test_a_conv_keeps_its_im2col_only_while_its_weight_gradient_is_wanted(emulated_gpu):
    """The Conv2d op keeps the matrix when its weight requires a gradient under grad mode, and
    frees it with the rest of what backward needed; gradients are those of the recomputing
    path."""
    import minigan
    from minigan import Tensor
    from minigan.functional import conv as FC
    cp = emulated_gpu
    rng = np.random.default_rng(1)
    x0, w0 = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((5, 3, 4, 4))
    grads = []
    for keep in (True, False):
        x, w = Tensor(cp.asarray(x0), requires_grad=True), Tensor(cp.asarray(w0),
                                                                   requires_grad=True)
        y = minigan.nn.functional.conv2d(x, w, None, 2, 1)
        f = y.creator
        assert f.keep_cols and f.saved is not None
        if not keep:
            f.saved = None
        (y * y).sum().backward()
        assert f.saved is None  # released with the graph
        grads.append((x.grad.numpy(), w.grad.numpy()))
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    frozen = Tensor(cp.asarray(w0))
    y = minigan.nn.functional.conv2d(Tensor(cp.asarray(x0), requires_grad=True), frozen, None,
                                     2, 1)
    assert not y.creator.keep_cols and y.creator.saved is None
    asked = []
    real = FC.KC.conv2d_forward

    def spy(*a, keep_cols=False):
        asked.append(keep_cols)
        return real(*a, keep_cols=keep_cols)

    FC.KC.conv2d_forward = spy
    try:
        with minigan.no_grad():  # no backward to come: nothing kept
            minigan.nn.functional.conv2d(Tensor(cp.asarray(x0)), Tensor(cp.asarray(w0),
                                                                          requires_grad=True))
        minigan.nn.functional.conv2d(Tensor(x0), Tensor(w0, requires_grad=True))  # the CPU
    finally:
        FC.KC.conv2d_forward = real
    assert asked == [False, False]


def test_remembered_argument_checks_still_refuse_what_they_refused():
    """The conv ops remember arguments that passed their checks (by shapes, dtypes and
    geometry); an argument that fails still fails every time, 2.0 is refused after 2 was
    accepted, and another shape is checked anew."""
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((3, 2, 3, 3))
    KC.conv2d_forward(x, w, None, 2, 1, 1)
    KC.conv_transpose2d_forward(np.zeros((1, 3, 3, 3)), np.zeros((3, 2, 3, 3)), None, 2, 1, 0)
    gy = np.zeros((1, 3, 3, 3))
    KC.conv2d_grad_weight(x, gy, 3, 2, 1, 1)
    for _ in range(2):
        with pytest.raises(TypeError, match="stride must be an int or an"):
            KC.conv2d_forward(x, w, None, 2.0, 1, 1)
        with pytest.raises(TypeError, match="stride must be an int or an"):
            KC.conv_transpose2d_forward(np.zeros((1, 3, 3, 3)), np.zeros((3, 2, 3, 3)), None,
                                        2.0, 1, 0)
        with pytest.raises(ValueError, match="has 2 channels but weight"):
            KC.conv2d_forward(x, np.zeros((3, 3, 3, 3)), None, 2, 1, 1)
        with pytest.raises(TypeError, match="input has dtype float64 but weight has dtype "
                                            "float32"):
            KC.conv2d_forward(x, w.astype(np.float32), None, 2, 1, 1)
        with pytest.raises(ValueError, match="output_padding .* must be smaller"):
            KC.conv_transpose2d_forward(np.zeros((1, 3, 3, 3)), np.zeros((3, 2, 3, 3)), None,
                                        2, 1, 2)
        with pytest.raises(ValueError, match="conv2d_grad_weight: grad_output"):
            KC.conv2d_grad_weight(x, np.zeros((2, 3, 3, 3)), 3, 2, 1, 1)


def test_a_transposed_conv_takes_its_tanh_in_the_col2im_kernel(emulated_gpu):
    """``conv_transpose2d_forward(tanh=True)``: on the GPU's col2im path the tanh costs no
    launch of its own; on the 1x1 GEMM path and the CPU it is taken in place. The values are
    tanh of the plain op's (bit for bit here, where NumPy computes both)."""
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    rng = np.random.default_rng(2)
    for xs, (s, p) in (((2, 3, 5, 4), (2, 1)), ((2, 3, 1, 1), (1, 0))):
        x0, w0, b0 = rng.standard_normal(xs), rng.standard_normal((3, 2, 4, 4)), \
            rng.standard_normal(2)
        for bias in (None, b0):
            want = np.tanh(KC.conv_transpose2d_forward(x0, w0, bias, s, p))
            np.testing.assert_array_equal(
                KC.conv_transpose2d_forward(x0, w0, bias, s, p, tanh=True), want)
            x, w = cp.asarray(x0), cp.asarray(w0)
            bg = None if bias is None else cp.asarray(bias)
            E.LOG.clear()
            plain = KC.conv_transpose2d_forward(x, w, bg, s, p)
            n_plain = E.LOG.n_launches
            E.LOG.clear()
            y = KC.conv_transpose2d_forward(x, w, bg, s, p, tanh=True)
            col2im = xs[2:] != (1, 1)
            assert E.LOG.n_launches == n_plain + (not col2im), E.LOG.launches
            np.testing.assert_allclose(y.get(), np.tanh(plain.get()), rtol=1e-15, atol=1e-15)
            np.testing.assert_allclose(y.get(), want, rtol=1e-12, atol=1e-12)


def test_the_tanh_backward_runs_inside_the_im2col_of_a_transposed_convs_gradient(emulated_gpu):
    """``conv2d_forward_and_grad_weight(x, w, gy, tanh_y=y)`` (a ConvTranspose2d -> Tanh's
    backward) equals the call on ``tanh_backward(x, y)`` (bit for bit here), with that
    elementwise launch folded into the gather on the GPU, for x and y in NCHW and in the
    channel-major layout of a GPU conv output; on the CPU it is the two calls."""
    from minigan.kernels import elementwise as KE
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal((2, 2, 8, 8))
    y0 = np.tanh(rng.standard_normal((2, 2, 8, 8)))
    w0, gy0 = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    want = KC.conv2d_forward_and_grad_weight(KE.tanh_backward(x0, y0), w0, gy0, 2, 1)
    got = KC.conv2d_forward_and_grad_weight(x0, w0, gy0, 2, 1, tanh_y=y0)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)

    def channel_major(a):
        return cp.asarray(a.transpose(1, 0, 2, 3).copy()).transpose(1, 0, 2, 3)

    for xl, yl in ((cp.asarray, cp.asarray), (channel_major, cp.asarray),
                   (cp.asarray, channel_major)):
        x, y, w, gy = xl(x0), yl(y0), cp.asarray(w0), cp.asarray(gy0)
        E.LOG.clear()
        plain = KC.conv2d_forward_and_grad_weight(KE.tanh_backward(x, y), w, gy, 2, 1)
        n_plain = E.LOG.n_launches
        E.LOG.clear()
        fused = KC.conv2d_forward_and_grad_weight(x, w, gy, 2, 1, tanh_y=y)
        assert E.LOG.n_launches == n_plain - 1, E.LOG.launches
        for a, b in zip(fused, plain):
            np.testing.assert_array_equal(a.get(), b.get())
        for a, b in zip(fused, want):
            np.testing.assert_allclose(a.get(), b, rtol=1e-12, atol=1e-12)
