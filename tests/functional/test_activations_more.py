"""The activations beyond relu/leaky_relu/tanh/sigmoid/softplus, and erf, erfc, erfinv.

Values are checked against NumPy references written here (``math.erf`` for gelu's), dtypes and
integer inputs against torch's rules, and every function's float64 gradient against finite
differences to the first and second order away from its kinks. At the kinks, at NaN and at
the infinities the gradient conventions are torch's, to the second order: compared with torch
itself where it is installed, and restated here as numbers so that they are tested without
it. erf and erfc are held to a few ulp of a 60-digit decimal reference and of ``math.erf``/
``math.erfc`` on a dense grid that takes in the tails, subnormals, infinities and NaN.
"""
import math
from decimal import Decimal, localcontext

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.functional import activation as A
from minigan.kernels import special
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(5)
SQRT1_2 = 0.70710678118654752440
NAN, INF = float("nan"), float("inf")


def _op(name):
    """minigan.erf & co. once they are exported at the top level; activation's until then."""
    return getattr(minigan, name, None) or getattr(A, name)


def _t(a, device="cpu", dtype=np.float64, grad=False):
    arr = np.asarray(a, dtype=dtype)
    return minigan.Tensor(backend.to_device(arr, device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


def _dev(a, device):
    return backend.to_device(np.asarray(a), device)


_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _np_sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _np_softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def _np_glu(x, dim):
    a, b = np.split(x, 2, axis=dim)
    return a * _np_sigmoid(b)


SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)

# name -> (call on a functional namespace (minigan's or torch's), NumPy reference, the kinks
# that random inputs keep away from, whether the op is elementwise)
CASES = {
    "elu": (lambda ns, x: ns.elu(x, 1.3), lambda x: np.where(x > 0, x, 1.3 * np.expm1(x)),
            [0.0], True),
    "elu_default": (lambda ns, x: ns.elu(x), lambda x: np.where(x > 0, x, np.expm1(x)), [0.0],
                    True),
    "selu": (lambda ns, x: ns.selu(x),
             lambda x: SELU[1] * np.where(x > 0, x, SELU[0] * np.expm1(x)), [0.0], True),
    # (alpha 0.5: torch's gradient reads 1/alpha as a float32, exact for 0.5; see below)
    "celu": (lambda ns, x: ns.celu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x / 0.5)),
             [0.0], True),
    "celu_07": (lambda ns, x: ns.celu(x, 0.7),
                lambda x: np.where(x > 0, x, 0.7 * np.expm1(x / 0.7)), [0.0], True),
    "gelu": (lambda ns, x: ns.gelu(x), lambda x: x * 0.5 * (1 + _erf(x * SQRT1_2)), [], True),
    "gelu_tanh": (lambda ns, x: ns.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (x + 0.044715 * x ** 3))), [], True),
    "silu": (lambda ns, x: ns.silu(x), lambda x: x / (1 + np.exp(-x)), [], True),
    "mish": (lambda ns, x: ns.mish(x), lambda x: x * np.tanh(np.log1p(np.exp(x))), [], True),
    "hardtanh": (lambda ns, x: ns.hardtanh(x, -0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0),
                 [-0.5, 2.0], True),
    "hardtanh_default": (lambda ns, x: ns.hardtanh(x), lambda x: np.clip(x, -1, 1), [-1, 1],
                         True),
    "relu6": (lambda ns, x: ns.relu6(x), lambda x: np.clip(x, 0, 6), [0.0, 6.0], True),
    "hardsigmoid": (lambda ns, x: ns.hardsigmoid(x), lambda x: np.clip(x / 6 + 0.5, 0, 1),
                    [-3.0, 3.0], True),
    "hardswish": (lambda ns, x: ns.hardswish(x), lambda x: x * np.clip(x + 3, 0, 6) / 6,
                  [-3.0, 3.0], True),
    "softsign": (lambda ns, x: ns.softsign(x), lambda x: x / (1 + np.abs(x)), [0.0], True),
    "logsigmoid": (lambda ns, x: ns.logsigmoid(x), lambda x: -np.logaddexp(0, -x), [], True),
    "tanhshrink": (lambda ns, x: ns.tanhshrink(x), lambda x: x - np.tanh(x), [], True),
    "softshrink": (lambda ns, x: ns.softshrink(x, 0.7),
                   lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.7, 0), [-0.7, 0.7], True),
    "softshrink_default": (lambda ns, x: ns.softshrink(x),
                           lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.5, 0), [-0.5, 0.5],
                           True),
    "hardshrink": (lambda ns, x: ns.hardshrink(x, 0.7), lambda x: np.where(np.abs(x) > 0.7, x, 0),
                   [-0.7, 0.7], True),
    "threshold": (lambda ns, x: ns.threshold(x, 0.3, -1.5), lambda x: np.where(x > 0.3, x, -1.5),
                  [0.3], True),
    "rrelu_eval": (lambda ns, x: ns.rrelu(x), lambda x: np.where(x > 0, x, x * (1 / 8 + 1 / 3) / 2),
                   [0.0], True),
    "glu": (lambda ns, x: ns.glu(x), lambda x: _np_glu(x, -1), [], False),
    "glu_dim0": (lambda ns, x: ns.glu(x, 0), lambda x: _np_glu(x, 0), [], False),
    "softmin": (lambda ns, x: ns.softmin(x, dim=1), lambda x: _np_softmax(-x, 1), [], False),
}


