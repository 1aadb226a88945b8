"""Dimension arguments and reductions as PyTorch reads them: an empty dim tuple reduces
everything, a dim out of range or named twice is an error (never wrapped around), torch's older
``var(x, unbiased)`` form, and std's gradient where the deviation is 0."""
import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend
from minigan.testing import check_backward, check_double_backward

X = np.arange(1.0, 7.0).reshape(2, 3) ** 1.5


def _t(a, device="cpu", grad=False):
    return minigan.Tensor(backend.to_device(np.asarray(a, dtype=np.float64), device),
                          requires_grad=grad)


@pytest.mark.parametrize("fn, ref", [(F.sum, np.sum), (F.mean, np.mean), (F.amax, np.max),
                                     (lambda x, dim: F.var(x, dim=dim),
                                      lambda a: np.var(a, ddof=1))])
@pytest.mark.parametrize("empty", [(), []])
def test_an_empty_dim_reduces_every_dimension(fn, ref, empty):
    np.testing.assert_allclose(fn(_t(X), dim=empty).item(), ref(X), rtol=1e-14)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.sum(x, dim=(0, 0)), ValueError, "sum: dimension 0 appears more than once"),
    (lambda x: F.sum(x, dim=(1, -1)), ValueError, "sum: dimension 1 appears more than once"),
    (lambda x: F.mean(x, dim=2), IndexError, (r"mean: dimension 2 is out of range for a tensor "
                                              r"with 2 dimensions \(expected one in \[-2, 1\]\)")),
    (lambda x: F.sum(x, dim=True), TypeError, "sum: a dimension must be an int, got True"),
    (lambda x: F.argmax(x, dim=(0, 1)), TypeError, (r"argmax: a dimension must be an int, got "
                                                   r"\(0, 1\)")),
    (lambda x: F.cat([x, x], dim=2), IndexError, "concat: dimension 2 is out of range"),
    (lambda x: F.stack([x, x], dim=3), IndexError, ("stack: dimension 3 is out of range for a "
                                                   "tensor with 3 dimensions")),
    (lambda x: F.stack([]), ValueError, "stack: needs at least one tensor"),
    (lambda x: F.cat([x.sum(), x.sum()]), ValueError, ("concat: a 0-d tensor cannot be "
                                                      "concatenated")),
    (lambda x: F.permute(x, 0, 3), IndexError, "permute: dimension 3 is out of range"),
    (lambda x: F.transpose(x, 0, 2), IndexError, "transpose: dimension 2 is out of range"),
    (lambda x: F.flatten(x, 0, 5), IndexError, "flatten: dimension 5 is out of range"),
    (lambda x: F.flatten(x, 1, 0), ValueError, (r"flatten: start_dim 1 comes after end_dim 0 "
                                               r"for a tensor of shape \(2, 3\)")),
])
def test_dims_out_of_range_or_repeated_are_errors_not_wrapped(call, error, message):
    with pytest.raises(error, match=message):
        call(_t(X))


def test_zero_d_tensors_take_dim_0_and_minus_1_and_flatten_to_one_value():
    s = _t(2.5)
    assert minigan.flatten(s).shape == (1,) and F.flatten(s, 0, -1).numpy().tolist() == [2.5]
    assert F.sum(s, dim=0).item() == 2.5 and F.sum(s, dim=-1).item() == 2.5
    assert F.transpose(s, 0, -1).item() == 2.5
    with pytest.raises(IndexError, match="expected one in \\[-1, 0\\]"):
        F.sum(s, dim=1)
    assert F.stack([s, s], dim=-1).shape == (2,)


@pytest.mark.parametrize("fn", ["var", "std"])
def test_torchs_older_unbiased_form_is_not_read_as_a_dim(fn):
    """``torch.var(x, False)`` is the population variance over everything; reading the bool as
    dim 0 gave a per-column result."""
    f = getattr(F, fn)
    ddof0 = np.var(X) if fn == "var" else np.std(X)
    ddof1 = np.var(X, ddof=1) if fn == "var" else np.std(X, ddof=1)
    np.testing.assert_allclose(f(_t(X), False).item(), ddof0, rtol=1e-14)
    np.testing.assert_allclose(f(_t(X), True).item(), ddof1, rtol=1e-14)
    np.testing.assert_allclose(getattr(_t(X), fn)(False).item(), ddof0, rtol=1e-14)
    with pytest.raises(TypeError, match=f"{fn}: a bool dim False and unbiased=True"):
        f(_t(X), False, True)


