"""Pooling and upsampling kernels vs naive float64 loops, adjoint identities, PyTorch's NaN and
argmax conventions, error messages, and GPU-vs-NumPy parity."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from minigan import backend
from minigan.kernels import conv as KC
from minigan.kernels import pool as KP

to_np = backend.to_numpy
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# Naive references

def _windows(h, w, k, s, p):
    """Yield (a, b, list of (hh, ww) real pixels of window (a, b) in row-major order)."""
    ho, wo = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    for a in range(ho):
        for b in range(wo):
            pix = [(a * s[0] - p[0] + i, b * s[1] - p[1] + j)
                   for i in range(k[0]) for j in range(k[1])]
            yield a, b, [(hh, ww) for hh, ww in pix if 0 <= hh < h and 0 <= ww < w]


def ref_max_pool(x, k, s, p):
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    y, idx = np.zeros((n, c, ho, wo)), np.zeros((n, c, ho, wo), np.int64)
    for nn in range(n):
        for cc in range(c):
            for a, b, pix in _windows(h, w, k, s, p):
                m, arg = -np.inf, pix[0][0] * w + pix[0][1]
                for hh, ww in pix:  # PyTorch's scan: strict >, NaN always taken
                    v = x[nn, cc, hh, ww]
                    if v > m or np.isnan(v):
                        m, arg = v, hh * w + ww
                y[nn, cc, a, b], idx[nn, cc, a, b] = m, arg
    return y, idx


def ref_max_pool_backward(gy, idx, x_shape):
    gx = np.zeros(x_shape)
    n, c, _, w = x_shape
    for nn in range(n):
        for cc in range(c):
            for a in range(gy.shape[2]):
                for b in range(gy.shape[3]):
                    q = idx[nn, cc, a, b]
                    gx[nn, cc, q // w, q % w] += gy[nn, cc, a, b]
    return gx


def ref_avg_pool(x, k, s, p):
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    y = np.zeros((n, c, ho, wo))
    for a, b, pix in _windows(h, w, k, s, p):
        for hh, ww in pix:
            y[:, :, a, b] += x[:, :, hh, ww]
    return y / (k[0] * k[1])


def ref_upsample(x, s):
    n, c, h, w = x.shape
    y = np.zeros((n, c, h * s, w * s))
    for hh in range(h * s):
        for ww in range(w * s):
            y[:, :, hh, ww] = x[:, :, hh // s, ww // s]
    return y


@st.composite
def pool_configs(draw):
    k = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    s = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    p = draw(st.tuples(st.integers(0, k[0] // 2), st.integers(0, k[1] // 2)))
    hw = draw(st.tuples(st.integers(1, 9), st.integers(1, 9)))
    assume(min(KP.pool_output_size(hw, k, s, p)) >= 1)
    return {"k": k, "s": s, "p": p, "hw": hw, "n": draw(st.integers(1, 2)),
            "c": draw(st.integers(1, 3)), "seed": draw(st.integers(0, 2**31 - 1))}


def _x(cfg, ties=False):
    rng = np.random.default_rng(cfg["seed"])
    shape = (cfg["n"], cfg["c"], *cfg["hw"])
    # with ties, few distinct values, so the first-maximum rule is exercised
    return rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)


def _stored_as(x, channels_last):
    """x as given, or the same values stored channels-last (as the CPU conv kernels return)."""
    if not channels_last:
        return x
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def _check_layout(out, x):
    # results are stored as their input is (channels-last in, channels-last out)
    if KC.is_channels_last(x):
        assert out.transpose(0, 2, 3, 1).flags.c_contiguous  # (may also be C-contiguous)
    else:
        assert out.flags.c_contiguous


@FAST
@given(pool_configs(), st.booleans())
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_forward_and_backward_match_loops(channels_last, cfg, ties):
    x = _stored_as(_x(cfg, ties), channels_last)
    k, s, p = cfg["k"], cfg["s"], cfg["p"]
    y, idx = KP.max_pool2d_forward(x, k, s, p)
    ry, ridx = ref_max_pool(x, k, s, p)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    assert idx.dtype == np.int64
    _check_layout(y, x)
    gy = np.random.default_rng(cfg["seed"] + 1).standard_normal(y.shape)
    gx = KP.max_pool2d_backward(gy, idx, x.shape, k, s, p)
    np.testing.assert_allclose(gx, ref_max_pool_backward(gy, idx, x.shape), rtol=1e-12,
                               atol=1e-12)


@FAST
@given(pool_configs())
@pytest.mark.parametrize("channels_last", [False, True])
def test_avg_pool_forward_matches_loops_and_backward_is_adjoint(channels_last, cfg):
    x = _stored_as(_x(cfg), channels_last)
    k, s, p = cfg["k"], cfg["s"], cfg["p"]
    y = KP.avg_pool2d_forward(x, k, s, p)
    np.testing.assert_allclose(y, ref_avg_pool(x, k, s, p), rtol=1e-12, atol=1e-12)
    _check_layout(y, x)
    gy = np.random.default_rng(cfg["seed"] + 1).standard_normal(y.shape)
    gx = KP.avg_pool2d_backward(gy, x.shape, k, s, p)
    assert gx.shape == x.shape
    assert np.isclose(np.vdot(y, gy), np.vdot(x, gx), rtol=1e-10, atol=1e-10)


def test_avg_pool_is_a_conv_with_a_constant_kernel():
    """count_include_pad=True means exactly conv2d with weight 1/(kh*kw) and zero padding."""
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    w = np.zeros((3, 3, 3, 2))
    w[range(3), range(3)] = 1 / 6
    np.testing.assert_allclose(KP.avg_pool2d_forward(x, (3, 2), (2, 1), 1),
                               KC.conv2d_forward(x, w, None, (2, 1), 1), rtol=1e-12)


def test_max_pool_nan_propagates_and_all_minus_inf_window_points_at_a_real_pixel():
    x = np.array([[[[1.0, np.nan, 3.0, 0.5],
                    [2.0, 0.0, -np.inf, -np.inf],
                    [5.0, 6.0, -np.inf, -np.inf]]]])
    y, idx = KP.max_pool2d_forward(x, 2, 2, 0)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert y[0, 0, 0, 1] == 3.0 and idx[0, 0, 0, 1] == 2
    # with padding 1, window (0, 2) covers rows -1..0 and columns 3..4: its only real pixel is
    # (0, 3) = -inf, and the index must point there, not into the padding
    y, idx = KP.max_pool2d_forward(x[:, :, 1:], 2, 2, 1)
    assert y[0, 0, 0, 2] == -np.inf and idx[0, 0, 0, 2] == 3  # first real pixel (0, 3)
    _, ridx = ref_max_pool(x[:, :, 1:], (2, 2), (2, 2), (1, 1))
    np.testing.assert_array_equal(idx, ridx)


@FAST
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_upsample_matches_loops_and_backward_is_adjoint(s, h, w, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w))
    y = KP.upsample_nearest2d_forward(x, s)
    np.testing.assert_array_equal(y, ref_upsample(x, s))
    gy = rng.standard_normal(y.shape)
    gx = KP.upsample_nearest2d_backward(gy, s)
    assert gx.shape == x.shape
    assert np.isclose(np.vdot(y, gy), np.vdot(x, gx), rtol=1e-10, atol=1e-10)


def test_dtypes_are_kept():
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)
    y, idx = KP.max_pool2d_forward(x, 2)
    assert y.dtype == np.float32
    assert KP.max_pool2d_backward(y, idx, x.shape, 2).dtype == np.float32
    y3, idx3 = KP.max_pool2d_forward(x, 3, 1, 1)  # overlapping windows: the bincount path
    assert KP.max_pool2d_backward(y3, idx3, x.shape, 3, 1, 1).dtype == np.float32
    assert KP.avg_pool2d_forward(x, 3, 1, 1).dtype == np.float32
    assert KP.avg_pool2d_backward(x, x.shape, 3, 1, 1).dtype == np.float32
    assert KP.upsample_nearest2d_forward(x, 2).dtype == np.float32
    assert KP.upsample_nearest2d_backward(x, 2).dtype == np.float32


def test_overlapping_max_pool_backward_accumulates():
    """stride < kernel: one pixel can be the argmax of several windows; its grads add up."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    y, idx = KP.max_pool2d_forward(x.astype(np.float32), 2, 1)
    gx = KP.max_pool2d_backward(np.ones_like(y), idx, x.shape, 2, 1)
    assert gx[0, 0, 1, 1] == 4.0 and gx.sum() == 4.0 and gx.dtype == np.float32


