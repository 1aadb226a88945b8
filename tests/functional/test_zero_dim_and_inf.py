"""0-d tensors through the elementwise ops and kernels, and ReLU's gradient under an infinite
upstream gradient.

- A NumPy ufunc whose operands are all 0-d returns a NumPy scalar, not a 0-d array: every
  elementwise kernel must still take 0-d arrays and return arrays, forward and backward, on
  each device, and the ops built on them must pass the float64 gradient checks of first and
  second order on 0-d inputs.
- ReLU's gradient is a selection, as PyTorch's (gy where x > 0, else 0), not a product with a
  0/1 mask: an infinite gy where x <= 0 (the derivative of sqrt or log at 0) gives 0, not NaN,
  in the op, in its graph-building backward, and in the fused Linear / batch-norm + ReLU ops
  ``nn.Sequential`` runs. LeakyReLU with a nonzero slope keeps gy * slope, as PyTorch's.
"""
import numpy as np
import pytest

import minigan
import minigan.nn.functional as F
from minigan import backend, nn
from minigan.autograd import grad
from minigan.kernels import elementwise as K
from minigan.testing import check_backward, check_double_backward

to_np = backend.to_numpy


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softplus(x):
    return np.logaddexp(0, x)


def _huber(d, delta):
    return np.where(np.abs(d) < delta, 0.5 * d * d, delta * (np.abs(d) - 0.5 * delta))


# name, function on tensors, NumPy reference on float64 numbers, 0-d inputs (away from the
# kinks and switches, and on both sides of them)
CASES = [
    ("sigmoid_pos", F.sigmoid, _sigmoid, [0.3]),
    ("sigmoid_neg", F.sigmoid, _sigmoid, [-1.7]),
    ("relu_pos", F.relu, lambda a: max(a, 0.0), [0.3]),
    ("relu_neg", F.relu, lambda a: max(a, 0.0), [-0.4]),
    ("leaky_relu_pos", lambda a: F.leaky_relu(a, 0.2), lambda a: a if a > 0 else 0.2 * a,
     [0.3]),
    ("leaky_relu_neg", lambda a: F.leaky_relu(a, 0.2), lambda a: a if a > 0 else 0.2 * a,
     [-0.4]),
    ("softplus", F.softplus, _softplus, [0.3]),
    ("softplus_beta", lambda a: F.softplus(a, beta=2.0), lambda a: _softplus(2 * a) / 2,
     [-0.6]),
    ("softplus_linear", lambda a: F.softplus(a, beta=2.0, threshold=1.0),
     lambda a: a if 2 * a > 1.0 else _softplus(2 * a) / 2, [0.8]),
    ("tanh", F.tanh, np.tanh, [0.3]),
    ("abs_pos", F.abs, abs, [0.3]),
    ("abs_neg", F.abs, abs, [-0.4]),
    ("bce_logits_mean", F.binary_cross_entropy_with_logits,
     lambda x, t: _softplus(x) - x * t, [0.3, 0.4]),
    ("bce_logits_none_neg",
     lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
     lambda x, t: _softplus(x) - x * t, [-1.3, 0.8]),
    ("bce_logits_sum_weight",
     lambda x, t, w: F.binary_cross_entropy_with_logits(x, t, w, reduction="sum"),
     lambda x, t, w: (_softplus(x) - x * t) * w, [0.7, 0.2, 1.5]),
    ("l1_loss", F.l1_loss, lambda x, t: abs(x - t), [0.3, -0.2]),
    ("l1_loss_none", lambda x, t: F.l1_loss(x, t, reduction="none"), lambda x, t: abs(x - t),
     [-0.3, 0.4]),
    ("huber_loss_quadratic", F.huber_loss, lambda x, t: _huber(x - t, 1.0), [0.3, -0.2]),
    ("huber_loss_linear", lambda x, t: F.huber_loss(x, t, delta=0.5),
     lambda x, t: _huber(x - t, 0.5), [0.9, -0.2]),
    ("smooth_l1_loss", F.smooth_l1_loss, lambda x, t: _huber(x - t, 1.0), [1.9, 0.2]),
    ("smooth_l1_loss_beta0", lambda x, t: F.smooth_l1_loss(x, t, beta=0.0),
     lambda x, t: abs(x - t), [-0.3, 0.2]),
]
IDS = [c[0] for c in CASES]


def _zero_dim(xp, values):
    return [xp.asarray(np.asarray(v, dtype=np.float64)) for v in values]


