"""nn.utils: gradient clipping and spectral normalisation, against formulas and PyTorch."""
import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import backend
from minigan.nn.utils import (clip_grad_norm_, clip_grad_value_, remove_spectral_norm,
                              spectral_norm)
from minigan.nn.utils.spectral_norm import spectral_normalized
from minigan.testing import check_backward, check_double_backward

R = np.random.default_rng(5)


def _params_with_grads(device, scale=1.0):
    ps = []
    for shape in ((3, 4), (5,), (2, 2, 2)):
        p = nn.Parameter(minigan.tensor(R.standard_normal(shape), device=device))
        p.grad = minigan.tensor(R.standard_normal(shape) * scale, device=device)
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, float("inf")])
def test_clip_grad_norm_formula(norm_type, device):
    ps = _params_with_grads(device, scale=3.0)
    grads = [backend.to_numpy(p.grad.data).copy() for p in ps]
    flat = np.concatenate([g.ravel() for g in grads])
    total = np.abs(flat).max() if np.isinf(norm_type) else \
        (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    out = clip_grad_norm_(iter(ps), max_norm=1.5, norm_type=norm_type)
    assert isinstance(out, minigan.Tensor) and out.shape == () and out.device == device
    np.testing.assert_allclose(out.item(), total, rtol=1e-12)
    coef = min(1.5 / (total + 1e-6), 1.0)
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_alone_and_skips_missing_ones():
    ps = _params_with_grads("cpu", scale=1e-3)
    ps.append(nn.Parameter(minigan.tensor(np.ones(2))))  # no gradient
    before = [p.grad.numpy().copy() for p in ps[:3]]
    clip_grad_norm_(ps, 10.0)
    for p, g in zip(ps, before):
        np.testing.assert_array_equal(p.grad.numpy(), g)
    assert ps[3].grad is None
    assert clip_grad_norm_([], 1.0).item() == 0.0
    single = ps[0]
    assert clip_grad_norm_(single, 1e-9).item() > 0 and abs(
        np.linalg.norm(single.grad.numpy()) - 1e-9) < 1e-12


def test_clipping_is_in_place_but_never_scales_a_shared_gradient_twice():
    a = nn.Parameter(minigan.tensor(np.ones(3)))
    b = nn.Parameter(minigan.tensor(np.ones(3)))
    c = nn.Parameter(minigan.tensor(np.ones(3)))
    shared = minigan.tensor(np.full(3, 4.0))
    a.grad = b.grad = shared  # one array as two parameters' gradient
    c.grad = minigan.tensor(np.full(3, 4.0))
    own = c.grad.data
    clip_grad_norm_([a, b, c], 1.0)
    coef = 1.0 / (np.sqrt(9 * 16.0) + 1e-6)
    for p in (a, b, c):
        np.testing.assert_allclose(p.grad.numpy(), 4.0 * coef, rtol=1e-12)
    assert c.grad.data is own  # the parameter's own array, scaled in place as in PyTorch
    view = np.broadcast_to(np.full(1, 3.0), (3,))  # read-only: replaced, not written
    a.grad = minigan.Tensor(view)
    clip_grad_value_([a, c], 0.5)
    np.testing.assert_array_equal(a.grad.numpy(), 0.5)
    assert c.grad.data is own and np.all(view == 3.0)
    net = nn.Linear(2, 2)
    net.weight.grad = net.bias.grad = None
    g = minigan.tensor(np.ones((2, 2), np.float32))
    net.weight.grad = g
    net.zero_grad(set_to_none=False)
    assert net.weight.grad is g and np.all(g.numpy() == 0)


def test_clip_grad_norm_nonfinite():
    ps = _params_with_grads("cpu")
    ps[1].grad.data[0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):  # inf * 0 gives NaN gradients, as in PyTorch
        assert np.isinf(clip_grad_norm_(ps, 1.0).item())


def test_clip_grad_value(device):
    ps = _params_with_grads(device, scale=2.0)
    grads = [backend.to_numpy(p.grad.data).copy() for p in ps]
    assert clip_grad_value_(ps, clip_value=0.5) is None
    for p, g in zip(ps, grads):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(g, -0.5, 0.5))


