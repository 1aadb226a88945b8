"""The first-order backward shortcut.

Without ``create_graph`` the backward formulas of Linear, MatMul, Reshape, Transpose, Sum,
LeakyReLU, Conv2d, ConvTranspose2d and UnitNormPenalty work on arrays directly instead of through
differentiable ops. These tests hold the shortcut to the graph-building formulas (the path
``create_graph=True`` takes, which the second-order gradient checks cover), on both devices,
in float64, and check that it really skips the op layer.
"""
import numpy as np
import pytest

import minigan
import minigan.autograd as ag
import minigan.nn.functional as F
from minigan import backend

CONV_CASES = [  # (stride, padding, dilation, output_padding) for the transposed conv
    ((1, 1), (0, 0), (1, 1), (0, 0)),
    ((2, 2), (1, 1), (1, 1), (1, 1)),
    ((2, 3), (0, 1), (2, 1), (1, 0)),
    ((1, 1), (0, 0), (2, 2), (1, 1)),  # output_padding >= stride: the gradient is cropped
]


def _both_paths(fn, inputs):
    """Gradients of sum(fn(*inputs) * r) with and without create_graph."""
    out = []
    for create_graph in (False, True):
        ts = [minigan.Tensor(a.copy(), requires_grad=True) for a in inputs]
        y = fn(*ts)
        r = minigan.Tensor(backend.xp_for(backend.device_of(inputs[0]))
                           .linspace(-1.0, 1.0, y.size).reshape(y.shape))
        gs = minigan.grad([(y * r).sum()], ts, create_graph=create_graph)
        out.append([backend.to_numpy(g.data) for g in gs])
    return out


def _assert_same(fast, graph):
    assert len(fast) == len(graph)
    for a, b in zip(fast, graph):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_fast_path_matches_graph_path(device, xp, rng, bias):
    x = xp.asarray(rng.standard_normal((5, 3)))
    w = xp.asarray(rng.standard_normal((4, 3)))
    args = [x, w] + ([xp.asarray(rng.standard_normal(4))] if bias else [])
    _assert_same(*_both_paths(lambda *t: F.linear(*t), args))
    x3 = xp.asarray(rng.standard_normal((2, 5, 3)))  # leading dims go through reshape
    _assert_same(*_both_paths(lambda *t: F.linear(*t), [x3] + args[1:]))


def test_matmul_reshape_transpose_leaky_relu_fast_paths(device, xp, rng):
    a = xp.asarray(rng.standard_normal((4, 6)))
    b = xp.asarray(rng.standard_normal((3, 4)))

    def f(a, b):
        h = F.leaky_relu(F.matmul(a.T, b.T), 0.2)  # (6, 3)
        return F.reshape(h, (3, 6)) * 2.0

    _assert_same(*_both_paths(f, [a, b]))


def test_unit_norm_penalty_fast_path_matches_graph_path(device, xp, rng):
    from minigan.functional.loss import unit_norm_penalty
    x = xp.asarray(rng.standard_normal((5, 7)) * 0.5)
    x[2] = 0.0  # a zero row: the norm is sqrt(eps)
    _assert_same(*_both_paths(lambda t: unit_norm_penalty(t, 10.0), [x]))
    _assert_same(*_both_paths(lambda t: unit_norm_penalty(t * 3.0, 0.5, eps=1e-4), [x]))


