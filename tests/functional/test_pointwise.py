"""Pointwise math, cumulative ops, norms, products and predicates (minigan.functional.pointwise).

Values are checked against NumPy references written here (and against torch where it is
installed), dtypes against torch's rules, and every differentiable op against finite differences
in float64, first and second order. The gradient conventions that finite differences cannot
see are spelled out: zero through sign and rounding, half to each side at a tie of maximum,
zero at the origin of a norm, and exact gradients of products and cumulative products where the
input holds zeros.
"""
import math

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.functional import pointwise as P
from minigan.testing import GradientCheckError, check_backward, check_double_backward

to_np = backend.to_numpy
R = np.random.default_rng(7)


def _t(a, device="cpu", dtype=np.float64, grad=False):
    arr = np.asarray(a, dtype=dtype)
    return minigan.Tensor(backend.to_device(arr, device), requires_grad=grad)


def _dev(a, device):
    return backend.to_device(np.asarray(a), device)


def _grad(y, x, gy=None):
    return to_np(minigan.grad(y, x, gy)[0].data)


# ----------------------------------------------------------------------------- unary math

X_ANY = R.uniform(-2.0, 2.0, (3, 4))
X_POS = R.uniform(0.2, 3.0, (3, 4))
X_UNIT = R.uniform(-0.9, 0.9, (3, 4))
X_TAN = R.uniform(-1.2, 1.2, (3, 4))

# name, NumPy reference, sample inputs (inside the domain, away from poles)
UNARY = [
    ("sin", np.sin, X_ANY), ("cos", np.cos, X_ANY), ("tan", np.tan, X_TAN),
    ("sinh", np.sinh, X_ANY), ("cosh", np.cosh, X_ANY),
    ("asin", np.arcsin, X_UNIT), ("acos", np.arccos, X_UNIT), ("atan", np.arctan, X_ANY),
    ("log1p", np.log1p, X_POS - 0.5), ("expm1", np.expm1, X_ANY),
    ("log2", np.log2, X_POS), ("log10", np.log10, X_POS), ("exp2", np.exp2, X_ANY),
    ("rsqrt", lambda a: 1 / np.sqrt(a), X_POS), ("reciprocal", lambda a: 1 / a, X_POS),
    ("frac", lambda a: a - np.trunc(a), X_ANY * 2.3),
]
UNARY_IDS = [c[0] for c in UNARY]


@pytest.mark.parametrize("name, ref, x", UNARY, ids=UNARY_IDS)
def test_unary_values_match_numpy_and_keep_float_dtypes(device, name, ref, x):
    fn = getattr(minigan, name)
    for dt in (np.float64, np.float32):
        y = fn(_t(x, device, dt))
        assert y.dtype == dt and y.device == device
        np.testing.assert_allclose(to_np(y.data), ref(x.astype(dt)),
                                   rtol=1e-14 if dt == np.float64 else 2e-6, atol=1e-30)
    # the Tensor method, the functional name, a 0-d tensor
    np.testing.assert_allclose(to_np(getattr(_t(x, device), name)().data), ref(x), rtol=1e-14)
    assert getattr(F, name) is fn
    y0 = fn(_t(x[0, 0], device))
    assert y0.shape == () and np.isclose(y0.item(), ref(x[0, 0]), rtol=1e-14)


@pytest.mark.parametrize("name, ref, x", UNARY, ids=UNARY_IDS)
def test_unary_gradients_first_and_second_order(device, name, ref, x):
    fn = getattr(minigan, name)
    xs = [_dev(x, device)]
    check_backward(fn, xs)
    check_double_backward(fn, xs)
    check_double_backward(fn, [_dev(x[1, 2], device)])  # 0-d


@pytest.mark.parametrize("name", [c[0] for c in UNARY if c[0] != "frac"] + ["arcsin"])
def test_float_math_turns_integers_and_bools_into_float32_as_torch(device, name):
    fn = getattr(minigan, name)
    i = _t([1, 2, 3], device, np.int64)
    y = fn(i)
    assert y.dtype == np.float32
    np.testing.assert_allclose(to_np(y.data), to_np(fn(_t([1.0, 2.0, 3.0], device)).data),
                               rtol=1e-6)
    assert fn(_t([True, False], device, np.bool_)).dtype == np.float32
    assert fn(_t([0.5], device, np.float16)).dtype == np.float16


def test_unary_values_match_torch():
    torch = pytest.importorskip("torch")
    for name, _, x in UNARY:
        got = getattr(minigan, name)(_t(x)).numpy()
        want = getattr(torch, name)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=name)
        xi = np.array([1, 2, 3])
        if name != "frac":
            got = getattr(minigan, name)(_t(xi, dtype=np.int64))
            want = getattr(torch, name)(torch.tensor(xi))
            assert str(want.dtype) == f"torch.{got.dtype}", name
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, err_msg=name)