@pytest.mark.parametrize("name,fn,ref,values", CASES, ids=IDS)
def test_forward_on_0d(name, fn, ref, values, xp):
    y = fn(*[minigan.Tensor(a) for a in _zero_dim(xp, values)])
    assert y.shape == () and y.dtype == np.float64
    assert backend.device_of(y.data) == backend.device_of(xp.zeros(()))
    np.testing.assert_allclose(y.numpy(), ref(*values), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,fn,ref,values", CASES, ids=IDS)
def test_backward_on_0d(name, fn, ref, values, xp):
    check_backward(fn, _zero_dim(xp, values))


@pytest.mark.parametrize("name,fn,ref,values", CASES, ids=IDS)
def test_double_backward_on_0d(name, fn, ref, values, xp):
    check_double_backward(fn, _zero_dim(xp, values))


@pytest.mark.parametrize("name,fn,ref,values", CASES, ids=IDS)
def test_plain_backward_on_0d(name, fn, ref, values, xp):
    """``.backward()`` on the 0-d result (the first-order fast paths, without a graph), into
    0-d ``.grad`` arrays of the inputs' device."""
    xs = [minigan.Tensor(a, requires_grad=True) for a in _zero_dim(xp, values)]
    fn(*xs).backward()
    for x in xs:
        assert x.grad.shape == () and x.grad.dtype == np.float64
        assert backend.device_of(x.grad.data) == backend.device_of(x.data)
        assert np.isfinite(x.grad.numpy())


def _is_array(a, xp):
    return isinstance(a, np.ndarray) if xp is np else backend.is_cupy_array(a)


def _kernel_calls():
    """(name, call on 0-d float64 arrays x, g, t, w, NumPy reference on numbers)."""
    return [
        ("leaky_relu_forward", lambda x, g, t, w: K.leaky_relu_forward(x, 0.2),
         lambda x, g, t, w: x if x > 0 else 0.2 * x),
        ("leaky_relu_backward", lambda x, g, t, w: K.leaky_relu_backward(g, x, 0.2),
         lambda x, g, t, w: g if x > 0 else 0.2 * g),
        ("leaky_relu_backward_relu", lambda x, g, t, w: K.leaky_relu_backward(g, x, 0.0),
         lambda x, g, t, w: g if x > 0 else 0.0),
        ("leaky_relu_inplace", lambda x, g, t, w: K.leaky_relu_inplace(x.copy(), 0.2, w),
         lambda x, g, t, w: x + w if x + w > 0 else 0.2 * (x + w)),
        ("relu_forward", lambda x, g, t, w: K.relu_forward(x), lambda x, g, t, w: max(x, 0.0)),
        ("relu_backward", lambda x, g, t, w: K.relu_backward(g, x),
         lambda x, g, t, w: g if x > 0 else 0.0),
        ("tanh_inplace", lambda x, g, t, w: K.tanh_inplace(x.copy(), w),
         lambda x, g, t, w: np.tanh(x + w)),
        ("tanh_backward", lambda x, g, t, w: K.tanh_backward(g, x),
         lambda x, g, t, w: g * (1 - x * x)),
        ("sigmoid_forward", lambda x, g, t, w: K.sigmoid_forward(x),
         lambda x, g, t, w: _sigmoid(x)),
        ("sigmoid_backward", lambda x, g, t, w: K.sigmoid_backward(g, x),
         lambda x, g, t, w: g * x * (1 - x)),
        ("sigmoid_mean", lambda x, g, t, w: K.sigmoid_mean(x), lambda x, g, t, w: _sigmoid(x)),
        ("softplus_forward", lambda x, g, t, w: K.softplus_forward(x, 2.0, 20.0),
         lambda x, g, t, w: _softplus(2 * x) / 2),
        ("bce_with_logits_forward", lambda x, g, t, w: K.bce_with_logits_forward(x, t, w),
         lambda x, g, t, w: (_softplus(x) - x * t) * w),
        ("bce_with_logits_backward", lambda x, g, t, w: K.bce_with_logits_backward(g, x, t, w),
         lambda x, g, t, w: g * (_sigmoid(x) - t) * w),
        ("bce_with_logits_const_mean",
         lambda x, g, t, w: K.bce_with_logits_const_mean(x, 0.9, 1.0),
         lambda x, g, t, w: _softplus(x) - x * 0.9),
        ("bce_with_logits_const_mean_backward",
         lambda x, g, t, w: K.bce_with_logits_const_mean_backward(g, x, 0.9, 0.5),
         lambda x, g, t, w: g * 0.5 * (_sigmoid(x) - 0.9)),
        ("sum_all_scaled", lambda x, g, t, w: K.sum_all_scaled(x, 3.0),
         lambda x, g, t, w: 3.0 * x),
        ("add_scaled", lambda x, g, t, w: K.add_scaled(x, g, w, 2.0),
         lambda x, g, t, w: x + 2.0 * w * g),
        ("lerp", lambda x, g, t, w: K.lerp(x, g, t), lambda x, g, t, w: x + t * (g - x)),
        ("std_all", lambda x, g, t, w: K.std_all(x), lambda x, g, t, w: 0.0),
    ]


KERNELS = _kernel_calls()


@pytest.mark.parametrize("name,call,ref", KERNELS, ids=[k[0] for k in KERNELS])
@pytest.mark.parametrize("x", [0.3, -0.7])
def test_every_elementwise_kernel_takes_and_returns_0d_arrays(name, call, ref, x, xp):
    """Arrays in, arrays out, for 0-d arrays too (a NumPy scalar could be neither an ``out=``
    nor a tensor's data): the result is a 0-d float64 array of the input's device."""
    g, t, w = -1.3, 0.4, 1.5
    out = call(*_zero_dim(xp, [x, g, t, w]))
    assert _is_array(out, xp), type(out)
    assert out.shape == () and out.dtype == np.float64
    np.testing.assert_allclose(to_np(out), ref(x, g, t, w), rtol=1e-12, atol=1e-14)


# ReLU's gradient under an infinite upstream gradient

X3 = [-1.0, 0.0, 4.0]


@pytest.mark.parametrize("outer,first,second", [
    (F.sqrt, [0.0, 0.0, 0.25], [0.0, 0.0, -0.03125]),
    (F.log, [0.0, 0.0, 0.25], [0.0, 0.0, -0.0625]),
], ids=["sqrt", "log"])
def test_relu_gradient_selects_under_an_infinite_upstream_gradient(outer, first, second, xp):
    """d/dx sum(sqrt(relu(x))) at x = -1, 0, 4: sqrt's derivative at relu's 0 is inf, and
    relu's gradient there is 0, not 0 * inf = NaN (PyTorch's values), and the second
    derivative through the graph-building backward likewise."""
    x = minigan.Tensor(xp.asarray(X3), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        outer(F.relu(x)).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), first)
        x2 = minigan.Tensor(xp.asarray(X3), requires_grad=True)
        g, = grad(outer(F.relu(x2)).sum(), [x2], create_graph=True)
        np.testing.assert_array_equal(g.numpy(), first)
        h, = grad(g.sum(), [x2])
    np.testing.assert_array_equal(h.numpy(), second)


