"""Regressions found by differential fuzzing of the losses, activations and normalisation
layers against torch. The expected values are hard-coded from NumPy/math; torch is only an
optional extra comparison."""
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan.testing import check_backward, check_double_backward

_EPS = 1e-12  # torch's eps in binary_cross_entropy's double backward


def _bce_second_order(x, t, v):
    """d/dx <v, d bce_sum / dx> at x (target held fixed)."""
    xt = minigan.tensor(x, requires_grad=True)
    (gx,) = minigan.grad(F.binary_cross_entropy(xt, minigan.tensor(t), reduction="sum"), xt,
                         create_graph=True)
    (ggx,) = minigan.grad((gx * minigan.tensor(v)).sum(), xt)
    return gx.numpy(), ggx.numpy()


def test_bce_second_order_at_saturated_probabilities():
    # x = 0 or 1 where the target equals it (a float32 sigmoid rounds to 1.0 from about 17 on):
    # the first-order gradient is 0 and torch's second derivative there is 0 too, not
    # v * gy / 1e-12 from the clamp's constant denominator.
    x = np.array([0.0, 1.0, 0.3, 0.8])
    t = np.array([0.0, 1.0, 0.2, 0.5])
    v = np.array([0.7, -1.3, 0.9, 2.0])
    gx, ggx = _bce_second_order(x, t, v)
    np.testing.assert_allclose(gx, (x - t) / np.maximum(x * (1 - x), np.float32(1e-12)),
                               rtol=1e-12)
    expected = v * (x * x - 2 * x * t + t) / ((x + _EPS) ** 2 * (1 - x + _EPS) ** 2)
    np.testing.assert_allclose(ggx, expected, rtol=1e-10, atol=0)
    assert ggx[0] == 0 and ggx[1] == 0
    # float32, a saturated probability of exactly 1.0
    gx32, ggx32 = _bce_second_order(np.array([1.0, 0.25], np.float32),
                                    np.array([1.0, 1.0], np.float32),
                                    np.array([3.0, 1.0], np.float32))
    assert ggx32.dtype == np.float32
    assert ggx32[0] == 0
    np.testing.assert_allclose(ggx32[1], (0.0625 - 0.5 + 1) / (0.1875 ** 2), rtol=1e-5)


def test_bce_gradients_stay_exact_inside_the_interval():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.05, 0.95, (3, 4))
    t = rng.uniform(0, 1, (3, 4))
    w = rng.uniform(0.5, 1.5, (3, 4))

    def fn(x, t):
        return F.binary_cross_entropy(x, t, weight=minigan.tensor(w), reduction="sum")

    check_backward(fn, [x, t])
    check_double_backward(fn, [x, t])


def test_bce_second_order_matches_torch_at_edges():
    torch = pytest.importorskip("torch")
    x = np.array([0.0, 1.0, 1e-30, 0.4, 1.0, 0.0])
    t = np.array([0.0, 1.0, 0.0, 0.9, 0.5, 0.25])
    v = np.array([0.7, -1.3, 0.9, 2.0, 0.1, 0.2])
    _, ggx = _bce_second_order(x, t, v)
    tx = torch.tensor(x, requires_grad=True)
    (tgx,) = torch.autograd.grad(torch.nn.functional.binary_cross_entropy(
        tx, torch.tensor(t), reduction="sum"), tx, create_graph=True)
    (tggx,) = torch.autograd.grad((tgx * torch.tensor(v)).sum(), tx)
    np.testing.assert_allclose(ggx, tggx.numpy(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_probability_targets_empty_batch_mean_is_nan(dtype):
    # torch: sum over nothing / (0 samples) = NaN, as with class-index targets
    x = minigan.tensor(np.zeros((0, 5), dtype), requires_grad=True)
    loss = F.cross_entropy(x, minigan.tensor(np.zeros((0, 5), dtype)))
    assert loss.dtype == dtype and loss.shape == ()
    assert np.isnan(loss.item())
    loss.backward()
    assert x.grad.shape == (0, 5)
    idx = F.cross_entropy(minigan.tensor(np.zeros((0, 5), dtype)),
                          minigan.tensor(np.zeros((0,), np.int64)))
    assert np.isnan(idx.item())
    assert F.cross_entropy(minigan.tensor(np.zeros((0, 5), dtype)),
                           minigan.tensor(np.zeros((0, 5), dtype)), reduction="sum").item() == 0


def test_softmax_of_a_slice_with_posinf_is_all_nan():
    # torch: x - max(x) is inf - inf there, so the whole slice is NaN, not one NaN and zeros
    inf = np.inf
    a = np.array([[0.0, inf, -1.0], [1.0, 2.0, 3.0], [-inf, inf, 0.0]])
    row = np.array([1.0, 2.0, 3.0])
    lsm_row = row - np.log(np.exp(row).sum())
    x = minigan.tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = F.log_softmax(x, 1)
        s = F.softmax(minigan.tensor(a), 1)
        smin = F.softmin(minigan.tensor(-a), 1)
        sT = F.softmax(minigan.tensor(a.T.copy()), 0)
        y.backward(minigan.tensor(np.ones_like(a)))
    for out in (y.numpy(), s.numpy(), smin.numpy(), sT.numpy().T):
        assert np.isnan(out[0]).all() and np.isnan(out[2]).all()
    np.testing.assert_allclose(y.numpy()[1], lsm_row, rtol=1e-12)
    np.testing.assert_allclose(s.numpy()[1], np.exp(lsm_row), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy()[1], 1 - 3 * np.exp(lsm_row), rtol=1e-12)
    # all -inf stays NaN, and logsumexp itself still gives inf for a +inf entry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isnan(F.softmax(minigan.tensor(np.array([-inf, -inf])), 0).numpy()).all()
        lse = F.logsumexp(minigan.tensor(a), 1).numpy()
    assert lse[0] == inf and lse[2] == inf
    np.testing.assert_allclose(lse[1], np.log(np.exp(row).sum()), rtol=1e-12)
    # float32 and a finite slice are untouched
    x32 = np.array([[100.0, -100.0, 0.0]], np.float32)
    np.testing.assert_allclose(F.log_softmax(minigan.tensor(x32), 1).numpy(),
                               [[0.0, -200.0, -100.0]], rtol=1e-6)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 10.0), (0.5, 3.0), (1.0, 0.0)])