def test_clip_grad_matches_torch():
    torch = pytest.importorskip("torch")
    for norm_type in (2.0, 1.0, float("inf")):
        ours = _params_with_grads("cpu", scale=2.0)
        theirs = [torch.tensor(p.numpy(), requires_grad=True) for p in ours]
        for t, p in zip(theirs, ours):
            t.grad = torch.tensor(p.grad.numpy())
        n1 = clip_grad_norm_(ours, 0.7, norm_type)
        n2 = torch.nn.utils.clip_grad_norm_(theirs, 0.7, norm_type)
        np.testing.assert_allclose(n1.item(), n2.item(), rtol=1e-12)
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


# ----------------------------------------------------------------------------- spectral norm

def _power_iteration_np(w, u, v, n, eps=1e-12):
    for _ in range(n):
        v = w.T @ u
        v = v / max(np.linalg.norm(v), eps)
        u = w @ v
        u = u / max(np.linalg.norm(u), eps)
    return u, v


def test_spectral_norm_registers_torchs_names():
    lin = spectral_norm(nn.Linear(4, 3))
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight_orig"]
    assert list(lin.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert lin.weight_u.shape == (3,) and lin.weight_v.shape == (4,)
    ct = spectral_norm(nn.ConvTranspose2d(2, 5, 3))  # dim 1: (out, in * kh * kw)
    assert ct.weight_u.shape == (5,) and ct.weight_v.shape == (18,)
    with pytest.raises(RuntimeError, match="two spectral_norm hooks"):
        spectral_norm(lin)
    with pytest.raises(ValueError, match="has no parameter 'kernel'"):
        spectral_norm(nn.Linear(2, 2), name="kernel")


@pytest.mark.parametrize("make,dim,n_iter", [
    (lambda: nn.Linear(4, 3), 0, 1),
    (lambda: nn.Conv2d(2, 3, 3), 0, 2),
    (lambda: nn.ConvTranspose2d(3, 2, 4, 2, 1), 1, 1),
])
def test_spectral_norm_formula(make, dim, n_iter, device):
    # seeded: how fast the power iteration converges depends on the weights' two largest
    # singular values, so weights left to whatever earlier tests drew could need more steps
    minigan.manual_seed(12)
    m = spectral_norm(make().double().to(device), n_power_iterations=n_iter)
    w = backend.to_numpy(m.weight_orig.data)
    mat = np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1)
    u0, v0 = backend.to_numpy(m.weight_u).copy(), backend.to_numpy(m.weight_v).copy()
    shape = (2, w.shape[1] if dim == 0 else w.shape[0]) + ((5, 5) if w.ndim == 4 else ())
    x = minigan.tensor(R.standard_normal(shape), device=device)
    m(x)  # training: u and v take n_iter power-iteration steps, then W / (u^T W v)
    u, v = _power_iteration_np(mat, u0, v0, n_iter)
    np.testing.assert_allclose(backend.to_numpy(m.weight_u), u, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(m.weight_v), v, rtol=1e-12)
    np.testing.assert_allclose(m.weight.numpy(), w / (u @ mat @ v), rtol=1e-12)
    m.eval()
    m(x)  # evaluation: no iteration
    np.testing.assert_allclose(backend.to_numpy(m.weight_u), u, rtol=1e-12)
    # many iterations converge to the largest singular value
    m.train()
    for _ in range(300):
        m(x)
    np.testing.assert_allclose(np.linalg.norm(m.weight.numpy().reshape(mat.shape) if dim == 0
                                              else np.moveaxis(m.weight.numpy(), 1, 0)
                                              .reshape(mat.shape), 2), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dim", [0, 1])
def test_spectral_normalized_gradients_first_and_second_order(dim):
    w = R.standard_normal((3, 4, 2))
    u = R.standard_normal(w.shape[dim])
    v = R.standard_normal(w.size // w.shape[dim])

    def fn(weight):
        return spectral_normalized(weight, u, v, dim)

    check_backward(fn, [w], mode="jacobian")
    check_double_backward(fn, [w])


def test_spectral_norm_module_second_order():
    """A gradient penalty through a spectrally normalised layer (u, v fixed in eval mode)."""
    lin = spectral_norm(nn.Linear(3, 2).double()).eval()

    def penalty(x, w):
        lin._parameters["weight_orig"] = w
        if not x.requires_grad:  # the finite-difference passes give constants
            x = minigan.Tensor(x.data, requires_grad=True)
        y = lin(x)
        (gx,) = minigan.grad((y * y).sum(), x, create_graph=True)
        return (gx * gx).sum()

    x, w = R.standard_normal((4, 3)), R.standard_normal((2, 3))
    check_backward(penalty, [x, w])


def test_remove_spectral_norm():
    lin = spectral_norm(nn.Linear(4, 3).double())
    lin(minigan.tensor(R.standard_normal((2, 4))))
    expected = lin.weight.numpy().copy()
    remove_spectral_norm(lin)
    assert list(lin.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(lin.weight.numpy(), expected, rtol=1e-12)
    assert isinstance(lin.weight, nn.Parameter) and not lin._forward_pre_hooks
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found"):
        remove_spectral_norm(lin)


def test_spectral_norm_two_forwards_before_one_backward():
    """D(real) and D(fake), then one backward: each forward's sigma keeps its own u and v."""
    lin = spectral_norm(nn.Linear(3, 2).double())
    a, b = minigan.tensor(R.standard_normal((2, 3))), minigan.tensor(R.standard_normal((2, 3)))
    u0, v0 = lin.weight_u.copy(), lin.weight_v.copy()
    loss = lin(a).sum() + lin(b).sum()
    loss.backward()
    # the same, computed with the explicit u/v of each step
    w = lin.weight_orig.numpy()
    u1, v1 = _power_iteration_np(w, u0, v0, 1)
    u2, v2 = _power_iteration_np(w, u1, v1, 1)
    wt = minigan.tensor(w, requires_grad=True)
    ref = (minigan.nn.functional.linear(a, spectral_normalized(wt, u1, v1)).sum()
           + minigan.nn.functional.linear(b, spectral_normalized(wt, u2, v2)).sum())
    ref.backward()
    np.testing.assert_allclose(lin.weight_orig.grad.numpy(), wt.grad.numpy(), rtol=1e-12)


def test_spectral_norm_matches_torch():
    torch = pytest.importorskip("torch")
    tsn = torch.nn.utils.spectral_norm
    cases = [(lambda lib: lib.Linear(4, 3), (5, 4)),
             (lambda lib: lib.Conv2d(2, 3, 3, 1, 1), (2, 2, 5, 5)),
             (lambda lib: lib.ConvTranspose2d(3, 2, 4, 2, 1), (2, 3, 3, 3))]
    for make, xshape in cases:
        ours = spectral_norm(make(nn).double(), n_power_iterations=2)
        theirs = tsn(make(torch.nn).double(), n_power_iterations=2)
        with torch.no_grad():
            for name in ("weight_orig", "bias"):
                getattr(theirs, name).copy_(torch.tensor(getattr(ours, name).numpy()))
            theirs.weight_u.copy_(torch.tensor(ours.weight_u))
            theirs.weight_v.copy_(torch.tensor(ours.weight_v))
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for step in range(3):
            if step == 2:
                ours.eval(), theirs.eval()
            xa = R.standard_normal(xshape)
            x = minigan.tensor(xa, requires_grad=True)
            tx = torch.tensor(xa, requires_grad=True)
            y, ty = ours(x), theirs(tx)
            np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
            # a gradient penalty: second order through W / sigma
            (gx,) = minigan.grad((y * y).sum(), x, create_graph=True)
            (tgx,) = torch.autograd.grad((ty * ty).sum(), tx, create_graph=True)
            ours.zero_grad(), theirs.zero_grad()
            ((gx * gx).sum() + y.sum()).backward()
            ((tgx * tgx).sum() + ty.sum()).backward()
            np.testing.assert_allclose(ours.weight_orig.grad.numpy(),
                                       theirs.weight_orig.grad.numpy(), rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(ours.weight_u, theirs.weight_u.numpy(), rtol=1e-10)
        ours2 = spectral_norm(make(nn).double())
        ours2.load_state_dict(theirs.state_dict())
        np.testing.assert_allclose(ours2.weight_v, theirs.weight_v.numpy())


def test_clip_grad_norm_of_float16_gradients_takes_the_norm_in_float32():
    p = minigan.nn.Parameter(np.ones(4, np.float16))
    p.grad = minigan.tensor(np.full(4, 300, np.float16))
    total = minigan.nn.utils.clip_grad_norm_([p], 1.0)
    assert abs(float(total) - 600.0) < 0.5
    np.testing.assert_allclose(p.grad.numpy(), 0.5, rtol=1e-3)
    assert p.grad.dtype == np.float16