def test_frac_refuses_integers_and_has_gradient_one(device):
    with pytest.raises(TypeError, match="frac: needs a floating-point tensor, got int64"):
        minigan.frac(_t([1, 2], device, np.int64))
    x = _t([-2.7, 0.3, 5.0], device, grad=True)
    np.testing.assert_array_equal(_grad(minigan.frac(x).sum(), x), [1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------- flat functions

FLAT = [("sign", np.sign), ("sgn", np.sign), ("floor", np.floor), ("ceil", np.ceil),
        ("trunc", np.trunc), ("fix", np.trunc), ("round", np.rint)]


@pytest.mark.parametrize("name, ref", FLAT, ids=[c[0] for c in FLAT])
def test_sign_and_rounding_values_and_zero_gradient(device, name, ref):
    x = np.array([-2.5, -1.5, -0.4, 0.5, 1.5, 2.5, 3.7, 0.0])
    fn = getattr(minigan, name)
    xt = _t(x, device, grad=True)
    y = fn(xt)
    np.testing.assert_array_equal(to_np(y.data), ref(x))
    assert y.requires_grad  # the graph is connected, and its gradient is zero (as torch's)
    gy = _dev(np.array([1.0, np.inf, -np.inf, 2.0, 3.0, 4.0, 5.0, 6.0]), device)
    np.testing.assert_array_equal(_grad(y, xt, minigan.Tensor(gy)), np.zeros(8))
    check_double_backward(fn, [_dev(x, device)])  # all zeros, at both orders
    # integers stay integers (torch keeps them); bools are refused, as by torch
    if name not in ("sign", "sgn"):
        yi = fn(_t([3, -4], device, np.int64))
        assert yi.dtype == np.int64 and to_np(yi.data).tolist() == [3, -4]
        with pytest.raises(TypeError, match=f"{'trunc' if name == 'fix' else name}: not "
                                            "defined for bool"):
            fn(_t([True], device, np.bool_))


def test_sign_is_zero_at_nan_and_positive_zero_at_minus_zero_and_keeps_dtypes(device):
    y = minigan.sign(_t([np.nan, -0.0, -3.0, np.inf], device))
    out = to_np(y.data)
    np.testing.assert_array_equal(out, [0.0, 0.0, -1.0, 1.0])
    assert not np.signbit(out[1])
    assert minigan.sign(_t([-2, 0, 5], device, np.int64)).tolist() == [-1, 0, 1]
    b = minigan.sign(_t([True, False], device, np.bool_))
    assert b.dtype == np.bool_ and b.tolist() == [True, False]
    u = minigan.sgn(_t([0, 7], device, np.uint8))
    assert u.dtype == np.uint8 and u.tolist() == [0, 1]


def _round_ref(x, d):
    x = np.asarray(x, dtype=np.float64)
    f = 10.0 ** abs(d)
    return np.rint(x * f) / f if d >= 0 else np.rint(x / f) * f


def test_round_with_decimals_rounds_half_to_even_at_that_place(device):
    x = np.array([1234.5678, 2.5, 3.5, -2.5, 0.125, 0.375, -1250.0, 1350.0])
    for d in (0, 1, 2, -1, -2):
        got = minigan.round(_t(x, device), decimals=d)
        np.testing.assert_array_equal(to_np(got.data), _round_ref(x, d))
    assert minigan.round(_t([0.125], device), decimals=2).item() == 0.12  # half to even
    assert minigan.round(_t([1250.0], device), decimals=-2).item() == 1200.0
    assert _t([2.675], device).round(decimals=1).item() == 2.7
    with pytest.raises(TypeError, match="round: decimals=1 needs a floating-point tensor"):
        minigan.round(_t([1, 2], device, np.int64), decimals=1)
    with pytest.raises(TypeError, match="round: decimals must be an int, got 1.5"):
        minigan.round(_t([1.0], device), decimals=1.5)
    x16 = minigan.round(_t([1.2345], device, np.float16), decimals=2)
    assert x16.dtype == np.float16


def test_rounding_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.concatenate([R.uniform(-50, 50, 40), [0.5, 1.5, 2.5, -0.5, -2.5, np.nan, -0.0]])
    for dt in (np.float32, np.float64):
        xx = x.astype(dt)
        for d in (0, 1, 2, 3, -1, -2):
            got = minigan.round(_t(xx, dtype=dt), decimals=d).numpy()
            want = torch.round(torch.tensor(xx), decimals=d).numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"{dt} decimals={d}")
        for name in ("floor", "ceil", "trunc", "frac", "sign", "sgn"):
            got = getattr(minigan, name)(_t(xx, dtype=dt)).numpy()
            want = getattr(torch, name)(torch.tensor(xx)).numpy()
            np.testing.assert_array_equal(got, want, err_msg=name)


# ----------------------------------------------------------------------------- maximum, minimum

def test_maximum_and_minimum_values_broadcast_and_nan(device):
    a = np.array([[1.0, 5.0, np.nan], [-2.0, 0.0, 3.0]])
    b = np.array([2.0, np.nan, 1.0])
    np.testing.assert_array_equal(to_np(minigan.maximum(_t(a, device), _t(b, device)).data),
                                  np.maximum(a, b))
    np.testing.assert_array_equal(to_np(_t(a, device).minimum(_t(b, device)).data),
                                  np.minimum(a, b))
    np.testing.assert_array_equal(to_np(minigan.fmax(_t(a, device), _t(b, device)).data),
                                  np.fmax(a, b))
    np.testing.assert_array_equal(to_np(minigan.fmin(_t(a, device), _t(b, device)).data),
                                  np.fmin(a, b))
    with pytest.raises(ValueError, match=r"maximum: shapes \(2, 3\) and \(2,\) cannot be "
                                         "broadcast"):
        minigan.maximum(_t(a, device), _t([1.0, 2.0], device))


def test_maximum_splits_the_gradient_half_and_half_at_ties(device):
    a = _t([1.0, 2.0, 3.0, np.nan, 5.0], device, grad=True)
    b = _t([1.0, 3.0, 2.0, 1.0, np.nan], device, grad=True)
    ga, gb = minigan.grad(minigan.maximum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(to_np(ga.data), [0.5, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(to_np(gb.data), [0.5, 1.0, 0.0, 1.0, 1.0])
    ga, gb = minigan.grad(minigan.minimum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(to_np(ga.data), [0.5, 1.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(to_np(gb.data), [0.5, 0.0, 1.0, 1.0, 1.0])
    # fmax/fmin: a tie goes to the first operand, a NaN side gets nothing
    ga, gb = minigan.grad(minigan.fmax(a, b).sum(), [a, b])
    np.testing.assert_array_equal(to_np(ga.data), [1.0, 0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(to_np(gb.data), [0.0, 1.0, 0.0, 1.0, 0.0])
    ga, gb = minigan.grad(minigan.fmin(a, b).sum(), [a, b])
    np.testing.assert_array_equal(to_np(ga.data), [1.0, 1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(to_np(gb.data), [0.0, 0.0, 1.0, 1.0, 0.0])
    # an infinite upstream gradient on the losing side gives 0, not NaN
    x = _t([1.0], device, grad=True)
    y = minigan.maximum(x, 2.0)
    assert _grad(y, x, minigan.Tensor(_dev([np.inf], device))).tolist() == [0.0]


def test_maximum_and_fmax_gradients_match_torch():
    torch = pytest.importorskip("torch")
    a = np.array([[1.0, 2.0, 3.0, np.nan, 5.0, 0.0]] * 2)
    b = np.array([1.0, 3.0, 2.0, 1.0, np.nan, 0.0])
    gy = R.standard_normal(a.shape)
    for name in ("maximum", "minimum", "fmax", "fmin"):
        ta = torch.tensor(a, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        want = torch.autograd.grad(getattr(torch, name)(ta, tb), [ta, tb], torch.tensor(gy))
        ma, mb = _t(a, grad=True), _t(b, grad=True)
        got = minigan.grad(getattr(minigan, name)(ma, mb), [ma, mb], minigan.Tensor(gy))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy(), err_msg=name)


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_maximum_gradients_first_and_second_order(device, name):
    fn = getattr(minigan, name)
    a = R.standard_normal((3, 4))
    b = R.standard_normal((4,))  # broadcast; no ties
    check_backward(fn, [_dev(a, device), _dev(b, device)])
    check_double_backward(fn, [_dev(a, device), _dev(b, device)])


def test_binary_ops_promote_dtypes_as_torch(device):
    i = _t([1, -2, 3], device, np.int64)
    f = _t([1.5, -2.0, 3.0], device, np.float32)
    b = _t([True, False, True], device, np.bool_)
    assert minigan.maximum(i, f).dtype == np.float32  # NumPy would say float64
    assert minigan.maximum(i, b).dtype == np.int64
    assert minigan.maximum(f, _t([1.0, 2.0, 3.0], device)).dtype == np.float64
    assert minigan.maximum(f, _t(2.0, device, np.float64)).dtype == np.float32  # a 0-d
    assert minigan.maximum(i, _t(2.5, device, np.float64)).dtype == np.float64
    assert minigan.maximum(i, 2.5).dtype == np.float32  # a Python float: the default dtype
    assert minigan.maximum(f, 2).dtype == np.float32
    assert minigan.maximum(b, 1).dtype == np.int64
    assert minigan.maximum(i, b).tolist() == [1, 0, 3]
    assert minigan.atan2(i, i).dtype == np.float32
    with pytest.raises(TypeError, match="maximum: expected tensors or real numbers, got str"):
        minigan.maximum(f, "2")


def test_promotion_matches_torch():
    torch = pytest.importorskip("torch")
    dtypes = [np.bool_, np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64]
    for da in dtypes:
        for db in dtypes:
            for shape_b in ((2,), ()):
                a = np.ones(2, dtype=da)
                bb = np.ones(shape_b, dtype=db)
                want = torch.maximum(torch.tensor(a), torch.tensor(bb)).dtype
                got = minigan.maximum(_t(a, dtype=da), _t(bb, dtype=db)).dtype
                assert str(want) == f"torch.{got}", (da, db, shape_b)


# ----------------------------------------------------------------------------- atan2, lerp

def test_atan2_values_and_gradients(device):
    a, b = R.standard_normal((3, 4)), R.standard_normal((3, 4))
    np.testing.assert_allclose(to_np(minigan.atan2(_t(a, device), _t(b, device)).data),
                               np.arctan2(a, b), rtol=1e-14)
    np.testing.assert_allclose(to_np(_t(a, device).arctan2(_t(b, device)).data),
                               np.arctan2(a, b), rtol=1e-14)
    check_backward(minigan.atan2, [_dev(a, device), _dev(b, device)])
    check_double_backward(minigan.atan2, [_dev(a, device), _dev(b[0], device)])
    # d/da atan2(a, b) = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
    ta, tb = _t([1.0], device, grad=True), _t([2.0], device, grad=True)
    ga, gb = minigan.grad(minigan.atan2(ta, tb).sum(), [ta, tb])
    np.testing.assert_allclose([ga.item(), gb.item()], [2 / 5, -1 / 5], rtol=1e-15)


def _lerp_ref(a, b, w):
    return a + w * (b - a)


def test_lerp_values_broadcast_and_the_ends_are_exact(device):
    a, b = R.standard_normal((3, 4)), R.standard_normal(4)
    w = R.uniform(-0.5, 1.5, (3, 1))
    np.testing.assert_allclose(to_np(minigan.lerp(_t(a, device), _t(b, device),
                                                  _t(w, device)).data),
                               _lerp_ref(a, b, w), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(to_np(_t(a, device).lerp(_t(b, device), 0.3).data),
                               _lerp_ref(a, b, 0.3), rtol=1e-12, atol=1e-15)
    # weight 1 gives end exactly, as torch (a + 1 * (b - a) is 1.2345678e-3 + 8.6e-17 here)
    ends = minigan.lerp(_t([1e3, 3.0], device), _t([1.2345678e-3, 1e-16], device), 1.0)
    assert to_np(ends.data).tolist() == [1.2345678e-3, 1e-16]
    w32 = minigan.lerp(_t(a, device, np.float32), _t(a, device, np.float32),
                       _t(0.5, device, np.float64))  # a 0-d weight is cast
    assert w32.dtype == np.float32


def test_lerp_gradients_for_all_three_operands(device):
    a, b = R.standard_normal((3, 4)), R.standard_normal(4)
    w = R.uniform(-0.5, 1.5, (3, 1))
    ins = [_dev(a, device), _dev(b, device), _dev(w, device)]
    check_backward(minigan.lerp, ins)
    check_double_backward(minigan.lerp, ins)
    check_double_backward(lambda s, e: minigan.lerp(s, e, 0.7), ins[:2])


def test_lerp_refusals(device):
    f = _t([1.0, 2.0], device, np.float32)
    with pytest.raises(TypeError, match="lerp: input and end must have one dtype, got float32 "
                                        "and float64"):
        minigan.lerp(f, _t([1.0, 2.0], device), 0.5)
    with pytest.raises(TypeError, match="lerp: input and end must be floating-point tensors"):
        minigan.lerp(_t([1, 2], device, np.int64), _t([1, 2], device, np.int64), 0.5)
    with pytest.raises(TypeError, match="lerp: weight must have the dtype of input"):
        minigan.lerp(f, f, _t([0.5, 0.5], device))
    with pytest.raises(ValueError, match="lerp: shapes"):
        minigan.lerp(f, f, _t([0.5, 0.5, 0.5], device, np.float32))


def test_lerp_and_atan2_match_torch():
    torch = pytest.importorskip("torch")
    a, b = R.standard_normal((3, 4)), R.standard_normal(4)
    w = R.uniform(-0.5, 1.5, (3, 1))
    got = minigan.lerp(_t(a), _t(b), _t(w)).numpy()
    want = torch.lerp(torch.tensor(a), torch.tensor(b), torch.tensor(w)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-16)  # (torch fuses a multiply-add)
    np.testing.assert_allclose(minigan.atan2(_t(a), _t(b)).numpy(),
                               torch.atan2(torch.tensor(a), torch.tensor(b)).numpy(),
                               rtol=1e-15)


# ----------------------------------------------------------------------------- norm

def _norm_ref(x, p, axis=None, keepdims=False):
    a = np.abs(x)
    if p == 2:
        return np.sqrt((a * a).sum(axis=axis, keepdims=keepdims))
    if p == np.inf:
        return a.max(axis=axis, keepdims=keepdims)
    if p == -np.inf:
        return a.min(axis=axis, keepdims=keepdims)
    if p == 0:
        return (x != 0).sum(axis=axis, keepdims=keepdims).astype(x.dtype)
    with np.errstate(divide="ignore"):
        return (a ** p).sum(axis=axis, keepdims=keepdims) ** (1.0 / p)


NORM_PS = [2, 1, 3, 1.5, 0.5, -1, 0, np.inf, -np.inf]
XN = R.standard_normal((2, 3, 4))


@pytest.mark.parametrize("p", NORM_PS)
def test_norm_values_over_dims(device, p):
    x = _t(XN, device)
    np.testing.assert_allclose(minigan.norm(x, p).item(), _norm_ref(XN, p), rtol=1e-13)
    for dim in (0, -1, (0, 2), (1, 2, 0)):
        for keepdim in (False, True):
            got = minigan.norm(x, p, dim, keepdim)
            want = _norm_ref(XN, p, dim if not isinstance(dim, tuple) else tuple(
                d % 3 for d in dim), keepdim)
            assert got.shape == want.shape
            np.testing.assert_allclose(to_np(got.data), want, rtol=1e-13)
    np.testing.assert_allclose(to_np(x.norm(p, 1).data), _norm_ref(XN, p, 1), rtol=1e-13)


def test_norm_fro_default_dtype_and_zero_d(device):
    x = _t(XN, device)
    np.testing.assert_allclose(minigan.norm(x).item(), np.sqrt((XN ** 2).sum()), rtol=1e-14)
    np.testing.assert_allclose(to_np(minigan.norm(x, "fro", (0, 1)).data),
                               np.sqrt((XN ** 2).sum(axis=(0, 1))), rtol=1e-14)
    np.testing.assert_allclose(minigan.norm(x, dim=()).item(), np.sqrt((XN ** 2).sum()),
                               rtol=1e-14)
    assert minigan.norm(_t(XN, device, np.float32)).dtype == np.float32
    h = minigan.norm(_t([300.0, 400.0], device, np.float16))  # squares past float16's range
    assert h.dtype == np.float16 and h.item() == 500.0
    assert minigan.norm(_t([1, 2], device, np.int64), dtype=np.float64).dtype == np.float64
    assert minigan.norm(_t(-3.0, device)).item() == 3.0
    assert minigan.norm(_t(-3.0, device), dim=0).item() == 3.0
    assert minigan.norm(_t(np.zeros(0), device)).item() == 0.0


@pytest.mark.parametrize("call, error, message", [
    (lambda x: minigan.norm(x, "nuc"), NotImplementedError, "norm: p='nuc'"),
    (lambda x: minigan.norm(x, "abc"), ValueError, "norm: p must be 'fro', 'nuc' or a number"),
    (lambda x: minigan.norm(x, [2]), TypeError, "norm: p must be 'fro' or a real number"),
    (lambda x: minigan.norm(x, "fro", (0, 1, 2)), ValueError,
     r"norm: p='fro' takes at most 2 dims, got dim=\(0, 1, 2\)"),
    (lambda x: minigan.norm(x, 2, 3), IndexError, "norm: dimension 3 is out of range"),
    (lambda x: minigan.norm(x, 2, (0, 0)), ValueError, "norm: dimension 0 appears more"),
    (lambda x: minigan.norm(x.long()), TypeError,
     "norm: expected a floating-point tensor, got int64"),
    (lambda x: minigan.norm(x[:, :0], np.inf, 1), RuntimeError,
     "norm: the inf norm over an empty dimension is undefined"),
    (lambda x: minigan.norm(x[:0], -np.inf), RuntimeError, "norm: the -inf norm over an empty"),
])
def test_norm_refusals(call, error, message):
    with pytest.raises(error, match=message):
        call(_t(XN))


@pytest.mark.parametrize("p", NORM_PS + ["fro"])
def test_norm_gradients_first_and_second_order(device, p):
    x = _dev(XN, device)  # no zeros, no ties
    check_backward(lambda t: minigan.norm(t, p), [x])
    check_double_backward(lambda t: minigan.norm(t, p), [x])
    check_backward(lambda t: minigan.norm(t, p, (0, 2)), [x])
    check_double_backward(lambda t: minigan.norm(t, p, 1, True), [x])


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 1.5, np.inf])
def test_norm_gradient_at_the_origin_is_zero_as_torch(device, p):
    z = _t(np.zeros((2, 3)), device, grad=True)
    (g,) = minigan.grad(minigan.norm(z, p), [z], create_graph=True)
    np.testing.assert_array_equal(to_np(g.data), np.zeros((2, 3)))
    # a row of zeros beside a nonzero row: zeros there, x / |x| on the other
    x = _t([[0.0, 0.0], [3.0, -4.0]], device, grad=True)
    np.testing.assert_allclose(_grad(minigan.norm(x, 2, 1).sum(), x),
                               [[0.0, 0.0], [0.6, -0.8]], rtol=1e-15, atol=0)
    # for p >= 2 the second order at the origin is finite (torch's is NaN), and exact away
    # from it (test_norm_gradients_first_and_second_order); for 1 < p < 2, |x|^(p-1) has no
    # derivative at 0, and p = 1 and inf have constant gradients
    if p in (2, "fro", 3):
        z2 = _t(np.zeros(3), device, grad=True)
        (g,) = minigan.grad(minigan.norm(z2, p), [z2], create_graph=True)
        (gg,) = minigan.grad(g.sum(), [z2])
        np.testing.assert_array_equal(to_np(gg.data), np.zeros(3))


def test_norm_gradient_at_zero_entries_and_ties_follows_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[0.0, 1.0, -2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [3.0, -3.0, 1.0, 0.5]])
    gy = np.array([0.7, -1.3, 2.0])
    for p in NORM_PS + ["fro"]:
        tx = torch.tensor(x, requires_grad=True)
        out = torch.norm(tx, p, 1)
        want = (np.zeros_like(x) if p == 0 else
                torch.autograd.grad(out, tx, torch.tensor(gy))[0].numpy())
        mx = _t(x, grad=True)
        got = _grad(minigan.norm(mx, p, 1), mx, minigan.Tensor(gy))
        np.testing.assert_allclose(got, want, rtol=1e-14, err_msg=str(p))
        np.testing.assert_allclose(minigan.norm(_t(x), p, 1).numpy(), out.detach().numpy(),
                                   rtol=1e-14, err_msg=str(p))


# ----------------------------------------------------------------------------- prod, cumprod

X_ZEROS = {
    "none": np.array([[1.5, -0.7, 2.0, 0.9], [0.8, 1.1, -1.3, 2.2], [0.5, 0.6, 1.7, -0.4]]),
    "one": np.array([[1.5, 0.0, 2.0, 0.9], [0.8, 1.1, -1.3, 0.0], [0.0, 0.6, 1.7, -0.4]]),
    "two": np.array([[1.5, 0.0, 2.0, 0.0], [0.0, 1.1, 0.0, 2.2], [0.5, 0.6, 1.7, -0.4]]),
    "all": np.zeros((3, 4)),
}


def _prod_grad_ref(x, axis):
    """The product of the other entries, one by one (the definition)."""
    g = np.empty_like(x)
    for idx in np.ndindex(*x.shape):
        line = list(idx)
        line[axis] = slice(None)
        others = np.delete(x[tuple(line)], idx[axis])
        g[idx] = np.prod(others)
    return g


@pytest.mark.parametrize("zeros", list(X_ZEROS))
def test_prod_values_and_exact_gradient_with_zeros(device, zeros):
    x = X_ZEROS[zeros]
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            t = _t(x, device, grad=True)
            y = minigan.prod(t, dim, keepdim)
            np.testing.assert_allclose(to_np(y.data), np.prod(x, axis=dim, keepdims=keepdim),
                                       rtol=1e-15)
            np.testing.assert_allclose(_grad(y.sum(), t), _prod_grad_ref(x, dim % 2),
                                       rtol=1e-14, atol=0)
    t = _t(x, device, grad=True)
    np.testing.assert_allclose(minigan.prod(t).item(), np.prod(x), rtol=1e-15)
    np.testing.assert_allclose(_grad(t.prod(), t),
                               _prod_grad_ref(x.ravel(), 0).reshape(x.shape), rtol=1e-14)


@pytest.mark.parametrize("zeros", list(X_ZEROS))
def test_prod_second_order_with_zeros(device, zeros):
    x = _dev(X_ZEROS[zeros], device)
    check_backward(lambda t: minigan.prod(t, 1), [x])
    check_double_backward(lambda t: minigan.prod(t, 1), [x])
    check_double_backward(lambda t: minigan.prod(t, 0, True), [x])
    check_double_backward(lambda t: minigan.prod(t[0]), [x])


def test_prod_hessian_with_two_zeros_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    t = _t(x, grad=True)
    (g,) = minigan.grad(minigan.prod(t), [t], create_graph=True)
    rows = [to_np(minigan.grad(g[i], [t], retain_graph=True)[0].data) for i in range(5)]
    want = torch.autograd.functional.hessian(lambda v: torch.prod(v), torch.tensor(x))
    np.testing.assert_array_equal(np.stack(rows), want.numpy())  # 30 at (1, 3) and (3, 1)
    assert rows[1][3] == 30.0


def test_prod_dtypes_and_argument_forms(device):
    assert minigan.prod(_t([2, 3], device, np.int32)).dtype == np.int64  # as torch
    assert minigan.prod(_t([True, False], device, np.bool_)).tolist() == 0
    assert minigan.prod(_t([2, 3], device, np.int64), dtype=np.float32).dtype == np.float32
    assert minigan.prod(_t(np.ones((2, 3)), device), keepdim=True).shape == (1, 1)
    assert minigan.prod(_t(2.5, device), 0).item() == 2.5
    assert minigan.prod(_t(np.zeros(0), device)).item() == 1.0
    assert minigan.prod(_t(np.ones((2, 0)), device), 1).tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match=r"prod: dim must be one int, got \(0, 1\)"):
        minigan.prod(_t(np.ones((2, 3)), device), (0, 1))
    with pytest.raises(IndexError, match="prod: dimension 2 is out of range"):
        minigan.prod(_t(np.ones((2, 3)), device), 2)


@pytest.mark.parametrize("zeros", list(X_ZEROS))
def test_cumprod_values_and_gradients_with_zeros(device, zeros):
    x = X_ZEROS[zeros]
    for dim in (0, 1):
        np.testing.assert_allclose(to_np(minigan.cumprod(_t(x, device), dim).data),
                                   np.cumprod(x, axis=dim), rtol=1e-15)
        # the definition: gx_i = sum over k >= i of gy_k * (product of x_j, j <= k, j != i)
        gy = R.standard_normal(x.shape)
        want = np.zeros_like(x)
        xm, gm = np.moveaxis(x, dim, -1), np.moveaxis(gy, dim, -1)
        wm = np.moveaxis(want, dim, -1)
        for idx in np.ndindex(*xm.shape[:-1]):
            for i in range(xm.shape[-1]):
                for k in range(i, xm.shape[-1]):
                    wm[idx + (i,)] += gm[idx + (k,)] * np.prod(np.delete(xm[idx][:k + 1], i))
        t = _t(x, device, grad=True)
        got = _grad(minigan.cumprod(t, dim), t, minigan.Tensor(_dev(gy, device)))
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    xs = [_dev(x, device)]
    check_backward(lambda t: minigan.cumprod(t, 1), xs)
    check_double_backward(lambda t: minigan.cumprod(t, 1), xs)
    check_double_backward(lambda t: t.cumprod(0), xs)


def test_cumprod_gradient_matches_torch_with_zeros():
    torch = pytest.importorskip("torch")
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0, 0.7, -1.2])
    gy = np.arange(1.0, 8.0)
    tx = torch.tensor(x, requires_grad=True)
    want = torch.autograd.grad(torch.cumprod(tx, 0), tx, torch.tensor(gy))[0].numpy()
    t = _t(x, grad=True)
    np.testing.assert_allclose(_grad(minigan.cumprod(t, 0), t, minigan.Tensor(gy)), want,
                               rtol=1e-15)


def test_division_based_product_gradients_fail_the_check_with_zeros(monkeypatch):
    """The checks above can fail: the textbook gradient (reversed cumsum of gy * y) / x is
    right without zeros and NaN at a zero."""
    def wrong(self, gy):
        return minigan.cumsum((gy * self.output())[:, ::-1], 1)[:, ::-1] / self.inputs[0]
    monkeypatch.setattr(P.Cumprod, "backward", wrong)
    with pytest.raises(GradientCheckError):
        check_backward(lambda t: minigan.cumprod(t, 1), [X_ZEROS["one"]])
    check_backward(lambda t: minigan.cumprod(t, 1), [X_ZEROS["none"]])  # fine without zeros


# ----------------------------------------------------------------------------- cumsum, lcse

def test_cumsum_values_dtypes_and_gradients(device):
    x = R.standard_normal((3, 5))
    for dim in (0, 1, -1):
        np.testing.assert_allclose(to_np(minigan.cumsum(_t(x, device), dim).data),
                                   np.cumsum(x, axis=dim), rtol=1e-14)
    t = _t(x, device, grad=True)
    gy = R.standard_normal(x.shape)
    want = np.flip(np.cumsum(np.flip(gy, 1), 1), 1)
    np.testing.assert_allclose(_grad(t.cumsum(1), t, minigan.Tensor(_dev(gy, device))), want,
                               rtol=1e-14)
    check_backward(lambda a: minigan.cumsum(a, 0), [_dev(x, device)])
    check_double_backward(lambda a: minigan.cumsum(a, 1) * a, [_dev(x, device)])
    assert minigan.cumsum(_t([1, 2], device, np.int32), 0).dtype == np.int64
    assert minigan.cumsum(_t([True, True], device, np.bool_), 0).tolist() == [1, 2]
    assert minigan.cumsum(_t([1, 2], device, np.int64), 0, dtype=np.float32).dtype == \
        np.float32
    s = minigan.cumsum(_t(2.5, device), 0)
    assert s.shape == () and s.item() == 2.5
    with pytest.raises(IndexError, match="cumsum: dimension 1 is out of range"):
        minigan.cumsum(_t([1.0, 2.0], device), 1)
    with pytest.raises(TypeError, match="cumsum: a dimension must be an int, got 1.0"):
        minigan.cumsum(_t([1.0, 2.0], device), 1.0)


def test_logcumsumexp_values_stable_and_gradients(device):
    x = R.standard_normal((3, 6)) * 3
    want = np.logaddexp.accumulate(x, axis=1)
    np.testing.assert_allclose(to_np(minigan.logcumsumexp(_t(x, device), 1).data), want,
                               rtol=1e-13)
    np.testing.assert_allclose(to_np(_t(x, device).logcumsumexp(0).data),
                               np.logaddexp.accumulate(x, axis=0), rtol=1e-13)
    far = minigan.logcumsumexp(_t([-1000.0, 0.0, 1000.0, -np.inf], device), 0)
    np.testing.assert_array_equal(to_np(far.data), [-1000.0, 0.0, 1000.0, 1000.0])
    xs = [_dev(x, device)]
    check_backward(lambda a: minigan.logcumsumexp(a, 1), xs)
    check_double_backward(lambda a: minigan.logcumsumexp(a, 1), xs)
    # a large gradient of either sign and far-apart inputs do not overflow
    t = _t([-800.0, 0.0, 800.0], device, grad=True)
    g = _grad(minigan.logcumsumexp(t, 0), t, minigan.Tensor(_dev([1e300, -1.0, 2.0], device)))
    np.testing.assert_allclose(g, [1e300, -1.0, 2.0], rtol=1e-12)
    with pytest.raises(TypeError, match="logcumsumexp: needs a floating-point tensor"):
        minigan.logcumsumexp(_t([1, 2], device, np.int64), 0)


def test_cumulative_ops_match_torch():
    torch = pytest.importorskip("torch")
    x = R.standard_normal((3, 5))
    for name in ("cumsum", "cumprod", "logcumsumexp"):
        tx = torch.tensor(x, requires_grad=True)
        gy = R.standard_normal(x.shape)
        want = getattr(torch, name)(tx, 1)
        (wg,) = torch.autograd.grad(want, tx, torch.tensor(gy))
        t = _t(x, grad=True)
        got = getattr(minigan, name)(t, 1)
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(_grad(got, t, minigan.Tensor(gy)), wg.numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- any, all, count

def test_any_all_count_nonzero(device):
    x = np.array([[0.0, 1.0, np.nan], [0.0, 0.0, 2.0]])
    t = _t(x, device)
    assert minigan.any(t).dtype == np.bool_ and minigan.any(t).item() is True
    assert t.all().item() is False
    assert minigan.any(t, 1).tolist() == [True, True]
    assert minigan.all(t, 0).tolist() == [False, False, True]  # NaN counts as nonzero
    assert t.any(0, keepdim=True).shape == (1, 3)
    assert minigan.any(t, (0, 1)).tolist() is True
    assert minigan.any(t, keepdim=True).shape == (1, 1)
    assert minigan.all(t, ()).shape == (2, 3)  # an empty tuple reduces nothing, as in torch
    assert minigan.all(_t(np.zeros(0), device)).item() is True
    u = minigan.any(_t([0, 3], device, np.uint8))
    assert u.dtype == np.uint8 and u.item() == 1  # torch keeps uint8 here
    assert minigan.count_nonzero(t).item() == 3
    assert minigan.count_nonzero(t).dtype == np.int64
    assert t.count_nonzero(1).tolist() == [2, 1]
    assert minigan.count_nonzero(t, ()).item() == 3
    assert minigan.count_nonzero(_t(3.0, device), 0).item() == 1
    with pytest.raises(ValueError, match="count_nonzero: dimension 1 appears more than once"):
        minigan.count_nonzero(t, (1, 1))
    with pytest.raises(IndexError, match="any: dimension 2 is out of range"):
        minigan.any(t, 2)


# ----------------------------------------------------------------------------- predicates

def test_nan_inf_finite_and_signbit(device):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 1.0, -np.nan])
    t = _t(x, device)
    assert minigan.isnan(t).tolist() == np.isnan(x).tolist()
    assert t.isinf().tolist() == np.isinf(x).tolist()
    assert minigan.isposinf(t).tolist() == np.isposinf(x).tolist()
    assert minigan.isneginf(t).tolist() == np.isneginf(x).tolist()
    assert minigan.isfinite(t).tolist() == np.isfinite(x).tolist()
    assert minigan.signbit(t).tolist() == np.signbit(x).tolist()
    i = _t([-1, 0, 2], device, np.int64)
    assert minigan.isnan(i).tolist() == [False] * 3 and minigan.isfinite(i).tolist() == [True] * 3
    assert minigan.signbit(i).tolist() == [True, False, False]
    assert minigan.signbit(_t([3], device, np.uint8)).tolist() == [False]
    assert minigan.isnan(t).dtype == np.bool_


def test_isclose_allclose_and_equal(device):
    a = np.array([1.0, np.inf, np.nan, 1.0, -np.inf, 0.0, 1.0])
    b = np.array([1.0 + 1e-6, np.inf, np.nan, 1.1, np.inf, 1e-9, np.inf])
    got = minigan.isclose(_t(a, device), _t(b, device))
    assert got.dtype == np.bool_
    assert got.tolist() == np.isclose(a, b).tolist()
    assert minigan.isclose(_t(a, device), _t(b, device), equal_nan=True).tolist() == \
        np.isclose(a, b, equal_nan=True).tolist()
    assert _t(a, device).isclose(_t(b, device), rtol=0.2).tolist()[3] is True
    # an infinite error is never close, even with an infinite tolerance (torch's rule)
    assert minigan.isclose(_t([1.0], device), _t([np.inf], device), atol=np.inf).tolist() == \
        [False]
    assert minigan.isclose(_t([5, 9], device, np.int64), _t([10, 10], device, np.int64),
                           rtol=0.5, atol=0).tolist() == [True, True]
    assert minigan.isclose(_t([1.0, 2.0], device), 1.0).tolist() == [True, False]
    assert minigan.allclose(_t(a[:2], device), _t(b[:2], device)) is True
    assert minigan.allclose(_t(a, device), _t(b, device)) is False
    assert minigan.allclose(_t([1.0, 2.0], device), _t([1.0], device)) is False
    with pytest.raises(TypeError, match="isclose: input and other must have one dtype, got "
                                        "float32 and float64"):
        minigan.isclose(_t(a, device, np.float32), _t(b, device))
    with pytest.raises(ValueError, match="isclose: rtol must be >= 0, got -1"):
        minigan.isclose(_t(a, device), _t(b, device), rtol=-1)
    with pytest.raises(ValueError, match="allclose: shapes"):
        minigan.allclose(_t([1.0, 2.0, 3.0], device), _t([1.0, 2.0], device))
    assert minigan.equal(_t([1.0, 2.0], device), _t([1.0, 2.0], device, np.float32)) is True
    assert minigan.equal(_t([1.0, 2.0], device), _t([[1.0, 2.0]], device)) is False
    assert minigan.equal(_t([np.nan], device), _t([np.nan], device)) is False
    assert _t([1, 2], device, np.int64).equal(_t([1, 3], device, np.int64)) is False


def test_isclose_matches_torch():
    torch = pytest.importorskip("torch")
    a = np.array([1.0, np.inf, np.nan, 1.0, -np.inf, 0.0, 1.0, 1e-9, 100.0])
    b = np.array([1.0 + 1e-6, np.inf, np.nan, 1.1, np.inf, 1e-9, np.inf, 0.0, 101.0])
    for kw in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0}, {"rtol": 0.02},
               {"atol": np.inf}):
        want = torch.isclose(torch.tensor(a), torch.tensor(b), **kw).numpy().tolist()
        assert minigan.isclose(_t(a), _t(b), **kw).tolist() == want, kw


def test_nan_to_num_values_and_gradient(device):
    x = np.array([np.nan, np.inf, -np.inf, 1.5])
    t = _t(x, device, np.float32, grad=True)
    y = minigan.nan_to_num(t)
    f32 = np.finfo(np.float32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(to_np(y.data), np.array([0.0, f32.max, f32.min, 1.5],
                                                          dtype=np.float32))
    np.testing.assert_array_equal(to_np(t.nan_to_num(1.0, 2.0, -2.0).data), [1, 2, -2, 1.5])
    np.testing.assert_array_equal(_grad(y.sum(), t), [0.0, 0.0, 0.0, 1.0])
    assert minigan.nan_to_num(_t(x, device, np.float16)).tolist()[1] == 65504.0
    assert minigan.nan_to_num(_t(x, device), posinf=1e300).tolist()[1] == 1e300
    assert minigan.nan_to_num(_t(x, device, np.float32), posinf=1e300).tolist()[1] == np.inf
    assert minigan.nan_to_num(_t([1, 2], device, np.int64), nan=5.0).tolist() == [1, 2]
    xs = [_dev(np.array([np.nan, 0.5, -np.inf, 2.0]), device)]
    check_double_backward(lambda a: minigan.nan_to_num(a) * minigan.nan_to_num(a), xs)


def test_nan_to_num_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([np.nan, np.inf, -np.inf, 1.5])
    gy = np.array([np.nan, np.inf, 2.0, 3.0])
    for dt in (np.float16, np.float32, np.float64):
        tx = torch.tensor(x.astype(dt), requires_grad=True)
        want = torch.nan_to_num(tx)
        (wg,) = torch.autograd.grad(want, tx, torch.tensor(gy.astype(dt)))
        t = _t(x, dtype=dt, grad=True)
        got = minigan.nan_to_num(t)
        np.testing.assert_array_equal(got.numpy(), want.detach().numpy())
        np.testing.assert_array_equal(_grad(got, t, minigan.Tensor(gy.astype(dt))), wg.numpy())


def test_logical_ops(device):
    a = _t([0.0, 1.0, np.nan, -2.0], device)
    b = _t([0, 0, 3, 4], device, np.int64)
    assert minigan.logical_and(a, b).tolist() == [False, False, True, True]
    assert a.logical_or(b).tolist() == [False, True, True, True]
    assert minigan.logical_xor(a, b).tolist() == [False, True, False, False]
    assert a.logical_not().tolist() == [True, False, False, False]
    assert minigan.logical_and(a, 1).tolist() == [False, True, True, True]
    assert minigan.logical_and(a, b).dtype == np.bool_
    with pytest.raises(ValueError, match="logical_and: shapes"):
        minigan.logical_and(a, _t([1.0, 2.0], device))


# ----------------------------------------------------------------------------- API, devices

def test_every_function_is_exported_and_a_tensor_method():
    for name in P.__all__:
        assert getattr(minigan, name) is getattr(P, name), name
        assert getattr(minigan.Tensor, name) is getattr(P, name), name
        if name != "norm":  # F.norm is not torch's: minigan.functional.norm is batch norm's module
            assert getattr(F, name) is getattr(P, name), name
    assert "norm" not in F.__all__
    assert minigan.functional.norm.batch_norm is F.batch_norm
    assert minigan.Tensor.square is F.square
    assert _t([1.5, -2.0]).square().tolist() == [2.25, 4.0]
    # nothing that minigan or its Tensor had before is redefined here
    for name in ("abs", "exp", "log", "sqrt", "sum", "mean", "max", "min", "amax", "clamp",
                 "where", "pow", "sigmoid", "tanh"):
        assert name not in P.__all__


def test_zero_d_tensors_and_numbers(device):
    s = _t(0.5, device, grad=True)
    for fn in (minigan.sin, minigan.expm1, minigan.atan, minigan.reciprocal):
        assert fn(s).shape == ()
    assert minigan.maximum(s, 0.7).item() == 0.7
    assert minigan.cumprod(s, -1).shape == ()
    assert minigan.norm(s, 1).item() == 0.5
    check_double_backward(lambda a: minigan.prod(a) * minigan.cumsum(a, 0),
                          [_dev(np.array(0.5), device)])
    assert minigan.sin(1.0).dtype == np.float32  # a Python number


def test_ops_name_both_devices_when_inputs_are_mixed(device):
    if device == "cpu":
        pytest.skip("needs a second device")
    a, b = _t([1.0, 2.0], device, grad=True), _t([1.0, 3.0], "cpu")
    for call in (minigan.maximum, minigan.fmin, minigan.atan2,
                 lambda p, q: minigan.lerp(p, q, 0.5), minigan.isclose, minigan.equal,
                 minigan.logical_and):
        with pytest.raises(backend.DeviceError, match="cuda and cpu|cpu and cuda"):
            call(a, b)


def test_product_norm_and_extremum_backwards_do_not_wait_for_the_gpu(emulated_gpu):
    """prod, cumprod, norm, maximum: forward, backward and double backward stay on the device
    (no test of the values on the host, e.g. for zeros)."""
    from tests.kernels import emulated_cupy as E

    x = minigan.Tensor(emulated_gpu.asarray(X_ZEROS["two"]), requires_grad=True)
    E.LOG.clear()
    for loss in (lambda: minigan.prod(x, 1).sum(), lambda: minigan.prod(x),
                 lambda: (minigan.cumprod(x, 0) * x).sum(), lambda: minigan.norm(x, 2, 1).sum(),
                 lambda: minigan.norm(x, np.inf), lambda: minigan.norm(x, 1.5),
                 lambda: minigan.maximum(x, x[0]).sum(),
                 lambda: minigan.logcumsumexp(x, 1).sum(),
                 lambda: minigan.nan_to_num(x).sum(), lambda: minigan.lerp(x, x * 2, 0.3).sum()):
        (g,) = minigan.grad(loss(), [x], create_graph=True)
        if g.requires_grad:  # (the gradients of the max-like ones are constant in x)
            (gg,) = minigan.grad((g * g).sum(), [x])
            assert gg.device == "cuda"
    assert dict(E.LOG.syncs) == {}
    assert math.isfinite(float(gg.sum().item()))


# ----------------------------------------------------------------------------- fuzzer findings

ZERO_D_OPS = [
    ("norm", lambda t: minigan.norm(t)),
    ("norm_dim", lambda t: minigan.norm(t, 2, 0)),
    ("norm_1", lambda t: minigan.norm(t, 1)),
    ("norm_3_keepdim", lambda t: minigan.norm(t, 3, 0, True)),
    ("norm_1.5", lambda t: minigan.norm(t, 1.5)),
    ("norm_0.5", lambda t: minigan.norm(t, 0.5)),
    ("norm_-1", lambda t: minigan.norm(t, -1)),
    ("norm_inf", lambda t: minigan.norm(t, np.inf, -1)),
    ("norm_-inf", lambda t: minigan.norm(t, -np.inf)),
    ("nan_to_num", lambda t: minigan.nan_to_num(t) ** 3),
    ("logcumsumexp", lambda t: minigan.logcumsumexp(t, 0) ** 3),
    ("cumprod", lambda t: minigan.cumprod(t, -1) ** 3),
    ("prod", lambda t: minigan.prod(t) ** 3),
    ("prod_dim", lambda t: minigan.prod(t, 0, True) ** 3),
    ("atan2", lambda t: minigan.atan2(t, t * t + 1.0)),
    ("maximum", lambda t: minigan.maximum(t, t * 0.5)),
    ("fmin", lambda t: minigan.fmin(t, -t)),
    ("lerp", lambda t: minigan.lerp(t, t * t, t)),
    ("sign_frac_round", lambda t: minigan.sign(t) * minigan.frac(t) * minigan.round(t) * t),
]


@pytest.mark.parametrize("name, fn", ZERO_D_OPS, ids=[c[0] for c in ZERO_D_OPS])
def test_zero_d_inputs_first_and_second_order(device, name, fn):
    """NumPy gives scalars, not 0-d arrays, for expressions on 0-d arrays: the backwards wrap
    them (norm's sign, nan_to_num's mask crashed with a TypeError)."""
    for v in (1.3, -0.7):
        check_backward(fn, [_dev(np.array(v), device)])
        check_double_backward(fn, [_dev(np.array(v), device)])


def test_zero_d_backwards_at_zero_nan_and_inf(device):
    x = _t(3.0, device, grad=True)
    (g,) = minigan.grad(minigan.norm(x), [x], create_graph=True)
    assert g.shape == () and g.item() == 1.0
    (gg,) = minigan.grad(g * g, [x])
    assert gg.item() == 0.0
    for p in (2, 1, 3, np.inf):  # zero at the origin, as torch
        z = _t(0.0, device, grad=True)
        assert _grad(minigan.norm(z, p), z).tolist() == 0.0
    s = _t(np.inf, device, grad=True)
    assert _grad(minigan.nan_to_num(s), s).tolist() == 0.0  # (0-d: it crashed)
    # logcumsumexp of a 0-d tensor is the value itself: gradient 1 even at NaN and inf, as torch
    for v in (np.nan, np.inf, -np.inf, 0.5):
        t = _t(v, device, grad=True)
        y = minigan.logcumsumexp(t, 0)
        assert y.shape == () and (np.isnan(y.item()) if np.isnan(v) else y.item() == v)
        assert _grad(y, t, minigan.Tensor(_dev(np.array(0.7), device))).tolist() == 0.7
    # the one-entry 1-d case keeps the formula (NaN there, as torch)
    t = _t([np.nan], device, grad=True)
    assert np.isnan(_grad(minigan.logcumsumexp(t, 0).sum(), t)[0])


def test_zero_d_backwards_match_torch():
    torch = pytest.importorskip("torch")
    fns = [f for _, f in ZERO_D_OPS]
    for v in (1.3, -0.7, 0.0, np.nan, np.inf):
        for (name, _), fn in zip(ZERO_D_OPS, fns):
            if name.startswith("sign") or (name == "norm_0.5" and v == 0.0):
                continue  # (torch has no minigan.* names: skip what needs a twin)
            tfn = _torch_twin(torch, name)
            tx = torch.tensor(v, dtype=torch.float64, requires_grad=True)
            (want,) = torch.autograd.grad(tfn(tx), tx)
            t = _t(v, grad=True)
            got = _grad(fn(t), t)
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-13, equal_nan=True,
                                       err_msg=f"{name} at {v}")


def _torch_twin(torch, name):
    return {
        "norm": lambda t: torch.norm(t), "norm_dim": lambda t: torch.norm(t, 2, 0),
        "norm_1": lambda t: torch.norm(t, 1), "norm_3_keepdim": lambda t: torch.norm(t, 3, 0, True),
        "norm_1.5": lambda t: torch.norm(t, 1.5), "norm_0.5": lambda t: torch.norm(t, 0.5),
        "norm_-1": lambda t: torch.norm(t, -1), "norm_inf": lambda t: torch.norm(t, np.inf, -1),
        "norm_-inf": lambda t: torch.norm(t, -np.inf),
        "nan_to_num": lambda t: torch.nan_to_num(t) ** 3,
        "logcumsumexp": lambda t: torch.logcumsumexp(t, 0) ** 3,
        "cumprod": lambda t: torch.cumprod(t, -1) ** 3, "prod": lambda t: torch.prod(t) ** 3,
        "prod_dim": lambda t: torch.prod(t, 0, True) ** 3,
        "atan2": lambda t: torch.atan2(t, t * t + 1.0),
        "maximum": lambda t: torch.maximum(t, t * 0.5), "fmin": lambda t: torch.fmin(t, -t),
        "lerp": lambda t: torch.lerp(t, t * t, t),
    }[name]


def _atan2_grad_ref(a, b, gy):
    den = a * a + b * b
    with np.errstate(all="ignore"):
        r = np.where(den == 0, 0.0, 1.0 / np.where(den == 0, 1.0, den))
    return gy * b * r, gy * -a * r


def test_atan2_gradient_is_zero_where_the_radius_is_zero(device):
    """torch's convention: 0 (not 0 * inf = NaN) at the origin and where a^2 + b^2
    underflows; the second order there is 0 too (torch's is NaN)."""
    a = np.array([0.0, -0.0, 1e-170, 0.0, 1.0, 0.0, np.inf])
    b = np.array([0.0, -0.0, 0.0, 2.0, 0.0, 1e-200, 1.0])
    gy = np.array([0.7, -1.3, 2.0, 0.5, 1.5, -0.4, 1.0])
    ta, tb = _t(a, device, grad=True), _t(b, device, grad=True)
    ga, gb = minigan.grad(minigan.atan2(ta, tb), [ta, tb], minigan.Tensor(_dev(gy, device)),
                          create_graph=True)
    wa, wb = _atan2_grad_ref(a, b, gy)
    for got, want in ((ga, wa), (gb, wb)):
        np.testing.assert_array_equal(to_np(got.data), want)
        assert (np.signbit(to_np(got.data)) == np.signbit(want)).all()
    assert to_np(ga.data)[:3].tolist() == [0.0, 0.0, 0.0]
    hh = minigan.grad((ga * ga).sum() + (ga * gb).sum(), [ta, tb])
    assert all(np.isfinite(to_np(h.data)[:3]).all() for h in hh)


def test_atan2_gradients_at_special_points_match_torch():
    torch = pytest.importorskip("torch")
    vals = [0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan, 1e-200, 1e200, 1e-170]
    a = np.repeat(vals, len(vals))
    b = np.tile(vals, len(vals))
    gy = np.random.default_rng(3).standard_normal(a.shape)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    want = torch.autograd.grad(torch.atan2(ta, tb), [ta, tb], torch.tensor(gy))
    ma, mb = _t(a, grad=True), _t(b, grad=True)
    got = minigan.grad(minigan.atan2(ma, mb), [ma, mb], minigan.Tensor(gy))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())


@pytest.mark.parametrize("p", [2, "fro", 3, 1.5, 2.5])
def test_norm_gradient_spreads_a_nan_over_its_slice_as_torch(device, p):
    """A NaN entry makes the norm NaN, and x / y (times |x|^(p-2)) NaN for every entry of the
    slice, as in torch: the zero-norm mask must not swallow it (it gave [nan, 0, ...])."""
    x = np.array([[np.nan, 1.0, -2.0], [3.0, -4.0, 0.5]])
    t = _t(x, device, grad=True)
    g = _grad(minigan.norm(t, p, 1).sum(), t)
    assert np.isnan(g[0]).all()
    pp = 2.0 if p == "fro" else p
    y = (np.abs(x[1]) ** pp).sum() ** (1 / pp)
    np.testing.assert_allclose(g[1], x[1] * np.abs(x[1]) ** (pp - 2) / y ** (pp - 1),
                               rtol=1e-14)
    t2 = _t(x, device, grad=True)
    assert np.isnan(_grad(minigan.norm(t2, p), t2)).all()


def test_norm_nan_and_inf_gradients_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[np.nan, 1.0, -2.0], [3.0, -4.0, 0.5], [np.inf, 1.0, 0.0], [0.0, 0.0, 0.0]])
    gy = np.array([0.7, -1.3, 2.0, 0.4])
    for p in ("fro", 2, 1, 3, 1.5, 2.5, 0.5, -1, np.inf, -np.inf):
        tx = torch.tensor(x, requires_grad=True)
        (want,) = torch.autograd.grad(torch.norm(tx, p, 1), tx, torch.tensor(gy))
        t = _t(x, grad=True)
        got = _grad(minigan.norm(t, p, 1), t, minigan.Tensor(gy))
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-14, equal_nan=True, err_msg=str(p))


