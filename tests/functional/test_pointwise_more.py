"""More of torch's pointwise math and reductions (minigan.functional.pointwise): clamp_min,
clamp_max, addcmul, addcdiv, hypot, logaddexp, logaddexp2, xlogy, sinc, deg2rad, rad2deg,
copysign, heaviside, float_power, logit, nansum, nanmean, aminmax, diff, var_mean and std_mean.

Values are checked against NumPy references written here, dtypes against torch's promotion
rules, NaN and inf against torch's conventions (spelled out as expected arrays, so no torch is
needed), gradients against finite differences in float64, first and second order; where torch is
installed, values and gradients (at edge values too) are also compared with its.
"""
import math
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.testing import GradientCheckError, check_backward, check_double_backward

to_np = backend.to_numpy
R = np.random.default_rng(23)
NAN, INF = np.nan, np.inf


def _t(a, device="cpu", dtype=np.float64, grad=False):
    arr = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return minigan.Tensor(backend.to_device(arr, device), requires_grad=grad)


def _dev(a, device):
    return backend.to_device(np.asarray(a), device)


def _np(t):
    return to_np(t.data)


def _away(shape, lo=0.2):
    """Standard normal values with |x| >= lo (away from kinks at 0)."""
    x = R.standard_normal(shape)
    return np.where(np.abs(x) < lo, np.sign(x + 1e-300) * (lo + np.abs(x)), x)


def _grads(y, xs, gy=None):
    return [None if g is None else _np(g) for g in minigan.grad(y, xs, gy, allow_unused=True)]


NEW = ["addcdiv", "addcmul", "aminmax", "clamp_max", "clamp_min", "copysign", "deg2rad", "diff",
       "float_power", "heaviside", "hypot", "logaddexp", "logaddexp2", "logit", "nanmean",
       "nansum", "rad2deg", "sinc", "std_mean", "var_mean", "xlogy"]


def test_names_are_exported_as_functions_and_tensor_methods():
    for name in NEW:
        fn = getattr(minigan, name)
        assert getattr(F, name) is fn and name in minigan.__all__
        # (var_mean and std_mean too, which torch's Tensor lacks: every pointwise name is one)
        assert getattr(minigan.Tensor, name) is fn


# ----------------------------------------------------------------------------- unary math

def np_sinc(x):
    with np.errstate(all="ignore"):
        return np.where(x == 0, 1.0, np.sin(np.pi * x) / (np.pi * x))


def np_logit(x, eps=None):
    if eps is not None:
        x = np.where(x < eps, eps, np.where(x > 1 - eps, 1 - eps, x))
    with np.errstate(all="ignore"):
        return np.log(x / (1 - x))


UNARY = [
    ("sinc", np_sinc, R.uniform(-3, 3, (3, 4))),
    ("deg2rad", lambda a: a * (np.pi / 180), R.uniform(-400, 400, (3, 4))),
    ("rad2deg", lambda a: a * (180 / np.pi), R.uniform(-7, 7, (3, 4))),
    ("logit", np_logit, R.uniform(0.05, 0.95, (3, 4))),
]


