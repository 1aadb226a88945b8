"""RMSprop and Adagrad: torch.optim's update rules, state names, validation and resume.

Every flag combination runs against a float64 NumPy reference of torch's algorithm written out
here (so the tests mean something without torch), and against torch.optim itself where torch is
installed. The "cuda" cases run the GPU kernels (with ``MINIGAN_EMULATE_GPU=1``, through the
CPU stand-in for CuPy); the generated CUDA sources are compiled by nvcc where it is installed.
"""
import inspect
import itertools
import json
import re
import shutil

import numpy as np
import pytest

import minigan
from minigan import backend, nn
from minigan.kernels import optim as KO
from minigan.optim import SGD, Adagrad, Adam, RMSprop
from minigan.optim.lr_scheduler import ExponentialLR, StepLR

to_np = backend.to_numpy

# ----- references: torch's algorithms (its documentation's pseudocode), one step at a time


def _grad_fn(target, seed=0):
    """A gradient that depends on the parameter (a noisy quadratic), so errors compound."""
    rng = np.random.default_rng(seed)
    noise = [rng.standard_normal(target.shape) for _ in range(200)]

    def grad(p, k):
        return 2.0 * (p - target) + 0.3 * noise[k]
    return grad


def _rmsprop_reference(p0, grad, steps, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0,
                       momentum=0.0, centered=False, maximize=False, lrs=None):
    """torch.optim.RMSprop in float64; ``lrs`` gives a learning rate per step."""
    p = p0.astype(np.float64).copy()
    sq, g_avg, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for k in range(steps):
        g = grad(p, k)
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            w = 1 - alpha  # torch's lerp: the form depends on the weight
            g_avg = g_avg + w * (g - g_avg) if abs(w) < 0.5 else g - (g - g_avg) * (1 - w)
            avg = np.sqrt(sq - g_avg * g_avg) + eps
        else:
            avg = np.sqrt(sq) + eps
        step_lr = lr if lrs is None else lrs[k]
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - step_lr * buf
        else:
            p = p - step_lr * (g / avg)
    state = {"step": steps, "square_avg": sq}
    if momentum > 0:
        state["momentum_buffer"] = buf
    if centered:
        state["grad_avg"] = g_avg
    return p, state


def _adagrad_reference(p0, grad, steps, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                       initial_accumulator_value=0.0, eps=1e-10, maximize=False, lrs=None):
    """torch.optim.Adagrad in float64; ``lrs`` gives a learning rate per step."""
    p = p0.astype(np.float64).copy()
    acc = np.full_like(p, initial_accumulator_value)
    for k in range(steps):
        g = grad(p, k)
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * p
        clr = (lr if lrs is None else lrs[k]) / (1 + k * lr_decay)  # k: the step count - 1
        acc = acc + g * g
        p = p - clr * g / (np.sqrt(acc) + eps)
    return p, {"step": steps, "sum": acc}


def _param(a, device="cpu", dtype=None):
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return nn.Parameter(minigan.tensor(a, device=device).data)


def _run(opt, params, grads, steps, device="cpu", start=0, scheduler=None):
    """``steps`` steps, gradient k of parameter j ``grads[j](p_j, k)`` set by hand."""
    for k in range(start, start + steps):
        for p, grad in zip(params, grads):
            p.grad = minigan.tensor(grad(p.numpy().astype(np.float64), k).astype(p.dtype),
                                    device=device)
        opt.step()
        if scheduler is not None:
            scheduler.step()


def _problem(shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), _grad_fn(rng.standard_normal(shape), seed + 1)


# every RMSprop flag combination: centered, momentum, weight_decay, maximize
RMSPROP_FLAGS = [{"centered": c, "momentum": m, "weight_decay": wd, "maximize": mx}
                 for c, m, wd, mx in itertools.product((False, True), (0.0, 0.9), (0.0, 0.1),
                                                       (False, True))]
RMSPROP_IDS = ["-".join(f"{k}={v}" for k, v in kw.items()) for kw in RMSPROP_FLAGS]
ADAGRAD_FLAGS = [{"lr_decay": ld, "weight_decay": wd, "initial_accumulator_value": iv,
                  "maximize": mx}
                 for ld, wd, iv, mx in itertools.product((0.0, 0.05), (0.0, 0.1), (0.0, 0.5),
                                                         (False, True))]
ADAGRAD_IDS = ["-".join(f"{k}={v}" for k, v in kw.items()) for kw in ADAGRAD_FLAGS]


# ----- the update against the references, on both devices and both GPU paths

@pytest.mark.parametrize("foreach", [None, False])  # GPU: multi-tensor or per-parameter kernel
@pytest.mark.parametrize("kw", RMSPROP_FLAGS, ids=RMSPROP_IDS)
def test_rmsprop_matches_reference_over_100_steps(device, kw, foreach):
    p0, grad = _problem()
    p = _param(p0, device)
    opt = RMSprop([p], lr=1e-2, alpha=0.9, foreach=foreach, **kw)
    _run(opt, [p], [grad], 100, device)
    ref, ref_state = _rmsprop_reference(p0, grad, 100, lr=1e-2, alpha=0.9, **kw)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-11, atol=1e-13)
    st = opt.state[p]
    assert set(st) == set(ref_state)  # torch's state names, and only those the group uses
    assert st["step"] == 100
    for name in ref_state:
        if name != "step":
            assert st[name].dtype == np.float64 and backend.device_of(st[name]) == device
            np.testing.assert_allclose(to_np(st[name]), ref_state[name], rtol=1e-11,
                                       atol=1e-13, err_msg=name)


