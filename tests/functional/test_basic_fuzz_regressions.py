"""Regressions found by differential fuzzing of minigan/functional/basic.py against torch.
Expected values are torch 2.13's, written out (torch is not needed); each op runs on "cpu" and
"cuda" (emulated with MINIGAN_EMULATE_GPU=1)."""
import warnings

import numpy as np
import pytest

import minigan
from minigan import backend
from minigan.testing import check_backward, check_double_backward

NAN = float("nan")


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a), device), requires_grad=grad)


def _np(t):
    return backend.to_numpy(t.data)


# ----------------------------------------------------------------------------- sum's dtype

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.uint16, np.uint32,
                                   np.int64, np.bool_])
def test_sum_of_integers_and_bools_is_int64(device, dtype):
    """torch sums every integer and bool dtype as int64; NumPy gives uint64 for unsigned ones
    (and minigan passed that on)."""
    a = np.array([[1, 0, 1], [1, 1, 0]]).astype(dtype)
    x = _t(a, device)
    for y, want in ((minigan.sum(x), 4), (x.sum(dim=1), [2, 2]),
                    (x.sum(0, keepdim=True), [[2, 1, 1]])):
        assert y.dtype == np.int64
        assert np.array_equal(_np(y), want)
    big = _t(np.array([200, 100], dtype=np.uint8), device).sum()
    assert big.dtype == np.int64 and int(_np(big)) == 300


def test_sum_honours_dtype(device):
    """torch sums in the dtype asked for (casting first): NumPy would widen an int32 sum to
    int64, and a uint8 one wraps in uint8."""
    u8 = _t(np.array([200, 100], dtype=np.uint8), device)
    y = minigan.sum(u8, dtype=np.int32)
    assert y.dtype == np.int32 and int(_np(y)) == 300
    y = u8.sum(dtype=np.uint8)
    assert y.dtype == np.uint8 and int(_np(y)) == 44  # 300 mod 256, as torch
    y = _t(np.array([1.5, 2.5], dtype=np.float32), device).sum(dtype=np.int32)
    assert y.dtype == np.int32 and int(_np(y)) == 3  # each value truncated first
    y = _t(np.array([True, True]), device).sum(dtype=np.bool_)
    assert y.dtype == np.bool_ and bool(_np(y))
    y = _t(np.array([[True, False], [True, True]]), device).sum(dim=0, keepdim=True,
                                                               dtype=np.int8)
    assert y.dtype == np.int8 and np.array_equal(_np(y), [[2, 1]])
    y = _t(np.array([1.0, 2.0], dtype=np.float32), device).sum(dtype=np.float64)
    assert y.dtype == np.float64 and float(_np(y)) == 3.0


def test_sum_with_dtype_is_differentiable(device):
    a = backend.to_device(np.random.default_rng(0).standard_normal((3, 4)), device)
    check_backward(lambda x: minigan.sum(x, 1, dtype=np.float64), [a])
    check_double_backward(lambda x: minigan.sum(x * x, dim=0, dtype=np.float64), [a])
    x = _t(np.ones((2, 3), dtype=np.float32), device, grad=True)
    y = minigan.sum(x, dtype=np.float64)
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float32 and np.array_equal(_np(x.grad), np.ones((2, 3)))


def test_mean_refuses_an_integer_dtype(device):
    """torch.mean refuses an integer or bool dtype=; minigan cast to it and then returned a
    float anyway."""
    x = _t(np.array([1, 2], dtype=np.uint8), device)
    for dt in (np.int32, np.int64, np.bool_):
        with pytest.raises(TypeError, match="floating"):
            minigan.mean(x, dtype=dt)
    y = x.mean(dtype=np.float64)
    assert y.dtype == np.float64 and float(_np(y)) == 1.5


# ----------------------------------------------------------------------------- clamp and NaN

def _clamp_grads(device, x, lo, hi, create_graph=False):
    xs = [_t(np.asarray(v, dtype=np.float64), device, grad=True) for v in (x, lo, hi)
          if v is not None]
    it = iter(xs[1:])
    tl = next(it) if lo is not None else None
    th = next(it) if hi is not None else None
    y = minigan.clamp(xs[0], tl, th)
    gy = _t(np.ones(y.shape), device, grad=create_graph)
    gs = minigan.grad(y, xs, gy, create_graph=create_graph, allow_unused=True)
    return y, xs, gy, gs