def away_from(kinks, shape=(4, 6), scale=4.0):
    """Random inputs of scale ``scale`` at least 0.05 from each kink."""
    x = np.atleast_1d(R.standard_normal(shape) * scale)
    for k in kinks:
        near = np.abs(x - k) < 0.05
        x[near] = k + np.where(x[near] >= k, 0.1, -0.1)
    return x.reshape(shape)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(device, name, dtype):
    call, ref, kinks, _ = CASES[name]
    x = away_from(kinks).astype(dtype)
    y = call(F, _t(x, device, dtype))
    assert y.dtype == dtype and y.device == device and y.shape == ref(x).shape
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-6}
    np.testing.assert_allclose(_np(y), ref(x.astype(np.float64)), **tol, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_first_and_second_order(device, name):
    call, _, kinks, _ = CASES[name]
    x = _dev(away_from(kinks, (4, 4)), device)

    def fn(x):
        return call(F, x)

    check_backward(fn, [x])
    check_double_backward(fn, [x])


# the points where the gradient is a convention: each function's kinks, NaN and +-inf
SPECIAL = [NAN, INF, -INF]


# (NumPy warns of inf * 0 in the ops these are built of; torch does not)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(device, name):
    torch = pytest.importorskip("torch")
    call, _, kinks, elementwise = CASES[name]
    x = away_from(kinks, (4, 6))
    if elementwise:  # (NaN would spread through a row of glu or softmin)
        x.ravel()[:len(kinks) + 3] = kinks + SPECIAL
    tx = torch.tensor(x, requires_grad=True)
    ty = call(torch.nn.functional, tx)
    u, v = R.standard_normal(tuple(ty.shape)), R.standard_normal(x.shape)
    (tg,) = torch.autograd.grad((ty * torch.tensor(u)).sum(), tx, create_graph=True)
    if name == "hardsigmoid":  # torch 2.13 has no double backward for it; 0 is exact
        tgg = None
    else:
        (tgg,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx, allow_unused=True)
    mx = _t(x, device, grad=True)
    my = call(F, mx)
    (mg,) = minigan.grad((my * _t(u, device)).sum(), [mx], create_graph=True)
    mgg = _second(mg, _t(v, device), mx)
    tol = {"rtol": 1e-13, "atol": 1e-15}
    np.testing.assert_allclose(_np(my), ty.detach().numpy(), **tol, err_msg=f"{name} values")
    if name in ROUNDED_IN_TORCH:  # a float32 constant in torch's float64 backward
        tol = {"rtol": 3e-7, "atol": 1e-15}
    np.testing.assert_allclose(_np(mg), tg.detach().numpy(), **tol, err_msg=f"{name} gradient")
    want = np.zeros_like(x) if tgg is None else tgg.numpy()
    # (rounding in a difference of nearly equal terms, where gelu's tails flatten: absolute)
    np.testing.assert_allclose(mgg, want, rtol=3e-7 if name in ROUNDED_IN_TORCH else 1e-13,
                               atol=1e-13, err_msg=f"{name} second derivative")


# torch 2.13's float64 gradients that take a constant rounded to float32: celu's 1/alpha
# (derivatives.yaml: 1.0 / alpha.toFloat()) and hardsigmoid's 1/6 (1.0f / 6.0f); minigan's
# are exact, as the next test shows
ROUNDED_IN_TORCH = {"celu_07", "hardsigmoid"}


def test_celu_and_hardsigmoid_gradients_are_exact(device):
    x = _t(away_from([-3.0, 0.0, 3.0], (40,)), device, grad=True)
    xs = _np(x)
    (g,) = minigan.grad(F.celu(x, 0.7).sum(), [x])
    np.testing.assert_allclose(_np(g), np.where(xs > 0, 1.0, np.exp(xs / 0.7)), rtol=4e-15)
    (g,) = minigan.grad(F.hardsigmoid(x).sum(), [x])
    np.testing.assert_array_equal(_np(g), np.where(np.abs(xs) < 3, 1 / 6, 0.0))


def _second(g, v, x):
    """d<g, v>/dx as an array; zeros where g has no graph (a piecewise-linear function)."""
    if not g.requires_grad:
        return np.zeros(x.shape)
    (gg,) = minigan.grad((g * v).sum(), [x], allow_unused=True)
    return np.zeros(x.shape) if gg is None else _np(gg)


# (call, x, y, dy/dx, d2y/dx2): torch 2.13's numbers at the kinks, at NaN and at the infinities
# (at NaN, those of its vectorised CPU kernels, which tensors of 8 or more elements take)
CONVENTIONS = [
    (lambda x: F.elu(x, 1.5), [0.0, NAN, -INF, INF], [0, NAN, -1.5, INF], [1.5, NAN, 0, 1],
     [0, NAN, 0, 0]),
    (F.selu, [0.0, NAN], [0.0, NAN], [SELU[0] * SELU[1], NAN], [0.0, NAN]),
    (lambda x: F.celu(x, 2.0), [0.0, NAN], [0, NAN], [1, NAN], [0, NAN]),
    (F.gelu, [0.0, INF, -INF], [0, INF, NAN], [0.5, NAN, NAN], [0.7978845608028654, NAN, NAN]),
    (lambda x: F.hardtanh(x, -0.5, 2.0), [-0.5, 2.0, NAN, -INF], [-0.5, 2.0, NAN, -0.5],
     [0, 0, 0, 0], [0, 0, 0, 0]),
    (F.relu6, [0.0, 6.0, NAN], [0, 6, NAN], [0, 0, 0], [0, 0, 0]),
    (F.hardsigmoid, [-3.0, 3.0, NAN], [0, 1, NAN], [0, 0, 0], [0, 0, 0]),
    (F.hardswish, [-3.0, 3.0, NAN, 0.0, INF, -INF], [0, 3, NAN, 0, INF, NAN],
     [0, 1, NAN, 0.5, 1, 0], [0, 0, 0, 1 / 3, 0, 0]),
    (F.softsign, [0.0], [0], [1], [0]),
    (F.logsigmoid, [0.0, -800.0, -INF, INF], [-math.log(2), -800, -INF, 0], [0.5, 1, 1, 0],
     [-0.25, 0, 0, 0]),
    (F.tanhshrink, [0.0, INF], [0, INF], [0, 1], [0, 0]),
    (F.softshrink, [-0.5, 0.5, 0.0, NAN], [0, 0, 0, NAN], [0, 0, 0, 0], [0, 0, 0, 0]),
    (F.hardshrink, [-0.5, 0.5, 0.0, NAN], [0, 0, 0, NAN], [0, 0, 0, 0], [0, 0, 0, 0]),
    (lambda x: F.threshold(x, 1.0, 5.0), [1.0, NAN], [5, NAN], [0, 1], [0, 0]),
    (F.rrelu, [0.0, NAN], [0, NAN], [(1 / 8 + 1 / 3) / 2] * 2, [0, 0]),
    (F.silu, [0.0, -800.0], [0, 0], [0.5, 0], [0.5, 0]),
    (F.mish, [0.0, 30.0], [0, 30], [0.6, 1], [0.64, 0]),
]


# (NumPy warns of inf * 0 in the ops these are built of; torch does not)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("case", range(len(CONVENTIONS)))
def test_gradient_conventions_at_the_kinks(device, case):
    call, x, y, g, gg = CONVENTIONS[case]
    t = _t(x, device, grad=True)
    out = call(t)
    (d1,) = minigan.grad(out.sum(), [t], create_graph=True)
    np.testing.assert_allclose(_np(out), y, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(_np(d1), g, rtol=1e-15)
    np.testing.assert_allclose(_second(d1, _t(np.ones(len(x)), device), t), gg, rtol=1e-15)


def test_an_infinite_gradient_is_stopped_where_the_gradient_is_zero(device):
    """As torch: a flat piece passes 0, not inf * 0 (NaN)."""
    x = _t([-4.0, -3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 3.0, 6.0, 7.0], device, grad=True)
    for call in (F.hardtanh, F.relu6, F.hardsigmoid, F.softshrink, F.hardshrink, F.hardswish,
                 lambda x: F.threshold(x, 1.0, 0.0)):
        (g,) = minigan.grad(call(x), [x], _t([INF] * 11, device))
        assert not np.isnan(_np(g)).any()


def test_overflow_in_the_unused_branch_does_not_reach_the_second_derivative(device):
    """elu's exp of a large positive x is never taken (it would meet a zero weight: NaN)."""
    x = _t([800.0, -1.0, 1000.0], device, grad=True)
    (g,) = minigan.grad(F.elu(x).sum(), [x], create_graph=True)
    (gg,) = minigan.grad(g.sum(), [x])
    np.testing.assert_allclose(_np(gg), [0.0, math.exp(-1.0), 0.0], rtol=1e-15)


# ----------------------------------------------------------------------------- dtypes

FLOAT_ONLY = ["elu", "selu", "celu", "gelu", "silu", "mish", "hardsigmoid", "hardswish",
              "logsigmoid", "softshrink", "hardshrink", "glu", "rrelu"]


@pytest.mark.parametrize("name", FLOAT_ONLY)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_and_bool_inputs_are_refused_as_torch_refuses_them(name, dtype):
    x = minigan.tensor(np.array([-2, 0, 3, 1]).astype(dtype))
    with pytest.raises(TypeError, match=f"{name}: expected a floating-point input, got dtype"):
        getattr(F, name)(x)


@pytest.mark.parametrize("call,want,dtype", [
    (lambda x: F.hardtanh(x), [-1, 0, 1, 1], np.int64),
    (lambda x: F.hardtanh(x, -1.5, 2.5), [-1, 0, 2, 1], np.int64),  # bounds truncated
    (lambda x: F.relu6(x), [0, 0, 3, 1], np.int64),
    (lambda x: F.threshold(x, 1, 5), [5, 5, 3, 5], np.int64),
    (lambda x: F.threshold(x, -0.5, 7), [7, 7, 3, 1], np.int64),  # -0.5 -> 0, as torch
    (lambda x: F.softsign(x), [-2 / 3, 0, 0.75, 0.5], np.float32),
    (lambda x: F.tanhshrink(x), np.array([-2, 0, 3, 1]) - np.tanh([-2, 0, 3, 1]), np.float32),
])
def test_integer_inputs_that_torch_takes(device, call, want, dtype):
    y = call(_t([-2, 0, 3, 1], device, np.int64))
    assert y.dtype == dtype
    np.testing.assert_allclose(_np(y), want, rtol=1e-6)


@pytest.mark.parametrize("name", ["hardtanh", "relu6", "threshold", "softsign", "tanhshrink"])
def test_bool_inputs_are_refused(name):
    x = minigan.tensor(np.array([True, False]))
    args = (0.5, 1.0) if name == "threshold" else ()
    with pytest.raises(TypeError, match=f"{name}: expected a tensor of numbers, got dtype bool"):
        getattr(F, name)(x, *args)


def test_the_scalar_arguments_are_taken_in_the_inputs_dtype():
    """As torch: float32(0.1) <= 0.1 when 0.1 is read as a float32."""
    x = _t([0.1], dtype=np.float32, grad=True)
    assert _np(F.threshold(x, 0.1, 7.0)) == [7.0]
    (g,) = minigan.grad(F.hardtanh(x, 0.1, 0.5).sum(), [x])
    assert _np(g) == [0.0]


@pytest.mark.parametrize("call", [F.gelu, F.silu, F.hardswish, F.logsigmoid, F.softsign,
                                  lambda x: F.prelu(x, minigan.tensor(np.float16(0.2)))])
def test_half_precision_keeps_its_dtype(call):
    y = call(minigan.tensor(np.array([-1.0, 0.5, 2.0], np.float16)))
    assert y.dtype == np.float16


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("call,error,message", [
    (lambda x: F.celu(x, 0.0), ValueError, "celu: alpha cannot be 0"),
    (lambda x: F.hardtanh(x, 1.0, -1.0), ValueError,
     "hardtanh: min_val cannot be greater than max_val"),
    (lambda x: F.gelu(x, approximate="bad"), ValueError,
     "gelu: approximate must be 'none' or 'tanh', got 'bad'"),
    (lambda x: F.gelu(x, approximate=None), TypeError, "gelu: approximate must be a str"),
    (lambda x: F.softshrink(x, -1.0), ValueError, "softshrink: lambd must be >= 0, got -1.0"),
    (lambda x: F.rrelu(x, 0.5, 0.1), ValueError, "rrelu: the lower bound must be <= the upper"),
    (lambda x: F.rrelu(x, 0.5, 0.1, training=True), ValueError, "rrelu: the lower bound"),
    (lambda x: F.glu(x[0, 0]), ValueError, "glu: a 0-d input has no dimension to halve"),
    (lambda x: F.glu(x, 1), ValueError,
     "glu: halving dimension must be even, but dimension 1 is size 3"),
    (lambda x: F.glu(x, 2), IndexError, "glu: dimension 2 is out of range"),
    (lambda x: F.prelu(x, 0.25), TypeError, "prelu: weight must be a tensor, got float"),
    (lambda x: F.prelu(x, minigan.tensor(np.ones(3, np.float32))), TypeError,
     "prelu: weight of dtype float32 for an input of dtype float64"),
    (lambda x: F.prelu(x, minigan.tensor(np.ones((3, 1)))), ValueError,
     r"prelu: weight must be 0-d or 1-D, got shape \(3, 1\)"),
    (lambda x: F.prelu(x, minigan.tensor(np.ones(2))), ValueError,
     r"prelu: 2 weights for an input of shape \(2, 3\) with 3 channel\(s\)"),
    (lambda x: F.prelu(x[0], minigan.tensor(np.ones(3))), ValueError,
     r"prelu: 3 weights for an input of shape \(3,\) with 1 channel"),
    (lambda x: F.prelu(x[0, 0], minigan.tensor(np.ones(3))), ValueError,
     r"prelu: 3 weights for an input of shape \(\)"),
    (lambda x: F.softmin(x.long(), 1), TypeError, "softmin: expected a floating-point input"),
    (lambda x: F.softmin(x > 0, 1), TypeError, "softmin: a bool input cannot be negated"),
])
def test_bad_arguments_are_refused_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call(minigan.tensor(R.standard_normal((2, 3))))


def test_torch_refuses_the_same_arguments():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = torch.randn(2, 3, dtype=torch.float64)
    for call in (lambda: tf.celu(x, 0.0), lambda: tf.hardtanh(x, 1.0, -1.0),
                 lambda: tf.gelu(x, approximate="bad"), lambda: tf.softshrink(x, -1.0),
                 lambda: tf.rrelu(x, 0.5, 0.1), lambda: tf.glu(x, 1), lambda: tf.glu(x[0, 0]),
                 lambda: tf.prelu(x, torch.ones(3)), lambda: tf.prelu(x, torch.ones(2)),
                 lambda: tf.prelu(x[0], torch.ones(3)), lambda: tf.softmin(x.long(), 1)):
        with pytest.raises((RuntimeError, ValueError, NotImplementedError, IndexError)):
            call()


def test_devices_are_not_mixed(emulated_gpu):
    x = minigan.Tensor(emulated_gpu.asarray(np.ones((2, 3))))
    with pytest.raises(backend.DeviceError, match="cpu|cuda"):
        F.prelu(x, minigan.tensor(np.ones(3)))
    gen = minigan.random.default_generator("cpu")
    with pytest.raises(backend.DeviceError, match="rrelu: generator on cpu but input on cuda"):
        F.rrelu(x, training=True, generator=gen)


# ----------------------------------------------------------------------------- prelu

PRELU_SHAPES = [((2, 3, 4, 5), 3), ((2, 3, 4, 5), 1), ((4, 3), 3), ((5,), 1), ((), 1)]


def _np_prelu(x, w):
    wb = w.reshape(()) if w.size == 1 else w.reshape((-1,) + (1,) * (x.ndim - 2))
    return np.where(x > 0, x, wb * x)


@pytest.mark.parametrize("shape,n", PRELU_SHAPES)
def test_prelu_values_and_gradients(device, shape, n):
    x = away_from([0.0], shape, 1.0)
    w = R.uniform(0.05, 0.5, n)
    y = F.prelu(_t(x, device), _t(w, device))
    assert y.shape == shape
    np.testing.assert_allclose(_np(y), _np_prelu(x, w), rtol=1e-15)
    xs, ws = _dev(x, device), _dev(w, device)
    check_backward(F.prelu, [xs, ws])
    check_double_backward(F.prelu, [xs, ws])


def test_prelu_takes_a_0d_weight(device):
    x = away_from([0.0], (2, 3))
    y = F.prelu(_t(x, device), _t(0.2, device))
    np.testing.assert_allclose(_np(y), np.where(x > 0, x, 0.2 * x), rtol=1e-15)


def test_prelu_gradients_at_zero_and_nan_take_the_weight(device):
    x = _t([[0.0, NAN, -1.0, 2.0]] * 2, device, grad=True).reshape(2, 4)
    w = _t([0.3], device, grad=True)
    gx, gw = minigan.grad(F.prelu(x, w).sum(), [x, w])
    np.testing.assert_allclose(_np(gx), [[0.3, 0.3, 0.3, 1.0]] * 2, rtol=1e-15)
    assert np.isnan(_np(gw)).all()  # x * gy over x <= 0 (and NaN), as torch


@pytest.mark.parametrize("zero", [False, True])
@pytest.mark.parametrize("shape,n", PRELU_SHAPES)
def test_prelu_matches_torch(device, shape, n, zero):
    """Values and gradients, and second derivatives away from x = 0. At 0 torch's double
    backward reads x >= 0 as the positive side while its backward took weight * gy there, so
    torch's d(gx)/d(gy) is 1 at 0 and d(gx)/dw, d(gw)/dx are 0; minigan's are those of its
    gradient (w, gy and gy), and the second derivatives are only compared without zeros."""
    torch = pytest.importorskip("torch")
    x = away_from([0.0], shape, 1.0)
    if zero and x.ndim:
        x.ravel()[::3] = 0.0
    w = R.uniform(0.05, 0.5, n)
    u = R.standard_normal(shape)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    ty = torch.nn.functional.prelu(tx, tw)
    tgx, tgw = torch.autograd.grad((ty * torch.tensor(u)).sum(), [tx, tw], create_graph=True)
    tgg = torch.autograd.grad((tgx * tgx).sum() + (tgw * tgw).sum(), [tx, tw])
    mx, mw = _t(x, device, grad=True), _t(w, device, grad=True)
    my = F.prelu(mx, mw)
    mgx, mgw = minigan.grad((my * _t(u, device)).sum(), [mx, mw], create_graph=True)
    mgg = minigan.grad((mgx * mgx).sum() + (mgw * mgw).sum(), [mx, mw])
    pairs = zip([my, mgx, mgw, *mgg], [ty, tgx, tgw, *tgg])
    for mine, theirs in list(pairs)[:3 if zero else 5]:
        np.testing.assert_allclose(_np(mine), theirs.detach().numpy(), rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- softmin, rrelu

def test_softmin_dims_dtype_and_warning(device):
    x = R.standard_normal((3, 4)).astype(np.float32)
    y = F.softmin(_t(x, device, np.float32), dim=0, dtype=np.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(_np(y), _np_softmax(-x.astype(np.float64), 0), rtol=1e-12)
    ints = F.softmin(_t([1, 2, 3], device, np.int64), 0, dtype=np.float64)
    np.testing.assert_allclose(_np(ints), _np_softmax(-np.array([1.0, 2, 3]), 0), rtol=1e-15)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin") as got:
        implicit = F.softmin(_t(x, device, np.float32))
    assert got[0].filename == __file__  # _stacklevel=3 points at the caller, as torch's
    np.testing.assert_allclose(_np(implicit), _np_softmax(-x, 1), rtol=1e-6)


def test_rrelu_in_training_draws_a_slope_per_element(device):
    x = R.standard_normal((50, 40))
    x[0, :3] = [0.0, NAN, -INF]
    gen = minigan.random.Generator(3, device)
    t = _t(x, device, grad=True)
    y = F.rrelu(t, 0.1, 0.3, training=True, generator=gen)
    neg = np.isfinite(x) & (x < 0)
    slope = _np(y)[neg] / x[neg]
    assert slope.min() >= 0.1 and slope.max() <= 0.3 and slope.std() > 0.05
    np.testing.assert_array_equal(_np(y)[x > 0], x[x > 0])
    (g,) = minigan.grad(y.sum(), [t])
    noise = _np(g)
    np.testing.assert_allclose(noise[neg], slope, rtol=1e-15)  # gy times the slope drawn
    assert 0.1 <= noise[0, 0] <= 0.3 and noise[0, 1] == 1.0  # x = 0 draws one; NaN passes
    again = F.rrelu(_t(x, device), 0.1, 0.3, True, generator=minigan.random.Generator(3, device))
    np.testing.assert_array_equal(_np(again), _np(y))  # seeded: reproducible
    cpu = F.rrelu(_t(x), 0.1, 0.3, True, generator=minigan.random.Generator(3, "cpu"))
    np.testing.assert_allclose(_np(cpu), _np(y), rtol=1e-15)  # one stream on either device
    check_double_backward(lambda v: F.rrelu(v, 0.1, 0.3, True, generator=gen.manual_seed(1)),
                          [_dev(x[1:4, :5], device)])


def test_rrelu_in_evaluation_is_the_mean_slope(device):
    x = away_from([0.0])
    y = F.rrelu(_t(x, device), 0.2, 0.4, training=False)
    np.testing.assert_allclose(_np(y), np.where(x > 0, x, 0.3 * x), rtol=1e-15)


# ----------------------------------------------------------------------------- erf, erfc

def _ulps(a, b):
    """Distance in units in the last place (float64), across binades and through zero."""
    ia, ib = np.asarray(a).view(np.int64), np.asarray(b).view(np.int64)
    ia = np.where(ia < 0, np.int64(-2 ** 63) - ia, ia)
    ib = np.where(ib < 0, np.int64(-2 ** 63) - ib, ib)
    return np.abs(ia - ib)


def _dense_grid():
    grid = [np.linspace(-30, 30, 120001), np.linspace(-3, 3, 60001),
            np.geomspace(1e-320, 1e-300, 201), np.geomspace(1e-300, 1, 2001),
            np.array([0.5, 2.5, np.nextafter(0.5, 0), np.nextafter(2.5, 0), 26.5, 27.2, 5e-324,
                      2.2250738585072014e-308, 1e300, np.finfo(np.float64).max])]
    x = np.concatenate(grid)
    return np.concatenate([x, -x])


def test_erf_and_erfc_are_within_a_few_ulp_of_math():
    x = _dense_grid()
    erf_err = _ulps(special.erf_numpy(x), _erf(x))
    erfc_err = _ulps(special.erfc_numpy(x), _erfc(x))
    assert erf_err.max() <= 2, x[erf_err.argmax()]
    assert erfc_err.max() <= 4, x[erfc_err.argmax()]
    assert (erf_err == 0).mean() > 0.8 and (erfc_err == 0).mean() > 0.6


def _decimal_pi():
    """pi to 78 digits by Machin's formula, 16 atan(1/5) - 4 atan(1/239)."""
    def arctan_inv(n):
        total, term, k, sign = Decimal(0), Decimal(1) / n, 1, 1
        while term > Decimal(10) ** -78:
            total += sign * term / k
            term /= n * n
            k, sign = k + 2, -sign
        return total

    with localcontext() as ctx:
        ctx.prec = 80
        return 16 * arctan_inv(5) - 4 * arctan_inv(239)


PI = _decimal_pi()


def _decimal_erf_erfc(x):
    """(erf(x), erfc(x)) to 60 digits, independently of the kernels: the Maclaurin series
    (A&S 7.1.5) for |x| < 3, Laplace's continued fraction (A&S 7.1.14) from 400 levels for
    |x| >= 3."""
    with localcontext() as ctx:
        ctx.prec = 80
        pi = PI
        a = abs(Decimal(x))
        if a < 3:
            total, term, n = Decimal(0), a, 0
            while n == 0 or abs(term) > Decimal(10) ** -75 * abs(total):
                total += term / (2 * n + 1)
                n += 1
                term = -term * a * a / n
            erf = 2 / pi.sqrt() * total
            erfc = 1 - erf
        else:
            f = a
            for k in range(400, 0, -1):
                f = a + Decimal(k) / 2 / f
            erfc = (-a * a).exp() / pi.sqrt() / f
            erf = 1 - erfc
        if x < 0:
            return -erf, 2 - erfc
        return erf, erfc


def test_erf_and_erfc_are_within_a_few_ulp_of_a_60_digit_reference():
    x = np.concatenate([np.linspace(-6, 6, 241), np.linspace(0.45, 2.6, 87), R.uniform(-27, 27, 60),
                        np.geomspace(1e-310, 0.4, 20)])
    ref = np.array([[float(v) for v in _decimal_erf_erfc(float(v))] for v in x])
    e, ec = _ulps(special.erf_numpy(x), ref[:, 0]), _ulps(special.erfc_numpy(x), ref[:, 1])
    assert e.max() <= 1, x[e.argmax()]
    assert ec.max() <= 3, x[ec.argmax()]


def test_the_series_range_is_mostly_correctly_rounded():
    """Below 0.5, erf = x + x q(x^2) with q's constant 2/sqrt(pi) - 1 rounded once: most
    results are the correctly rounded ones (x * 2/sqrt(pi) + ... would round twice as often)."""
    x = np.linspace(-0.5, 0.5, 2001)[1:-1]
    ref = np.array([float(_decimal_erf_erfc(float(v))[0]) for v in x])
    assert np.mean(special.erf_numpy(x) == ref) > 0.91


def test_erf_and_erfc_special_values():
    x = np.array([0.0, -0.0, INF, -INF, NAN, 5e-324, -5e-324, 1e-310])
    e, ec = special.erf_numpy(x), special.erfc_numpy(x)
    np.testing.assert_array_equal(e[:4], [0.0, -0.0, 1.0, -1.0])
    assert not np.signbit(e[0]) and np.signbit(e[1])
    np.testing.assert_array_equal(ec[:4], [1.0, 1.0, 0.0, 2.0])
    assert np.isnan(e[4]) and np.isnan(ec[4])
    np.testing.assert_array_equal(e[5:], [math.erf(v) for v in x[5:]])  # subnormals
    assert special.erf_numpy(np.float32(0.5)).shape == ()  # 0-d stays 0-d
    assert special.erf_numpy(np.zeros((2, 0, 3))).shape == (2, 0, 3)


def test_the_taylor_table_holds_the_derivatives_of_erfc_at_the_nodes():
    table = special._taylor_table()
    c = np.arange(8, 41) / 16
    assert table.shape == (10, 33)
    assert _ulps(table[0], _erfc(c)).max() <= 1
    g = 2 / math.sqrt(math.pi) * np.exp(-c * c)  # erfc' = -g, then 2c g, then (4c^2 - 2) g
    np.testing.assert_allclose(table[1], -g, rtol=4e-16)
    np.testing.assert_allclose(table[2], c * g, rtol=4e-16)
    np.testing.assert_allclose(table[3], (2 - 4 * c * c) * g / 6, rtol=4e-15)


@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv"])
@pytest.mark.parametrize("dtype,out", [(np.float64, np.float64), (np.float32, np.float32),
                                       (np.float16, np.float16), (np.int64, np.float32),
                                       (np.bool_, np.float32)])
def test_erf_dtypes_follow_torch(device, name, dtype, out):
    x = np.array([0, 1, 0, 1]) if dtype == np.bool_ else np.array([-0.5, 0.0, 0.25, 0.75])
    if dtype == np.int64:
        x = np.array([-2, 0, 3, 1]) if name != "erfinv" else np.array([-1, 0, 1, 0])
    y = _op(name)(_t(x, device, dtype))
    assert y.dtype == out and y.device == device
    ref = {"erf": _erf, "erfc": _erfc}.get(name)
    if ref is not None:
        np.testing.assert_allclose(_np(y), ref(x.astype(dtype).astype(np.float64)),
                                   rtol=2e-3 if dtype == np.float16 else 1e-6)


@pytest.mark.parametrize("name,lo,hi", [("erf", -4, 4), ("erfc", -4, 6), ("erfinv", -0.95, 0.95)])
def test_erf_gradients_first_and_second_order(device, name, lo, hi):
    x = _dev(R.uniform(lo, hi, (3, 5)), device)
    check_backward(_op(name), [x])
    check_double_backward(_op(name), [x])


def test_erf_values_device_and_tensor_match(device):
    x = np.concatenate([np.linspace(-7, 7, 57), [0.0, -0.0, INF, -INF]])
    y, yc = _op("erf")(_t(x, device)), _op("erfc")(_t(x, device))
    np.testing.assert_array_max_ulp(_np(y), _erf(x), maxulp=2)
    np.testing.assert_array_max_ulp(_np(yc), _erfc(x), maxulp=4)


def _decimal_erfinv(y: float, start: float):
    """erf^-1(y) to 60 digits: Newton's method from ``start`` on erf(x) = y, or on erfc(x) =
    1 - y (exact in decimal) for y > 0.5."""
    with localcontext() as ctx:
        ctx.prec = 80
        x, yd = Decimal(start), Decimal(y)
        for _ in range(6):
            erf, erfc = _decimal_erf_erfc(x)
            f = (1 - yd) - erfc if yd > Decimal("0.5") else erf - yd
            x -= f * PI.sqrt() / 2 * (x * x).exp()
        return x


def test_erfinv_is_within_2_ulp_of_a_60_digit_reference():
    y = np.concatenate([np.linspace(0, 1, 101)[1:-1], 1 - np.geomspace(1.2e-16, 0.3, 30),
                        np.geomspace(1e-300, 0.3, 10), [0.5, np.nextafter(0.5, 1)]])
    x = special.erfinv(y)
    ref = np.array([float(_decimal_erfinv(float(v), float(s))) for v, s in zip(y, x)])
    err = _ulps(x, ref)
    assert err.max() <= 2, y[err.argmax()]
    np.testing.assert_array_equal(special.erfinv(-y), -x)


def test_erfinv_inverts_erf(device):
    y = np.concatenate([np.linspace(-1, 1, 2001)[1:-1], 1 - np.geomspace(1.2e-16, 0.5, 200),
                        np.geomspace(1e-300, 0.5, 50)])
    x = _np(_op("erfinv")(_t(y, device)))
    np.testing.assert_allclose(_erf(x), y, rtol=4e-16, atol=1e-300)
    edges = _np(_op("erfinv")(_t([1.0, -1.0, 1.5, -2.0, NAN, 0.0, -0.0], device)))
    np.testing.assert_array_equal(edges[:2], [INF, -INF])
    assert np.isnan(edges[2:5]).all() and np.signbit(edges[6]) and not np.signbit(edges[5])


@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv"])
def test_erf_family_matches_torch(device, name):
    torch = pytest.importorskip("torch")
    x = R.uniform(-0.999, 0.999, 200) if name == "erfinv" else R.uniform(-8, 8, 200)
    x[:3] = [0.0, 0.5, -0.5]
    tx = torch.tensor(x, requires_grad=True)
    ty = getattr(torch, name)(tx)
    (tg,) = torch.autograd.grad(ty.sum(), tx, create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), tx)
    mx = _t(x, device, grad=True)
    my = _op(name)(mx)
    (mg,) = minigan.grad(my.sum(), [mx], create_graph=True)
    (mgg,) = minigan.grad(mg.sum(), [mx])
    for mine, theirs in ((my, ty), (mg, tg), (mgg, tgg)):
        np.testing.assert_allclose(_np(mine), theirs.detach().numpy(), rtol=1e-13, atol=1e-300)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(_np(_op(name)(_t(x32, device, np.float32))),
                               getattr(torch, name)(torch.tensor(x32)).numpy(), rtol=4e-7,
                               atol=1e-7)


def test_erf_dispatches_on_the_array(emulated_gpu):
    from minigan.kernels import special
    x = np.linspace(-3, 3, 13)
    assert type(special.erf(x)) is np.ndarray
    g = special.erf(emulated_gpu.asarray(x))
    assert isinstance(g, emulated_gpu.ndarray)
    np.testing.assert_array_max_ulp(backend.to_numpy(g), special.erf(x), maxulp=2)
    gc = special.erfc(emulated_gpu.asarray(x.astype(np.float32)))
    assert isinstance(gc, emulated_gpu.ndarray) and gc.dtype == np.float32


def test_the_new_ops_do_not_wait_for_the_gpu(emulated_gpu):
    """Forward, backward and double backward of every new function stay on the device."""
    from tests.kernels import emulated_cupy as E

    x = minigan.Tensor(emulated_gpu.asarray(away_from([-3, -0.5, 0, 0.3, 0.5, 2, 3, 6],
                                                      (4, 6), 2.0)), requires_grad=True)
    y = minigan.Tensor(emulated_gpu.asarray(R.uniform(-0.9, 0.9, (4, 6))), requires_grad=True)
    w = minigan.Tensor(emulated_gpu.asarray(np.full(6, 0.2)), requires_grad=True)
    E.LOG.clear()
    calls = [lambda: F.gelu(x), lambda: F.gelu(x, approximate="tanh"), lambda: _op("erf")(x),
             lambda: _op("erfc")(x), lambda: _op("erfinv")(y)]
    calls += [lambda c=c: c[0](F, x) for c in CASES.values()]
    calls += [lambda: F.prelu(x.reshape(1, 4, 6).transpose(1, 2), w),
              lambda: F.rrelu(x, training=True)]
    for call in calls:
        gs = minigan.grad(call().sum(), [x, y, w], create_graph=True, allow_unused=True)
        gs = [g for g in gs if g is not None and g.requires_grad]
        if gs:
            second = minigan.grad(sum((g * g).sum() for g in gs), [x, y, w], allow_unused=True)
            assert all(g.device == "cuda" for g in second if g is not None)
    assert dict(E.LOG.syncs) == {}