@pytest.mark.parametrize("alpha", [0.9, 0.3, 0.5])  # lerp's two forms (weight below 0.5 or not)
def test_centered_rmsprop_rounds_its_mean_as_torch_lerp(device, alpha):
    """The two forms of lerp differ in the last bits. On the CPU the update does the
    reference's operations in its order, so the numbers are the same to the bit; a GPU may fuse
    a product and a sum into one rounding."""
    p0, grad = _problem(seed=3)
    p = _param(p0, device)
    opt = RMSprop([p], lr=1e-3, alpha=alpha, centered=True, momentum=0.5)
    _run(opt, [p], [grad], 30, device)
    ref, ref_state = _rmsprop_reference(p0, grad, 30, lr=1e-3, alpha=alpha, centered=True,
                                        momentum=0.5)
    if device == "cpu":
        np.testing.assert_array_equal(opt.state[p]["grad_avg"], ref_state["grad_avg"])
        np.testing.assert_array_equal(p.numpy(), ref)
    np.testing.assert_allclose(to_np(opt.state[p]["grad_avg"]), ref_state["grad_avg"],
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("foreach", [None, False])
@pytest.mark.parametrize("kw", ADAGRAD_FLAGS, ids=ADAGRAD_IDS)
def test_adagrad_matches_reference_over_100_steps(device, kw, foreach):
    p0, grad = _problem(seed=2)
    p = _param(p0, device)
    opt = Adagrad([p], lr=0.1, foreach=foreach, **kw)
    _run(opt, [p], [grad], 100, device)
    ref, ref_state = _adagrad_reference(p0, grad, 100, lr=0.1, **kw)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-11, atol=1e-13)
    assert set(opt.state[p]) == {"step", "sum"} and opt.state[p]["step"] == 100
    np.testing.assert_allclose(to_np(opt.state[p]["sum"]), ref_state["sum"], rtol=1e-12)


@pytest.mark.parametrize("opt_cls,kw", [
    (RMSprop, {"lr": 1e-2, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
               "initial_accumulator_value": 0.1})])
def test_float32_parameters_stay_float32_and_follow_the_reference(device, opt_cls, kw):
    p0, grad = _problem(seed=4)
    p = _param(p0, device, np.float32)
    opt = opt_cls([p], **kw)
    _run(opt, [p], [grad], 30, device)
    assert p.dtype == np.float32
    assert all(v.dtype == np.float32 for k, v in opt.state[p].items() if k != "step")
    ref_fn = _rmsprop_reference if opt_cls is RMSprop else _adagrad_reference
    ref, _ = ref_fn(p0.astype(np.float32), grad, 30, **kw)
    np.testing.assert_allclose(p.numpy(), ref, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("opt_cls,kw", [
    (RMSprop, {"lr": 1e-2, "weight_decay": 0.1, "momentum": 0.5, "centered": True}),
    (RMSprop, {"lr": 1e-2}),
    (Adagrad, {"lr": 0.1, "weight_decay": 0.1, "lr_decay": 0.1})])
def test_maximize_equals_minimizing_the_negated_gradient(device, opt_cls, kw):
    """torch's maximize negates the gradient before anything else (weight decay included); the
    gradient itself is left as it was."""
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((10, 4))
    p, q, r = (_param(np.full(4, 0.3), device) for _ in range(3))
    up, down = opt_cls([p], maximize=True, **kw), opt_cls([q], **kw)
    plain = opt_cls([r], **kw)
    for g in grads:
        p.grad, q.grad = minigan.tensor(g, device=device), minigan.tensor(-g, device=device)
        r.grad = minigan.tensor(g, device=device)
        up.step()
        down.step()
        plain.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())
    np.testing.assert_array_equal(p.grad.numpy(), grads[-1])
    assert np.abs(r.numpy() - p.numpy()).max() > 1e-3


# ----- hyperparameters and flags