@pytest.mark.parametrize("stride,padding,dilation,output_padding", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv_fast_paths_match_graph_path(device, xp, rng, stride, padding, dilation,
                                          output_padding, bias):
    x = xp.asarray(rng.standard_normal((2, 3, 7, 6)))
    w = xp.asarray(rng.standard_normal((4, 3, 3, 2)))
    args = [x, w] + ([xp.asarray(rng.standard_normal(4))] if bias else [])
    _assert_same(*_both_paths(
        lambda *t: F.conv2d(*t, stride=stride, padding=padding, dilation=dilation), args))
    xt = xp.asarray(rng.standard_normal((2, 4, 4, 3)))
    wt = xp.asarray(rng.standard_normal((4, 3, 3, 2)))
    args_t = [xt, wt] + ([xp.asarray(rng.standard_normal(3))] if bias else [])
    _assert_same(*_both_paths(
        lambda *t: F.conv_transpose2d(*t, stride=stride, padding=padding,
                                      output_padding=output_padding, dilation=dilation),
        args_t))


def test_first_order_backward_skips_the_op_layer(monkeypatch, rng):
    """The shortcut is taken: a plain backward through linear, leaky_relu and the convs runs
    no differentiable op at all, while create_graph=True runs them all."""
    calls = []
    real_call = ag.Function.__call__

    def counting(self, *inputs):
        calls.append(type(self).__name__)
        return real_call(self, *inputs)

    x = minigan.Tensor(rng.standard_normal((2, 1, 6, 6)), requires_grad=True)
    w1 = minigan.Tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    w2 = minigan.Tensor(rng.standard_normal((3, 2, 4, 4)), requires_grad=True)
    w3 = minigan.Tensor(rng.standard_normal((5, 2 * 12 * 12)), requires_grad=True)

    def loss():
        h = F.leaky_relu(F.conv2d(x, w1, padding=1), 0.2)
        h = F.conv_transpose2d(h, w2, stride=2, padding=1)
        return F.linear(F.reshape(h, (2, -1)), w3).sum()

    counts = {}
    for create_graph in (False, True):
        y = loss()
        monkeypatch.setattr(ag.Function, "__call__", counting)
        calls.clear()
        minigan.grad([y], [x, w1, w2, w3], create_graph=create_graph)
        monkeypatch.setattr(ag.Function, "__call__", real_call)
        counts[create_graph] = list(calls)
    assert not any(c in counts[False] for c in
                   ("MatMul", "Transpose", "LeakyReLUGrad", "Conv2dGradWeight", "Conv2d",
                    "ConvTranspose2d", "Reshape", "BroadcastTo")), counts[False]
    assert {"MatMul", "LeakyReLUGrad", "Conv2dGradWeight", "ConvTranspose2d"} <= set(counts[True])


def test_gradient_accumulation_fast_path(monkeypatch, rng):
    """A tensor used twice gets the sum of its two gradients; without create_graph the sum is
    an array sum (no Add op), with it the sum is part of the graph (second order still right)."""
    a = rng.standard_normal((3, 4))
    calls = []
    real_call = ag.Function.__call__

    def counting(self, *inputs):
        calls.append(type(self).__name__)
        return real_call(self, *inputs)

    results = {}
    for create_graph in (False, True):
        x = minigan.Tensor(a.copy(), requires_grad=True)
        h = F.leaky_relu(x, 0.1)
        y = (h * h).sum() + (h * 3.0).sum()  # h reaches y along two paths
        monkeypatch.setattr(ag.Function, "__call__", counting)
        calls.clear()
        (gx,) = minigan.grad([y], [x], create_graph=create_graph)
        monkeypatch.setattr(ag.Function, "__call__", real_call)
        results[create_graph] = (gx, list(calls))
    slope = np.where(a > 0, 1.0, 0.1)
    h = a * slope
    expect = (2 * h + 3.0) * slope
    np.testing.assert_allclose(results[False][0].numpy(), expect, rtol=1e-12)
    np.testing.assert_allclose(results[True][0].numpy(), expect, rtol=1e-12)
    assert "Add" not in results[False][1]
    assert "Add" in results[True][1]
    gx = results[True][0]
    (ggx,) = minigan.grad([gx.sum()], [x])  # d/dx of sum((2h + 3) * s) = 2 s^2
    np.testing.assert_allclose(ggx.numpy(), 2 * slope ** 2, rtol=1e-12)