@pytest.mark.parametrize("name, ref, x", UNARY, ids=[c[0] for c in UNARY])
def test_unary_values_dtypes_and_methods(device, name, ref, x):
    fn = getattr(minigan, name)
    for dt, rtol in ((np.float64, 1e-13), (np.float32, 2e-6)):
        y = fn(_t(x, device, dt))
        assert y.dtype == dt and y.device == device
        np.testing.assert_allclose(_np(y), ref(x.astype(dt)), rtol=rtol, atol=1e-7)
    y16 = fn(_t(x, device, np.float16))
    assert y16.dtype == np.float16
    np.testing.assert_allclose(_np(y16).astype(np.float64), ref(x), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(_np(getattr(_t(x, device), name)()), ref(x), rtol=1e-13)
    y0 = fn(_t(x[1, 2], device))
    assert y0.shape == () and np.isclose(y0.item(), ref(x[1, 2]), rtol=1e-13)


@pytest.mark.parametrize("name, ref", [(c[0], c[1]) for c in UNARY], ids=[c[0] for c in UNARY])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_unary_integers_and_bools_give_float32(device, name, ref, dtype):
    x = np.array([0, 1, 2, 3, 0, 1]).astype(dtype)
    y = getattr(minigan, name)(_t(x, device, None))
    assert y.dtype == np.float32
    np.testing.assert_allclose(_np(y), ref(x.astype(np.float32)), rtol=1e-6, atol=1e-7)


def test_sinc_edge_values(device):
    x = np.array([0.0, -0.0, INF, -INF, NAN, 1e-30, 1.0, -2.0])
    y = _np(minigan.sinc(_t(x, device)))
    np.testing.assert_array_equal(y[:6], [1.0, 1.0, NAN, NAN, NAN, 1.0])
    assert abs(y[6]) < 1e-15 and abs(y[7]) < 1e-15
    # float32 computes pi * x in float32, as torch: sinc(1) is sin(float32(pi)) / float32(pi)
    pi32 = np.float32(np.pi)
    assert minigan.sinc(_t([1.0], device, np.float32)).item() == np.float32(np.sin(pi32) / pi32)


def test_deg2rad_and_rad2deg_edge_values(device):
    x = np.array([INF, -INF, NAN, 0.0, 180.0])
    np.testing.assert_array_equal(_np(minigan.deg2rad(_t(x, device))),
                                  [INF, -INF, NAN, 0.0, np.pi])
    np.testing.assert_array_equal(_np(minigan.rad2deg(_t(x, device)))[:4], [INF, -INF, NAN, 0.0])
    np.testing.assert_allclose(minigan.rad2deg(_t(np.pi, device)).item(), 180.0, rtol=1e-15)


def test_logit_edge_values_and_eps(device):
    x = np.array([-0.5, 0.0, 0.3, 1.0, 1.5, NAN])
    np.testing.assert_array_equal(_np(minigan.logit(_t(x, device))),
                                  [NAN, -INF, np_logit(0.3), INF, NAN, NAN])
    # eps clamps to [eps, 1 - eps] first; NaN stays NaN
    np.testing.assert_allclose(_np(minigan.logit(_t(x, device), 0.1)),
                               [np_logit(0.1), np_logit(0.1), np_logit(0.3), np_logit(0.9),
                                np_logit(0.9), NAN], rtol=1e-14)
    # torch's order when eps > 0.5: below eps is eps, else above 1 - eps is 1 - eps
    np.testing.assert_allclose(_np(minigan.logit(_t([0.3, 0.8], device), eps=0.6)),
                               [np_logit(0.6), np_logit(0.4)], rtol=1e-14)
    # a negative eps clamps nothing, as torch's
    np.testing.assert_array_equal(_np(minigan.logit(_t(x, device), -0.1)),
                                  _np(minigan.logit(_t(x, device))))


def test_logit_gradient_conventions(device):
    x = _t([-0.5, 0.0, 0.3, 1.0, 1.5, NAN], device, grad=True)
    (g,) = _grads(minigan.logit(x).sum(), [x])
    np.testing.assert_array_equal(g, [NAN, INF, 1 / (0.3 * 0.7), INF, NAN, NAN])
    x = _t([-0.5, 0.0, 0.1, 0.3, 0.9, 1.5, NAN], device, grad=True)
    (g,) = _grads(minigan.logit(x, 0.1).sum(), [x])
    # zero outside [eps, 1 - eps], the gradient at the bounds themselves, NaN at NaN
    np.testing.assert_allclose(g, [0, 0, 1 / 0.09, 1 / 0.21, 1 / 0.09, 0, NAN], rtol=1e-12)


def test_sinc_gradient_at_zero_and_its_second_derivative(device):
    x = _t([0.0, 0.5, INF], device, grad=True)
    (g,) = minigan.grad(minigan.sinc(x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(_np(g)[:2], [0.0, -4 / np.pi], rtol=1e-14)
    assert np.isnan(_np(g)[2])
    x0 = _t([0.0], device, grad=True)
    (g,) = minigan.grad(minigan.sinc(x0).sum(), [x0], create_graph=True)
    (h,) = _grads(g.sum(), [x0])
    np.testing.assert_allclose(h, [-np.pi ** 2 / 3], rtol=1e-14)  # sinc'' (0)


UNARY_GRAD = [
    ("sinc", lambda x: minigan.sinc(x), np.concatenate([[0.0], R.uniform(-2.5, 2.5, 7)])),
    ("deg2rad", lambda x: minigan.deg2rad(x), R.uniform(-90, 90, 8)),
    ("rad2deg", lambda x: minigan.rad2deg(x), R.uniform(-2, 2, 8)),
    ("logit", lambda x: minigan.logit(x), R.uniform(0.1, 0.9, 8)),
    ("logit_eps", lambda x: minigan.logit(x, eps=0.15),
     np.array([-0.3, 0.05, 0.3, 0.45, 0.6, 0.7, 0.95, 1.4])),
    ("clamp_min", lambda x: minigan.clamp_min(x, 0.25), _away(8) + 0.25),
    ("clamp_max", lambda x: x.clamp_max(-0.5), _away(8) - 0.5),
]


@pytest.mark.parametrize("name, fn, x", UNARY_GRAD, ids=[c[0] for c in UNARY_GRAD])
def test_unary_gradients_first_and_second_order(device, name, fn, x):
    xs = [_dev(x, device)]
    check_backward(fn, xs)
    check_double_backward(fn, xs)
    check_double_backward(fn, [_dev(x[2], device)])  # 0-d


# ----------------------------------------------------------------------------- two operands

def np_xlogy(x, y):
    with np.errstate(all="ignore"):
        return np.where((x == 0) & ~np.isnan(y), 0.0, x * np.log(y)).astype(
            np.result_type(x, y))


def np_heaviside(x, v):
    return np.where(np.isnan(x), 0, np.heaviside(x, v)).astype(x.dtype)


BINARY = [
    ("hypot", np.hypot, _away((3, 4)), _away((4,))),
    ("logaddexp", np.logaddexp, R.standard_normal((3, 4)) * 3, R.standard_normal((3, 1))),
    ("logaddexp2", np.logaddexp2, R.standard_normal((3, 4)) * 3, R.standard_normal((4,))),
    ("xlogy", np_xlogy, R.standard_normal((3, 4)), R.uniform(0.2, 3, (3, 4))),
    ("copysign", np.copysign, _away((3, 4)), _away((3, 4))),
    ("float_power", np.float_power, R.uniform(0.3, 3, (3, 4)), R.standard_normal((3, 4))),
]


@pytest.mark.parametrize("name, ref, a, b", BINARY, ids=[c[0] for c in BINARY])
def test_binary_values_broadcast_and_methods(device, name, ref, a, b):
    fn = getattr(minigan, name)
    out = np.float64 if name == "float_power" else np.float32
    for dt, rtol in ((np.float64, 1e-13), (np.float32, 2e-6)):
        y = fn(_t(a, device, dt), _t(b, device, dt))
        assert y.dtype == (np.float64 if name == "float_power" else dt) and y.device == device
        assert y.shape == np.broadcast_shapes(a.shape, b.shape)
        np.testing.assert_allclose(_np(y), ref(a.astype(dt), b.astype(dt)), rtol=rtol,
                                   atol=1e-7)
    y = getattr(_t(a, device, np.float32), name)(_t(b, device, np.float32))
    assert y.dtype == out
    y0 = fn(_t(a[0, 1], device), _t(b.reshape(-1)[1], device))
    assert y0.shape == () and np.isclose(y0.item(), ref(a[0, 1], b.reshape(-1)[1]),
                                         rtol=1e-13)


@pytest.mark.parametrize("name", ["xlogy", "copysign", "float_power"])
def test_binary_integer_and_bool_promotion(device, name):
    fn, ref = getattr(minigan, name), dict((c[0], c[1]) for c in BINARY)[name]
    i = np.array([0, 1, 2, 3, 4])
    b = np.array([True, False, True, True, False])
    f32 = np.array([0.5, 1.0, -2.0, 3.0, 0.25], np.float32)
    f64 = f32.astype(np.float64)
    wide = np.float64 if name == "float_power" else None
    cases = [  # (a, b, torch's dtype)
        (i, i, np.float32), (b, i, np.float32), (i.astype(np.uint8), b, np.float32),
        (f32, i, np.float32), (i, f64, np.float64), (f32, f64, np.float64),
        (f32.astype(np.float16), i, np.float16),
    ]
    for x, y, want in cases:
        got = fn(_t(x, device, None), _t(y, device, None))
        assert got.dtype == (wide or want), (x.dtype, y.dtype)
        np.testing.assert_allclose(_np(got), ref(x.astype(np.float64), y.astype(np.float64)),
                                   rtol=1e-3 if want == np.float16 else 1e-6)
    # a 0-d float64 tensor and a number keep a float32 tensor's dtype
    assert fn(_t(f32, device, None), _t(2.0, device)).dtype == (wide or np.float32)
    assert fn(_t(f32, device, None), 2).dtype == (wide or np.float32)
    assert fn(_t(i, device, None), 2.5).dtype == (wide or np.float32)


@pytest.mark.parametrize("name", ["hypot", "logaddexp", "logaddexp2"])
def test_float_only_binaries_promote_and_refuse_integer_pairs(device, name):
    fn, ref = getattr(minigan, name), dict((c[0], c[1]) for c in BINARY)[name]
    i = np.array([0, 1, 2])
    f16 = np.array([0.5, 1.0, -2.0], np.float16)
    assert fn(_t(f16, device, None), _t(i, device, None)).dtype == np.float16
    y = fn(_t(f16.astype(np.float32), device, None), _t(i, device, None))
    assert y.dtype == np.float32
    np.testing.assert_allclose(_np(y), ref(f16.astype(np.float64), i), rtol=1e-6)
    assert fn(_t(i, device, None), _t(f16, device, np.float64)).dtype == np.float64
    for x, y in ((i, i), (i.astype(bool), i), (i.astype(np.uint8), i.astype(np.uint8))):
        with pytest.raises(TypeError, match=rf"{name}: expected floating-point operands, got "
                                            rf"{np.result_type(x, y)} \(torch has no integer"):
            fn(_t(x, device, None), _t(y, device, None))


def test_binary_edge_values(device):
    def run(fn, a, b):
        return _np(fn(_t(a, device), _t(b, device)))
    np.testing.assert_array_equal(
        run(minigan.hypot, [INF, NAN, -INF, 0.0, 3.0, 1e300], [NAN, INF, 1.0, 0.0, -4.0, 1e300]),
        [INF, INF, INF, 0.0, 5.0, np.hypot(1e300, 1e300)])
    np.testing.assert_allclose(
        run(minigan.logaddexp, [INF, -INF, NAN, 1000.0, -INF, 0.0], [INF, -INF, 1.0, 1.0, 2.0,
                                                                        0.0]),
        [INF, -INF, NAN, 1000.0, 2.0, np.log(2.0)], rtol=1e-15)
    np.testing.assert_allclose(
        run(minigan.logaddexp2, [INF, -INF, NAN, 1000.0, -INF, 3.0], [INF, -INF, 1.0, 1.0, 2.0,
                                                                         3.0]),
        [INF, -INF, NAN, 1000.0, 2.0, 4.0], rtol=1e-15)
    # xlogy: 0 where x is 0, even at y = 0, inf or negative; NaN where y is NaN or x is NaN
    np.testing.assert_array_equal(
        run(minigan.xlogy, [0.0, 0.0, 0.0, 0.0, 1.0, NAN, 2.0, -0.0],
            [0.0, INF, NAN, -1.0, 0.0, 0.0, -1.0, 5.0]),
        [0.0, 0.0, NAN, 0.0, -INF, NAN, NAN, 0.0])
    y = run(minigan.copysign, [1.0, -0.0, NAN, INF, 2.0, 3.0], [-0.0, 1.0, -1.0, -2.0, NAN,
                                                               -NAN])
    np.testing.assert_array_equal(y, [-1.0, 0.0, NAN, -INF, 2.0, -3.0])
    assert not np.signbit(y[1]) and np.signbit(y[2])
    # CUDA's pow is within 2 ulp (2 ** 0.5 came 1 ulp under sqrt(2) on an H200); the edges exact
    y = run(minigan.float_power, [-8.0, 0.0, 2.0, 0.0, INF, 1.0], [1 / 3, -1.0, 0.5, 0.0, -1.0,
                                                                   NAN])
    np.testing.assert_array_equal(y[[0, 1, 3, 4, 5]], [NAN, INF, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(y[2], np.sqrt(2.0), rtol=4.5e-16, atol=0)


def test_xlogy_numbers_either_side(device):
    x = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(_np(minigan.xlogy(2, _t(x, device, np.float32))),
                               [-INF, 0.0, 2 * np.log(2)], rtol=1e-6)
    y = minigan.xlogy(_t([0, 1, 2], device, None), 2.5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(_np(y), [0.0, np.log(2.5), 2 * np.log(2.5)], rtol=1e-6)


def test_heaviside_values_dtypes_and_nan(device):
    x = np.array([-1.0, 0.0, 2.0, NAN, -0.0, INF, -INF])
    v = np.array([0.5])
    y = minigan.heaviside(_t(x, device), _t(v, device))
    np.testing.assert_array_equal(_np(y), [0.0, 0.5, 1.0, 0.0, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(_np(y), np_heaviside(x, 0.5))
    xi = np.array([-3, 0, 4])
    yi = minigan.heaviside(_t(xi, device, None), _t([7, 8, 9], device, None))
    assert yi.dtype == np.int64
    np.testing.assert_array_equal(_np(yi), [0, 8, 1])
    yb = _t([True, False], device, None).heaviside(_t([False, True], device, None))
    assert yb.dtype == np.bool_ and _np(yb).tolist() == [True, True]
    # a number takes input's dtype
    assert minigan.heaviside(_t(x, device, np.float32), 0.25).dtype == np.float32
    with pytest.raises(TypeError, match="heaviside: input and values must have one dtype, got "
                                        "float32 and float64"):
        minigan.heaviside(_t(x, device, np.float32), _t(v, device))
    with pytest.raises(ValueError, match=r"heaviside: shapes \(7,\) and \(2,\) cannot be"):
        minigan.heaviside(_t(x, device), _t([1.0, 2.0], device))


def test_heaviside_gradient_goes_to_values_where_input_is_zero(device):
    x = _t([-1.0, 0.0, 2.0, 0.0], device, grad=True)
    v = _t([0.5, 0.5, 0.5, 2.0], device, grad=True)
    gx, gv = _grads((minigan.heaviside(x, v) * _t([1.0, 2.0, 3.0, 4.0], device)).sum(), [x, v])
    np.testing.assert_array_equal(gx, [0, 0, 0, 0])
    np.testing.assert_array_equal(gv, [0, 2, 0, 4])
    vb = _t([1.5], device, grad=True)  # broadcast values: summed back
    (g,) = _grads(minigan.heaviside(x.detach(), vb).sum(), [vb])
    np.testing.assert_array_equal(g, [2.0])


def test_copysign_gradient_conventions(device):
    a = _t([1.0, -0.0, 0.0, NAN, INF, -2.0], device, grad=True)
    b = _t([-1.0, 1.0, -1.0, 1.0, -1.0, 1.0], device, grad=True)
    ga, gb = _grads(minigan.copysign(a, b).sum(), [a, b])
    # torch's formula, result / input: +-1, 0 at zeros, NaN at inf and NaN
    np.testing.assert_array_equal(ga, [-1.0, 0.0, 0.0, NAN, NAN, -1.0])
    np.testing.assert_array_equal(gb, np.zeros(6))


def test_xlogy_gradient_conventions(device):
    x = _t([0.0, 0.0, 0.0, 1.0, 0.0, NAN, 2.0, 0.0], device, grad=True)
    y = _t([0.0, 1.0, NAN, 0.0, -1.0, 1.0, 3.0, 2.0], device, grad=True)
    gx, gy = _grads(minigan.xlogy(x, y).sum(), [x, y])
    # d/dx is log(y) (at x == 0 too), but 0 where x == 0 and y <= 0 (torch's convention,
    # NaN where y is NaN); d/dy is x / y
    np.testing.assert_array_equal(gx, [0.0, 0.0, NAN, -INF, 0.0, 0.0, np.log(3.0), np.log(2.0)])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(gy, np.array([0.0, 0, NAN, 1, 0, NAN, 2, 0])
                                      / np.array([0.0, 1, NAN, 0, -1, 1, 3, 2]))


def test_hypot_and_logaddexp_gradient_edges(device):
    a, b = _t([0.0, 3.0, INF], device, grad=True), _t([0.0, 4.0, 1.0], device, grad=True)
    ga, gb = _grads(minigan.hypot(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga, [NAN, 0.6, NAN])  # torch's: NaN at the origin
    np.testing.assert_array_equal(gb, [NAN, 0.8, 0.0])
    for fn in (minigan.logaddexp, minigan.logaddexp2):
        a = _t([INF, -INF, 2000.0, -2000.0, 3.0], device, grad=True)
        b = _t([INF, -INF, 0.0, 0.0, 3.0], device, grad=True)
        ga, gb = _grads(fn(a, b).sum(), [a, b])
        np.testing.assert_array_equal(ga, [NAN, NAN, 1.0, 0.0, 0.5])
        np.testing.assert_array_equal(gb, [NAN, NAN, 0.0, 1.0, 0.5])


def test_float_power_gradient_comes_back_in_the_input_dtype(device):
    x = _t([0.5, 2.0, 3.0], device, np.float32, grad=True)
    e = _t([2.0, 0.5, -1.0], device, np.float32, grad=True)
    y = minigan.float_power(x, e)
    assert y.dtype == np.float64
    gx, ge = minigan.grad(y.sum(), [x, e])
    assert gx.dtype == np.float32 and ge.dtype == np.float32
    xv, ev = np.array([0.5, 2.0, 3.0]), np.array([2.0, 0.5, -1.0])
    np.testing.assert_allclose(_np(gx), ev * xv ** (ev - 1), rtol=1e-6)
    np.testing.assert_allclose(_np(ge), xv ** ev * np.log(xv), rtol=1e-6)
    # pow's conventions at a zero base: no gradient for 0 ** 0, nor for the exponent
    x, e = _t([0.0, 0.0], device, grad=True), _t([0.0, 2.0], device, grad=True)
    gx, ge = _grads(minigan.float_power(x, e).sum(), [x, e])
    np.testing.assert_array_equal(gx, [0.0, 0.0])
    np.testing.assert_array_equal(ge, [0.0, 0.0])
    y = minigan.float_power(3, _t([1.0, 2.0], device, np.float32))
    assert y.dtype == np.float64  # CUDA's pow gave 3 ** 1 one ulp under 3 on an H200
    np.testing.assert_allclose(_np(y), [3.0, 9.0], rtol=4.5e-16, atol=0)


BINARY_GRAD = [
    ("hypot", minigan.hypot, _away((3, 4)), _away((4,))),
    ("logaddexp", minigan.logaddexp, R.standard_normal((3, 4)), R.standard_normal((3, 1))),
    ("logaddexp2", minigan.logaddexp2, R.standard_normal((3, 4)), R.standard_normal((3, 4))),
    ("xlogy", minigan.xlogy, _away((3, 4)), R.uniform(0.3, 3, (4,))),
    ("copysign", minigan.copysign, _away((3, 4)), _away((3, 4))),
    ("float_power", minigan.float_power, R.uniform(0.3, 3, (3, 4)), R.standard_normal((1, 4))),
    ("float_power_number", lambda x, e: minigan.float_power(x, 2.5) + e,
     R.uniform(0.3, 3, (3, 4)), R.standard_normal(4)),
    ("clamp_min_tensor", minigan.clamp_min, _away((3, 4)), _away((4,)) + 0.1),
    ("clamp_max_tensor", minigan.clamp_max, _away((3, 4)), _away((4,)) + 0.1),
    ("heaviside_values", lambda x, v: minigan.heaviside(x, v) * x, _away((3, 4)),
     R.standard_normal((3, 4))),
]


@pytest.mark.parametrize("name, fn, a, b", BINARY_GRAD, ids=[c[0] for c in BINARY_GRAD])
def test_binary_gradients_first_and_second_order(device, name, fn, a, b):
    if name.startswith("clamp"):  # (bounds apart from the input: no ties)
        b = np.where(np.abs(a - b).min(0) < 0.05, b + 0.2, b)
    xs = [_dev(a, device), _dev(b, device)]
    check_backward(fn, xs)
    check_double_backward(fn, xs)


def test_heaviside_values_gradient_checks_where_input_is_zero(device):
    x = np.array([[0.0, -1.0, 0.0], [2.0, 0.0, 0.0]])
    v = R.standard_normal((2, 3))
    xs = [_dev(x, device), _dev(v, device)]
    check_backward(minigan.heaviside, xs, no_grads=[True, False])
    check_double_backward(minigan.heaviside, xs, no_grads=[True, False])


def test_xlogy_second_order_where_x_is_zero(device):
    # at x == 0 (with y > 0) the gradients are the true derivatives: finite differences agree
    x = np.array([0.0, 1.5, 0.0, -2.0])
    y = R.uniform(0.5, 2, 4)
    xs = [_dev(x, device), _dev(y, device)]
    check_backward(minigan.xlogy, xs)
    check_double_backward(minigan.xlogy, xs)
    check_double_backward(minigan.xlogy, xs, no_grads=[True, False])


# ----------------------------------------------------------------------------- addcmul, addcdiv

def test_addcmul_and_addcdiv_values_and_promotion(device):
    a, b, c = R.standard_normal((2, 1)), R.standard_normal((3,)), _away((2, 3))
    ta, tb, tc = _t(a, device), _t(b, device), _t(c, device)
    np.testing.assert_allclose(_np(minigan.addcmul(ta, tb, tc)), a + b * c, rtol=1e-14)
    np.testing.assert_allclose(_np(minigan.addcmul(ta, tb, tc, value=-2.5)), a - 2.5 * b * c,
                               rtol=1e-14)
    np.testing.assert_allclose(_np(ta.addcdiv(tb, tc, value=0.5)), a + 0.5 * b / c, rtol=1e-14)
    np.testing.assert_allclose(_np(minigan.addcdiv(ta, tb, tc)), a + b / c, rtol=1e-14)
    i = np.array([0, 1, 2])
    y = minigan.addcmul(_t(i, device, None), _t(i, device, None), _t(i, device, None), value=2)
    assert y.dtype == np.int64 and _np(y).tolist() == [0, 3, 10]
    f32 = np.array([1.0, 2.0, 4.0], np.float32)
    y = minigan.addcmul(_t(f32, device, None), _t(i, device, None), _t(i, device, None),
                        value=2.5)
    assert y.dtype == np.float32 and _np(y).tolist() == [1.0, 4.5, 14.0]
    y = minigan.addcdiv(_t(i, device, None), _t(f32, device, None), _t(i, device, None))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(_np(y), [INF, 3.0, 4.0])
    y = minigan.addcdiv(_t(f32.astype(np.float16), device, None), _t(f32, device, None),
                        _t(f32, device, np.float64), value=2)
    assert y.dtype == np.float64
    assert minigan.addcmul(_t(f32, device, None), _t(f32, device, None), _t(2.0, device),
                           value=True).dtype == np.float32
    y = minigan.addcmul(_t(f32, device, None), _t(f32, device, None),
                        _t([INF, NAN, -INF], device, np.float32))
    np.testing.assert_array_equal(_np(y), [INF, NAN, -INF])


@pytest.mark.parametrize("call, error, message", [
    (lambda i, f: minigan.addcdiv(f, i, i), TypeError,
     "addcdiv: integer division of tensor1 by tensor2 is not supported"),
    (lambda i, f: minigan.addcdiv(f, i, i > 0), TypeError,
     "addcdiv: integer division of tensor1 by tensor2 is not supported"),
    (lambda i, f: minigan.addcmul(i, i, i, value=2.5), TypeError,
     "addcmul: value must be an integer for int64 tensors, got 2.5"),
    (lambda i, f: minigan.addcmul(f, f, f, value=f), TypeError,
     "addcmul: value must be a real number, got Tensor"),
    (lambda i, f: minigan.addcmul(f, f, f, value="2"), TypeError,
     "addcmul: value must be a real number, got str"),
    (lambda i, f: minigan.addcmul(i > 0, i > 0, i > 0), TypeError,
     "addcmul: not defined for bool tensors"),
    (lambda i, f: minigan.addcmul(f, f, f[:2]), ValueError,
     r"addcmul: shapes \(3,\) and \(3,\) and \(2,\) cannot be broadcast together"),
    (lambda i, f: minigan.addcmul(f, f, "x"), TypeError,
     "addcmul: expected tensors or real numbers, got str"),
])
def test_addcmul_and_addcdiv_refusals(device, call, error, message):
    i, f = _t([0, 1, 2], device, None), _t([1.0, 2.0, 3.0], device)
    with pytest.raises(error, match=message):
        call(i, f)


@pytest.mark.parametrize("name", ["addcmul", "addcdiv"])
def test_addcmul_and_addcdiv_gradients_first_and_second_order(device, name):
    fn = getattr(minigan, name)
    xs = [_dev(R.standard_normal((2, 1)), device), _dev(R.standard_normal((3,)), device),
          _dev(_away((2, 3), 0.5), device)]
    check_backward(lambda a, b, c: fn(a, b, c, value=-1.5), xs)
    check_double_backward(lambda a, b, c: fn(a, b, c, value=-1.5), xs)
    check_double_backward(fn, xs)


# ----------------------------------------------------------------------------- reductions

X_NAN = np.array([[1.0, NAN, 3.0, -2.0], [NAN, NAN, NAN, NAN], [-1.0, 2.0, INF, 0.5]])


@pytest.mark.parametrize("dim, keepdim", [(None, False), (None, True), (1, False), (0, True),
                                          ((0, 1), False), (-1, True)])
def test_nansum_and_nanmean_values(device, dim, keepdim):
    x = _t(X_NAN, device)
    np.testing.assert_array_equal(_np(minigan.nansum(x, dim, keepdim)),
                                  np.nansum(X_NAN, axis=dim, keepdims=keepdim))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (NumPy warns at the all-NaN row; torch does not)
        want = np.nanmean(X_NAN, axis=dim, keepdims=keepdim)
    np.testing.assert_array_equal(_np(minigan.nanmean(x, dim, keepdim)), want)
    np.testing.assert_array_equal(_np(x.nanmean(dim=dim, keepdim=keepdim)), want)
    np.testing.assert_array_equal(_np(x.nansum(dim, keepdim)),
                                  np.nansum(X_NAN, axis=dim, keepdims=keepdim))


def test_nansum_and_nanmean_dtypes(device):
    i = _t([[1, 2], [3, 4]], device, np.int32)
    y = minigan.nansum(i)
    assert y.dtype == np.int64 and y.item() == 10
    assert minigan.nansum(i, dtype=np.int8).dtype == np.int8
    yb = minigan.nansum(_t([True, False, True], device, None))
    assert yb.dtype == np.int64 and yb.item() == 2
    y = minigan.nansum(_t([1.0, NAN], device, np.float32), dtype=np.float64)
    assert y.dtype == np.float64 and y.item() == 1.0
    assert minigan.nansum(_t([1.0, NAN], device, np.float16)).dtype == np.float16
    assert minigan.nansum(_t(np.zeros(0), device)).item() == 0.0
    assert np.isnan(minigan.nanmean(_t(np.zeros(0), device)).item())
    y = minigan.nanmean(_t([1.0, NAN, 2.0], device, np.float32), dtype=np.float64)
    assert y.dtype == np.float64 and y.item() == 1.5
    assert minigan.nanmean(_t(3.0, device), 0).item() == 3.0
    with pytest.raises(TypeError, match="nanmean: expected a floating-point tensor, got int32"):
        minigan.nanmean(i)
    with pytest.raises(TypeError, match="nanmean: expected a floating-point tensor, got int32"):
        minigan.nanmean(i, dtype=np.float32)  # (torch refuses it too)
    with pytest.raises(TypeError, match="nanmean: dtype must be a floating dtype, got int64"):
        minigan.nanmean(_t([1.0], device), dtype=np.int64)


def test_nansum_and_nanmean_gradient_is_zero_at_nan(device):
    x = _t([[1.0, NAN, INF], [2.0, 3.0, NAN]], device, grad=True)
    (g,) = _grads(minigan.nansum(x), [x])
    np.testing.assert_array_equal(g, [[1, 0, 1], [1, 1, 0]])
    (g,) = _grads(minigan.nanmean(x, 1).sum(), [x])
    np.testing.assert_array_equal(g, [[0.5, 0, 0.5], [0.5, 0.5, 0]])


@pytest.mark.parametrize("name", ["nansum", "nanmean"])
def test_nan_reductions_gradients_first_and_second_order(device, name):
    x = R.standard_normal((3, 4))
    x[0, 1] = x[2, 3] = NAN
    fn = getattr(minigan, name)
    for f in (lambda t: fn(t), lambda t: fn(t, 1, True), lambda t: fn(t, (0,)) ** 2):
        check_backward(f, [_dev(x, device)])
        check_double_backward(f, [_dev(x, device)])


def test_aminmax_values_dtypes_and_ties(device):
    x = np.array([[1.0, 3.0, 1.0, 3.0, 2.0], [5.0, 4.0, NAN, 2.0, 1.0]])
    r = minigan.aminmax(_t(x, device))
    assert isinstance(r, tuple) and len(r) == 2 and r.min is r[0] and r.max is r[1]
    assert np.isnan(r.min.item()) and np.isnan(r.max.item())
    mn, mx = _t(x, device).aminmax(dim=1)
    np.testing.assert_array_equal(_np(mn), [1.0, NAN])
    np.testing.assert_array_equal(_np(mx), [3.0, NAN])
    mn, mx = minigan.aminmax(_t(x[:1], device), dim=0, keepdim=True)
    assert mn.shape == (1, 5)
    np.testing.assert_array_equal(_np(mx), x[:1])
    mn, mx = minigan.aminmax(_t(x, device), keepdim=True)
    assert mn.shape == mx.shape == (1, 1)
    i = _t([[3, -1], [7, 2]], device, np.int32)
    mn, mx = minigan.aminmax(i, dim=-1)
    assert mn.dtype == np.int32 and _np(mn).tolist() == [-1, 2] and _np(mx).tolist() == [3, 7]
    b = minigan.aminmax(_t([True, False], device, None))
    assert b.min.dtype == np.bool_ and (b.min.item(), b.max.item()) == (False, True)
    r = minigan.aminmax(_t(2.5, device), dim=0)
    assert r.min.shape == () and r.max.item() == 2.5
    r = minigan.aminmax(_t(np.zeros((2, 0)), device), dim=0)
    assert r.min.shape == (0,)
    assert "aminmax(min=" in repr(r)


def test_aminmax_gradient_is_split_among_ties(device):
    x = _t([[1.0, 3.0, 1.0, 3.0, 2.0]], device, grad=True)
    (g,) = _grads(sum(minigan.aminmax(x, dim=1)).sum(), [x])
    np.testing.assert_array_equal(g, [[0.5, 0.5, 0.5, 0.5, 0.0]])
    mn, mx = minigan.aminmax(x)
    (g,) = _grads(mn * 2 + mx * 3, [x])
    np.testing.assert_array_equal(g, [[1.0, 1.5, 1.0, 1.5, 0.0]])


@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": 0, "keepdim": True}])
def test_aminmax_gradients_first_and_second_order(device, kw):
    x = R.permutation(12).reshape(3, 4) + R.uniform(0, 0.5, (3, 4))  # no ties

    def f(t):
        mn, mx = minigan.aminmax(t, **kw)
        return mn * mx
    check_backward(f, [_dev(x, device)])
    check_double_backward(f, [_dev(x, device)])


@pytest.mark.parametrize("call, error, message", [
    (lambda x: minigan.aminmax(x, dim=(0, 1)), TypeError, r"aminmax: dim must be one int, got"),
    (lambda x: minigan.aminmax(x, dim=2), IndexError, "aminmax"),
    (lambda x: minigan.aminmax(x[:, :0], dim=1), RuntimeError,
     "aminmax: cannot reduce over an empty dimension"),
    (lambda x: minigan.aminmax(x[:0]), RuntimeError,
     r"aminmax: cannot reduce over an empty dimension \(shape \(0, 3\)\)"),
])
def test_aminmax_refusals(device, call, error, message):
    with pytest.raises(error, match=message):
        call(_t(np.ones((2, 3)), device))


def np_diff(x, n, axis, prepend=None, append=None):
    kw = {k: v for k, v in (("prepend", prepend), ("append", append)) if v is not None}
    return np.diff(x, n, axis, **kw)


@pytest.mark.parametrize("n, dim", [(1, -1), (2, -1), (3, 0), (0, 1), (4, 1), (7, 1)])
def test_diff_values(device, n, dim):
    x = R.standard_normal((3, 4))
    y = minigan.diff(_t(x, device), n, dim)
    np.testing.assert_allclose(_np(y), np_diff(x, n, dim), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(_t(x, device).diff(n=n, dim=dim)), np_diff(x, n, dim),
                               rtol=1e-12, atol=1e-12)


def test_diff_prepend_append_dtypes_and_bools(device):
    x, p, a = R.standard_normal((2, 3)), R.standard_normal((2, 1)), R.standard_normal((2, 2))
    y = minigan.diff(_t(x, device), 2, 1, _t(p, device), _t(a, device))
    np.testing.assert_allclose(_np(y), np_diff(x, 2, 1, p, a), rtol=1e-12, atol=1e-13)
    i = np.array([0, 1, 5])
    y = minigan.diff(_t(i, device, None), prepend=_t([1.5], device, np.float32))
    assert y.dtype == np.float32 and _np(y).tolist() == [-1.5, 1.0, 4.0]
    yi = minigan.diff(_t(i, device, np.int32))
    assert yi.dtype == np.int32 and _np(yi).tolist() == [1, 4]
    u = minigan.diff(_t([1, 2, 0], device, np.uint8))  # wraps, as torch's
    assert u.dtype == np.uint8 and _np(u).tolist() == [1, 254]
    b = _t([True, False, False, True], device, None)
    np.testing.assert_array_equal(_np(minigan.diff(b)), [True, False, True])
    np.testing.assert_array_equal(_np(minigan.diff(b, 2)), [True, True])
    y = minigan.diff(_t([1.0, INF, INF, NAN], device))
    np.testing.assert_array_equal(_np(y), [INF, NAN, NAN])
    x0 = _t([1.0, 2.0], device)
    y = minigan.diff(x0, 0)
    assert y is not x0 and _np(y).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("call, error, message", [
    (lambda x: minigan.diff(x, -1), ValueError, "diff: the order n must be non-negative, got -1"),
    (lambda x: minigan.diff(x, 1.5), TypeError, "diff: n must be an int, got 1.5"),
    (lambda x: minigan.diff(x[0, 0]), ValueError,
     "diff: expects input to be at least one-dimensional"),
    (lambda x: minigan.diff(x, dim=2), IndexError, "diff"),
    (lambda x: minigan.diff(x, dim=0, append=x[0]), ValueError,
     r"diff: append must have input's shape \(2, 3\) except along dim 0, got \(3,\)"),
    (lambda x: minigan.diff(x, dim=0, prepend=x[:, :2]), ValueError,
     r"diff: prepend must have input's shape \(2, 3\) except along dim 0, got \(2, 2\)"),
    (lambda x: minigan.diff(x, prepend=2.0), TypeError,
     "diff: prepend must be a tensor, got float"),
])
def test_diff_refusals(device, call, error, message):
    with pytest.raises(error, match=message):
        call(_t(np.ones((2, 3)), device))


@pytest.mark.parametrize("n, dim", [(1, -1), (2, 0), (3, 1)])
def test_diff_gradients_first_and_second_order(device, n, dim):
    xs = [_dev(R.standard_normal((3, 4)), device), _dev(R.standard_normal((3, 2)), device),
          _dev(R.standard_normal((1, 4)), device)]

    def f(x, p, a):
        return minigan.diff(x, n, dim, prepend=p if dim else None,
                            append=a if not dim else None) ** 2
    check_backward(f, xs)
    check_double_backward(f, xs)


def np_var(x, axis, correction, keepdims=False):
    n = x.size if axis is None else np.prod([x.shape[a] for a in np.atleast_1d(axis)])
    m = x.mean(axis=axis, keepdims=True)
    return ((x - m) ** 2).sum(axis=axis, keepdims=keepdims) / (n - correction)


@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
def test_var_mean_and_std_mean_values_and_arguments(device, name):
    fn = getattr(minigan, name)
    x = R.standard_normal((3, 5))
    t = _t(x, device)
    root = np.sqrt if name == "std_mean" else (lambda v: v)
    cases = [  # (args, kwargs, axis, correction, keepdims)
        ((), {}, None, 1, False),
        ((1,), {}, 1, 1, False),
        ((0,), {"correction": 0, "keepdim": True}, 0, 0, True),
        (((0, 1),), {"correction": 2}, (0, 1), 2, False),
        (([1],), {"unbiased": False}, 1, 0, False),
        ((1, False, True), {}, 1, 0, True),  # torch's legacy positional (dim, unbiased, keepdim)
        ((False,), {}, None, 0, False),  # ... and a bool where dim goes: unbiased
        ((), {"dim": 1, "correction": 1.5}, 1, 1.5, False),
    ]
    for args, kw, axis, c, keep in cases:
        out = fn(t, *args, **kw)
        assert type(out) is tuple and len(out) == 2
        s, m = out
        np.testing.assert_allclose(_np(s), root(np_var(x, axis, c, keep)), rtol=1e-13)
        np.testing.assert_allclose(_np(m), x.mean(axis=axis, keepdims=keep), rtol=1e-13,
                                   atol=1e-15)
    s, m = fn(_t(x, device, np.float32), 1)
    assert s.dtype == m.dtype == np.float32
    s, _ = fn(_t([1.0, 2.0], device), correction=2)  # n <= correction: inf, as torch
    assert s.item() == INF
    with pytest.raises(TypeError, match=f"{name}: expected a floating-point tensor, got int64"):
        fn(_t([1, 2, 3], device, None))
    with pytest.raises(TypeError, match=f"{name}: give unbiased or correction, not both"):
        fn(t, unbiased=True, correction=1)


@pytest.mark.parametrize("name", ["var_mean", "std_mean"])
def test_var_mean_and_std_mean_gradients_first_and_second_order(device, name):
    fn = getattr(minigan, name)
    x = [_dev(R.standard_normal((3, 4)), device)]
    for f in (lambda t: fn(t), lambda t: fn(t, 1, keepdim=True, correction=0)):
        check_backward(f, x)
        check_double_backward(f, x)
    # a constant row: std's gradient there is 0, as torch's (the mean's is 1/n)
    t = _t([[2.0, 2.0, 2.0]], device, grad=True)
    (g,) = _grads(sum(minigan.std_mean(t, 1)).sum(), [t])
    np.testing.assert_allclose(g, [[1 / 3] * 3], rtol=1e-15)


# ----------------------------------------------------------------------------- clamp_min, clamp_max

def test_clamp_min_and_clamp_max_values_and_dtypes(device):
    x = np.array([-2.0, 0.0, 0.5, 3.0, NAN])
    np.testing.assert_array_equal(_np(minigan.clamp_min(_t(x, device), 0.25)),
                                  [0.25, 0.25, 0.5, 3.0, NAN])
    np.testing.assert_array_equal(_np(_t(x, device).clamp_max(max=1.0)),
                                  [-2.0, 0.0, 0.5, 1.0, NAN])
    i = _t([0, 1, 2], device, None)
    y = minigan.clamp_min(i, 0.5)  # an integer tensor with a float bound is float32, as torch
    assert y.dtype == np.float32 and _np(y).tolist() == [0.5, 1.0, 2.0]
    y = minigan.clamp_max(i, 1)
    assert y.dtype == np.int64 and _np(y).tolist() == [0, 1, 1]
    lo = _t([1.0, -1.0, 4.0, 0.0, 0.0], device)
    np.testing.assert_array_equal(_np(minigan.clamp_min(_t(x, device), lo)),
                                  [1.0, 0.0, 4.0, 3.0, NAN])
    x = _t([0.0, 1.0, 2.0], device, grad=True)
    lo = _t([1.0, 1.0, 1.0], device, grad=True)
    gx, glo = _grads(minigan.clamp_min(x, lo).sum(), [x, lo])
    np.testing.assert_array_equal(gx, [0.0, 1.0, 1.0])  # torch's: the input at a tie
    np.testing.assert_array_equal(glo, [1.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("call, error, message", [
    (lambda x: minigan.hypot(x, "a"), TypeError, "hypot: expected tensors or real numbers"),
    (lambda x: minigan.hypot(x, x[:2]), ValueError, r"hypot: shapes \(3,\) and \(2,\)"),
    (lambda x: minigan.xlogy(x, None), TypeError, "xlogy: expected tensors or real numbers"),
    (lambda x: minigan.copysign(x, [1.0]), TypeError,
     "copysign: expected tensors or real numbers, got list"),
    (lambda x: minigan.float_power(2, 3), TypeError,
     "float_power: expected a tensor among input and exponent, got int and int"),
    (lambda x: minigan.logit(x, "0.1"), TypeError, "logit: eps must be a number or None"),
    (lambda x: minigan.logit(x, True), TypeError, "logit: eps must be a number or None"),
    (lambda x: minigan.sinc("x"), TypeError, "cannot make a tensor of numbers from a str"),
])
def test_refusals_name_the_function(device, call, error, message):
    with pytest.raises(error, match=message):
        call(_t([0.5, 1.0, 2.0], device))


def test_a_wrong_backward_is_caught_by_the_checker():
    """The checks above can fail: a hypot whose gradient is swapped between its operands."""
    class Swapped(minigan.Function):
        def forward(self, a, b):
            return np.hypot(a, b)

        def backward(self, gy):
            a, b = self.inputs
            y = self.output()
            return gy * b / y, gy * a / y
    xs = [_away((3,)), _away((3,))]
    with pytest.raises(GradientCheckError):
        check_backward(lambda a, b: Swapped()(a, b), xs)


# ----------------------------------------------------------------------------- against torch

def _torch(a):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a)))


TORCH_BINARY_EDGES = (
    np.array([0.0, -0.0, 1.5, -2.0, NAN, INF, -INF, 0.0, 3.0, 1e-3, 0.0, 2.0]),
    np.array([0.0, 1.0, -0.5, 2.0, 1.0, INF, 1.0, NAN, INF, -INF, -1.0, 0.0]),
)


@pytest.mark.parametrize("name", ["hypot", "logaddexp", "logaddexp2", "xlogy", "copysign",
                                  "float_power"])
def test_binary_values_and_gradients_match_torch(device, name):
    torch = pytest.importorskip("torch")
    a, b = TORCH_BINARY_EDGES
    ra, rb = R.standard_normal(12) * 2, R.uniform(0.1, 3, 12)
    for x, y in ((a, b), (b, a), (ra, rb), (rb, ra)):
        for dt in (np.float32, np.float64):
            want = getattr(torch, name)(_torch(x.astype(dt)), _torch(y.astype(dt))).numpy()
            got = getattr(minigan, name)(_t(x, device, dt), _t(y, device, dt))
            assert got.dtype == want.dtype
            np.testing.assert_allclose(_np(got), want, rtol=2e-6 if dt == np.float32 else 1e-13,
                                       atol=1e-30, err_msg=f"{name} {dt}")
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.tensor(y, requires_grad=True)
        mx, my = _t(x, device, grad=True), _t(y, device, grad=True)
        gy = R.standard_normal(12)
        want = torch.autograd.grad(getattr(torch, name)(tx, ty), [tx, ty], torch.tensor(gy))
        got = minigan.grad(getattr(minigan, name)(mx, my), [mx, my], _t(gy, device))
        for w, g in zip(want, got):
            np.testing.assert_allclose(_np(g), w.numpy(), rtol=1e-12, atol=1e-300,
                                       err_msg=name)


@pytest.mark.parametrize("name", ["sinc", "deg2rad", "rad2deg", "logit"])
def test_unary_values_and_gradients_match_torch(device, name):
    torch = pytest.importorskip("torch")
    x = np.array([0.0, -0.0, 0.3, 0.5, 1.0, -1.5, 2.0, NAN, INF, -INF, 0.05, 0.95])
    for dt in (np.float16, np.float32, np.float64):
        want = getattr(torch, name)(_torch(x.astype(dt))).numpy()
        got = getattr(minigan, name)(_t(x, device, dt))
        assert got.dtype == want.dtype
        np.testing.assert_allclose(_np(got), want, rtol={np.float16: 1e-3, np.float32: 2e-6,
                                                         np.float64: 1e-14}[dt], atol=1e-7)
    for eps in ((None, 0.1, 0.6, -0.2) if name == "logit" else (None,)):
        args = () if eps is None else (eps,)
        tx = torch.tensor(x, requires_grad=True)
        mx = _t(x, device, grad=True)
        np.testing.assert_allclose(_np(getattr(minigan, name)(mx, *args)),
                                   getattr(torch, name)(tx, *args).detach().numpy(),
                                   rtol=1e-14)
        (want,) = torch.autograd.grad(getattr(torch, name)(tx, *args).sum(), [tx])
        (got,) = minigan.grad(getattr(minigan, name)(mx, *args).sum(), [mx])
        want = want.numpy()
        if eps is not None and eps >= 0:
            # torch's logit(x, eps) gradient at a NaN input is NaN from its scalar loop but 0
            # from its vectorised one (float64 runs of 8 and more); minigan's is NaN
            want = np.where(np.isnan(x), NAN, want)
        if name == "logit" and eps is None:
            # at x = -0.0 torch's scalar loop gives +inf and its vectorised one -inf (which of
            # the two runs depends on the CPU's vector width); minigan gives +inf, as at +0.0
            assert _np(got)[1] == INF and _np(got)[0] == INF
            want[1] = INF
        np.testing.assert_allclose(_np(got), want, rtol=1e-12, err_msg=str(eps))


def test_second_order_matches_torch(device):
    torch = pytest.importorskip("torch")
    a, b = R.standard_normal(6), R.uniform(0.2, 2, 6)
    fns = [
        ("hypot", 2, {}), ("logaddexp", 2, {}), ("logaddexp2", 2, {}), ("xlogy", 2, {}),
        ("float_power", 2, {}), ("sinc", 1, {}), ("logit", 1, {"eps": 0.3}),
        ("addcdiv", 3, {"value": 0.7}), ("addcmul", 3, {"value": -2}),
    ]
    for name, arity, kw in fns:
        vals = [b * 0.4 if name == "logit" else a, b, a + b][:arity]
        if name == "float_power":
            vals = [b, a]
        ts = [torch.tensor(v, requires_grad=True) for v in vals]
        ms = [_t(v, device, grad=True) for v in vals]
        k = -1 if arity == 3 else 0  # (addcmul's gradient for input is a constant)
        (tg,) = torch.autograd.grad(getattr(torch, name)(*ts, **kw).sum(), [ts[k]],
                                    create_graph=True)
        (mg,) = minigan.grad(getattr(minigan, name)(*ms, **kw).sum(), [ms[k]],
                             create_graph=True)
        want = torch.autograd.grad((tg * tg).sum(), ts, allow_unused=True)
        got = minigan.grad((mg * mg).sum(), ms, allow_unused=True)
        for w, g in zip(want, got):
            w = np.zeros(6) if w is None else w.numpy()
            g = np.zeros(6) if g is None else _np(g)
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=name)


def test_reductions_match_torch(device):
    torch = pytest.importorskip("torch")
    x = X_NAN
    for kw in ({}, {"dim": 1}, {"dim": (0, 1), "keepdim": True}, {"dim": 0}):
        for name in ("nansum", "nanmean"):
            want = getattr(torch, name)(_torch(x), **kw).numpy()
            got = getattr(minigan, name)(_t(x, device), **kw)
            np.testing.assert_allclose(_np(got), want, rtol=1e-15)
    y = R.standard_normal((3, 4))
    for kw in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"keepdim": True}):
        want = torch.aminmax(_torch(y), **kw)
        got = minigan.aminmax(_t(y, device), **kw)
        np.testing.assert_array_equal(_np(got.min), want.min.numpy())
        np.testing.assert_array_equal(_np(got.max), want.max.numpy())
    for args in ((1, -1), (2, 0), (3, 1), (0, 1)):
        np.testing.assert_allclose(_np(minigan.diff(_t(y, device), *args)),
                                   torch.diff(_torch(y), *args).numpy(), rtol=1e-14)
    p, a = R.standard_normal((3, 2)), R.standard_normal((3, 1))
    np.testing.assert_allclose(_np(minigan.diff(_t(y, device), 2, 1, _t(p, device),
                                                _t(a, device))),
                               torch.diff(_torch(y), 2, 1, _torch(p), _torch(a)).numpy(),
                               rtol=1e-14)
    for name in ("var_mean", "std_mean"):
        for args, kw in (((), {}), ((1,), {"correction": 0, "keepdim": True}),
                         ((1, False, True), {}), ((True,), {}), ((), {"unbiased": False})):
            want = getattr(torch, name)(_torch(y), *args, **kw)
            got = getattr(minigan, name)(_t(y, device), *args, **kw)
            for w, g in zip(want, got):
                np.testing.assert_allclose(_np(g), w.numpy(), rtol=1e-13, atol=1e-15)
    for name in ("addcmul", "addcdiv"):
        i, f = np.array([1, 2, 3]), np.array([0.5, 0.0, -2.0], np.float32)
        for ops in ((i, f, f), (f, i, f), (f, f, i), (i, f, i)):
            want = getattr(torch, name)(*map(_torch, ops), value=3).numpy()
            got = getattr(minigan, name)(*(_t(o, device, None) for o in ops), value=3)
            assert got.dtype == want.dtype
            np.testing.assert_allclose(_np(got), want, rtol=1e-6)
    x = np.array([-1.0, 0.0, 2.0, NAN, -0.0])
    np.testing.assert_array_equal(
        _np(minigan.heaviside(_t(x, device), _t([0.5], device))),
        torch.heaviside(_torch(x), _torch(np.array([0.5]))).numpy())


def test_math_constants_are_torchs():
    assert math.isclose(minigan.deg2rad(minigan.tensor(180.0, dtype=np.float64)).item(),
                        math.pi, rel_tol=1e-15)