@pytest.mark.parametrize("make, message", [
    (lambda p: RMSprop(p, lr=-1e-3), "RMSprop: invalid learning rate -0.001"),
    (lambda p: RMSprop(p, lr=float("nan")), "RMSprop: invalid learning rate nan"),
    (lambda p: RMSprop(p, alpha=-0.5), "RMSprop: invalid alpha -0.5"),
    (lambda p: RMSprop(p, eps=-1e-8), "RMSprop: invalid eps -1e-08"),
    (lambda p: RMSprop(p, momentum=-0.9), "RMSprop: invalid momentum -0.9"),
    (lambda p: RMSprop(p, weight_decay=float("nan")), "RMSprop: invalid weight_decay nan"),
    (lambda p: RMSprop([{"params": p, "alpha": -1.0}]),
     "RMSprop: parameter group 0: invalid alpha -1.0"),
    (lambda p: Adagrad(p, lr=-0.1), "Adagrad: invalid learning rate -0.1"),
    (lambda p: Adagrad(p, lr_decay=-0.1), "Adagrad: invalid lr_decay -0.1"),
    (lambda p: Adagrad(p, weight_decay=-0.1), "Adagrad: invalid weight_decay -0.1"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1.0),
     "Adagrad: invalid initial_accumulator_value -1.0"),
    (lambda p: Adagrad(p, eps=float("nan")), "Adagrad: invalid eps nan"),
    (lambda p: RMSprop(p, capturable=True),
     "RMSprop: capturable=True is not implemented by minigan's RMSprop"),
    (lambda p: RMSprop(p, differentiable=True), "RMSprop: differentiable=True is not implemented"),
    (lambda p: RMSprop(p, foreach="yes"), ("RMSprop: foreach must be None, True or False, got "
                                          "'yes'")),
    (lambda p: RMSprop([{"params": p, "capturable": True}]),
     "RMSprop: parameter group 0: capturable=True is not implemented"),
    (lambda p: RMSprop([{"params": p, "betas": (0.9, 0.9)}]),
     ("RMSprop: parameter group 0: unknown key 'betas'; supported keys are lr, momentum, alpha, "
      "eps, centered, weight_decay, foreach, maximize, plus param_names, initial_lr, and torch's "
      "flags only at their defaults (capturable=False, differentiable=False)")),
    (lambda p: Adagrad(p, fused=True), "Adagrad: fused=True is not implemented"),
    (lambda p: Adagrad(p, differentiable=True), "Adagrad: differentiable=True is not implemented"),
    (lambda p: Adagrad(p, foreach=1), "Adagrad: foreach must be None, True or False, got 1"),
    (lambda p: Adagrad([{"params": p, "momentum": 0.9}]),
     ("Adagrad: parameter group 0: unknown key 'momentum'; supported keys are lr, lr_decay, "
      "eps, weight_decay, initial_accumulator_value, foreach, maximize, plus")),
])
def test_bad_hyperparameters_and_flags_are_refused_by_name(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make([_param(np.zeros(3))])


def test_defaults_positional_order_and_torch_flags_at_their_defaults():
    p = _param(np.zeros(3))
    assert RMSprop([p]).defaults == {"lr": 1e-2, "momentum": 0, "alpha": 0.99, "eps": 1e-8,
                                         "centered": False, "weight_decay": 0, "foreach": None,
                                         "maximize": False}
    assert Adagrad([p]).defaults == {"lr": 1e-2, "lr_decay": 0, "eps": 1e-10, "weight_decay": 0,
                                         "initial_accumulator_value": 0, "foreach": None,
                                         "maximize": False}
    # torch's positional order: params, lr, alpha, eps, weight_decay, momentum, centered,
    # capturable, foreach, maximize, differentiable
    g = RMSprop([p], 1e-3, 0.9, 1e-6, 0.1, 0.5, True, False, True, True, False).param_groups[0]
    assert {k: v for k, v in g.items() if k != "params"} == {
        "lr": 1e-3, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1, "momentum": 0.5,
        "centered": True,
        "foreach": True, "maximize": True}
    # params, lr, lr_decay, weight_decay, initial_accumulator_value, eps, foreach
    g = Adagrad([p], 0.5, 0.1, 0.2, 0.3, 1e-6, False, maximize=True, differentiable=False,
                fused=None).param_groups[0]
    assert {k: v for k, v in g.items() if k != "params"} == {
        "lr": 0.5, "lr_decay": 0.1, "weight_decay": 0.2, "initial_accumulator_value": 0.3,
        "eps": 1e-6,
        "foreach": False, "maximize": True}
    text = repr(RMSprop([p], lr=0.1))
    assert text.startswith("RMSprop (\nParameter Group 0\n") and "    alpha: 0.99\n" in text


# ----- steps: skipped parameters, groups, closures, schedulers

def test_parameters_without_a_gradient_are_skipped():
    p0, grad = _problem()
    p, frozen = _param(p0), _param(np.ones(3), dtype=np.float64)
    frozen.requires_grad = False
    for opt in (RMSprop([p, frozen], momentum=0.9, centered=True), Adagrad([p, frozen])):
        _run(opt, [p], [grad], 3)
        np.testing.assert_array_equal(frozen.numpy(), np.ones(3))
        if isinstance(opt, RMSprop):
            assert frozen not in opt.state and opt.state[p]["step"] == 3
        else:  # Adagrad's state is made in the constructor, as torch's; a skip leaves it
            assert opt.state[frozen]["step"] == 0 and opt.state[p]["step"] == 3
            np.testing.assert_array_equal(opt.state[frozen]["sum"], np.zeros(3))
        assert list(opt.state_dict()["param_groups"][0]["params"]) == [0, 1]


def test_adagrad_state_is_made_in_the_constructor_like_torch():
    p, q = _param(np.zeros((2, 3)), dtype=np.float32), _param(np.zeros(4))
    opt = Adagrad([{"params": [p]}, {"params": [q], "initial_accumulator_value": 0.25}],
                  initial_accumulator_value=0.5)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1] and sd["state"][0]["step"] == 0
    assert sd["state"][0]["sum"].dtype == np.float32
    np.testing.assert_array_equal(sd["state"][0]["sum"], np.full((2, 3), 0.5))
    # the group's own value (torch would fill it with the constructor's 0.5)
    np.testing.assert_array_equal(sd["state"][1]["sum"], np.full(4, 0.25))


@pytest.mark.parametrize("opt_cls", [RMSprop, Adagrad])
def test_add_param_group_fills_defaults_and_steps_the_new_group(device, opt_cls):
    p0, grad = _problem()
    q0, qgrad = _problem((5,), seed=7)
    kw = {"momentum": 0.5} if opt_cls is RMSprop else {"initial_accumulator_value": 0.1}
    p, q = _param(p0, device), _param(q0, device)
    opt = opt_cls([p], lr=1e-2, **kw)
    _run(opt, [p], [grad], 3, device)
    opt.add_param_group({"params": [q], "lr": 3e-2})
    assert q not in opt.state  # made at its first step
    assert {k: v for k, v in opt.param_groups[1].items() if k not in ("params", "lr")} == \
        {k: v for k, v in opt.defaults.items() if k != "lr"}
    _run(opt, [p, q], [lambda a, k: grad(a, k + 3), qgrad], 4, device)
    ref_fn = _rmsprop_reference if opt_cls is RMSprop else _adagrad_reference
    np.testing.assert_allclose(p.numpy(), ref_fn(p0, grad, 7, lr=1e-2, **kw)[0], rtol=1e-12)
    np.testing.assert_allclose(q.numpy(), ref_fn(q0, qgrad, 4, lr=3e-2, **kw)[0], rtol=1e-12)
    assert opt.state[p]["step"] == 7 and opt.state[q]["step"] == 4
    with pytest.raises(ValueError, match="is already in parameter group 0"):
        opt.add_param_group({"params": [p]})


