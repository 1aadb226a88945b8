"""Type promotion of mixed operands follows torch (minigan.functional.promotion), and the
arithmetic forms that depend on it: true and rounded division, remainder, fmod, alpha."""
import numpy as np
import pytest

import minigan
from minigan.testing import check_backward, check_double_backward


# (name, build(m) -> result, expected dtype, expected values): torch 2.13's answers. `m` is
# minigan or torch, with m.T(values, dtype) making a tensor on the device under test.
CASES = [
    ("int64 + 1.5", lambda m: m.T([1, 2], np.int64) + 1.5, "float32", [2.5, 3.5]),
    ("1.5 - int64", lambda m: 1.5 - m.T([1, 2], np.int64), "float32", [0.5, -0.5]),
    ("int64 * 2", lambda m: m.T([1, 2], np.int64) * 2, "int64", [2, 4]),
    ("int64 / 2", lambda m: m.T([1, 2], np.int64) / 2, "float32", [0.5, 1.0]),
    ("int64 / int64", lambda m: m.T([1, 2], np.int64) / m.T([2, 2], np.int64),
     "float32", [0.5, 1.0]),
    ("bool + 1", lambda m: m.T([True], bool) + 1, "int64", [2]),
    ("bool + 1.5", lambda m: m.T([True], bool) + 1.5, "float32", [2.5]),
    ("bool + True", lambda m: m.T([True], bool) + True, "bool", [True]),
    ("uint8 + 1 wraps", lambda m: m.T([255], np.uint8) + 1, "uint8", [0]),
    ("uint8 + 0-d 300", lambda m: m.T([255], np.uint8) + m.T(300, np.int64), "uint8",
     [43]),
    ("int32 + np.int64(1)", lambda m: m.T([1], np.int32) + np.int64(1), "int32", [2]),
    ("float32 + np.float64", lambda m: m.T([1], np.float32) + np.float64(0.5), "float32",
     [1.5]),
    ("float32 + float64", lambda m: m.T([1], np.float32) + m.T([1], np.float64),
     "float64", [2.0]),
    ("float32 + 0-d float64", lambda m: m.T([1], np.float32) + m.T(1, np.float64),
     "float32", [2.0]),
    ("int64 + 0-d float32", lambda m: m.T([1], np.int64) + m.T(1, np.float32),
     "float32", [2.0]),
    ("int64 + 0-d float64", lambda m: m.T([1], np.int64) + m.T(1, np.float64),
     "float64", [2.0]),
    ("int32 + 0-d int64", lambda m: m.T([1], np.int32) + m.T(1, np.int64), "int32", [2]),
    ("int16 + float16", lambda m: m.T([1], np.int16) + m.T([1], np.float16), "float16",
     [2.0]),
    ("int64 + float32", lambda m: m.T([1], np.int64) + m.T([1], np.float32), "float32",
     [2.0]),
    ("int64 ** 2", lambda m: m.T([3], np.int64) ** 2, "int64", [9]),
    ("int64 ** 0.5", lambda m: m.T([4], np.int64) ** 0.5, "float32", [2.0]),
    ("2 ** int64", lambda m: 2 ** m.T([3], np.int64), "int64", [8]),
    ("2.0 ** int64", lambda m: 2.0 ** m.T([3], np.int64), "float32", [8.0]),
    ("int64 ** int64", lambda m: m.T([3], np.int64) ** m.T([2], np.int64), "int64", [9]),
    ("sqrt(int64)", lambda m: m.sqrt(m.T([4], np.int64)), "float32", [2.0]),
    ("exp(int64)", lambda m: m.exp(m.T([0], np.int64)), "float32", [1.0]),
    ("log(int64)", lambda m: m.log(m.T([1], np.int64)), "float32", [0.0]),
    ("sigmoid(int64)", lambda m: m.sigmoid(m.T([0], np.int64)), "float32", [0.5]),
    ("tanh(int64)", lambda m: m.tanh(m.T([0], np.int64)), "float32", [0.0]),
    ("where(bool, int64, float32)",
     lambda m: m.where(m.T([True, False], bool), m.T([1, 1], np.int64),
                              m.T([1.5, 1.5], np.float32)), "float32", [1.0, 1.5]),
    ("where(bool, int64, 1.5)",
     lambda m: m.where(m.T([True, False], bool), m.T([1, 1], np.int64), 1.5),
     "float32", [1.0, 1.5]),
    ("cat(int64, float32)",
     lambda m: m.cat([m.T([1], np.int64), m.T([1.5], np.float32)]), "float32",
     [1.0, 1.5]),
    ("stack(int64, float64)",
     lambda m: m.stack([m.T([1], np.int64), m.T([1.5], np.float64)]), "float64",
     [[1.0], [1.5]]),
    ("clamp(int64, 0.5)", lambda m: m.clamp(m.T([0, 1], np.int64), 0.5), "float32",
     [0.5, 1.0]),
    ("clamp(int64, 0)", lambda m: m.clamp(m.T([-1, 1], np.int64), 0), "int64",
     [0, 1]),
    ("div floor int", lambda m: m.div(m.T([-7, 7], np.int64), m.T([2, -2], np.int64),
                                             rounding_mode="floor"), "int64", [-4, -4]),
    ("div trunc int", lambda m: m.div(m.T([-7, 7, 6], np.int64),
                                             m.T([2, -2, 3], np.int64),
                                             rounding_mode="trunc"), "int64", [-3, -3, 2]),
    ("div trunc float", lambda m: m.div(m.T([-7.0, 7.5], np.float32), 2,
                                               rounding_mode="trunc"), "float32", [-3.0, 3.0]),
    ("div floor float", lambda m: m.div(m.T([-7.0, 7.5], np.float32), 2,
                                               rounding_mode="floor"), "float32", [-4.0, 3.0]),
    ("int // int", lambda m: m.T([-7, 7], np.int64) // 2, "int64", [-4, 3]),
    ("int % int", lambda m: m.T([-7, 7], np.int64) % 3, "int64", [2, 1]),
    ("7 % int", lambda m: 7 % m.T([3, -3], np.int64), "int64", [1, -2]),
    ("fmod int", lambda m: m.fmod(m.T([-7, 7], np.int64), 3), "int64", [-1, 1]),
    ("remainder float", lambda m: m.remainder(m.T([-7.5, 7.5], np.float32), 2),
     "float32", [0.5, 1.5]),
    ("add alpha", lambda m: m.add(m.T([1], np.float32), m.T([2], np.float32),
                                         alpha=3), "float32", [7.0]),
    ("sub alpha int", lambda m: m.T([1], np.int64).sub(m.T([2], np.int64), alpha=3),
     "int64", [-5]),
]


class _Namespace:
    """minigan or torch, plus T(values, dtype): a tensor of those values on the device."""

    def __init__(self, module, make):
        self.module, self.T = module, make

    def __getattr__(self, name):
        return getattr(self.module, name)


@pytest.mark.parametrize("name,build,dtype,values", CASES, ids=[c[0] for c in CASES])
def test_result_dtypes_and_values_follow_torch(name, build, dtype, values, xp):
    m = _Namespace(minigan, lambda v, dt: minigan.Tensor(xp.asarray(np.asarray(v, dtype=dt))))
    out = build(m)
    assert out.dtype == np.dtype(dtype), name
    assert out.device == ("cpu" if xp is np else "cuda")
    np.testing.assert_array_equal(out.numpy(), np.asarray(values, dtype=dtype))


@pytest.mark.parametrize("name,build,dtype,values", CASES, ids=[c[0] for c in CASES])
def test_table_agrees_with_torch(name, build, dtype, values):
    torch = pytest.importorskip("torch")
    out = build(_Namespace(torch, lambda v, dt: torch.from_numpy(np.array(v, dtype=dt))))
    assert str(out.dtype) == "torch." + dtype, name
    assert out.tolist() == values


def test_promote_types_and_result_type():
    assert minigan.promote_types("int64", "float32") == np.float32  # NumPy: float64
    assert minigan.promote_types("uint8", "int8") == np.int16
    assert minigan.promote_types(bool, "int32") == np.int32
    assert minigan.promote_types("float16", "float64") == np.float64
    x = minigan.tensor([1, 2])
    assert minigan.result_type(x, 1.0) == np.float32
    assert minigan.result_type(x, 1) == np.int64
    assert minigan.result_type(minigan.tensor([1.0], dtype="float16"), 1.0) == np.float16
    assert minigan.result_type(True, False) == np.bool_
    with pytest.raises(TypeError, match="complex"):
        minigan.promote_types("complex64", "float32")
    with pytest.raises(TypeError, match="str"):
        minigan.result_type(x, "a")
    with pytest.raises(ValueError, match="at least one"):
        minigan.result_type()


def test_mixed_precision_gradients_come_back_in_each_inputs_dtype(xp):
    a = minigan.Tensor(xp.asarray([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = minigan.Tensor(xp.asarray([3.0, 4.0], dtype=np.float64), requires_grad=True)
    y = (a * b).sum()
    assert y.dtype == np.float64
    ga, gb = minigan.grad(y, [a, b])
    assert ga.dtype == np.float32 and gb.dtype == np.float64
    np.testing.assert_allclose(ga.numpy(), [3.0, 4.0])
    np.testing.assert_allclose(gb.numpy(), [1.0, 2.0])


def test_integer_division_by_zero_is_an_error_on_the_cpu():
    x = minigan.tensor([1, 2])
    for fn in (lambda: minigan.div(x, 0, rounding_mode="floor"), lambda: x // 0,
               lambda: x % minigan.tensor([1, 0]), lambda: minigan.fmod(x, 0)):
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            fn()
    assert (x / 0).numpy().tolist() == [np.inf, np.inf]  # true division is floating


def test_bad_arguments_are_named():
    x = minigan.tensor([1, 2])
    with pytest.raises(ValueError, match="rounding_mode must be None, 'trunc' or 'floor', got "
                                         "'round'"):
        minigan.div(x, 2, rounding_mode="round")
    with pytest.raises(TypeError, match="float alpha .0.5. needs a floating operand"):
        minigan.add(x, x, alpha=0.5)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        minigan.add(x, x, alpha="2")
    with pytest.raises(TypeError, match="subtraction with a bool operand"):
        minigan.tensor([True]) - minigan.tensor([True])
    with pytest.raises(ValueError, match="negative integer powers"):
        x ** -1
    assert (x ** minigan.tensor([1, -1])).numpy().tolist() == [1, 0]  # a tensor: torch's 0
    assert (x.double() ** -1).numpy().tolist() == [1.0, 0.5]


def test_rounded_division_has_a_zero_gradient(xp):
    a = minigan.Tensor(xp.asarray([-7.5, 7.5, 3.0]), requires_grad=True)
    b = minigan.Tensor(xp.asarray([2.0, -2.0, 3.0]), requires_grad=True)
    for mode in ("floor", "trunc"):
        ga, gb = minigan.grad(minigan.div(a, b, rounding_mode=mode).sum(), [a, b])
        assert ga.numpy().tolist() == [0.0, 0.0, 0.0] and gb.numpy().tolist() == [0.0] * 3


@pytest.mark.parametrize("op", ["remainder", "fmod"])
def test_remainder_and_fmod_gradients_first_and_second_order(op, xp):
    rng = np.random.default_rng(0)
    # values kept away from the jumps (a/b near an integer), where the derivative is undefined
    a = xp.asarray(rng.uniform(-5, 5, (3, 4)))
    b = xp.asarray(rng.choice([-1.7, -0.9, 1.3, 2.1], size=(4,)))
    q = np.asarray(a.get() if hasattr(a, "get") else a) / np.asarray(
        b.get() if hasattr(b, "get") else b)
    assert np.abs(q - np.round(q)).min() > 1e-3
    f = getattr(minigan, op)
    check_backward(f, [a, b])
    check_double_backward(f, [a, b])
    ref = np.remainder if op == "remainder" else np.fmod
    out = f(minigan.Tensor(a), minigan.Tensor(b)).numpy()
    np.testing.assert_allclose(out, ref(np.asarray(minigan.Tensor(a).numpy()),
                                        np.asarray(minigan.Tensor(b).numpy())))


def test_alpha_scales_the_second_operand_with_gradients(xp):
    a = xp.asarray(np.arange(3.0))
    b = xp.asarray(np.arange(3.0) + 1)
    check_backward(lambda u, v: minigan.add(u, v, alpha=-2.5), [a, b])
    check_backward(lambda u, v: minigan.Tensor.sub(u, v, alpha=0.5), [a, b])
    out = minigan.Tensor(a).sub(minigan.Tensor(b), alpha=2).numpy()
    np.testing.assert_array_equal(out, np.arange(3.0) - 2 * (np.arange(3.0) + 1))


def test_integer_divided_by_a_number_outside_its_dtype_does_not_wrap(xp):
    x = minigan.Tensor(xp.asarray(np.array([128, 255], dtype=np.uint8)))
    np.testing.assert_allclose((x / 256).numpy(), [0.5, 255 / 256], rtol=1e-6)
    np.testing.assert_allclose((x / -1).numpy(), [-128.0, -255.0])
    np.testing.assert_allclose((300 / minigan.Tensor(xp.asarray(np.array([3], np.int8)))).numpy(),
                               [100.0])
    assert (x / 256).dtype == np.float32
    assert (x + 256).numpy().tolist() == [128, 255]  # + wraps, as torch's: 256 is 0 in uint8


def test_alpha_scales_in_the_result_dtype():
    a = minigan.tensor(np.array(1.0000001))  # 0-d float64
    b = minigan.tensor([1, 3])
    out = minigan.add(a, b, alpha=0.5)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), [1.5000001, 2.5000001], rtol=1e-15)


def test_pow_and_cat_return_new_tensors_not_aliases():
    x = minigan.tensor([1.0, 2.0])
    for y in (x ** 1, minigan.cat([x]), minigan.stack([x])[0], minigan.pow(x, 1)):
        y.add_(10)
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def test_integer_powers_follow_torch(xp):
    def t(v):
        return minigan.Tensor(xp.asarray(np.asarray(v)))
    assert (t(3) ** 2).numpy().tolist() == 9 and (t(3) ** 2).shape == ()
    np.testing.assert_array_equal((t([0, 2, 1, -1, -2]) ** t([-1, -1, -2, -3, -1])).numpy(),
                                  [0, 0, 1, -1, 0])
    assert (t([True]) ** True).dtype == np.bool_ and (t([True]) ** 2).dtype == np.int64
    with pytest.raises(TypeError, match="pow: not implemented for bool"):
        t([True]) ** t([True])


def test_clamp_with_tensor_bounds_matches_torch_values_and_gradients(xp):
    x = minigan.Tensor(xp.asarray([1.0, 5.0, 3.0, 2.0]), requires_grad=True)
    lo = minigan.Tensor(xp.asarray([2.0, 2.0, 3.0, 2.5]), requires_grad=True)
    hi = minigan.Tensor(xp.asarray([4.0, 4.0, 4.0, 1.0]), requires_grad=True)
    y = minigan.clamp(x, lo, hi)
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0, 3.0, 1.0])  # lo > hi: hi, as torch
    gx, gl, gh = minigan.grad(y.sum(), [x, lo, hi])
    np.testing.assert_array_equal(gx.numpy(), [0, 0, 1, 0])  # a tie goes to the input
    np.testing.assert_array_equal(gl.numpy(), [1, 0, 0, 0])
    np.testing.assert_array_equal(gh.numpy(), [0, 1, 0, 1])
    ints = minigan.Tensor(xp.asarray([1, 5]))
    bound = minigan.Tensor(xp.asarray(np.array([2.0, 2.0], np.float32)))
    assert minigan.clamp(ints, bound).dtype == np.float32
    np.testing.assert_array_equal(minigan.clamp(ints, max=minigan.Tensor(
        xp.asarray([4, 4]))).numpy(), [1, 4])
    with pytest.raises(TypeError, match="bounds must be numbers or tensors, got str"):
        minigan.clamp(x, lo, "4")
    rng = np.random.default_rng(1)
    check_backward(lambda u, v, w: minigan.clamp(u, v, w),
                   [xp.asarray(rng.normal(size=6)), xp.asarray(rng.normal(size=6) - 1),
                    xp.asarray(rng.normal(size=6) + 1)])


