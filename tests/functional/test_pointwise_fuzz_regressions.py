"""Regressions for differences from torch found by differential fuzzing of
minigan.functional.pointwise. Expected values are NumPy/math references (torch's behaviour,
hard-coded), so these run without torch."""
import math

import numpy as np
import pytest

import minigan
from minigan.testing import check_backward, check_double_backward


def _t(a, dtype=None, grad=False):
    return minigan.Tensor(np.asarray(a, dtype=dtype), requires_grad=grad)


# ----------------------------------------------------------------------------- atan2 promotion

def test_atan2_integer_operands_go_to_float_without_wrapping():
    # torch: result_type(uint8 tensor, 0-d int64) is uint8, but atan2 computes in float32 and
    # casts each operand from its own dtype: 300 stays 300 (it must not wrap to 44 first)
    a = _t([7, 2], np.uint8)
    for other in (_t(300, np.int64), 300):
        y = minigan.atan2(a, other)
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, np.arctan2([7.0, 2.0], 300.0), rtol=1e-6)
    y = minigan.atan2(a, _t(-1, np.int64))  # not 255
    np.testing.assert_allclose(y.data, np.arctan2([7.0, 2.0], -1.0), rtol=1e-6)
    y = minigan.atan2(_t(-128, np.int16), _t([1, 2], np.int8))  # int8 would wrap -128 too
    assert y.dtype == np.float32 and y.shape == (2,)
    np.testing.assert_allclose(y.data, np.arctan2(-128.0, [1.0, 2.0]), rtol=1e-6)


def test_atan2_float_grad_unchanged():
    check_backward(minigan.atan2, [np.array([0.3, -1.2, 2.0]), np.array([[1.5], [-0.7]])])
    check_double_backward(minigan.atan2, [np.array([0.3, -1.2]), np.array([1.5, 0.4])])


# ----------------------------------------------------------------------------- float16 scans

def test_cumsum_float16_accumulates_in_float32():
    # torch's CPU kernel keeps a float32 running sum: 2000 x 0.1 (float16 0.0999755859375)
    # gives 199.95 -> 200 in float16; summing in float16 drifts to 230
    x = _t(np.full(2000, 0.1), np.float16)
    y = minigan.cumsum(x, 0)
    assert y.dtype == np.float16
    ref = np.cumsum(np.full(2000, 0.1, np.float16).astype(np.float64)).astype(np.float16)
    np.testing.assert_array_equal(y.data, ref)
    # overflow in the middle does not poison the end: 60000 + 60000 - 60000
    y = minigan.cumsum(_t([60000, 60000, -60000], np.float16), 0)
    np.testing.assert_array_equal(y.data, np.array([60000, np.inf, 60000], np.float16))


def test_cumprod_float16_accumulates_in_float32():
    y = minigan.cumprod(_t([300, 300, 0.001], np.float16), 0)
    assert y.dtype == np.float16
    ref = np.cumprod(np.array([300, 300, 0.001], np.float16).astype(np.float32))
    with np.errstate(over="ignore"):
        ref = ref.astype(np.float16)  # [300, inf, 90.06]
    np.testing.assert_array_equal(y.data, ref)
    assert math.isfinite(float(y.data[2]))
    c = np.random.default_rng(1).uniform(0.99, 1.01, 3000).astype(np.float16)
    y = minigan.cumprod(_t(c), 0)
    ref = np.cumprod(c.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(y.data.astype(np.float64), ref.astype(np.float64), rtol=2e-3)


def test_logcumsumexp_float16_accumulates_in_float32():
    x = np.random.default_rng(2).standard_normal(3000).astype(np.float16)
    y = minigan.logcumsumexp(_t(x), 0)
    assert y.dtype == np.float16
    ref = np.logaddexp.accumulate(x.astype(np.float64)).astype(np.float16)
    np.testing.assert_allclose(y.data.astype(np.float64), ref.astype(np.float64), rtol=1e-3)


def test_cumsum_float16_gradient_and_float64_unchanged():
    x = _t(np.ones(5), np.float16, grad=True)
    (gx,) = minigan.grad(minigan.cumsum(x, 0).sum(), [x])
    assert gx.dtype == np.float16
    np.testing.assert_array_equal(gx.data, np.array([5, 4, 3, 2, 1], np.float16))
    check_double_backward(lambda v: minigan.cumprod(v, -1), [np.array([[0.5, -1.5, 2.0]])])


# ----------------------------------------------------------------------------- dtype= argument

@pytest.mark.parametrize("fn", [minigan.cumsum, minigan.cumprod])
def test_scan_with_integer_dtype_keeps_that_dtype(fn):
    # torch: dtype= is the result's dtype (no widening to int64), wrapping in small types
    x = _t([100, 100, 3], np.int8)
    y = fn(x, 0, dtype=np.int8)
    assert y.dtype == np.int8
    ref = {minigan.cumsum: [100, -56, -53], minigan.cumprod: [100, 16, 48]}[fn]
    np.testing.assert_array_equal(y.data, np.array(ref, np.int8))
    y = fn(_t([True, False, True]), 0, dtype=np.int16)
    assert y.dtype == np.int16
    y = fn(_t([200, 2], np.uint8), 0, dtype=np.uint8)
    assert y.dtype == np.uint8
    assert fn(x, 0).dtype == np.int64  # without dtype: int64, as before
    np.testing.assert_array_equal(fn(x, 0).data,
                                  {minigan.cumsum: [100, 200, 203],
                                   minigan.cumprod: [100, 10000, 30000]}[fn])


@pytest.mark.parametrize("fn", [minigan.cumsum, minigan.cumprod])
def test_scan_with_bool_dtype_is_refused_like_torch(fn):
    with pytest.raises(TypeError, match="bool"):
        fn(_t([1, 2]), 0, dtype=np.bool_)
    # a 0-d or empty tensor runs no kernel in torch: the cast comes back
    y = fn(_t(3), 0, dtype=np.bool_)
    assert y.dtype == np.bool_ and y.shape == () and bool(y.data)
    assert fn(minigan.zeros(2, 0), -1, dtype=np.bool_).shape == (2, 0)


def test_prod_with_integer_or_bool_dtype_keeps_that_dtype():
    x = _t([100, 100, 3], np.int8)
    for dim in (None, 0):
        y = minigan.prod(x, dim, dtype=np.int8)
        assert y.dtype == np.int8 and int(y.data) == 48  # 30000 wraps, as torch's
        y = minigan.prod(x, dim, dtype=np.int16)
        assert y.dtype == np.int16 and int(y.data) == 30000
        y = minigan.prod(_t([200, 2], np.uint8), dim, dtype=np.uint8)
        assert y.dtype == np.uint8 and int(y.data) == 144
        y = minigan.prod(x, dim, dtype=np.bool_)
        assert y.dtype == np.bool_ and bool(y.data) is True
        y = minigan.prod(_t([True, False]), dim, dtype=np.bool_)
        assert y.dtype == np.bool_ and bool(y.data) is False
        assert minigan.prod(x, dim).dtype == np.int64  # without dtype: int64, as before
        assert int(minigan.prod(x, dim).data) == 30000
    assert minigan.prod(x, 0, keepdim=True, dtype=np.int8).shape == (1,)