def test_a_group_that_turns_momentum_or_centering_on_later_gets_fresh_buffers():
    """torch would fail with a KeyError; here the buffer starts at zero, as at a first step."""
    p0, grad = _problem()
    p, q = _param(p0), _param(p0)
    opt, ref = RMSprop([p], lr=1e-2), RMSprop([q], lr=1e-2)
    _run(opt, [p], [grad], 2)
    _run(ref, [q], [grad], 2)
    opt.param_groups[0].update(momentum=0.9, centered=True)
    _run(opt, [p], [grad], 2, start=2)
    assert set(opt.state[p]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    assert np.abs(p.numpy() - q.numpy()).max() > 0  # the new settings act


@pytest.mark.parametrize("opt_cls", [RMSprop, Adagrad])
def test_zero_grad_and_closure(opt_cls):
    p = _param(np.array([1.0, -2.0]))
    opt = opt_cls([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.numpy()) == 5.0
    # both first steps move each entry by lr * g / |g| (RMSprop: divided by sqrt(1 - alpha))
    scale = 0.1 / np.sqrt(0.01) if opt_cls is RMSprop else 0.1
    np.testing.assert_allclose(p.numpy(), [1.0 - scale, -2.0 + scale], rtol=1e-6, atol=1e-6)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("opt_cls", [RMSprop, Adagrad])
def test_a_graph_recorded_before_the_step_refuses_to_backward_after_it(opt_cls):
    """The step changes the parameters in place, and says so (as torch's version counter)."""
    p = _param(np.array([1.0, -2.0]))
    opt = opt_cls([p], lr=0.1)
    p.grad = minigan.tensor(np.array([0.5, 0.5]))
    loss = (p * p).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="changed in place after the forward"):
        loss.backward()


@pytest.mark.parametrize("opt_cls,kw", [(RMSprop, {"momentum": 0.9, "centered": True}),
                                        (Adagrad, {"lr_decay": 0.1})])
def test_learning_rate_schedulers_drive_the_learning_rate(device, opt_cls, kw):
    p0, grad = _problem()
    p = _param(p0, device)
    opt = opt_cls([p], lr=0.05, **kw)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    _run(opt, [p], [grad], 10, device, scheduler=sched)
    lrs = [0.05 * 0.5 ** (k // 3) for k in range(10)]  # the lr of step k
    ref_fn = _rmsprop_reference if opt_cls is RMSprop else _adagrad_reference
    ref, _ = ref_fn(p0, grad, 10, lrs=lrs, **kw)
    np.testing.assert_allclose(p.numpy(), ref, rtol=1e-12, atol=1e-14)
    assert opt.param_groups[0]["lr"] == 0.05 * 0.5 ** 3


# ----- gradients that do not fit their parameter

@pytest.mark.parametrize("opt_cls", [RMSprop, Adagrad])
@pytest.mark.parametrize("foreach", [None, False])
def test_a_gradient_of_the_wrong_shape_raises_and_changes_nothing(device, opt_cls, foreach):
    a = _param(np.arange(3.0), device)
    b = _param(np.ones((2, 2)), device)
    opt = opt_cls([{"params": [a]}, {"params": [b]}], lr=0.1, foreach=foreach)
    before = {k: dict(v) for k, v in opt.state.items()}
    a.grad = minigan.ones(3, dtype=np.float64, device=device)
    b.grad = minigan.ones(4, dtype=np.float64, device=device)  # NumPy would broadcast a (1,)
    with pytest.raises(ValueError, match=re.escape(
            f"{opt_cls.__name__}: parameter of shape (2, 2) has a gradient of shape (4,); they "
            "must match")):
        opt.step()
    np.testing.assert_array_equal(a.numpy(), [0.0, 1.0, 2.0])  # checked before a moved
    assert {k: v["step"] for k, v in opt.state.items()} == {k: v["step"]
                                                            for k, v in before.items()}
    b.grad = minigan.ones((2, 2), dtype=np.float64, device=device)
    opt.step()
    assert opt.state[a]["step"] == opt.state[b]["step"] == 1


@pytest.mark.parametrize("opt_cls", [RMSprop, Adagrad])
def test_a_gradient_in_another_dtype_is_used_in_the_parameters(device, opt_cls):
    rng = np.random.default_rng(5)
    p0, g0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out = []
    for gdtype in (np.float32, np.float64):
        p = _param(p0, device, np.float32)
        opt = opt_cls([p], lr=0.1)
        for _ in range(3):
            p.grad = minigan.tensor(g0.astype(gdtype), device=device)
            opt.step()
        assert p.dtype == np.float32 and p.grad.dtype == gdtype
        out.append(p.numpy())
    np.testing.assert_array_equal(out[1], out[0])


@pytest.mark.parametrize("opt_cls", [RMSprop, Adagrad])
def test_a_gradient_on_another_device_than_its_parameter_is_named(emulated_gpu, opt_cls):
    cp = emulated_gpu
    gpu = nn.Parameter(minigan.Tensor(cp.zeros((2, 3), dtype=np.float32)))
    gpu.grad = minigan.Tensor(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(backend.DeviceError,
                       match=r"parameter of shape \(2, 3\) on cuda has its gradient on cpu"):
        opt_cls([gpu], lr=0.1).step()
    cpu = nn.Parameter(minigan.Tensor(np.zeros(4, dtype=np.float32)))
    cpu.grad = minigan.Tensor(cp.ones(4, dtype=np.float32))
    with pytest.raises(backend.DeviceError, match=r"on cpu has its gradient on cuda"):
        opt_cls([cpu], lr=0.1).step()
    np.testing.assert_array_equal(cpu.data, np.zeros(4))


def test_kernel_lists_are_checked_before_any_update(xp):
    ps = [xp.zeros(3), xp.zeros((2, 2))]
    gs = [xp.ones(3), xp.ones(4)]
    sq = [xp.zeros(3), xp.zeros((2, 2))]
    with pytest.raises(ValueError, match=re.escape(
            "rmsprop_step_multi: parameter 1 has shape (2, 2), its gradient (4,) and its state "
            "(2, 2); they must all match")):
        KO.rmsprop_step_multi(ps, gs, sq, None, None, 0.1, 0.9, 1e-8)
    with pytest.raises(ValueError, match=re.escape(
            "adagrad_step_multi: parameter 1 has shape (2, 2), its gradient (4,) and its state "
            "(2, 2); they must all match")):
        KO.adagrad_step_multi(ps, gs, sq, 1, 0.1)
    assert not to_np(ps[0]).any() and not to_np(sq[0]).any()
    with pytest.raises(ValueError, match="momentum > 0 needs momentum buffers"):
        KO.rmsprop_step_multi(ps, gs, sq, None, None, 0.1, 0.9, 1e-8, momentum=0.9)
    with pytest.raises(ValueError, match="differ in length"):
        KO.rmsprop_step_multi(ps, gs[:1], sq, None, None, 0.1, 0.9, 1e-8)
    with pytest.raises(ValueError, match="2 step counts for 1 parameters"):
        KO.adagrad_step_multi(ps[:1], gs[:1], sq[:1], [1, 2], 0.1)
    with pytest.raises(ValueError, match="step counts from 1, got 0"):
        KO.adagrad_step(ps[0], gs[0], sq[0], 0, 0.1)


# ----- state dicts: resume, torch's layout

def _copy_sd(sd):
    return {"state": {i: {k: (v.copy() if hasattr(v, "copy") else v) for k, v in s.items()}
                      for i, s in sd["state"].items()},
            "param_groups": json.loads(json.dumps(sd["param_groups"]))}


def _net(device, seed=0):
    minigan.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1)).to(device)


def _train(net, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("opt_cls,kw", [
    (RMSprop, {"lr": 1e-2}),
    (RMSprop, {"lr": 1e-2, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    (RMSprop, {"lr": 5e-3, "momentum": 0.5, "maximize": True, "foreach": False}),
    (Adagrad, {"lr": 0.1}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.01,
               "initial_accumulator_value": 0.1})])
def test_resume_continues_bit_for_bit(device, opt_cls, kw):
    """k steps, save, load into a fresh optimizer (built with a wrong lr: everything must come
    from the state, which went through JSON for its groups), k more: 2k steps in one go."""
    rng = np.random.default_rng(0)
    x = minigan.tensor(rng.standard_normal((16, 5)).astype(np.float32), device=device)
    y = minigan.tensor(rng.standard_normal((16, 1)).astype(np.float32), device=device)
    net = _net(device)
    opt = opt_cls(net.parameters(), **kw)
    sched = ExponentialLR(opt, gamma=0.9)
    for _ in range(5):
        _train(net, opt, x, y, 1)
        sched.step()
    saved_net = {k: v.copy() for k, v in net.state_dict().items()}
    saved_opt, saved_sched = _copy_sd(opt.state_dict()), sched.state_dict()
    for _ in range(5):
        _train(net, opt, x, y, 1)
        sched.step()
    expected = {k: to_np(v).copy() for k, v in net.state_dict().items()}

    net2 = _net(device, seed=99)
    net2.load_state_dict(saved_net)
    opt2 = opt_cls(net2.parameters(), lr=0.5, initial_accumulator_value=3.0) \
        if opt_cls is Adagrad else opt_cls(net2.parameters(), lr=0.5)
    opt2.load_state_dict(saved_opt)
    sched2 = ExponentialLR(opt2, gamma=0.9)
    sched2.load_state_dict(saved_sched)
    for _ in range(5):
        _train(net2, opt2, x, y, 1)
        sched2.step()
    for k, v in net2.state_dict().items():
        np.testing.assert_array_equal(to_np(v), expected[k], err_msg=k)
    assert [st["step"] for st in opt2.state.values()] == [10] * 4
    assert all(backend.device_of(a) == device for st in opt2.state.values()
               for n, a in st.items() if n != "step")


@pytest.mark.parametrize("make", [lambda p: RMSprop(p, lr=0.1, momentum=0.9, centered=True),
                                  lambda p: Adagrad(p, lr=0.1)], ids=["rmsprop", "adagrad"])
def test_a_scalar_parameters_state_survives_a_round_trip(device, make):
    grads = [0.3, -0.2, 0.5, 0.4, -0.1, 0.25]

    def run(reload_after):
        p = _param(np.array(1.5), device)
        opt = make([p])
        for i, gv in enumerate(grads):
            if i == reload_after:
                sd = opt.state_dict()
                opt = make([p])
                opt.load_state_dict(sd)
                assert all(getattr(v, "ndim", None) == 0 for k, v in opt.state[p].items()
                           if k != "step")
            p.grad = minigan.tensor(np.array(gv), device=device)
            opt.step()
        return p.numpy()

    np.testing.assert_array_equal(run(3), run(None))


def test_load_state_dict_checks_the_state_and_drops_torch_flags_at_their_defaults():
    p = _param(np.ones(3))
    opt = RMSprop([p], lr=0.5)
    group = {"lr": 0.1, "momentum": 0.9, "alpha": 0.9, "eps": 1e-8, "centered": True,
             "weight_decay": 0.0, "capturable": False, "foreach": None, "maximize": False,
             "differentiable": False, "params": [0]}
    state = {0: {"step": 4.0, "square_avg": np.ones(3), "momentum_buffer": np.zeros(3),
                 "grad_avg": np.zeros(2)}}
    with pytest.raises(ValueError, match=re.escape(
            "state 'grad_avg' of parameter 0 has shape (2,), the parameter has (3,)")):
        opt.load_state_dict({"state": state, "param_groups": [group]})
    assert opt.state == {} and opt.param_groups[0]["lr"] == 0.5  # nothing changed
    with pytest.raises(ValueError, match=re.escape(
            "RMSprop.load_state_dict: parameter group 0: capturable=True is not implemented")):
        opt.load_state_dict({"state": {}, "param_groups": [dict(group, capturable=True)]})
    state[0]["grad_avg"] = np.zeros(3)
    opt.load_state_dict({"state": state, "param_groups": [group]})
    g = opt.param_groups[0]
    assert "capturable" not in g and "differentiable" not in g and g["lr"] == 0.1
    assert opt.state[p]["step"] == 4 and isinstance(opt.state[p]["step"], int)


# ----- the GPU paths: launches, host synchronisations, CPU parity

def _gpu_params(cp, shapes, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    host = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return host, [nn.Parameter(minigan.Tensor(cp.asarray(h))) for h in host]


@pytest.mark.parametrize("opt_cls,kw,kernel", [
    (RMSprop, {}, "minigan_rmsprop_multi"),
    (RMSprop, {"momentum": 0.9, "centered": True}, "minigan_rmsprop_multi_centered_momentum"),
    (Adagrad, {"lr_decay": 0.1}, "minigan_adagrad_multi")])
def test_a_gpu_step_is_one_launch_and_never_waits_on_the_device(emulated_gpu, opt_cls, kw,
                                                                kernel):
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    _, params = _gpu_params(cp, [(3, 4), (5,), (2, 2, 2), (7,), (1,)])
    opt = opt_cls(params, lr=1e-2, **kw)
    grads = [minigan.Tensor(cp.ones(p.shape, dtype=np.float32)) for p in params]
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()  # the first step makes the state
    E.LOG.clear()
    opt.step()
    assert E.LOG.syncs == {} and E.LOG.uploads == 0
    assert dict(E.LOG.launches) == {("raw", kernel): 1}
    opt.param_groups[0]["foreach"] = False  # one fused kernel per parameter
    E.LOG.clear()
    opt.step()
    assert E.LOG.syncs == {}
    assert dict(E.LOG.launches) == {("elementwise", kernel.replace("_multi", "")): 5}


def test_multi_tensor_launches_split_and_leave_odd_tensors_to_the_fused_kernel(
        emulated_gpu, monkeypatch):
    """Few tensors per launch (4) and few blocks per tensor (3): the chunking and the grid-stride
    loop run with small arrays. A transposed view takes the per-parameter kernel, an empty
    tensor no kernel; all agree with the CPU."""
    from tests.kernels import emulated_cupy as E
    cp = emulated_gpu
    monkeypatch.setattr(KO, "_MULTI_MAX_TENSORS", 4)
    real = KO.multi_tensor_source
    monkeypatch.setattr(KO, "multi_tensor_source",
                        lambda *a, **k: real(*a, **{**k, "max_blocks": 3}))
    rng = np.random.default_rng(2)
    specs = [((1,), np.float32), ((3, 5), np.float32), ((1000,), np.float32),
             ((64, 37), np.float32), ((7,), np.float64), ((0, 4), np.float32),
             ((4, 6), np.float32), ((9,), np.float32)]
    host = [rng.standard_normal(s).astype(d) for s, d in specs]
    host.append(rng.standard_normal((6, 5)).astype(np.float32).T)
    for which in ("rmsprop", "adagrad"):
        cpu = [h.copy() for h in host]
        gpu = [cp.asarray(h) for h in host[:-1]] + [cp.asarray(host[-1].T).T]
        assert not gpu[-1].flags.c_contiguous
        states_c = [[np.full_like(h, 0.1) for h in host] for _ in range(3)]
        states_g = [[cp.asarray(s) for s in st[:-1]] + [cp.asarray(st[-1].T).T]
                    for st in states_c]
        E.LOG.clear()
        for t in range(1, 3):
            grads = [rng.standard_normal(h.shape).astype(h.dtype) for h in host]
            grads_g = [cp.asarray(g) for g in grads]
            if which == "rmsprop":
                for xs, gs, st in ((cpu, grads, states_c), (gpu, grads_g, states_g)):
                    KO.rmsprop_step_multi(xs, gs, *st, 1e-2, 0.9, 1e-8, 0.01, 0.9,
                                          maximize=True)
            else:
                for xs, gs, st in ((cpu, grads, states_c), (gpu, grads_g, states_g)):
                    KO.adagrad_step_multi(xs, gs, st[0], t, 0.1, 0.1, 1e-10, 0.01)
        fused = "minigan_rmsprop_centered_momentum" if which == "rmsprop" \
            else "minigan_adagrad"
        multi = fused.replace(f"minigan_{which}", f"minigan_{which}_multi")
        # per step: float32 (6 tensors, the empty one left out: launches of 4 and 2), float64
        # (1 launch); the transposed view through the fused kernel
        assert dict(E.LOG.launches) == {("raw", multi): 2 * 3, ("elementwise", fused): 2}
        for i, (c, g) in enumerate(zip(cpu, gpu)):
            tol = 1e-12 if c.dtype == np.float64 else 1e-6
            np.testing.assert_allclose(to_np(g), c, rtol=tol, atol=tol, err_msg=f"{which} {i}")


@pytest.mark.gpu
@pytest.mark.parametrize("opt_cls,kw", [
    (RMSprop, {"lr": 1e-3}),
    (RMSprop, {"lr": 1e-3, "momentum": 0.9, "centered": True, "weight_decay": 0.01,
               "maximize": True}),
    (Adagrad, {"lr": 1e-2, "lr_decay": 0.01, "weight_decay": 0.01,
               "initial_accumulator_value": 0.1})])
@pytest.mark.parametrize("foreach", [None, False])
def test_cpu_gpu_parity_float32(cuda, opt_cls, kw, foreach):
    """The same float32 training on the CPU and the GPU: equal to float32 rounding (a GPU
    contracts products into fused multiply-adds where NumPy rounds each)."""
    shapes = [(37, 11), (300,), (3, 3, 4)]
    host, dev = _gpu_params(cuda, shapes, seed=6)
    cpu = [nn.Parameter(h.copy()) for h in host]
    opts = [opt_cls(cpu, foreach=foreach, **kw), opt_cls(dev, foreach=foreach, **kw)]
    rng = np.random.default_rng(7)
    for _ in range(50):
        for a, b in zip(cpu, dev):
            g = (a.numpy() - 0.5 + 0.1 * rng.standard_normal(a.shape)).astype(np.float32)
            a.grad, b.grad = minigan.Tensor(g), minigan.Tensor(cuda.asarray(g))
        for o in opts:
            o.step()
    for a, b in zip(cpu, dev):
        np.testing.assert_allclose(to_np(b.data), a.numpy(), rtol=1e-5, atol=1e-6)
        for name, v in opts[0].state[a].items():
            if name != "step":
                np.testing.assert_allclose(to_np(opts[1].state[b][name]), v, rtol=1e-5,
                                           atol=1e-6, err_msg=name)


# ----- the CUDA sources

def _multi_sources():
    out = []
    for ctype in ("float", "double"):
        sizes = [7, 300, 100_000] + [5] * (KO._MULTI_MAX_TENSORS - 3)  # the largest launch
        for centered, momentum in itertools.product((False, True), repeat=2):
            out.append(KO.rmsprop_multi_source(ctype, sizes, centered, momentum))
        out.append(KO.adagrad_multi_source(ctype, sizes))
    return out


def test_multi_tensor_kernels_are_built_and_cached_by_their_builders(monkeypatch):
    """What tests/kernels/test_cuda_sources.py collects: the builders hand their sources to
    ``backend.raw_kernel``, each defining the kernel it names."""
    seen = []
    monkeypatch.setattr(backend, "raw_kernel",
                        lambda code, name, options=(): seen.append((name, code)) or name)
    for dt in ("float32", "float64"):
        for c, m in itertools.product((False, True), repeat=2):
            KO._rmsprop_multi_kernel.__wrapped__(dt, (7, 300, 100_000), c, m)
        KO._adagrad_multi_kernel.__wrapped__(dt, (7, 300, 100_000))
    assert len({code for _, code in seen}) == 10
    for name, code in seen:
        assert re.search(r'extern "C" __global__ void ' + re.escape(name) + r"\(", code), name
    code, name, grid = KO.rmsprop_multi_source("float", [1, 256, 257, 10 ** 6], True, True)
    assert name == "minigan_rmsprop_multi_centered_momentum" and grid == 1 + 1 + 2 + 512
    assert "p = p3; g = g3; s = s3; a = a3; b = b3; n = 1000000LL; first = 4u;" in code
    with pytest.raises(ValueError, match=re.escape("adagrad_multi_source: needs tensors of at "
                                                   "least one element, got sizes [3, 0]")):
        KO.adagrad_multi_source("float", [3, 0])


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_multi_tensor_sources_compile_for_hopper_without_spills(tmp_path):
    from tests.kernels.cuda_emulation import compile_with_nvcc
    for k, (code, name, _) in enumerate(_multi_sources()):
        d = tmp_path / str(k)
        d.mkdir()
        report = compile_with_nvcc(code, d)
        regs = re.findall(r"Used (\d+) registers", report)
        assert regs and int(regs[0]) <= 64, (name, report)
        assert "0 bytes spill stores, 0 bytes spill loads" in report, (name, report)


def _elementwise_kernels(monkeypatch):
    """(name, in_params, out_params, operation) of every per-parameter kernel the updates
    build, recorded on the NumPy path with the GPU branch forced (nothing is launched)."""
    seen = {}

    def record(in_params, out_params, operation, name, preamble=""):
        seen[name] = (in_params, out_params, operation)
        return lambda *args: None

    monkeypatch.setattr(backend, "elementwise_kernel", record)
    monkeypatch.setattr(backend, "is_cupy_array", lambda a: True)
    a = np.zeros(3)
    for centered, momentum in itertools.product((False, True), repeat=2):
        KO.rmsprop_step(a, a, a, 0.1, 0.9, 1e-8, momentum=0.9 if momentum else 0.0,
                        grad_avg=a if centered else None, momentum_buffer=a)
    KO.adagrad_step(a, a, a, 1, 0.1)
    return seen


def _cuda_elementwise_source(name, in_params, out_params, operation, ctype):
    """A CUDA kernel with CuPy's ElementwiseKernel binding: the first input is an array, the
    other inputs scalars, the outputs arrays written in place."""
    ins = [p.split()[1] for p in in_params.split(",")]
    outs = [p.split()[1] for p in out_params.split(",")]
    args = [f"const T* {ins[0]}_"] + [f"const T {n}" for n in ins[1:]] \
        + [f"T* {n}_" for n in outs] + ["long long n"]
    binds = [f"const T {ins[0]} = {ins[0]}_[i];"] + [f"T& {n} = {n}_[i];" for n in outs]
    return (f"typedef {ctype} T;\nextern \"C\" __global__ void {name}({', '.join(args)}) {{\n"
            "    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
            "    if (i >= n) return;\n    " + "\n    ".join(binds) + "\n" + operation + "}\n")


def test_every_per_parameter_kernel_is_recorded(monkeypatch):
    assert set(_elementwise_kernels(monkeypatch)) == {
        "minigan_rmsprop", "minigan_rmsprop_centered", "minigan_rmsprop_momentum",
        "minigan_rmsprop_centered_momentum", "minigan_adagrad"}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_per_parameter_kernel_operations_compile_for_hopper(monkeypatch, tmp_path):
    """The fused kernels' operations (the emulator compiles them with g++), in a CUDA kernel
    bound as CuPy binds an ElementwiseKernel, through nvcc: each dtype."""
    from tests.kernels.cuda_emulation import compile_with_nvcc
    kernels = _elementwise_kernels(monkeypatch)
    for k, (name, (ins, outs, op)) in enumerate(sorted(kernels.items())):
        for ctype in ("float", "double"):
            d = tmp_path / f"{k}_{ctype}"
            d.mkdir()
            report = compile_with_nvcc(_cuda_elementwise_source(name, ins, outs, op, ctype), d)
            assert f"Compiling entry function '{name}'" in report, report


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_the_nvcc_check_fails_on_a_broken_operation(monkeypatch, tmp_path):
    from tests.kernels.cuda_emulation import compile_with_nvcc
    ins, outs, op = _elementwise_kernels(monkeypatch)["minigan_adagrad"]
    with pytest.raises(AssertionError, match="nvcc failed"):
        compile_with_nvcc(_cuda_elementwise_source("k", ins, outs,
                                                   op.replace("g_eff;", "g_ef;"), "float"),
                          tmp_path)


# ----- against torch itself (skipped where torch is missing)

def _torch_sd_as_numpy(sd):
    return {"state": {i: {k: (v.detach().numpy().copy() if hasattr(v, "detach") else v)
                          for k, v in st.items()} for i, st in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


def _twins(torch, seed=0, sizes=((4, 3), (5,), (2, 2))):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s) for s in sizes]
    grads = [_grad_fn(rng.standard_normal(s), seed + 10 + i) for i, s in enumerate(sizes)]
    return p0, grads, [nn.Parameter(a.copy()) for a in p0], \
        [torch.nn.Parameter(torch.tensor(a)) for a in p0]


def _torch_run(torch, opt, params, grads, steps, start=0, skip=()):
    for k in range(start, start + steps):
        for j, (p, grad) in enumerate(zip(params, grads)):
            if j not in skip:
                p.grad = torch.tensor(grad(p.detach().numpy().astype(np.float64), k))
        opt.step()


def _assert_same_state(opt, topt):
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i, st in sd["state"].items():
        assert set(st) == set(tsd["state"][i])
        for k, v in st.items():
            np.testing.assert_allclose(np.asarray(v, dtype=np.float64),
                                       np.asarray(tsd["state"][i][k], dtype=np.float64),
                                       rtol=1e-12, atol=1e-14, err_msg=k)
    flags = set(type(opt)._unsupported_flags)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert set(tg) - set(g) <= flags  # torch's extra keys are exactly the dropped flags
        assert {k: v for k, v in tg.items() if k in g} == g


@pytest.mark.parametrize("kw", RMSPROP_FLAGS, ids=RMSPROP_IDS)
def test_rmsprop_matches_torch_in_float64_with_groups(kw):
    torch = pytest.importorskip("torch")
    _, grads, ours, theirs = _twins(torch)
    # two groups, the second with its own lr and alpha; parameter 1 never gets a gradient
    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 3e-2, "alpha": 0.5}]
    opt = RMSprop(groups(ours), lr=1e-2, **kw)
    topt = torch.optim.RMSprop(groups(theirs), lr=1e-2, **kw)
    for k in range(30):
        for j in (0, 2):
            ours[j].grad = minigan.tensor(grads[j](ours[j].numpy(), k))
        opt.step()
    _torch_run(torch, topt, theirs, grads, 30, skip=(1,))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    _assert_same_state(opt, topt)


@pytest.mark.parametrize("kw", ADAGRAD_FLAGS, ids=ADAGRAD_IDS)
def test_adagrad_matches_torch_in_float64(kw):
    torch = pytest.importorskip("torch")
    _, grads, ours, theirs = _twins(torch, seed=1)
    opt = Adagrad(ours, lr=0.1, **kw)
    topt = torch.optim.Adagrad(theirs, lr=0.1, **kw)
    _assert_same_state(opt, topt)  # made by the constructor in both
    for k in range(30):
        for j in (0, 2):
            ours[j].grad = minigan.tensor(grads[j](ours[j].numpy(), k))
        opt.step()
    _torch_run(torch, topt, theirs, grads, 30, skip=(1,))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    _assert_same_state(opt, topt)


@pytest.mark.parametrize("name,kw", [
    ("RMSprop", {"lr": 1e-2, "momentum": 0.9, "centered": True, "weight_decay": 0.01,
                 "maximize": True}),
    ("RMSprop", {"lr": 5e-3, "alpha": 0.9}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.2})])
def test_a_torch_written_state_dict_loads_and_continues_like_torch(name, kw):
    torch = pytest.importorskip("torch")
    _, grads, _, theirs = _twins(torch, seed=3)
    topt = getattr(torch.optim, name)(list(zip("abc", theirs)), **kw)
    sched = torch.optim.lr_scheduler.StepLR(topt, step_size=4, gamma=0.5)
    for k in range(7):
        _torch_run(torch, topt, theirs, grads, 1, start=k)
        sched.step()
    ours = [nn.Parameter(p.detach().numpy().copy()) for p in theirs]
    opt = getattr(minigan.optim, name)(ours, lr=0.5)
    opt.load_state_dict(_torch_sd_as_numpy(topt.state_dict()))
    ours_sched = StepLR(opt, step_size=4, gamma=0.5)
    ours_sched.load_state_dict(sched.state_dict())
    assert opt.param_groups[0]["param_names"] == ["a", "b", "c"]
    for k in range(7, 17):
        _torch_run(torch, topt, theirs, grads, 1, start=k)
        sched.step()
        for p, grad in zip(ours, grads):
            p.grad = minigan.tensor(grad(p.numpy(), k))
        opt.step()
        ours_sched.step()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("opt_cls,kw", [
    (RMSprop, {"lr": 1e-3, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    (Adagrad, {"lr": 1e-2, "lr_decay": 0.01})])
def test_float32_matches_torch(opt_cls, kw):
    torch = pytest.importorskip("torch")
    p0, grad = _problem((8, 5), seed=8)
    p = _param(p0, dtype=np.float32)
    q = torch.nn.Parameter(torch.tensor(p0.astype(np.float32)))
    opt, topt = opt_cls([p], **kw), getattr(torch.optim, opt_cls.__name__)([q], **kw)
    for k in range(50):
        g = grad(p.numpy().astype(np.float64), k).astype(np.float32)
        p.grad, q.grad = minigan.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad"])
def test_constructor_signatures_match_torch(name):
    torch = pytest.importorskip("torch")
    ours = inspect.signature(getattr(minigan.optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    assert list(ours) == list(theirs)
    for arg in ours:
        assert ours[arg].kind == theirs[arg].kind, arg
        assert ours[arg].default == theirs[arg].default, arg


@pytest.mark.parametrize("name,kw", [("RMSprop", {"lr": -1.0}), ("RMSprop", {"alpha": -0.1}),
                                     ("RMSprop", {"eps": -1.0}),
                                     ("RMSprop", {"momentum": -0.1}),
                                     ("RMSprop", {"weight_decay": -0.1}),
                                     ("Adagrad", {"lr_decay": -0.1}),
                                     ("Adagrad", {"initial_accumulator_value": -0.1}),
                                     ("Adagrad", {"eps": float("nan")})])
def test_torch_refuses_what_we_refuse(name, kw):
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.nn.Parameter(torch.zeros(3))], **kw)
    with pytest.raises(ValueError, match=re.escape(f"{name}: invalid")):
        getattr(minigan.optim, name)([_param(np.zeros(3))], **kw)


def test_other_optimizers_are_unchanged_by_the_shared_helpers():
    """Adam's foreach check and the shared shape message moved into helpers: same words."""
    with pytest.raises(ValueError, match=re.escape("Adam: foreach must be None, True or False, "
                                                   "got 'yes'")):
        Adam([_param(np.zeros(3))], foreach="yes")
    with pytest.raises(ValueError, match=re.escape(
            "adam_step_multi: parameter 0 has shape (3,), its gradient (2,) and its state (3,) "
            "and (3,); they must all match")):
        z = np.zeros(3)
        KO.adam_step_multi([z], [np.zeros(2)], [z.copy()], [z.copy()], 1, 0.1, 0.9, 0.99, 1e-8)
    assert SGD([_param(np.zeros(3))]).defaults["lr"] == 1e-3
