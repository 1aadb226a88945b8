"""Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop, LBFGS (minigan.optim.more) and the weight
averaging of minigan.optim.swa_utils.

Every update runs against a float64 NumPy reference of the textbook algorithm written out here
(as torch documents it), so the tests mean something without torch; where torch is installed
the optimizers also run beside torch.optim's with random hyperparameters, and torch's state
dicts load. The "cuda" cases run the same code on CuPy (with ``MINIGAN_EMULATE_GPU=1``, on the
CPU stand-in for CuPy, which also counts host synchronisations).
"""
import copy
import inspect
import math
import re

import numpy as np
import pytest

import minigan
from minigan import backend, nn
from minigan.optim import SGD
from minigan.optim.more import ASGD, LBFGS, Adadelta, Adamax, NAdam, RAdam, Rprop
from minigan.optim.swa_utils import (
    SWALR,
    AveragedModel,
    get_ema_avg_fn,
    get_ema_multi_avg_fn,
    get_swa_avg_fn,
    get_swa_multi_avg_fn,
    update_bn,
)

to_np = backend.to_numpy
OPTIMIZERS = {c.__name__: c for c in (Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop)}

# ----- references: the textbook algorithms, one step at a time, in float64


def _lerp(a, b, w):
    """torch.lerp: two forms, exact at either end."""
    return a + w * (b - a) if abs(w) < 0.5 else b - (b - a) * (1 - w)


def _f32(x):
    """torch keeps NAdam's mu_product and ASGD's eta and mu in float32 tensors."""
    return float(np.float32(x))


def _decay(g, p, weight_decay, maximize):
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay else g