def test_clamp_with_tensor_bounds_sends_no_gradient_through_a_nan(device):
    """torch: where the result is NaN (x or a bound NaN) no operand gets a gradient; minigan
    sent it to x or to the NaN bound (x=[nan, .5], lo=[0, nan]: gx=[1, 0], glo=[0, 1])."""
    y, _, _, (gx, glo) = _clamp_grads(device, [NAN, 0.5], [0.0, NAN], None)
    assert np.isnan(_np(y)).all()
    assert np.array_equal(_np(gx), [0, 0]) and np.array_equal(_np(glo), [0, 0])
    y, _, _, (gx, ghi) = _clamp_grads(device, [NAN, 0.5, 0.2], None, [0.0, NAN, NAN])
    assert np.isnan(_np(y)).all()
    assert np.array_equal(_np(gx), [0, 0, 0]) and np.array_equal(_np(ghi), [0, 0, 0])
    # both bounds; torch's values for each element, NaNs, ties and lo > hi among them
    x = [NAN, 0.5, 0.2, 3.0, -1.0, 0.3, 0.5, 0.5, 0.7, -2.0]
    lo = [0.0, NAN, 0.0, 1.0, 1.0, 0.3, 0.1, 0.1, 0.0, 0.0]
    hi = [1.0, 1.0, NAN, 2.0, 1.0, 0.3, 0.5, 0.1, 1.0, -1.0]
    y, _, _, (gx, glo, ghi) = _clamp_grads(device, x, lo, hi)
    np.testing.assert_array_equal(_np(y), [NAN, NAN, NAN, 2.0, 1.0, 0.3, 0.5, 0.1, 0.7, -1.0])
    assert np.array_equal(_np(gx), [0, 0, 0, 0, 0, 1, 1, 0, 1, 0])
    assert np.array_equal(_np(glo), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    assert np.array_equal(_np(ghi), [0, 0, 0, 1, 0, 0, 0, 1, 0, 1])


def test_clamp_nan_gradient_is_zero_at_second_order(device):
    """The gradients are gy times constant masks: their derivative in gy is 0 at a NaN too."""
    _, xs, gy, gs = _clamp_grads(device, [NAN, 0.5, -3.0], [0.0, NAN, -1.0], [1.0, 1.0, NAN],
                                 create_graph=True)
    w = _t(np.array([2.0, 3.0, 5.0]), device)
    total = sum((g * w).sum() for g in gs)
    (ggy,) = minigan.grad(total, [gy])
    assert np.array_equal(_np(ggy), [0, 0, 0])


def test_clamp_with_tensor_bounds_gradients_stay_exact(device):
    rng = np.random.default_rng(1)
    to = lambda a: backend.to_device(a, device)  # noqa: E731
    x = to(rng.uniform(-2, 2, (3, 4)))
    lo = to(rng.uniform(-1.5, -0.5, (4,)))
    hi = to(rng.uniform(0.5, 1.5, (3, 1)))
    check_backward(lambda x, lo, hi: minigan.clamp(x, lo, hi), [x, lo, hi])
    check_double_backward(lambda x, lo, hi: minigan.clamp(x, lo, hi) ** 2, [x, lo, hi])
    check_backward(lambda x, lo: minigan.clamp(x, min=lo), [x, lo])
    check_double_backward(lambda x, hi: minigan.clamp(x, max=hi) ** 2, [x, hi])


# ----------------------------------------------------------------------------- float16 var/std

def test_float16_var_and_std_are_computed_in_float32(device):
    """torch computes float16 var/std in float32 and casts back: std([1, -1, -700],
    correction=2) is 571.5 (its variance, 326667, is beyond float16, but not the std);
    minigan summed the squares in float16 and gave inf."""
    a = np.array([1.0, -1.0, -700.0], dtype=np.float16)
    x = _t(a, device, grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning: torch's inf is quiet too
        y = minigan.std(x, correction=2)
        v = minigan.var(_t(a, device), correction=2)
    assert y.dtype == np.float16 and float(_np(y)) == 571.5
    assert v.dtype == np.float16 and np.isposinf(_np(v))
    y.backward()
    assert x.grad.dtype == np.float16
    # the gradient is float32's, cast: torch gives [0.4102, 0.4067, -0.8164]
    x32 = _t(a.astype(np.float32), device, grad=True)
    minigan.std(x32, correction=2).backward()
    np.testing.assert_array_equal(_np(x.grad), _np(x32.grad).astype(np.float16))
    np.testing.assert_allclose(_np(x.grad).astype(np.float64), [0.4102, 0.4067, -0.8164],
                               atol=2e-3)


def test_float16_var_std_match_float32_along_a_dim(device):
    rng = np.random.default_rng(2)
    a = (rng.standard_normal((3, 5)) * 100).astype(np.float16)
    for fn in (minigan.var, minigan.std):
        x16 = _t(a, device, grad=True)
        x32 = _t(a.astype(np.float32), device, grad=True)
        y16, y32 = fn(x16, dim=1, keepdim=True), fn(x32, dim=1, keepdim=True)
        assert y16.dtype == np.float16 and y16.shape == (3, 1)
        np.testing.assert_array_equal(_np(y16), _np(y32).astype(np.float16))
        w = rng.standard_normal((3, 1))
        (y16 * _t(w.astype(np.float16), device)).sum().backward()
        (y32 * _t(w.astype(np.float32), device)).sum().backward()
        np.testing.assert_allclose(_np(x16.grad).astype(np.float32), _np(x32.grad),
                                   rtol=4e-3, atol=1e-4)
        # second order runs through the casts as well
        x16 = _t(a, device, grad=True)
        (g,) = minigan.grad(fn(x16, dim=1).sum(), [x16], create_graph=True)
        (gg,) = minigan.grad((g * g).sum(), [x16])
        assert gg.dtype == np.float16 and np.isfinite(_np(gg)).all()


def test_float64_var_std_gradients_are_exact(device):
    a = backend.to_device(np.random.default_rng(3).standard_normal((3, 4)), device)
    check_double_backward(lambda x: minigan.std(x, dim=1, correction=2), [a])
    check_double_backward(lambda x: minigan.var(x, dim=0), [a])


# ----------------------------------------------------------------------------- add/sub alpha

def test_add_with_alpha_keeps_bool_results_bool(device):
    """torch: bool + alpha * bool is a bool (a or (b and alpha != 0)), a bool alpha is taken
    for a bool result and refused otherwise; minigan gave int64, and refused alpha=True."""
    a = _t(np.array([True, False, True]), device)
    b = _t(np.array([True, True, False]), device)
    for alpha, want in ((2, [True, True, True]), (-1, [True, True, True]),
                        (0, [True, False, True]), (True, [True, True, True]),
                        (False, [True, False, True]), (np.int64(3), [True, True, True])):
        y = minigan.add(a, b, alpha=alpha)
        assert y.dtype == np.bool_ and np.array_equal(_np(y), want), alpha
    for alpha, want in ((2, [True, True, True]), (0, [True, False, True]),
                        (True, [True, True, True])):
        y = a.add(True, alpha=alpha)
        assert y.dtype == np.bool_ and np.array_equal(_np(y), want), alpha
    y = _t(np.array([True]), device).add(b, alpha=0)  # alpha 0 keeps the broadcast shape
    assert y.dtype == np.bool_ and y.shape == (3,) and _np(y).all()
    c = _t(np.array([True, False, False]), device)
    c.add_(b, alpha=2)  # in place: still a bool tensor
    assert c.dtype == np.bool_ and np.array_equal(_np(c), [True, True, False])
    # the other results are unchanged: an int result with an int alpha, a bool alpha refused
    y = minigan.add(a, 1, alpha=2)
    assert y.dtype == np.int64 and np.array_equal(_np(y), [3, 2, 3])
    y = minigan.add(_t(np.array([1, 2]), device), _t(np.array([True, False]), device), alpha=2)
    assert y.dtype == np.int64 and np.array_equal(_np(y), [3, 2])
    with pytest.raises(TypeError, match="bool alpha"):
        minigan.add(_t(np.array([1, 2]), device), _t(np.array([3, 4]), device), alpha=True)
    with pytest.raises(TypeError, match="bool alpha"):
        minigan.add(_t(np.array([1.0, 2.0]), device), b[:2], alpha=True)
    with pytest.raises(TypeError, match="float alpha"):
        minigan.add(a, b, alpha=1.0)
    with pytest.raises(TypeError, match="bool"):
        minigan.sub(a, b, alpha=2)  # torch refuses bool subtraction with any alpha


def test_add_and_sub_with_alpha_gradients(device):
    rng = np.random.default_rng(4)
    a, b = (backend.to_device(rng.standard_normal((2, 3)), device) for _ in range(2))
    check_double_backward(lambda x, y: minigan.add(x, y * y, alpha=2.5), [a, b])
    check_double_backward(lambda x, y: minigan.sub(x * y, y, alpha=-3), [a, b])


# ----------------------------------------------------------------------------- flatten

def test_flatten_of_a_tensor_with_no_elements(device):
    """torch flattens zero-element tensors by the product of the sizes; minigan passed -1 to
    reshape, which is ambiguous with a 0 among the other sizes."""
    for shape, start, end, want in (((0, 2), 1, -1, (0, 2)), ((3, 1, 0), 1, 1, (3, 1, 0)),
                                    ((3, 0, 2), 1, -1, (3, 0)), ((0, 2, 3), 1, -1, (0, 6)),
                                    ((0, 2, 3), 0, -1, (0,)), ((2, 0, 3, 4), 1, 2, (2, 0, 4))):
        x = _t(np.zeros(shape), device, grad=True)
        y = minigan.flatten(x, start, end)
        assert y.shape == want, (shape, start, end)
        y.sum().backward()
        assert x.grad.shape == shape
    assert minigan.zeros(0, 2).flatten(1).shape == (0, 2)
    assert minigan.zeros(3, 1, 0).flatten(1, 1).shape == (3, 1, 0)


def test_flatten_gradients(device):
    a = backend.to_device(np.random.default_rng(5).standard_normal((2, 3, 4)), device)
    check_double_backward(lambda x: minigan.flatten(x, 1) ** 2, [a])


# ----------------------------------------------------------------------------- indexing

X = np.arange(24.0).reshape(2, 3, 4)
Y = np.arange(12.0).reshape(3, 4)
Z = np.arange(12.0).reshape(4, 3, 1)
S, E = slice(None), Ellipsis


def _index_cases(device):
    """(array, index, torch's result), the index built on ``device``."""
    i0 = _t(np.int64(0), device)
    return [
        # (B) a 0-d integer tensor is an int: beside a slice and a list it does not move the
        # selection to the front
        (X, (i0, S, [1, 0]), X[0][:, [1, 0]]),
        (X, (_t(np.int32(1), device), S, _t(np.array([0, 3]), device)), X[1][:, [0, 3]]),
        (X, (S, _t(np.int64(2), device), [3, 0]), X[:, 2][:, [3, 0]]),
        # (C) a bool is a new dimension indexed by [0] (True) or [] (False)
        (X, (True, 0, [1, 0]), X[0][[1, 0]]),
        (X, (0, S, True, [1, 0]), X[0][:, [1, 0]]),
        (X, (True, [0, 1], 0), X[[0, 1]][:, 0]),
        (X, ([0, 1], True, 0), X[[0, 1], 0]),
        (X, (0, [0, 1], True), X[0][[0, 1]]),
        (X, (_t(np.bool_(True), device), 0, [1, 0]), X[0][[1, 0]]),
        (X, (True,), X[None]),
        (X, (False, 0), np.zeros((0, 3, 4))),
        # (D) a short list holding a list, slice, None, Ellipsis or tensor is a tuple
        (Y, [[0, 1], [1, 2]], np.array([1.0, 6.0])),
        (Y, [[0, 1]], Y[[0, 1]]),
        (Y, [0, S], Y[0]),
        (Y, [None, 0], Y[None, 0]),
        (Y, [E, 0], Y[:, 0]),
        (Y, [[0, 1], 1], np.array([1.0, 5.0])),
        (Y, [_t(np.int64(1), device), _t(np.int64(2), device)], Y[1, 2]),
        (Y, [_t(np.array([0, 1]), device), _t(np.array([1, 2]), device)], np.array([1.0, 6.0])),
        (Y, [0, 1], Y[[0, 1]]),  # ints only: an index array, as before
        (Y, [True, False, True], Y[[0, 2]]),  # bools only: a mask, as before
        # (E) an Ellipsis that covers no dimension does not separate two index arrays
        (Z, (S, [0, 2], E, [0, 0]), Z[:, [0, 2], 0]),
        (X, (S, [0, 2], E, [1, 3]), np.stack([X[k, [0, 2], [1, 3]] for k in range(2)])),
        (Z, (S, [0, 2], E, True, [0, 0]), Z[:, [0, 2], 0]),
        (Z, (S, [0, 2], E, None, [0, 0]), Z[:, [0, 2], 0].T[:, :, None]),  # None separates
    ]


def test_getitem_matches_torch(device):
    for k, (a, index, want) in enumerate(_index_cases(device)):
        y = _t(a, device)[index]
        assert y.shape == want.shape, (k, index, y.shape, want.shape)
        assert np.array_equal(_np(y), want), (k, index)


def test_getitem_errors_as_torch(device):
    x = _t(X, device)
    with pytest.raises(IndexError, match=r"broadcast"):
        x[False, 0, [1, 0]]  # [] and [1, 0] do not broadcast, in torch neither (CuPy: ValueError)
    with pytest.raises(IndexError):
        _t(Y, device)[[[0, 1], [1, 2], [0, 0]]]  # a tuple of three, too many


def test_setitem_errors_as_torch(device):
    x = _t(X, device)
    with pytest.raises(IndexError, match=r"broadcast"):
        x[False, 0, [1, 0]] = 1.0  # torch's reading of the index (steps through positions)
    with pytest.raises(IndexError, match=r"broadcast"):
        x[[0, 1], [0, 1, 2]] = 1.0  # NumPy's reading: two index arrays of lengths 2 and 3
    with pytest.raises(ValueError, match=r"broadcast") as info:
        x[[0, 1]] = backend.to_device(np.ones(5), device)  # the value's shape, not the index
    assert not isinstance(info.value, IndexError)
    np.testing.assert_array_equal(_np(x), X)  # nothing written


def test_getitem_of_torch_indexes_is_differentiable(device):
    a = backend.to_device(np.random.default_rng(6).standard_normal((2, 3, 4)), device)
    for index in ((_t(np.int64(0), device), S, [1, 0]), (True, 0, [1, 0]),
                  (0, S, True, [1, 0]), [[0, 1], [1, 2]], (S, [0, 2], E, [1, 3]),
                  (S, [1, 1], E, [3, 3])):  # (a repeated element adds its gradients up)
        check_backward(lambda x, index=index: x[index], [a])
        check_double_backward(lambda x, index=index: x[index] ** 2, [a])


def test_getitem_matches_torch_itself():
    torch = pytest.importorskip("torch")
    cases = [(a, index, want) for a, index, want in _index_cases("cpu")]
    for a, index, _ in cases:
        tindex = (tuple(torch.tensor(backend.to_numpy(i.data)) if isinstance(i, minigan.Tensor)
                        else i for i in index) if isinstance(index, tuple)
                  else [torch.tensor(_np(i)) if isinstance(i, minigan.Tensor) else i
                        for i in index])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation of a list read as a tuple
            want = torch.tensor(a)[tindex].numpy()
        y = minigan.tensor(a)[index]
        assert y.shape == want.shape and np.array_equal(y.numpy(), want), index


# ----------------------------------------------------------------------------- where

def test_where_of_two_numbers(device):
    """torch.where(cond, 1.0, 0) is float32 [1., 0.] (int64 for two ints, bool for two
    bools), on the condition's device; minigan refused two numbers."""
    c = _t(np.array([True, False]), device)
    for a, b, dt, want in ((1.0, 0, np.float32, [1.0, 0.0]), (1, 0, np.int64, [1, 0]),
                           (True, False, np.bool_, [True, False]),
                           (1.0, True, np.float32, [1.0, 1.0]), (2, True, np.int64, [2, 1]),
                           (np.float64(1.0), 0, np.float32, [1.0, 0.0]),
                           (np.int32(1), 0, np.int64, [1, 0]), (2, 2.5, np.float32, [2.0, 2.5])):
        y = minigan.where(c, a, b)
        assert y.dtype == dt and y.shape == (2,) and np.array_equal(_np(y), want), (a, b)
        assert backend.get_array_module(y.data) is backend.get_array_module(c.data)
    y = minigan.where(c.data, 1.0, 0.0)  # an array condition
    assert y.dtype == np.float32 and np.array_equal(_np(y), [1.0, 0.0])
    y = minigan.where(_t(np.array([[True], [False]]), device), 3, 4)
    assert y.shape == (2, 1) and np.array_equal(_np(y), [[3], [4]])


def test_where_with_a_tensor_and_a_number_is_differentiable(device):
    rng = np.random.default_rng(7)
    a = backend.to_device(rng.standard_normal((2, 3)), device)
    c = backend.to_device(rng.standard_normal((2, 3)) > 0, device)
    check_double_backward(lambda x: minigan.where(c, x * x, 0.5), [a])
    check_double_backward(lambda x: minigan.where(c, 1, x * x), [a])