@pytest.mark.parametrize("p", [-1, -0.5, -2, -np.inf, np.inf])
def test_norm_refuses_negative_and_inf_orders_over_an_empty_dimension(device, p):
    """sum |x|^p for p < 0 (like max and min) has no identity: torch raises over an empty
    reduced dimension; a non-empty reduced dimension of an empty tensor is fine."""
    e = _t(np.zeros((2, 0, 3)), device)
    for dim in (None, 1, (0, 1)):
        with pytest.raises(RuntimeError, match=f"norm: the {p:g} norm over an empty dimension "
                                               "is undefined"):
            minigan.norm(e, p, dim)
    assert minigan.norm(e, p, 2).shape == (2, 0)
    assert minigan.norm(_t(np.zeros((0, 3)), device), p, 1).shape == (0,)
    # p >= 0 has an identity: 0
    assert minigan.norm(e, 0.5, 1).tolist() == [[0.0] * 3] * 2


def test_norm_empty_refusals_match_torch():
    torch = pytest.importorskip("torch")
    for p in (-1, -0.5, -np.inf, np.inf, 0.5, 2):
        for shape, dim in (((2, 0, 3), None), ((2, 0, 3), 1), ((2, 0, 3), 2), ((0, 3), 1),
                           ((3, 0), (0, 1)), ((0, 0), 0)):
            try:
                torch.norm(torch.zeros(shape), p, dim)
                refused = False
            except RuntimeError:
                refused = True
            if refused:
                with pytest.raises(RuntimeError, match="over an empty dimension"):
                    minigan.norm(minigan.zeros(*shape), p, dim)
            else:
                minigan.norm(minigan.zeros(*shape), p, dim)