def test_relu_gradient_kernels_select_for_inf_and_nan(xp):
    """The gradient kernels for slope 0 (ReLU): gy where x > 0, else +0, whatever gy is, and
    its own derivative (the same call) too; LeakyReLU with a nonzero slope keeps gy * slope,
    as PyTorch's does (inf * 0.2 = inf)."""
    x = xp.asarray([-1.0, 0.0, -0.0, np.nan, 2.0, 3.0, -2.0])
    gy = xp.asarray([np.inf, -np.inf, np.nan, np.inf, np.inf, -1.5, -1.5])
    want = [0.0, 0.0, 0.0, 0.0, np.inf, -1.5, 0.0]
    for got in (K.leaky_relu_backward(gy, x, 0.0), K.relu_backward(gy, x)):
        np.testing.assert_array_equal(to_np(got), want)
        assert not np.signbit(to_np(got)[[0, 1, 2, 3, 6]]).any()  # +0, as a selection gives
    with np.errstate(invalid="ignore"):
        leaky = to_np(K.leaky_relu_backward(gy, x, 0.2))
    np.testing.assert_array_equal(leaky, [np.inf, -np.inf, np.nan, np.inf, np.inf, -1.5,
                                          -1.5 * 0.2])
    # the fused Linear + ReLU's masked gradient and bias gradient (one kernel on the GPU)
    y2 = xp.asarray([[0.0, 1.0, 0.0], [2.0, 0.0, 0.5]])
    gy2 = xp.asarray([[np.inf, 2.0, -np.inf], [1.0, np.inf, 4.0]])
    g, gb = K.leaky_relu_backward_colsum(gy2, y2, 0.0)
    np.testing.assert_array_equal(to_np(g), [[0.0, 2.0, 0.0], [1.0, 0.0, 4.0]])
    np.testing.assert_array_equal(to_np(gb), [1.0, 2.0, 4.0])