def test_var_with_no_degrees_of_freedom_is_inf_as_torch():
    assert F.var(_t([1.0, 2.0]), correction=2).item() == np.inf
    assert np.isnan(F.var(_t([3.0, 3.0]), correction=2).item())  # 0 / 0


def test_std_gradient_is_zero_where_the_deviation_is_zero(device):
    """As torch: a constant row has std 0 and no direction to move in; its gradient is 0, not
    1/(2*0) * 0 = NaN, and the other rows keep theirs."""
    x = _t([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]], device, grad=True)
    y = F.std(x, dim=1)
    (g,) = minigan.grad(y.sum(), [x], create_graph=True)
    gn = g.numpy()
    np.testing.assert_array_equal(gn[0], 0.0)
    r = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(gn[1], (r - r.mean()) / (2 * np.std(r, ddof=1)), rtol=1e-13)
    (gg,) = minigan.grad(g.sum(), [x])  # second order: finite, and 0 on the constant row
    assert np.isfinite(gg.numpy()).all()
    np.testing.assert_array_equal(gg.numpy()[0], 0.0)


def test_std_gradients_match_finite_differences(device):
    a = backend.to_device(np.random.default_rng(3).standard_normal((3, 4)), device)
    check_backward(lambda t: F.std(t, dim=1), [a])
    check_double_backward(lambda t: F.std(t, dim=1), [a])
    check_double_backward(lambda t: F.std(t, correction=0), [a])


def test_logsumexp_takes_torchs_dim_and_keepdim_and_dim_tuples(device):
    a = np.random.default_rng(1).standard_normal((2, 3, 4))

    def ref(dims, keep=False):
        m = a.max(axis=dims, keepdims=True)
        out = np.log(np.exp(a - m).sum(axis=dims, keepdims=True)) + m
        return out if keep else np.squeeze(out, axis=dims)

    x = _t(a, device)
    np.testing.assert_allclose(F.logsumexp(x, dim=(0, 2)).numpy(), ref((0, 2)), rtol=1e-13)
    np.testing.assert_allclose(F.logsumexp(x, 1, keepdim=True).numpy(), ref((1,), True),
                               rtol=1e-13)
    np.testing.assert_allclose(F.logsumexp(x, axis=-1, keepdims=True).numpy(), ref((2,), True),
                               rtol=1e-13)
    check_double_backward(lambda t: F.logsumexp(t, dim=(0, 2)), [backend.to_device(a, device)])


@pytest.mark.parametrize("shape, implicit", [((4,), 0), ((2, 4), 1), ((2, 3, 4), 0),
                                             ((2, 3, 4, 5), 1)])
def test_softmax_without_dim_is_torchs_deprecated_choice_with_its_warning(shape, implicit):
    a = np.random.default_rng(2).standard_normal(shape)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(_t(a)).numpy()
    e = np.exp(a - a.max(axis=implicit, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=implicit, keepdims=True), rtol=1e-13)
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        F.log_softmax(_t(a))


def test_one_hot_is_int64_and_infers_the_class_count_as_torch():
    y = F.one_hot(minigan.tensor(np.array([0, 3, 1])))
    assert y.dtype == np.int64 and y.shape == (3, 4)
    np.testing.assert_array_equal(y.numpy().argmax(1), [0, 3, 1])
    assert F.one_hot(np.array([1]), 3, np.float32).dtype == np.float32


def test_where_takes_a_bool_condition_only_as_torch():
    """NumPy reads any nonzero number as True; torch refuses a condition that is not bool, so
    a float mask (0.5 meaning 'half') cannot pass for a selection."""
    a, b = _t([1.0, 2.0, 3.0]), _t([0.0, 0.0, 0.0])
    np.testing.assert_array_equal(F.where([True, False, True], a, b).numpy(), [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(F.where(a > 1.5, a, b).numpy(), [0.0, 2.0, 3.0])
    for cond in (np.array([1.0, 0.0, 0.5]), np.array([1, 0, 1]), _t([1.0, 0.0, 1.0])):
        with pytest.raises(TypeError, match="where: the condition must be a bool tensor, got "
                                            "dtype"):
            F.where(cond, a, b)