def test_prod_of_all_entries_with_two_zeros_has_gradient_zero_beside_inf(device):
    """torch's first-order shortcut for prod(): with two zeros or more every product of the
    others holds a zero, and the gradient is 0 everywhere, inf and NaN entries included (the
    exclusive products gave 0 * inf = NaN). With create_graph the products are IEEE ones."""
    x = np.array([[np.inf, -np.inf, 0.0], [-0.0, -1.4, np.nan]])
    t = _t(x, device, grad=True)
    np.testing.assert_array_equal(_grad(minigan.prod(t), t), np.zeros((2, 3)))
    t = _t(x, device, grad=True)
    (g,) = minigan.grad(minigan.prod(t), [t], create_graph=True)
    assert np.isnan(to_np(g.data)).all()  # (torch too)
    # one zero: no shortcut, the products of the others (inf * 0 = NaN for the 2, as torch)
    t = _t([np.inf, 2.0, 0.0], device, grad=True)
    np.testing.assert_array_equal(_grad(minigan.prod(t), t), [0.0, np.nan, np.inf])
    # along a dim torch has no shortcut: 0 * inf stays NaN
    t = _t(x, device, grad=True)
    np.testing.assert_array_equal(_grad(minigan.prod(t, 1).sum(), t),
                                  [[np.nan, np.nan, -np.inf], [np.nan, np.nan, 0.0]])