def test_relu_gradient_select_keeps_layout_dtype_and_broadcast():
    """The CPU select for ReLU: float32 and float16 keep their dtype, a channels-last x keeps
    its layout, and a gy that broadcasts against x is read as broadcast."""
    rng = np.random.default_rng(3)
    for dtype in (np.float16, np.float32, np.float64):
        x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        gy = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
        gy[x <= 0] = np.inf
        got = K.leaky_relu_backward(gy, x, 0.0)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, np.where(x > 0, gy, dtype(0)))
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        gl = K.leaky_relu_backward(gy, xl, 0.0)
        assert gl.transpose(0, 2, 3, 1).flags.c_contiguous
        np.testing.assert_array_equal(gl, np.where(x > 0, gy, dtype(0)))
        row = gy[0, 0, 0]  # (5,): broadcasts along x's leading axes
        np.testing.assert_array_equal(K.leaky_relu_backward(row, x, 0.0),
                                      np.where(x > 0, row, dtype(0)))


def _net_and_twin(device, *layers):
    minigan.manual_seed(0)

    def make():
        return nn.Sequential(*[build() for build in layers]).to(device).double()

    net, twin = make(), make()
    twin.load_state_dict(net.state_dict())
    return net, twin


def _layerwise(net, x):
    """net's layers called one at a time: no fused op (ReLU's own op for the activation)."""
    for m in net:
        x = m(x)
    return x


FUSED = {
    "linear_relu": ((lambda: nn.Linear(5, 6), nn.ReLU), (8, 5), "LinearLeakyReLU"),
    "linear_bn_relu": ((lambda: nn.Linear(5, 6), lambda: nn.BatchNorm1d(6), nn.ReLU), (8, 5),
                       "BatchNormLeakyReLUTrain"),
    "conv_bn_relu": ((lambda: nn.Conv2d(2, 3, 3, padding=1), lambda: nn.BatchNorm2d(3),
                      nn.ReLU), (2, 2, 4, 4), "BatchNormLeakyReLUTrain"),
}


@pytest.mark.parametrize("two_launch", [False, True], ids=["one_kernel", "two_launch"])
@pytest.mark.parametrize("which", list(FUSED))
def test_fused_relu_in_sequential_selects_under_an_infinite_upstream_gradient(
        which, two_launch, device, monkeypatch):
    """sqrt of a fused Linear / batch-norm + ReLU's output: at its exact zeros sqrt's
    derivative is inf, and every fused backward (the GPU kernels included: the masked
    gradient, the one that adds the bias gradient, the batch-norm kernels, and, for a layer
    with many values per channel, batch norm's two-launch path) must give the finite
    gradients of the layers called one at a time, first order and through create_graph."""
    if two_launch:
        from minigan.kernels import batchnorm as KB
        if "bn" not in which or device == "cpu":
            pytest.skip("the two-launch path is batch norm's, on the GPU")
        monkeypatch.setattr(KB, "_FUSED_MAX", 0)  # every layer takes the two-launch path
    layers, shape, fused_op = FUSED[which]
    net, twin = _net_and_twin(device, *layers)
    xp = backend.xp_for(device)
    x0 = xp.asarray(np.random.default_rng(1).standard_normal(shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        y = net(minigan.Tensor(x0))
        assert type(y.creator).__name__ == fused_op  # the fused path ran
        assert (y.numpy() == 0).any() and (y.numpy() > 0).any()
        F.sqrt(y).sum().backward()
        F.sqrt(_layerwise(twin, minigan.Tensor(x0))).sum().backward()
        params, tparams = list(net.parameters()), list(twin.parameters())
        for p, q in zip(params, tparams):
            assert np.isfinite(p.grad.numpy()).all()
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12)
        # second order: the gradients' sum, differentiated again (the graph-building backward)
        sums = []
        for model, run in ((net, net), (twin, lambda v: _layerwise(twin, v))):
            ps = list(model.parameters())
            gs = grad(F.sqrt(run(minigan.Tensor(x0))).sum(), ps, create_graph=True)
            total = gs[0].sum()
            for g in gs[1:]:
                total = total + (g * g).sum()
            sums.append(grad(total, ps, allow_unused=True))
    for g, h in zip(*sums):
        if g is None or h is None:
            assert g is None and h is None
            continue
        assert np.isfinite(g.numpy()).all()
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-9, atol=1e-11)
