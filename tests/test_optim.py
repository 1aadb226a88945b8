"""Optimizers: PyTorch semantics against plain formulas, and exact continuation after a reload."""
import re

import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan.optim import SGD, Adam


def _quadratic_grads(p, target):
    return 2 * (p - target)


def _adam_reference(p, target, steps, lr, b1, b2, eps, wd):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _quadratic_grads(p, target) + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat = m / (1 - b1 ** t)
        vhat = v / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _run(opt_cls, steps, device="cpu", **kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3))
    target = rng.standard_normal((4, 3))
    p = nn.Parameter(minigan.tensor(p0, device=device).data)
    opt = opt_cls([p], **kw)
    t = minigan.tensor(target, device=device)
    for _ in range(steps):
        opt.zero_grad()
        ((p - t) * (p - t)).sum().backward()
        opt.step()
    return p0, target, p.numpy()


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_matches_formula_over_100_steps(device, wd):
    kw = dict(lr=1e-2, betas=(0.5, 0.999), eps=1e-8, weight_decay=wd)
    p0, target, got = _run(Adam, 100, device, **kw)
    ref = _adam_reference(p0, target, 100, 1e-2, 0.5, 0.999, 1e-8, wd)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 0.01),
                                                  (0.9, True, 0.0)])
def test_sgd_matches_formula_over_100_steps(device, momentum, nesterov, wd):
    p0, target, got = _run(SGD, 100, device, lr=1e-2, momentum=momentum, nesterov=nesterov,
                           weight_decay=wd)
    p, buf = p0.copy(), None
    for _ in range(100):
        g = _quadratic_grads(p, target) + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - 1e-2 * g
    np.testing.assert_allclose(got, p, rtol=1e-6, atol=1e-9)


def _model_and_data(seed=0):
    minigan.manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    rng = np.random.default_rng(seed)
    x = minigan.tensor(rng.standard_normal((32, 5)).astype(np.float32))
    y = minigan.tensor(rng.standard_normal((32, 1)).astype(np.float32))
    return net, x, y


def _train(net, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("opt_cls,kw", [(Adam, dict(lr=1e-2, betas=(0.5, 0.9))),
                                        (SGD, dict(lr=1e-2, momentum=0.9))])
def test_optimizer_continues_bit_exactly_after_reload(opt_cls, kw):
    net, x, y = _model_and_data()
    opt = opt_cls(net.parameters(), **kw)
    _train(net, opt, x, y, 10)
    saved_model = {k: v.copy() for k, v in net.state_dict().items()}
    saved_opt = opt.state_dict()
    saved_opt = {"state": {i: {k: (v.copy() if hasattr(v, "copy") else v) for k, v in s.items()}
                           for i, s in saved_opt["state"].items()},
                 "param_groups": saved_opt["param_groups"]}
    _train(net, opt, x, y, 10)
    expected = {k: v.copy() for k, v in net.state_dict().items()}

    net2, _, _ = _model_and_data(seed=99)  # different init: everything must come from the state
    net2.load_state_dict(saved_model)
    opt2 = opt_cls(net2.parameters(), lr=0.5)  # wrong lr on purpose: the state restores it
    opt2.load_state_dict(saved_opt)
    _train(net2, opt2, x, y, 10)
    for k, v in net2.state_dict().items():
        np.testing.assert_array_equal(v, expected[k], err_msg=k)


def test_optimizer_state_mismatch_errors():
    net, _, _ = _model_and_data()
    opt = Adam(net.parameters())
    other = Adam(nn.Linear(5, 3).parameters())
    with pytest.raises(ValueError, match="parameters in the state"):
        opt.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="empty parameter list"):
        Adam([])
    with pytest.raises(ValueError, match="betas"):
        Adam(net.parameters(), betas=(1.5, 0.9))


@pytest.mark.parametrize("make, message", [
    (lambda p: Adam(p, lr=float("nan")), "Adam: invalid learning rate nan"),
    (lambda p: Adam(p, lr=-1e-3), "Adam: invalid learning rate -0.001"),
    (lambda p: Adam(p, eps=float("nan")), "Adam: invalid eps nan"),
    (lambda p: Adam(p, weight_decay=-0.1), "Adam: invalid weight_decay -0.1"),
    (lambda p: Adam(p, betas=(float("nan"), 0.9)), "Adam: betas must lie in"),
    (lambda p: SGD(p, lr=float("nan")), "SGD: invalid learning rate nan"),
    (lambda p: SGD(p, momentum=-0.5), "SGD: invalid momentum -0.5"),
    (lambda p: SGD(p, weight_decay=float("nan")), "SGD: invalid weight_decay nan"),
])
def test_optimizers_refuse_negative_and_nan_hyperparameters(make, message):
    """As torch.optim does (its checks read `not 0.0 <= x`, so NaN fails them): a NaN learning
    rate would otherwise turn every weight into NaN at the first step."""
    p = minigan.Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        make([p])