def test_pool_errors():
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel"):
        KP.max_pool2d_forward(x, 3, 1, 2)
    with pytest.raises(ValueError, match=r"output size .* input size \(5, 5\), kernel \(6, 6\)"):
        KP.avg_pool2d_forward(x, 6)
    with pytest.raises(ValueError, match="4-D"):
        KP.max_pool2d_forward(np.zeros((2, 5, 5)), 2)
    with pytest.raises(ValueError, match=r"grad_output has shape \(1, 2, 3, 3\) but the input "
                                         r"\(1, 2, 5, 5\) pools to \(1, 2, 2, 2\)"):
        KP.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), x.shape, 2)
    with pytest.raises(ValueError, match="index has shape"):
        KP.max_pool2d_backward(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 1), np.int64),
                               x.shape, 2)
    with pytest.raises(ValueError, match="positive integer"):
        KP.upsample_nearest2d_forward(x, 1.5)
    with pytest.raises(ValueError, match="whole number"):
        KP.upsample_nearest2d_backward(x, 2)
    with pytest.raises(TypeError, match="float32 and float64"):
        KP.avg_pool2d_forward(x.astype(np.int32), 2)


# GPU parity

def _gpu_pool_cases():
    rng = np.random.default_rng(7)
    cases = []
    while len(cases) < 20:
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, k[t] // 2 + 1)) for t in range(2))
        hw = tuple(int(v) for v in rng.integers(1, 16, 2))
        if min(KP.pool_output_size(hw, k, s, p)) >= 1:
            cases.append((int(rng.integers(1, 4)), int(rng.integers(1, 5)), hw, k, s, p))
    cases += [(64, 32, (28, 28), (2, 2), (2, 2), (0, 0)), (8, 16, (14, 14), (3, 3), (2, 2), (1, 1))]
    return cases