def _cumprod_grad_zero_wins(x, gy):
    """gx_i = sum over k >= i of gy_k * prod(x_j, j <= k, j != i), a product that holds a
    zero being 0 whatever else it holds (torch's first-order convention)."""
    g = np.zeros_like(x)
    with np.errstate(all="ignore"):
        for i in range(len(x)):
            for k in range(i, len(x)):
                others = np.delete(x[:k + 1], i)
                g[i] += 0.0 if (others == 0).any() else gy[k] * np.prod(others)
    return g


@pytest.mark.parametrize("x", [
    [1.0, 0.0, 2.0, 0.0, np.inf],
    [np.inf, 3.0, 0.0, 2.0, 0.0, 5.0],
    [0.0, np.inf, 2.0],
    [np.nan, 0.0, 2.0, -1.5],
    [2.0, 0.0, -np.inf, 3.0, 0.5],
], ids=str)
def test_cumprod_gradient_lets_a_zero_win_over_inf_and_nan(device, x):
    x = np.array(x)
    gy = np.linspace(0.7, -1.1, len(x))
    t = _t(x, device, grad=True)
    got = _grad(minigan.cumprod(t, 0), t, minigan.Tensor(_dev(gy, device)))
    np.testing.assert_array_equal(got, _cumprod_grad_zero_wins(x, gy))


