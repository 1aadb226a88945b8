"""Adam and SGD kernels: 100 steps against plain-formula references, plus GPU-vs-NumPy parity."""
import math

import numpy as np
import pytest

from minigan import backend
from minigan.kernels import optim as KO

to_np = backend.to_numpy
STEPS = 100


def _grad(p, t, seed):
    """A gradient that depends on the parameter (a noisy quadratic), so errors would compound."""
    noise = np.random.default_rng(seed).standard_normal(p.shape)
    return (p - 1.0) * 0.5 + 0.1 * noise


def _adam_reference(p0, lr, b1, b2, eps, wd, steps=STEPS):
    """Adam as written in torch.optim.Adam's documentation, one Python float at a time."""
    p = [float(v) for v in p0.ravel()]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t in range(1, steps + 1):
        grads = _grad(np.array(p).reshape(p0.shape), t, t).ravel()
        for i in range(len(p)):
            g = grads[i] + wd * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            p[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
    return np.array(p).reshape(p0.shape), np.array(m).reshape(p0.shape), \
        np.array(v).reshape(p0.shape)


def _sgd_reference(p0, lr, momentum, wd, dampening, nesterov, steps=STEPS):
    p = p0.astype(np.float64).copy()
    buf = None
    for t in range(1, steps + 1):
        g = _grad(p, t, t) + wd * p
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p, buf


ADAM_CASES = [  # lr, beta1, beta2, eps, weight_decay
    (1e-3, 0.9, 0.999, 1e-8, 0.0),
    (2e-4, 0.5, 0.999, 1e-8, 0.0),  # DCGAN
    (1e-2, 0.5, 0.9, 1e-6, 1e-2),
    (5e-3, 0.9, 0.99, 1e-8, 0.1),
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,b1,b2,eps,wd", ADAM_CASES)
def test_adam_100_steps(xp, dtype, tol, lr, b1, b2, eps, wd):
    p0 = np.random.default_rng(0).standard_normal((5, 4))
    p = xp.asarray(p0.astype(dtype))
    m, v = xp.zeros_like(p), xp.zeros_like(p)
    ids = (id(p), id(m), id(v))
    for t in range(1, STEPS + 1):
        g = xp.asarray(_grad(to_np(p).astype(np.float64), t, t).astype(dtype))
        assert KO.adam_step(p, g, m, v, t, lr, b1, b2, eps, wd) is None
    assert (id(p), id(m), id(v)) == ids and p.dtype == dtype
    p_ref, m_ref, v_ref = _adam_reference(p0.astype(dtype), lr, b1, b2, eps, wd)
    np.testing.assert_allclose(to_np(p), p_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_np(m), m_ref, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(to_np(v), v_ref, rtol=tol * 10, atol=tol)


def test_adam_first_step_moves_by_lr(xp):
    # After bias correction the first step is lr * g / (|g| + eps): lr * sign(g).
    p = xp.asarray(np.array([1.0, -2.0, 3.0]))
    g = xp.asarray(np.array([0.3, -5.0, 1e-3]))
    KO.adam_step(p, g, xp.zeros_like(p), xp.zeros_like(p), 1, 0.1, 0.9, 0.999, 1e-12, 0.0)
    np.testing.assert_allclose(to_np(p), [0.9, -1.9, 2.9], rtol=1e-8)
    with pytest.raises(ValueError):
        KO.adam_step(p, g, xp.zeros_like(p), xp.zeros_like(p), 0, 0.1, 0.9, 0.999, 1e-8, 0.0)


def test_adam_multi_matches_single(xp):
    rng = np.random.default_rng(1)
    shapes = [(3, 2), (5,), (2, 2, 2)]
    ps = [xp.asarray(rng.standard_normal(s)) for s in shapes]
    qs = [p.copy() for p in ps]
    ms, vs = [xp.zeros_like(p) for p in ps], [xp.zeros_like(p) for p in ps]
    mq, vq = [xp.zeros_like(p) for p in ps], [xp.zeros_like(p) for p in ps]
    for t in range(1, 6):
        gs = [xp.asarray(rng.standard_normal(s)) for s in shapes]
        KO.adam_step_multi(ps, gs, ms, vs, t, 1e-2, 0.9, 0.999, 1e-8, 0.01)
        for q, g, m, v in zip(qs, gs, mq, vq):
            KO.adam_step(q, g, m, v, t, 1e-2, 0.9, 0.999, 1e-8, 0.01)
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(to_np(p), to_np(q))
    with pytest.raises(ValueError):
        KO.adam_step_multi(ps, gs[:1], ms, vs, 1, 1e-2, 0.9, 0.999, 1e-8)


SGD_CASES = [  # lr, momentum, weight_decay, dampening, nesterov
    (0.1, 0.0, 0.0, 0.0, False),
    (0.1, 0.0, 0.01, 0.0, False),
    (0.05, 0.9, 0.0, 0.0, False),
    (0.05, 0.9, 0.01, 0.0, False),
    (0.05, 0.9, 0.0, 0.0, True),
    (0.05, 0.9, 0.01, 0.0, True),
    (0.05, 0.5, 0.01, 0.1, False),
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,momentum,wd,dampening,nesterov", SGD_CASES)
def test_sgd_100_steps(xp, dtype, tol, lr, momentum, wd, dampening, nesterov):
    p0 = np.random.default_rng(0).standard_normal((5, 4))
    p = xp.asarray(p0.astype(dtype))
    buf = xp.full(p.shape, np.nan, dtype=dtype) if momentum else None  # first step overwrites
    for t in range(1, STEPS + 1):
        g = xp.asarray(_grad(to_np(p).astype(np.float64), t, t).astype(dtype))
        KO.sgd_step(p, g, buf, lr, momentum, wd, dampening, nesterov, t == 1)
    p_ref, buf_ref = _sgd_reference(p0.astype(dtype), lr, momentum, wd, dampening, nesterov)
    np.testing.assert_allclose(to_np(p), p_ref, rtol=tol, atol=tol)
    if momentum:
        np.testing.assert_allclose(to_np(buf), buf_ref, rtol=tol * 10, atol=tol * 10)


def test_sgd_momentum_needs_buffer(xp):
    p = xp.zeros(3)
    with pytest.raises(ValueError):
        KO.sgd_step(p, p, None, 0.1, 0.9)


def test_matches_torch_if_available():
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(0).standard_normal((4, 3))
    for make, ours in (
        (lambda q: torch.optim.Adam([q], lr=1e-2, betas=(0.5, 0.9), eps=1e-8, weight_decay=0.1),
         "adam"),
        (lambda q: torch.optim.SGD([q], lr=0.05, momentum=0.9, weight_decay=0.01,
                                   nesterov=True), "sgd"),
    ):
        q = torch.tensor(p0.copy(), requires_grad=True)
        opt = make(q)
        p, m, v, buf = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
        for t in range(1, 31):
            g = _grad(p, t, t)
            q.grad = torch.tensor(g)
            opt.step()
            if ours == "adam":
                KO.adam_step(p, g, m, v, t, 1e-2, 0.5, 0.9, 1e-8, 0.1)
            else:
                KO.sgd_step(p, g, buf, 0.05, 0.9, 0.01, 0.0, True, t == 1)
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-12, atol=1e-12)


# GPU vs NumPy parity, float32.

@pytest.mark.gpu
@pytest.mark.parametrize("lr,b1,b2,eps,wd", ADAM_CASES)
def test_adam_parity_cuda(cuda, lr, b1, b2, eps, wd):
    p0 = np.random.default_rng(2).standard_normal((37, 11)).astype(np.float32)
    pc, mc, vc = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    pg, mg, vg = cuda.asarray(p0), cuda.zeros_like(cuda.asarray(p0)), cuda.zeros(p0.shape,
                                                                                 np.float32)
    for t in range(1, STEPS + 1):
        g = _grad(pc.astype(np.float64), t, t).astype(np.float32)
        KO.adam_step(pc, g, mc, vc, t, lr, b1, b2, eps, wd)
        KO.adam_step(pg, cuda.asarray(g), mg, vg, t, lr, b1, b2, eps, wd)
    np.testing.assert_allclose(pg.get(), pc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mg.get(), mc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vg.get(), vc, rtol=1e-5, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.parametrize("lr,momentum,wd,dampening,nesterov", SGD_CASES)
def test_sgd_parity_cuda(cuda, lr, momentum, wd, dampening, nesterov):
    p0 = np.random.default_rng(2).standard_normal((37, 11)).astype(np.float32)
    pc, pg = p0.copy(), cuda.asarray(p0)
    bc = np.zeros_like(p0) if momentum else None
    bg = cuda.zeros_like(pg) if momentum else None
    for t in range(1, STEPS + 1):
        g = _grad(pc.astype(np.float64), t, t).astype(np.float32)
        KO.sgd_step(pc, g, bc, lr, momentum, wd, dampening, nesterov, t == 1)
        KO.sgd_step(pg, cuda.asarray(g), bg, lr, momentum, wd, dampening, nesterov, t == 1)
    np.testing.assert_allclose(pg.get(), pc, rtol=1e-5, atol=1e-6)
    if momentum:
        np.testing.assert_allclose(bg.get(), bc, rtol=1e-5, atol=1e-6)