def test_more_refusals_torch_makes():
    with pytest.raises(TypeError, match="subtraction with a bool operand"):
        minigan.sub(minigan.tensor([1]), True)
    with pytest.raises(TypeError, match="fmod: input must be a tensor"):
        minigan.fmod(2, minigan.tensor([3]))
    for fn in (lambda: minigan.tensor([True]) % minigan.tensor([True]),
               lambda: minigan.floor_divide(minigan.tensor([True]), True)):
        with pytest.raises(TypeError, match="not implemented for bool"):
            fn()
    empty = minigan.tensor(np.zeros(0, np.int64))
    assert (empty // 0).shape == (0,) and (empty % 0).shape == (0,)  # nothing to divide
    assert minigan.square(minigan.tensor([True])).dtype == np.int64


def test_review_cases_match_torch():
    x = minigan.tensor(np.array([10, -20], np.int8))
    np.testing.assert_allclose((x / minigan.tensor(np.array(200, np.uint8))).numpy(),
                               [0.05, -0.1], rtol=1e-6)  # no wrap of 200 into int8
    np.testing.assert_allclose((x / minigan.tensor(1000)).numpy(), [0.01, -0.02], rtol=1e-6)
    with pytest.raises(ValueError, match="the exponent 256 does not fit the tensor's dtype "
                                         "uint8"):
        minigan.tensor(np.array([2, 3], np.uint8)) ** 256
    out = minigan.clamp(minigan.tensor([0.5, 2.0]), min=minigan.tensor([np.nan, 0.0]))
    np.testing.assert_array_equal(out.numpy(), [np.nan, 2.0])  # a NaN bound gives NaN
    with pytest.raises(TypeError, match="subtraction with a bool operand"):
        minigan.sub(minigan.tensor([1]), minigan.tensor([True]), alpha=3)