def test_cumprod_gradient_beside_an_inf_is_not_nan(device):
    """The doubling scan multiplied past-the-end fill zeros by infinite partial products
    (NaN); both the plain and the create_graph backward give the product of the others."""
    x = np.array([0.5, 1.5, -np.inf])
    for cg in (False, True):
        t = _t(x, device, grad=True)
        (g,) = minigan.grad(minigan.cumprod(t, 0), [t],
                            minigan.Tensor(_dev(np.full(3, 0.7), device)), create_graph=cg)
        # gx_1 = 0.7 * (x0 + x0 x2) = -inf, gx_2 = 0.7 * x0 x1
        np.testing.assert_array_equal(to_np(g.data), [-np.inf, -np.inf, 0.7 * 0.75])
    x = np.array([[2.0, 0.5, 3.0, 1.0, 0.25, np.inf, 4.0]])  # (positive: no inf - inf)
    t = _t(x, device, grad=True)
    (g,) = minigan.grad(minigan.cumprod(t, 1).sum(), [t], create_graph=True)
    with np.errstate(all="ignore"):
        want = _cumprod_grad_zero_wins(x[0], np.ones(7))
    np.testing.assert_array_equal(to_np(g.data)[0], want)


def test_product_gradients_with_zeros_and_inf_match_torch():
    torch = pytest.importorskip("torch")
    cases = [[1.0, 0.0, 2.0, 0.0, np.inf], [np.inf, -np.inf, 0.0, -0.0, -1.4, -2.1],
             [np.inf, 3.0, 0.0, 2.0, 0.0, 5.0], [0.0, np.inf, 2.0], [np.inf, 0.0, 0.0],
             [0.0, 0.0, 3.0], [2.0, 0.0, 3.0, 0.5]]
    for c in cases:
        x = np.array(c)
        for name, fn, tfn in (("prod", minigan.prod, torch.prod),
                              ("cumprod", lambda v: minigan.cumprod(v, 0),
                               lambda v: torch.cumprod(v, 0))):
            tx = torch.tensor(x, requires_grad=True)
            ty = tfn(tx)
            gy = np.full(tuple(ty.shape), 0.7)
            (want,) = torch.autograd.grad(ty, tx, torch.tensor(gy))
            t = _t(x, grad=True)
            got = _grad(fn(t), t, minigan.Tensor(gy))
            # torch divides by x where a slice holds no zero before x: NaN at an inf x there
            # (minigan: the product of the others); elsewhere the values agree
            keep = ~(np.isnan(want.numpy()) & ~np.isfinite(x))
            np.testing.assert_allclose(got[keep], want.numpy()[keep], rtol=1e-15,
                                       equal_nan=True, err_msg=f"{name} {c}")
    # gy * (before * after), in torch's order: the two products overflow before gy scales them
    x = np.array([1e200, 0.0, 1e200])
    for dim in (None, 0):
        tx = torch.tensor(x, requires_grad=True)
        (want,) = torch.autograd.grad(torch.prod(tx) if dim is None else torch.prod(tx, dim),
                                      tx, torch.tensor(1e-200, dtype=torch.float64))
        t = _t(x, grad=True)
        got = _grad(minigan.prod(t, dim), t, minigan.Tensor(np.array(1e-200)))
        np.testing.assert_array_equal(got, want.numpy())