def test_softplus_second_derivative_is_zero_at_the_threshold(beta, threshold):
    # torch's first derivative at beta*x = threshold is the curve's sigmoid, but its double
    # backward masks beta*x < threshold: the second derivative there is 0
    edge = threshold / beta
    x = np.array([edge, edge - 1.0, edge + 1.0, -2.0])
    v = np.array([1.5, -0.5, 2.0, 0.25])
    xt = minigan.tensor(x, requires_grad=True)
    (gx,) = minigan.grad(F.softplus(xt, beta, threshold).sum(), xt, create_graph=True)
    (ggx,) = minigan.grad((gx * minigan.tensor(v)).sum(), xt)
    sig = 1 / (1 + np.exp(-beta * x))
    linear = beta * x > threshold
    np.testing.assert_allclose(gx.numpy(), np.where(linear, 1.0, sig), rtol=1e-12)
    curve = beta * x < threshold
    np.testing.assert_allclose(ggx.numpy(), np.where(curve, v * beta * sig * (1 - sig), 0.0),
                               rtol=1e-10, atol=0)
    assert ggx.numpy()[0] == 0


def test_softplus_gradients_exact_off_the_threshold():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3)) * 4

    def fn(x):
        return F.softplus(x, 2.0, 5.0)

    check_backward(fn, [x])
    check_double_backward(fn, [x])


def test_fixes_on_each_device(device):
    """The fixed paths (BCE's double backward, softplus's at the threshold, softmax with +inf,
    an empty batch of probability targets) on the device's arrays."""
    def tensor(a, grad=False):
        return minigan.tensor(np.asarray(a, np.float64), requires_grad=grad, device=device)

    def host(t):
        return minigan.backend.to_numpy(t.data)

    x = tensor([0.0, 1.0, 0.3], True)
    t = tensor([0.0, 1.0, 0.2])
    (gx,) = minigan.grad(F.binary_cross_entropy(x, t, reduction="sum"), x, create_graph=True)
    (ggx,) = minigan.grad(gx.sum(), x)
    np.testing.assert_allclose(host(ggx), [0.0, 0.0, 0.17 / (0.3 + _EPS) ** 2 / (0.7 + _EPS) ** 2],
                               rtol=1e-10)
    z = tensor([20.0, 3.0], True)
    (gz,) = minigan.grad(F.softplus(z).sum(), z, create_graph=True)
    (ggz,) = minigan.grad(gz.sum(), z)
    s = 1 / (1 + np.exp(-3.0))
    np.testing.assert_allclose(host(ggz), [0.0, s * (1 - s)], rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = host(F.log_softmax(tensor([[0.0, np.inf, -1.0], [0.0, 0.0, 0.0]]), 1))
        e = F.cross_entropy(tensor(np.zeros((0, 3))), tensor(np.zeros((0, 3))))
    assert np.isnan(y[0]).all()
    np.testing.assert_allclose(y[1], -np.log(3.0), rtol=1e-12)
    assert np.isnan(host(e))