def ref_adadelta(p, grad, steps, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    v, u = np.zeros_like(p), np.zeros_like(p)
    for k in range(steps):
        g = _decay(grad(p, k), p, weight_decay, maximize)
        v = rho * v + (1 - rho) * g * g
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx * dx
        p = p - lr * dx
    return p, {"step": steps, "square_avg": v, "acc_delta": u}


def ref_adamax(p, grad, steps, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
               maximize=False):
    b1, b2 = betas
    m, u = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _decay(grad(p, t - 1), p, weight_decay, maximize)
        m = _lerp(m, g, 1 - b1)
        u = np.maximum(b2 * u, np.abs(g) + eps)
        p = p - lr / (1 - b1 ** t) * m / u
    return p, {"step": steps, "exp_avg": m, "exp_inf": u}


def ref_nadam(p, grad, steps, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    m, v, mu_product = np.zeros_like(p), np.zeros_like(p), 1.0
    for t in range(1, steps + 1):
        g = -grad(p, t - 1) if maximize else grad(p, t - 1)
        if weight_decay and decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mu_product = _f32(np.float32(mu_product) * np.float32(mu))
        m = _lerp(m, g, 1 - b1)
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v / (1 - b2 ** t)) + eps
        p = p - lr * (1 - mu) / (1 - mu_product) * g / denom \
            - lr * mu_next / (1 - mu_product * mu_next) * m / denom
    return p, {"step": steps, "mu_product": mu_product, "exp_avg": m, "exp_avg_sq": v}


def ref_radam(p, grad, steps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    m, v = np.zeros_like(p), np.zeros_like(p)
    rho_inf = 2 / (1 - b2) - 1
    for t in range(1, steps + 1):
        g = -grad(p, t - 1) if maximize else grad(p, t - 1)
        if weight_decay and decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = _lerp(m, g, 1 - b1)
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho_t > 5:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                          / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            p = p - lr * m_hat * math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps) * r
        else:
            p = p - lr * m_hat
    return p, {"step": steps, "exp_avg": m, "exp_avg_sq": v}


def ref_asgd(p, grad, steps, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
             maximize=False):
    eta, mu, ax = _f32(lr), 1.0, np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _decay(grad(p, t - 1), p, weight_decay, maximize)
        p = p * (1 - lambd * eta) - eta * g
        ax = p.copy() if mu == 1 else ax + mu * (p - ax)
        eta = _f32(lr / (1 + lambd * lr * t) ** alpha)
        mu = _f32(1 / max(1, t - t0))
    return p, {"step": steps, "eta": eta, "mu": mu, "ax": ax}


def ref_rprop(p, grad, steps, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    etaminus, etaplus = etas
    prev, size = np.zeros_like(p), np.full_like(p, lr)
    for k in range(steps):
        g = -grad(p, k) if maximize else grad(p, k)
        s = np.sign(g * prev)
        size = np.clip(size * np.where(s > 0, etaplus, np.where(s < 0, etaminus, 1.0)),
                       *step_sizes)
        g = np.where(s < 0, 0.0, g)  # after a sign flip: no move, and the flip is forgotten
        p = p - np.sign(g) * size
        prev = g
    return p, {"step": steps, "prev": prev, "step_size": size}


REFERENCES = {"Adadelta": ref_adadelta, "Adamax": ref_adamax, "NAdam": ref_nadam,
              "RAdam": ref_radam, "ASGD": ref_asgd, "Rprop": ref_rprop}

CASES = [
    ("Adadelta", {}), ("Adadelta", {"lr": 0.5, "rho": 0.7, "eps": 1e-4, "weight_decay": 0.1}),
    ("Adadelta", {"maximize": True, "weight_decay": 0.05}),
    ("Adamax", {}), ("Adamax", {"lr": 0.05, "betas": (0.3, 0.8), "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.01, "betas": (0.6, 0.99), "maximize": True}),  # lerp's other form
    ("NAdam", {}), ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.02}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True,
               "maximize": True}),
    ("RAdam", {}), ("RAdam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01, "betas": (0.7, 0.5), "weight_decay": 0.1,  # rho_t <= 5 always
               "decoupled_weight_decay": True, "maximize": True}),
    ("ASGD", {}), ("ASGD", {"lr": 0.02, "lambd": 0.01, "alpha": 0.6, "t0": 10,
                            "weight_decay": 0.1}),
    ("ASGD", {"t0": 3, "maximize": True}),
    ("Rprop", {}), ("Rprop", {"lr": 0.1, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
    ("Rprop", {"maximize": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for n, kw in CASES]


def _grad_fn(target, seed=0):
    """A gradient that depends on the parameter (a noisy quadratic), so errors compound."""
    rng = np.random.default_rng(seed)
    noise = [rng.standard_normal(target.shape) for _ in range(200)]

    def grad(p, k):
        return 2.0 * (p - target) + 0.3 * noise[k]
    return grad


def _problem(shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), _grad_fn(rng.standard_normal(shape), seed + 1)


def _param(a, device="cpu", dtype=None):
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return nn.Parameter(minigan.tensor(a, device=device).data)


def _run(opt, params, grads, steps, device="cpu", start=0):
    for k in range(start, start + steps):
        for p, grad in zip(params, grads):
            p.grad = minigan.tensor(grad(p.numpy().astype(np.float64), k).astype(p.dtype),
                                    device=device)
        opt.step()


def _assert_state(st, ref_state, device, rtol=1e-11):
    assert set(st) == set(ref_state)  # torch's state names
    assert st["step"] == ref_state["step"] and isinstance(st["step"], int)
    for name, want in ref_state.items():
        got = st[name]
        if isinstance(want, np.ndarray):
            assert backend.device_of(got) == device, name
            np.testing.assert_allclose(to_np(got), want, rtol=rtol, atol=1e-13, err_msg=name)
        else:
            assert isinstance(got, (int, float)) and not hasattr(got, "shape"), name
            assert got == pytest.approx(want, rel=1e-12), name


# ----- the updates against the references, on both devices

@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_matches_the_textbook_reference_over_60_steps(device, name, kw):
    p0, grad = _problem()
    p = _param(p0, device)
    opt = OPTIMIZERS[name]([p], **kw)
    _run(opt, [p], [grad], 60, device)
    ref, ref_state = REFERENCES[name](p0, grad, 60, **kw)
    assert p.dtype == np.float64 and p.device == device
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-11, atol=1e-13)
    _assert_state(opt.state[p], ref_state, device)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_parameters_stay_float32_and_follow_the_reference(device, name):
    p0, grad = _problem((6, 5), seed=4)
    p = _param(p0, device, np.float32)
    kw = {"lr": 0.01} if name != "Adadelta" else {}
    opt = OPTIMIZERS[name]([p], **kw)
    _run(opt, [p], [grad], 20, device)
    ref, _ = REFERENCES[name](p0.astype(np.float32).astype(np.float64), grad, 20, **kw)
    assert p.dtype == np.float32
    for v in opt.state[p].values():
        if hasattr(v, "dtype"):
            assert v.dtype == np.float32
    np.testing.assert_allclose(p.numpy(), ref, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_maximize_equals_minimizing_the_negated_gradient(name):
    p0, grad = _problem(seed=5)
    a, b = _param(p0), _param(p0)
    opt_a = OPTIMIZERS[name]([a], maximize=True)
    opt_b = OPTIMIZERS[name]([b])
    _run(opt_a, [a], [lambda p, k: -grad(p, k)], 15)
    _run(opt_b, [b], [grad], 15)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_groups_have_their_own_hyperparameters_and_gradless_parameters_are_skipped():
    p0, grad = _problem(seed=6)
    a, b, frozen = _param(p0), _param(p0), _param(p0)
    opt = NAdam([{"params": [a, frozen]}, {"params": [b], "lr": 0.05, "betas": [0.5, 0.9]}],
                lr=0.01)
    assert opt.param_groups[1]["betas"] == (0.5, 0.9)  # a JSON list becomes torch's tuple
    _run(opt, [a, b], [grad, grad], 10)
    np.testing.assert_allclose(a.numpy(), ref_nadam(p0, grad, 10, lr=0.01)[0], rtol=1e-12)
    np.testing.assert_allclose(b.numpy(), ref_nadam(p0, grad, 10, lr=0.05,
                                                    betas=(0.5, 0.9))[0], rtol=1e-12)
    assert frozen not in opt.state and np.array_equal(frozen.numpy(), p0)


def test_adamax_and_rprop_follow_a_scheduler_as_torch_does():
    """Adamax reads the group's lr at every step; Rprop only at a parameter's first step."""
    from minigan.optim.lr_scheduler import StepLR
    p0, grad = _problem(seed=7)
    a, r = _param(p0), _param(p0)
    opt_a, opt_r = Adamax([a], lr=0.1), Rprop([r], lr=0.1)
    sa, sr = StepLR(opt_a, 1, gamma=0.5), StepLR(opt_r, 1, gamma=0.5)
    for k in range(5):
        _run(opt_a, [a], [grad], 1, start=k)
        _run(opt_r, [r], [grad], 1, start=k)
        sa.step()
        sr.step()
    b = _param(p0)
    opt_b = Adamax([b], lr=0.1)
    for k in range(5):
        _run(opt_b, [b], [grad], 1, start=k)
        opt_b.param_groups[0]["lr"] *= 0.5
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(r.numpy(), ref_rprop(p0, grad, 5, lr=0.1)[0], rtol=1e-13)


def test_a_step_changes_parameters_in_place_and_returns_the_closure_loss():
    p = _param(np.array([1.0, -2.0]))
    arr = p.data
    opt = RAdam([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    with minigan.no_grad():
        loss = opt.step(closure)  # the closure runs with grad mode on, as in torch
    assert float(loss) == 5.0 and p.data is arr and not np.array_equal(arr, [1.0, -2.0])


def test_a_bad_gradient_raises_and_changes_nothing():
    a, b = _param(np.ones(3)), _param(np.ones(2))
    opt = Adadelta([a, b])
    a.grad = minigan.tensor(np.ones(3))
    b.grad = minigan.tensor(np.ones(3))
    with pytest.raises(ValueError, match=re.escape("Adadelta: parameter of shape (2,) has a "
                                                   "gradient of shape (3,)")):
        opt.step()
    assert opt.state == {} and np.array_equal(a.numpy(), np.ones(3))


# ----- arguments

@pytest.mark.parametrize("make,message", [
    (lambda p: Adadelta(p, lr=-1.0), "Adadelta: invalid learning rate -1.0"),
    (lambda p: Adadelta(p, rho=1.5), "Adadelta: invalid rho 1.5"),
    (lambda p: Adadelta(p, eps=-1e-6), "Adadelta: invalid eps"),
    (lambda p: Adamax(p, betas=(1.0, 0.9)), "Adamax: betas must be two numbers in [0, 1)"),
    (lambda p: Adamax(p, weight_decay=-0.1), "Adamax: invalid weight_decay -0.1"),
    (lambda p: NAdam(p, momentum_decay=-1.0), "NAdam: invalid momentum_decay -1.0"),
    (lambda p: NAdam(p, eps=float("nan")), "NAdam: invalid eps nan"),
    (lambda p: RAdam(p, betas=(0.9, -0.1)), "RAdam: betas must be two numbers in [0, 1)"),
    (lambda p: ASGD(p, lr=-0.1), "ASGD: invalid learning rate -0.1"),
    (lambda p: ASGD(p, t0=float("inf")), "ASGD: invalid t0 inf"),
    (lambda p: Rprop(p, etas=(1.2, 0.5)), "Rprop: invalid etas (1.2, 0.5)"),
    (lambda p: Rprop(p, step_sizes=(1.0, 0.1)), "Rprop: invalid step_sizes (1.0, 0.1)"),
    (lambda p: LBFGS(p, lr=-1), "LBFGS: invalid learning rate -1"),
    (lambda p: LBFGS(p, history_size=0), "LBFGS: history_size must be a positive int, got 0"),
    (lambda p: LBFGS(p, max_iter=2.5), "LBFGS: max_iter must be a positive int, got 2.5"),
    (lambda p: LBFGS(p, line_search_fn="armijo"),
     "LBFGS: line_search_fn must be None or 'strong_wolfe', got 'armijo'"),
    (lambda p: Adadelta(p, foreach=True), "Adadelta: foreach=True is not implemented"),
    (lambda p: Adamax(p, capturable=True), "Adamax: capturable=True is not implemented"),
    (lambda p: NAdam(p, differentiable=True), "NAdam: differentiable=True is not implemented"),
    (lambda p: RAdam(p, foreach=True), "RAdam: foreach=True is not implemented"),
    (lambda p: ASGD(p, capturable=True), "ASGD: capturable=True is not implemented"),
    (lambda p: Rprop(p, differentiable=True), "Rprop: differentiable=True is not implemented"),
    (lambda p: Rprop([{"params": p, "amsgrad": False}]), "unknown key 'amsgrad'"),
    (lambda p: LBFGS([{"params": p[:1]}, {"params": p[1:]}]),
     "LBFGS doesn't support per-parameter options"),
])
def test_bad_arguments_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make([_param(np.zeros(3)), _param(np.zeros(2))])


def test_a_flag_that_is_not_a_bool_is_a_type_error():
    with pytest.raises(TypeError, match=re.escape(
            "NAdam: decoupled_weight_decay must be True or False, got 'yes'")):
        NAdam([_param(np.zeros(3))], decoupled_weight_decay="yes")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_torch_flags_at_their_defaults_are_accepted_and_dropped(name):
    opt = OPTIMIZERS[name]([_param(np.zeros(3))], foreach=False, capturable=False,
                           differentiable=False)
    assert not {"foreach", "capturable", "differentiable"} & set(opt.param_groups[0])


def test_lbfgs_needs_a_closure():
    opt = LBFGS([_param(np.zeros(3))])
    with pytest.raises(ValueError, match="LBFGS.step needs a closure"):
        opt.step()
    assert LBFGS([_param(np.zeros(3))], max_iter=8).defaults["max_eval"] == 10  # torch's 5/4


# ----- state dicts

@pytest.mark.parametrize("name,kw", CASES[::2], ids=IDS[::2])
def test_resume_from_a_state_dict_continues_bit_for_bit(device, name, kw):
    p0, grad = _problem(seed=9)
    a = _param(p0, device)
    opt = OPTIMIZERS[name]([a], **kw)
    _run(opt, [a], [grad], 10, device)
    sd = opt.state_dict()
    b = _param(a.numpy(), device)
    fresh = OPTIMIZERS[name]([b], lr=123.0)  # the loaded groups replace the constructor's
    fresh.load_state_dict(copy.deepcopy(sd))
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for k, v in fresh.state[b].items():
        if hasattr(v, "shape"):
            assert backend.device_of(v) == device and v is not sd["state"][0][k]
    _run(opt, [a], [grad], 10, device, start=10)
    _run(fresh, [b], [grad], 10, device, start=10)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_state_dict_checks_shapes_and_refuses_unknown_flags():
    opt = Rprop([_param(np.zeros(3))])
    _run(opt, list(opt.param_groups[0]["params"]), [lambda p, k: p + 1], 1)
    sd = opt.state_dict()
    bad = copy.deepcopy(sd)
    bad["state"][0]["step_size"] = np.zeros(4)
    with pytest.raises(ValueError, match=re.escape("state 'step_size' of parameter 0 has shape "
                                                   "(4,), the parameter has (3,)")):
        Rprop([_param(np.zeros(3))]).load_state_dict(bad)
    bad = copy.deepcopy(sd)
    bad["param_groups"][0]["foreach"] = True
    with pytest.raises(ValueError, match=re.escape("foreach=True is not implemented")):
        Rprop([_param(np.zeros(3))]).load_state_dict(bad)


def _quadratic(device="cpu", n=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    A = A @ A.T / n + np.eye(n)
    b = rng.standard_normal(n)
    x = _param(rng.standard_normal(n).astype(dtype), device)
    At, bt = minigan.tensor(A.astype(dtype), device=device), minigan.tensor(b.astype(dtype),
                                                                           device=device)

    def make_closure(opt):
        def closure():
            opt.zero_grad()
            loss = 0.5 * (x @ (At @ x)) - (bt * x).sum()
            loss.backward()
            return loss
        return closure
    return x, A, b, make_closure


def test_lbfgs_state_round_trips_and_continues_bit_for_bit(device):
    x, A, b, make_closure = _quadratic(device, seed=1)
    y = _param(x.numpy(), device)
    opt = LBFGS([x], lr=0.5, max_iter=3, history_size=2)
    opt.step(make_closure(opt))
    opt.step(make_closure(opt))
    sd = copy.deepcopy(opt.state_dict())
    assert set(sd["state"][0]) == {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps",
                                   "ro", "H_diag", "prev_flat_grad", "prev_loss", "al"}
    y.data[...] = x.data
    fresh = LBFGS([y])
    fresh.load_state_dict(sd)
    assert backend.device_of(fresh.state[y]["d"]) == device
    # the closures read the parameter they were made for: one for y
    At = minigan.tensor(A, device=device)
    bt = minigan.tensor(b, device=device)

    def closure_y():
        fresh.zero_grad()
        loss = 0.5 * (y @ (At @ y)) - (bt * y).sum()
        loss.backward()
        return loss
    opt.step(make_closure(opt))
    fresh.step(closure_y)
    np.testing.assert_array_equal(x.numpy(), y.numpy())


# ----- LBFGS against a NumPy reference of the fixed-step algorithm, and converging

def ref_lbfgs_step(x, fg, state, lr=1.0, max_iter=20, max_eval=25, tolerance_grad=1e-7,
                   tolerance_change=1e-9, history_size=100):
    """One torch-style LBFGS.step with a fixed step: the two-loop recursion over the last
    ``history_size`` pairs (s, y) kept only where s.y > 1e-10, H0 = s.y / y.y."""
    loss, g = fg(x)
    evals = 1
    if np.abs(g).max() <= tolerance_grad:
        return x
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state["n_iter"] = state.get("n_iter", 0) + 1
        if state["n_iter"] == 1:
            d, state["S"], state["Y"], state["H"] = -g, [], [], 1.0
        else:
            y, s = g - state["g_prev"], state["d"] * state["t"]
            if y @ s > 1e-10:
                state["S"], state["Y"] = (state["S"] + [s])[-history_size:], \
                    (state["Y"] + [y])[-history_size:]
                state["H"] = (y @ s) / (y @ y)
            q, alphas = -g, []
            for s_i, y_i in reversed(list(zip(state["S"], state["Y"]))):
                a = (s_i @ q) / (y_i @ s_i)
                q = q - a * y_i
                alphas.append(a)
            r = q * state["H"]
            for (s_i, y_i), a in zip(zip(state["S"], state["Y"]), reversed(alphas)):
                r = r + (a - (y_i @ r) / (y_i @ s_i)) * s_i
            d = r
        state["g_prev"], prev_loss = g, loss
        t = min(1.0, 1.0 / np.abs(g).sum()) * lr if state["n_iter"] == 1 else lr
        state["d"], state["t"] = d, t
        if g @ d > -tolerance_change:
            break
        x = x + t * d
        if n_iter == max_iter:
            break
        loss, g = fg(x)
        evals += 1
        if evals >= max_eval or np.abs(g).max() <= tolerance_grad \
                or np.abs(d * t).max() <= tolerance_change \
                or abs(loss - prev_loss) < tolerance_change:
            break
    return x


@pytest.mark.parametrize("kw", [{}, {"lr": 0.5, "max_iter": 4, "history_size": 2},
                                {"lr": 0.8, "max_iter": 7, "max_eval": 5}])
def test_lbfgs_matches_the_reference_with_a_fixed_step(device, kw):
    x, A, b, make_closure = _quadratic(device, seed=2)
    x0 = x.numpy().copy()
    opt = LBFGS([x], **kw)
    ref_kw = dict(kw)
    ref_kw.setdefault("max_eval", ref_kw.get("max_iter", 20) * 5 // 4)
    ref, state = x0, {}
    for _ in range(3):
        opt.step(make_closure(opt))
        ref = ref_lbfgs_step(ref, lambda v: (0.5 * v @ A @ v - b @ v, A @ v - b), state,
                             **ref_kw)
    np.testing.assert_allclose(x.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_minimises_the_rosenbrock_function(device, line_search_fn):
    p = _param(np.array([-1.2, 1.0, -0.5, 0.8]), device)
    opt = LBFGS([p], line_search_fn=line_search_fn, max_iter=50, lr=1 if line_search_fn
                else 0.5)

    def closure():
        opt.zero_grad()
        loss = (100 * (p[1:] - p[:-1] ** 2) ** 2 + (1 - p[:-1]) ** 2).sum()
        loss.backward()
        return loss
    for _ in range(20):
        opt.step(closure)
    np.testing.assert_allclose(p.numpy(), np.ones(4), atol=1e-4)
    assert opt.state[p]["func_evals"] >= opt.state[p]["n_iter"] > 0


# ----- a tiny training loop with each optimizer

@pytest.mark.parametrize("name", list(OPTIMIZERS) + ["LBFGS"])
def test_each_optimizer_trains_a_small_regression(device, name):
    minigan.manual_seed(0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    y = X @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    Xt, yt = minigan.tensor(X, device=device), minigan.tensor(y, device=device)
    model = nn.Linear(4, 1).double().to(device)
    kw = {"Adadelta": {"lr": 1.0, "eps": 1e-3}, "Adamax": {"lr": 0.05}, "NAdam": {"lr": 0.05},
          "RAdam": {"lr": 0.05}, "ASGD": {"lr": 0.05}, "Rprop": {"lr": 0.01},
          "LBFGS": {"line_search_fn": "strong_wolfe"}}[name]
    opt = (OPTIMIZERS.get(name) or LBFGS)(model.parameters(), **kw)

    def closure():
        opt.zero_grad()
        loss = ((model(Xt) - yt) ** 2).mean()
        loss.backward()
        return loss
    first = float(closure())
    for _ in range(5 if name == "LBFGS" else 150):
        opt.step(closure)
    assert float(closure()) < 0.05 * first


# ----- against torch itself (skipped where torch is missing)

def _torch_sd_as_numpy(sd):
    def conv(v):
        if isinstance(v, list):
            return [conv(a) for a in v]
        return v.detach().numpy().copy() if hasattr(v, "detach") else v
    return {"state": {i: {k: conv(v) for k, v in st.items()} for i, st in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


def _random_kwargs(name, rng):
    u = rng.uniform
    wd = float(rng.choice([0.0, u(0.0, 0.2)]))
    betas = (u(0.0, 0.95), u(0.5, 0.999))
    mx = bool(rng.integers(2))
    return {
        "Adadelta": {"lr": u(0.1, 2), "rho": u(0.5, 0.99), "eps": 10 ** u(-8, -3),
                     "weight_decay": wd, "maximize": mx},
        "Adamax": {"lr": u(1e-3, 0.05), "betas": betas, "eps": 10 ** u(-10, -4),
                   "weight_decay": wd, "maximize": mx},
        "NAdam": {"lr": u(1e-3, 0.05), "betas": betas, "eps": 10 ** u(-10, -4),
                  "weight_decay": wd, "momentum_decay": u(0, 0.02),
                  "decoupled_weight_decay": bool(rng.integers(2)), "maximize": mx},
        "RAdam": {"lr": u(1e-3, 0.05), "betas": betas, "eps": 10 ** u(-10, -4),
                  "weight_decay": wd, "decoupled_weight_decay": bool(rng.integers(2)),
                  "maximize": mx},
        "ASGD": {"lr": u(1e-3, 0.05), "lambd": 10 ** u(-5, -1), "alpha": u(0.5, 1),
                 "t0": float(rng.integers(0, 40)), "weight_decay": wd, "maximize": mx},
        "Rprop": {"lr": u(1e-3, 0.1), "etas": (u(0.2, 0.9), u(1.05, 2)),
                  "step_sizes": (10 ** u(-6, -3), u(0.05, 1)), "maximize": mx},
    }[name]


def _twins(torch, seed=0, sizes=((4, 3), (5,), (2, 2))):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s) for s in sizes]
    grads = [_grad_fn(rng.standard_normal(s), seed + 10 + i) for i, s in enumerate(sizes)]
    return grads, [nn.Parameter(a.copy()) for a in p0], \
        [torch.nn.Parameter(torch.tensor(a)) for a in p0]


def _both_steps(torch, opt, topt, ours, theirs, grads, k, skip=()):
    for j, (p, q, grad) in enumerate(zip(ours, theirs, grads)):
        if j not in skip:
            p.grad = minigan.tensor(grad(p.numpy(), k))
            q.grad = torch.tensor(grad(q.detach().numpy(), k))
    opt.step()
    topt.step()


def _assert_same_state(opt, topt, rtol=1e-12):
    sd, tsd = opt.state_dict(), _torch_sd_as_numpy(topt.state_dict())
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i, st in sd["state"].items():
        assert set(st) == set(tsd["state"][i])
        for k, v in st.items():
            np.testing.assert_allclose(np.asarray(v, dtype=np.float64),
                                       np.asarray(tsd["state"][i][k], dtype=np.float64),
                                       rtol=rtol, atol=1e-14, err_msg=k)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert set(tg) - set(g) <= {"foreach", "capturable", "differentiable"}
        assert {k: (tuple(v) if isinstance(v, list) and k != "params" else v)
                for k, v in tg.items() if k in g} == g


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_matches_torch_over_50_steps_with_random_hyperparameters(name, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(100 + seed)
    kw = _random_kwargs(name, rng)
    grads, ours, theirs = _twins(torch, seed)

    def groups(ps):  # two groups, the second with its own lr; parameter 1 never has a grad
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": kw["lr"] * 0.5}]
    opt = OPTIMIZERS[name](groups(ours), **kw)
    topt = getattr(torch.optim, name)(groups(theirs), **kw)
    for k in range(50):
        _both_steps(torch, opt, topt, ours, theirs, grads, k, skip=(1,))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    _assert_same_state(opt, topt, rtol=1e-11)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_matches_torch(name):
    torch = pytest.importorskip("torch")
    p0, grad = _problem((8, 5), seed=8)
    kw = {"lr": 0.01} if name != "Adadelta" else {}
    p = _param(p0, dtype=np.float32)
    q = torch.nn.Parameter(torch.tensor(p0.astype(np.float32)))
    opt, topt = OPTIMIZERS[name]([p], **kw), getattr(torch.optim, name)([q], **kw)
    for k in range(50):
        g = grad(p.numpy().astype(np.float64), k).astype(np.float32)
        p.grad, q.grad = minigan.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dicts_cross_over_both_ways(name):
    """torch's state dict loads here and continues as torch does; ours loads into torch."""
    torch = pytest.importorskip("torch")
    kw = _random_kwargs(name, np.random.default_rng(7))
    grads, ours, theirs = _twins(torch, seed=3)
    opt = OPTIMIZERS[name](ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    for k in range(8):
        _both_steps(torch, opt, topt, ours, theirs, grads, k)
    # torch -> minigan
    ours2 = [nn.Parameter(q.detach().numpy().copy()) for q in theirs]
    opt2 = OPTIMIZERS[name](ours2, lr=0.5)
    opt2.load_state_dict(_torch_sd_as_numpy(topt.state_dict()))
    # minigan -> torch
    theirs2 = [torch.nn.Parameter(torch.tensor(p.numpy())) for p in ours]
    topt2 = getattr(torch.optim, name)(theirs2, lr=0.5)
    sd = opt.state_dict()
    topt2.load_state_dict({"state": {i: {k: (torch.tensor(v) if hasattr(v, "shape") else v)
                                         for k, v in st.items()}
                                     for i, st in sd["state"].items()},
                           "param_groups": sd["param_groups"]})
    for k in range(8, 20):
        _both_steps(torch, opt, topt, ours, theirs, grads, k)
        _both_steps(torch, opt2, topt2, ours2, theirs2, grads, k)
    for group in (ours, ours2):
        for a, b in zip(group, theirs):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    for a, b in zip(theirs2, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)


@pytest.mark.parametrize("kw", [{}, {"line_search_fn": "strong_wolfe"},
                                {"lr": 0.5, "history_size": 3, "max_iter": 7},
                                {"history_size": 2, "max_iter": 9, "max_eval": 12,
                                 "line_search_fn": "strong_wolfe"}])
def test_lbfgs_matches_torch_on_rosenbrock_and_its_state_loads(kw):
    torch = pytest.importorskip("torch")

    def rosen(x):
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    x0 = np.random.default_rng(0).standard_normal(6) * 0.5
    p, q = nn.Parameter(x0.copy()), torch.nn.Parameter(torch.tensor(x0))
    opt, topt = LBFGS([p], **kw), torch.optim.LBFGS([q], **kw)

    def closures(o, to, pp, qq):
        def c():
            o.zero_grad()
            loss = rosen(pp)
            loss.backward()
            return loss

        def tc():
            to.zero_grad()
            loss = rosen(qq)
            loss.backward()
            return loss
        return c, tc
    c, tc = closures(opt, topt, p, q)
    for _ in range(4):
        assert float(opt.step(c)) == pytest.approx(float(topt.step(tc).detach()), rel=1e-9)
    np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12)
    st, tst = opt.state[p], topt.state[q]
    assert (st["func_evals"], st["n_iter"]) == (tst["func_evals"], tst["n_iter"])
    # torch's state continues here as there
    p2 = nn.Parameter(q.detach().numpy().copy())
    opt2 = LBFGS([p2], **kw)
    opt2.load_state_dict(_torch_sd_as_numpy(topt.state_dict()))
    c2, _ = closures(opt2, None, p2, None)
    for _ in range(3):
        opt2.step(c2)
        topt.step(tc)
    np.testing.assert_allclose(p2.numpy(), q.detach().numpy(), rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("name", list(OPTIMIZERS) + ["LBFGS"])
def test_constructor_signatures_match_torch(name):
    torch = pytest.importorskip("torch")
    ours = inspect.signature(OPTIMIZERS.get(name) or LBFGS).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    assert list(ours) == list(theirs)
    for arg in ours:
        assert ours[arg].kind == theirs[arg].kind, arg
        assert ours[arg].default == theirs[arg].default, arg


def test_torch_needs_the_float32_rounding_of_nadams_mu_product():
    """Without it NAdam drifts from torch by about 1e-8 in float64: the rounding is torch's."""
    torch = pytest.importorskip("torch")
    p0, grad = _problem(seed=11)
    q = torch.nn.Parameter(torch.tensor(p0))
    topt = torch.optim.NAdam([q], lr=0.05)
    for k in range(40):
        q.grad = torch.tensor(grad(q.detach().numpy(), k))
        topt.step()
    assert topt.state[q]["mu_product"].dtype == torch.float32
    np.testing.assert_allclose(q.detach().numpy(), ref_nadam(p0, grad, 40, lr=0.05)[0],
                               rtol=1e-12)


# ----- weight averaging

class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.bn(self.fc(x)).relu())


def _net(device, seed=0):
    minigan.manual_seed(seed)
    return _Net().double().to(device)


def _perturb(model, rng):
    for p in model.parameters():
        p.data[...] = p.data + backend.to_device(rng.standard_normal(p.shape), p.device)


def test_averaged_model_is_a_deep_copy_with_torchs_state_keys(device):
    model = _net(device)
    swa = AveragedModel(model)
    assert list(swa.state_dict()) == ["n_averaged"] + [f"module.{k}"
                                                       for k in model.state_dict()]
    for a, b in zip(swa.parameters(), model.parameters()):
        assert a is not b and not np.shares_memory(to_np(a.data), to_np(b.data)) \
            and a.device == device
        np.testing.assert_array_equal(to_np(a.data), to_np(b.data))
    assert isinstance(swa.n_averaged, np.ndarray) and swa.n_averaged.dtype == np.int64
    x = minigan.tensor(np.ones((2, 3)), device=device)
    swa.eval()
    model.eval()
    np.testing.assert_array_equal(swa(x).numpy(), model(x).numpy())


def test_averaged_model_on_another_device_keeps_its_count_on_the_host(device):
    model = _net("cpu")
    swa = AveragedModel(model, device=device)
    assert all(p.device == device for p in swa.parameters())
    swa.to(device)
    assert isinstance(swa.n_averaged, np.ndarray)
    swa.update_parameters(model)
    assert int(swa.n_averaged) == 1


@pytest.mark.parametrize("kind", ["multi", "single"])
def test_ema_of_a_generator_matches_the_hand_computation(device, kind):
    decay = 0.9
    model = _net(device)
    fn = {"multi": {"multi_avg_fn": get_ema_multi_avg_fn(decay)},
          "single": {"avg_fn": get_ema_avg_fn(decay)}}[kind]
    ema = AveragedModel(model, **fn)
    rng = np.random.default_rng(0)
    expected = None
    for _ in range(6):
        _perturb(model, rng)
        ema.update_parameters(model)
        current = [p.numpy().copy() for p in model.parameters()]
        expected = current if expected is None else \
            [decay * e + (1 - decay) * c for e, c in zip(expected, current)]
    assert int(ema.n_averaged) == 6
    for p, e in zip(ema.parameters(), expected):
        assert p.device == device
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-13, atol=1e-15)
    # the buffers are copied, not averaged, without use_buffers
    for b_ema, b in zip(ema.module.buffers(), model.buffers()):
        np.testing.assert_array_equal(to_np(b_ema), to_np(b))


@pytest.mark.parametrize("fn", [None, "avg_fn", "multi_avg_fn"])
def test_swa_is_the_mean_of_the_weights(device, fn):
    model = _net(device)
    kw = {} if fn is None else {fn: get_swa_avg_fn() if fn == "avg_fn"
                                else get_swa_multi_avg_fn()}
    swa = AveragedModel(model, **kw)
    rng = np.random.default_rng(1)
    seen = []
    for _ in range(5):
        _perturb(model, rng)
        swa.update_parameters(model)
        seen.append([p.numpy().copy() for p in model.parameters()])
    for i, p in enumerate(swa.parameters()):
        np.testing.assert_allclose(p.numpy(), np.mean([s[i] for s in seen], axis=0),
                                   rtol=1e-13, atol=1e-15)


def test_use_buffers_averages_the_buffers_too(device):
    model = _net(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    x = minigan.tensor(np.random.default_rng(2).standard_normal((8, 3)), device=device)
    model(x)  # moves the running statistics and counts a batch
    ema.update_parameters(model)  # the first update copies
    rm0 = to_np(model.bn.running_mean).copy()
    model(x * 2)
    ema.update_parameters(model)
    np.testing.assert_allclose(to_np(ema.module.bn.running_mean),
                               0.5 * rm0 + 0.5 * to_np(model.bn.running_mean), rtol=1e-13)
    # an integer buffer: the float average truncated, as torch's copy_ does
    assert to_np(ema.module.bn.num_batches_tracked) == 1  # int(0.5 * 1 + 0.5 * 2)
    assert ema.module.bn.num_batches_tracked.dtype == np.int64


def test_averaged_model_state_dict_round_trips_and_refuses_another_model():
    model = _net("cpu")
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    for _ in range(3):
        _perturb(model, np.random.default_rng(3))
        ema.update_parameters(model)
    other = AveragedModel(_net("cpu", seed=5))
    other.load_state_dict(copy.deepcopy(ema.state_dict()))
    assert int(other.n_averaged) == 3
    for a, b in zip(other.parameters(), ema.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="the averaged model has 6 parameters, the model 2"):
        ema.update_parameters(nn.Linear(3, 4).double())
    with pytest.raises(ValueError, match="give avg_fn or multi_avg_fn, not both"):
        AveragedModel(model, avg_fn=get_ema_avg_fn(), multi_avg_fn=get_ema_multi_avg_fn())
    with pytest.raises(ValueError, match=re.escape("Invalid decay value 1.5")):
        get_ema_multi_avg_fn(1.5)


def test_update_bn_recomputes_the_running_statistics(device):
    model = _net(device)
    model.bn.momentum = 0.3
    model.eval()
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((8, 3)) for _ in range(4)]
    loader = [(minigan.tensor(b, device=device), None) for b in batches]
    update_bn(loader, model)
    assert model.bn.momentum == 0.3 and not model.training  # both restored
    W, b = model.fc.weight.numpy(), model.fc.bias.numpy()
    feats = [x @ W.T + b for x in batches]
    # momentum None: the equal-weight average of the batch means and unbiased variances
    np.testing.assert_allclose(to_np(model.bn.running_mean),
                               np.mean([f.mean(0) for f in feats], axis=0), rtol=1e-12)
    np.testing.assert_allclose(to_np(model.bn.running_var),
                               np.mean([f.var(0, ddof=1) for f in feats], axis=0), rtol=1e-12)
    assert int(to_np(model.bn.num_batches_tracked)) == 4


def test_update_bn_moves_batches_and_skips_models_without_batch_norm():
    model = _net("cpu")
    update_bn([np.ones((4, 3))], model, device="cpu")  # arrays and a device are accepted
    np.testing.assert_allclose(to_np(model.bn.running_var), 0.0, atol=1e-12)
    lin = nn.Linear(3, 2)
    update_bn([object()], lin)  # nothing to update: the loader is not even read


def _swalr_expected(base, swa_lr, epochs, strategy, steps):
    f = (lambda t: t) if strategy == "linear" else (lambda t: (1 - math.cos(math.pi * t)) / 2)
    out = []
    for k in range(steps):
        a = f(max(0, min(1, k / max(1, epochs))))
        out.append(swa_lr * a + base * (1 - a))
    return out


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("epochs", [0, 1, 5])
def test_swalr_anneals_to_the_swa_lr(strategy, epochs):
    opt = SGD([{"params": [_param(np.zeros(2))], "lr": 0.1},
               {"params": [_param(np.zeros(2))], "lr": 0.4}])
    sched = SWALR(opt, swa_lr=[0.05, 0.01], anneal_epochs=epochs, anneal_strategy=strategy)
    got = [[g["lr"] for g in opt.param_groups]]
    for _ in range(9):
        opt.step()
        sched.step()
        got.append(sched.get_last_lr())
    for gi, (base, swa_lr) in enumerate([(0.1, 0.05), (0.4, 0.01)]):
        want = _swalr_expected(base, swa_lr, epochs, strategy, 10)
        if epochs == 0:
            want[0] = swa_lr  # torch's step count starts at 1 with no annealing
        np.testing.assert_allclose([lrs[gi] for lrs in got], want, rtol=1e-13)
    assert opt.param_groups[0]["swa_lr"] == 0.05


def test_swalr_state_and_the_optimizer_state_resume():
    p = _param(np.zeros(2))
    opt = SGD([p], lr=0.2)
    sched = SWALR(opt, swa_lr=0.05, anneal_epochs=6, anneal_strategy="linear")
    for _ in range(3):
        sched.step()
    osd, ssd = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    assert "anneal_func" not in ssd and ssd["_anneal_strategy"] == "linear"
    opt2 = SGD([_param(np.zeros(2))], lr=0.2)
    sched2 = SWALR(opt2, swa_lr=0.3, anneal_strategy="cos")
    opt2.load_state_dict(osd)  # its groups carry swa_lr, which the SWALR made acceptable
    sched2.load_state_dict(ssd)
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize("kw,message", [
    ({"swa_lr": 0.1, "anneal_strategy": "exp"}, "anneal_strategy must be one of 'cos' or"),
    ({"swa_lr": 0.1, "anneal_epochs": -1}, "anneal_epochs must be equal or greater than 0"),
    ({"swa_lr": 0.1, "anneal_epochs": 2.5}, "anneal_epochs must be equal or greater than 0"),
    ({"swa_lr": [0.1, 0.2]}, "swa_lr must have the same length as optimizer.param_groups"),
    ({"swa_lr": -0.1}, "swa_lr must be a finite number >= 0")])
def test_swalr_refuses_bad_arguments(kw, message):
    opt = SGD([_param(np.zeros(2))], lr=0.2)
    with pytest.raises(ValueError, match=re.escape(message)):
        SWALR(opt, **kw)
    assert "swa_lr" not in opt.param_groups[0]  # nothing changed


def test_swa_utils_match_torch():
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils as T
    rng = np.random.default_rng(0)
    W = [rng.standard_normal((4, 3)), rng.standard_normal(4)]
    ours, theirs = nn.Linear(3, 4).double(), torch.nn.Linear(3, 4).double()
    for mod in (ours, theirs):
        mod.weight.data[...] = torch.tensor(W[0]) if mod is theirs else W[0]
        mod.bias.data[...] = torch.tensor(W[1]) if mod is theirs else W[1]
    for fn, tfn in [({}, {}), ({"multi_avg_fn": get_ema_multi_avg_fn(0.7)},
                               {"multi_avg_fn": T.get_ema_multi_avg_fn(0.7)}),
                    ({"avg_fn": get_ema_avg_fn(0.7)}, {"avg_fn": T.get_ema_avg_fn(0.7)})]:
        a, ta = AveragedModel(ours, **fn), T.AveragedModel(theirs, **tfn)
        for k in range(5):
            delta = [rng.standard_normal(w.shape) for w in W]
            with torch.no_grad():
                for p, q, dlt in zip(ours.parameters(), theirs.parameters(), delta):
                    p.data[...] = p.data + dlt
                    q.add_(torch.tensor(dlt))
            a.update_parameters(ours)
            ta.update_parameters(theirs)
        sd, tsd = a.state_dict(), ta.state_dict()
        assert list(sd) == list(tsd)
        for k in sd:
            np.testing.assert_allclose(np.asarray(sd[k], dtype=np.float64),
                                       tsd[k].detach().numpy(), rtol=1e-15, atol=1e-15)
        b = AveragedModel(ours, **fn)
        b.load_state_dict(tsd)  # torch's state dict loads
        assert int(b.n_averaged) == 5
    # SWALR: the same lrs, and torch's scheduler state loads
    opt = SGD([_param(np.zeros(2))], lr=0.3)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.3)
    s = SWALR(opt, swa_lr=0.02, anneal_epochs=4)
    ts = T.SWALR(topt, swa_lr=0.02, anneal_epochs=4)
    for _ in range(3):
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == ts.get_last_lr()
    s2 = SWALR(SGD([_param(np.zeros(2))], lr=0.3), swa_lr=0.02, anneal_epochs=4)
    s2.optimizer.load_state_dict(opt.state_dict())
    s2.load_state_dict(ts.state_dict())
    for _ in range(3):
        s2.step()
        ts.step()
        assert s2.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-15)


# ----- the GPU path never waits on the device (emulated CuPy counts host reads)

@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_gpu_step_never_waits_on_the_device(emulated_gpu, name):
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    p0, grad = _problem(seed=12)
    p = _param(p0, "cuda")
    opt = OPTIMIZERS[name]([p], weight_decay=0.1) if name != "Rprop" else Rprop([p])
    for k in range(3):
        p.grad = minigan.tensor(cp.asarray(grad(p0, k)))
        E.LOG.clear()
        opt.step()
        assert E.LOG.syncs == {} and E.LOG.uploads == 0, name
    assert isinstance(p.data, cp.ndarray)


def test_lbfgs_refuses_parameters_on_two_devices(emulated_gpu):
    opt = LBFGS([_param(np.zeros(3)), _param(np.zeros(2), "cuda")])
    with pytest.raises(backend.DeviceError, match="LBFGS: all parameters must be on one "
                                                  "device"):
        opt.step(lambda: 0.0)


def test_an_ema_update_on_the_gpu_never_waits_on_the_device(emulated_gpu):
    from tests.kernels import emulated_cupy as E
    model = _net("cuda")
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.99))
    swa = AveragedModel(model)
    E.LOG.clear()
    for _ in range(3):
        ema.update_parameters(model)
        swa.update_parameters(model)
    assert E.LOG.syncs == {} and E.LOG.uploads == 0
    copied = copy.deepcopy(ema)  # deepcopy works on device arrays
    assert all(backend.is_cupy_array(p.data) for p in copied.parameters())


def test_torch_scheduler_entries_in_groups_load():
    """torch's OneCycleLR/CyclicLR/SWALR write entries into the optimizer's groups; a state
    saved with them loads (and keeps them), where any other unknown key is refused."""
    from minigan.optim import SGD
    p = _param(np.zeros(2))
    opt = SGD([p], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["param_groups"][0].update(max_lr=1.0, min_lr=0.01, max_momentum=0.95,
                                    base_momentum=0.85, swa_lr=0.05, initial_lr=0.1)
    opt.load_state_dict(state)
    assert opt.param_groups[0]["max_lr"] == 1.0 and opt.param_groups[0]["swa_lr"] == 0.05
    state["param_groups"][0]["warmup"] = 3
    with pytest.raises(ValueError, match="unknown key 'warmup'"):
        opt.load_state_dict(state)