POOL_CASES = _gpu_pool_cases()


@pytest.fixture(params=["i32", "i64"])
def index_width(request, monkeypatch):
    if request.param == "i64":
        monkeypatch.setattr(KC, "_INT32_LIMIT", 0)
    return request.param


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_gpu_parity_pooling(cuda, dtype, case, index_width):
    n, c, hw, k, s, p = POOL_CASES[case]
    rng = np.random.default_rng(case)
    # integer-valued inputs give ties, so the argmax convention is compared too
    x = (rng.integers(-3, 4, (n, c, *hw)) + (rng.random((n, c, *hw)) < 0.5) * 0.5).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    y, idx = KP.max_pool2d_forward(x, k, s, p)
    y_gpu, idx_gpu = KP.max_pool2d_forward(cuda.asarray(x), k, s, p)
    assert idx_gpu.dtype == np.int64 and y_gpu.dtype == dtype
    np.testing.assert_array_equal(to_np(y_gpu), y)
    np.testing.assert_array_equal(to_np(idx_gpu), idx)
    gy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(
        to_np(KP.max_pool2d_backward(cuda.asarray(gy), idx_gpu, x.shape, k, s, p)),
        KP.max_pool2d_backward(gy, idx, x.shape, k, s, p), **tol)
    np.testing.assert_allclose(to_np(KP.avg_pool2d_forward(cuda.asarray(x), k, s, p)),
                               KP.avg_pool2d_forward(x, k, s, p), **tol)
    np.testing.assert_allclose(
        to_np(KP.avg_pool2d_backward(cuda.asarray(gy), x.shape, k, s, p)),
        KP.avg_pool2d_backward(gy, x.shape, k, s, p), **tol)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_gpu_parity_upsample(cuda, dtype, scale):
    rng = np.random.default_rng(scale)
    x = rng.standard_normal((3, 4, 5, 7)).astype(dtype)
    y = KP.upsample_nearest2d_forward(cuda.asarray(x), scale)
    np.testing.assert_array_equal(to_np(y), KP.upsample_nearest2d_forward(x, scale))
    gy = rng.standard_normal(y.shape).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    np.testing.assert_allclose(to_np(KP.upsample_nearest2d_backward(cuda.asarray(gy), scale)),
                               KP.upsample_nearest2d_backward(gy, scale), **tol)


@pytest.mark.gpu
def test_gpu_max_pool_nan(cuda):
    x = np.array([[[[1.0, np.nan, 3.0, 0.5], [2.0, 0.0, -np.inf, -np.inf]]]], np.float32)
    y, idx = KP.max_pool2d_forward(cuda.asarray(x), 2, 2, 1)
    ry, ridx = KP.max_pool2d_forward(x, 2, 2, 1)
    np.testing.assert_array_equal(to_np(y), ry)
    np.testing.assert_array_equal(to_np(idx), ridx)