def test_prod_gradient_multiplies_the_two_partial_products_first(device):
    """gy * (before * after), as torch: 1e200 * 1e200 overflows before gy = 1e-200 scales it."""
    x = np.array([1e200, 0.0, 1e200])
    for dim in (None, 0):
        t = _t(x, device, grad=True)
        got = _grad(minigan.prod(t, dim), t, minigan.Tensor(_dev(np.array(1e-200), device)))
        assert got.tolist() == [0.0, np.inf, 0.0]


def test_plain_product_backwards_do_not_wait_for_the_gpu(emulated_gpu):
    """The zero test of prod()'s shortcut and cumprod's zero-wins scan stay on the device."""
    from tests.kernels import emulated_cupy as E

    x = minigan.Tensor(emulated_gpu.asarray(np.array([[np.inf, 0.0, 2.0], [0.0, 3.0, -1.0]])),
                       requires_grad=True)
    E.LOG.clear()
    g1 = minigan.grad(minigan.prod(x), [x])[0]
    g2 = minigan.grad(minigan.cumprod(x, 1).sum(), [x])[0]
    g3 = minigan.grad(minigan.atan2(x, x).sum(), [x])[0]
    assert dict(E.LOG.syncs) == {}
    assert g1.device == g2.device == g3.device == "cuda"
    np.testing.assert_array_equal(g1.numpy(), np.zeros((2, 3)))
    # (torch: NaN for the first, from its division by the inf)
    np.testing.assert_array_equal(g2.numpy(), [[1.0, np.inf, 0.0], [1.0, 0.0, 0.0]])


def test_round_refuses_decimals_for_integer_tensors(device):
    for d in (1, -1, 2):
        with pytest.raises(TypeError, match=f"round: decimals={d} needs a floating-point"):
            minigan.round(_t([1, 25], device, np.int64), decimals=d)
    assert minigan.round(_t([1, 25], device, np.int64)).tolist() == [1, 25]
