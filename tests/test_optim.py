"""Optimizers: PyTorch semantics against plain formulas, and exact continuation after a reload.

Every feature is checked without torch (formulas written out here); where torch is installed the
same features are also checked against torch.optim itself."""
import inspect
import json
import math
import re

import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import backend
from minigan.optim import SGD, Adam, AdamW


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


@pytest.mark.parametrize("foreach", [None, False])  # the GPU's multi-tensor or per-param kernel
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_matches_formula_over_100_steps(device, wd, foreach):
    kw = dict(lr=1e-2, betas=(0.5, 0.999), eps=1e-8, weight_decay=wd, foreach=foreach)
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
                                        (AdamW, dict(lr=1e-2, betas=(0.5, 0.9),
                                                     weight_decay=0.1)),
                                        (Adam, dict(lr=1e-2, weight_decay=0.1, maximize=True,
                                                    decoupled_weight_decay=True)),
                                        (SGD, dict(lr=1e-2, momentum=0.9)),
                                        (SGD, dict(lr=1e-2, momentum=0.5, maximize=True))])
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


@pytest.mark.parametrize("foreach", [None, False])
def test_adam_step_with_a_wrong_gradient_shape_raises_and_changes_nothing(device, foreach):
    """A .grad set by hand to the wrong shape is named in the error (NumPy would have broadcast
    a (1,) gradient silently), and neither the parameters nor the step counts move."""
    a = nn.Parameter(minigan.tensor(np.arange(3.0), device=device).data)
    b = nn.Parameter(minigan.tensor(np.ones((2, 2)), device=device).data)
    opt = Adam([a, b], lr=0.1, foreach=foreach)
    a.grad = minigan.ones(3, device=device)
    b.grad = minigan.ones(4, dtype=np.float64, device=device)
    with pytest.raises(ValueError, match=re.escape(
            "adam_step_multi: parameter 1 has shape (2, 2), its gradient (4,)")):
        opt.step()
    b.grad = minigan.ones(4, device=device)  # float32: cast first, and refused there
    with pytest.raises(ValueError, match=re.escape(
            "Adam: parameter of shape (2, 2) has a gradient of shape (4,); they must match")):
        opt.step()
    np.testing.assert_array_equal(a.numpy(), [0.0, 1.0, 2.0])
    assert all(st["step"] == 0 for st in opt.state.values())
    b.grad = minigan.ones((2, 2), device=device)
    opt.step()
    assert [opt.state[p]["step"] for p in (a, b)] == [1, 1]
    np.testing.assert_allclose(a.numpy(), [-0.1, 0.9, 1.9], rtol=1e-6)


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.9),
                                  lambda p: Adam(p, lr=0.1), lambda p: AdamW(p, lr=0.1)],
                         ids=["sgd", "adam", "adamw"])
def test_a_scalar_parameters_state_survives_a_state_dict_round_trip(device, make):
    """A 0-d parameter's buffers are 0-d arrays, and a loaded state keeps them arrays (they
    once came back as Python floats: SGD's momentum then froze at the loaded value and Adam
    failed at its next step). Three steps, a reload into a new optimizer, three more: the
    same values as six steps in one go."""
    grads = [0.3, -0.2, 0.5, 0.4, -0.1, 0.25]

    def run(reload_after):
        p = nn.Parameter(minigan.tensor(np.array(1.5), device=device).data)
        opt = make([p])
        for i, gv in enumerate(grads):
            if i == reload_after:
                sd = opt.state_dict()
                opt = make([p])
                opt.load_state_dict(sd)
                assert all(getattr(v, "ndim", None) == 0 for k, v in opt.state[p].items()
                           if k != "step"), opt.state[p]
            p.grad = minigan.tensor(np.array(gv), device=device)
            opt.step()
        return p.numpy()

    np.testing.assert_array_equal(run(3), run(None))


def test_a_loaded_buffer_that_is_not_an_array_is_refused_by_name():
    p = nn.Parameter(minigan.tensor(np.ones(3)).data)
    opt = Adam([p])
    sd = {"state": {0: {"step": 2, "exp_avg": np.zeros(3), "exp_avg_sq": "zeros"}},
          "param_groups": opt.state_dict()["param_groups"]}
    with pytest.raises(ValueError, match="state 'exp_avg_sq' of parameter 0 must be an array "
                                         r"of shape \(3,\), got str"):
        opt.load_state_dict(sd)
    assert opt.state == {}
    sd["state"][0].update(exp_avg_sq=np.zeros(3), step=np.ones(2))
    with pytest.raises(ValueError, match="state 'step' of parameter 0 must be a number, got an "
                                         r"array of shape \(2,\)"):
        opt.load_state_dict(sd)


def test_sgd_refuses_a_gradient_of_another_shape_and_changes_nothing(device):
    """NumPy and CuPy would broadcast a row gradient over every row of the parameter."""
    a = nn.Parameter(minigan.tensor(np.zeros(3), device=device).data)
    b = nn.Parameter(minigan.tensor(np.zeros((2, 3)), device=device).data)
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = minigan.ones(3, device=device), minigan.ones(3, device=device)
    with pytest.raises(ValueError, match=re.escape(
            "SGD: parameter of shape (2, 3) has a gradient of shape (3,); they must match")):
        opt.step()
    np.testing.assert_array_equal(a.numpy(), np.zeros(3))  # a, checked first, did not move
    assert opt.state == {}


@pytest.mark.parametrize("opt_cls", [Adam, SGD])
def test_a_gradient_in_another_dtype_is_used_in_the_parameters(device, opt_cls):
    """A float64 .grad set by hand on a float32 parameter updates it exactly as the same
    gradient in float32 does (as backward would have stored it): NumPy would otherwise do the
    CPU's arithmetic in float64, and the GPU kernels take one dtype."""
    rng = np.random.default_rng(5)
    p0, g0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out = []
    for gdtype in (np.float32, np.float64):
        p = nn.Parameter(minigan.tensor(p0.astype(np.float32), device=device).data)
        opt = opt_cls([p], lr=0.1, momentum=0.9) if opt_cls is SGD else opt_cls([p], lr=0.1)
        for _ in range(3):
            p.grad = minigan.tensor(g0.astype(gdtype), device=device)
            opt.step()
        assert p.dtype == np.float32 and p.grad.dtype == gdtype  # the grad itself is kept
        out.append(p.numpy())
    np.testing.assert_array_equal(out[1], out[0])


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


# ----- parameters: frozen ones, names, validation

def _p(*shape, value=0.0, requires_grad=True):
    return nn.Parameter(np.full(shape or (3,), value), requires_grad=requires_grad)


def _sgd_grad_step(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else minigan.tensor(np.asarray(g, dtype=np.float64))
    return opt.step()


def test_frozen_parameter_is_accepted_and_skipped_while_its_grad_is_none():
    """As torch: requires_grad=False is no error; the step skips it (no state), the others move."""
    net, x, y = _model_and_data()
    frozen = net[0].weight
    frozen.requires_grad = False
    before = frozen.numpy().copy()
    opt = Adam(net.parameters(), lr=1e-2)
    _train(net, opt, x, y, 3)
    np.testing.assert_array_equal(frozen.numpy(), before)
    assert frozen not in opt.state and len(opt.state) == 3
    assert opt.state[net[2].weight]["step"] == 3
    assert list(opt.state_dict()["state"]) == [1, 2, 3]  # numbering still counts the frozen one


def test_a_parameter_that_has_a_grad_is_stepped_even_if_frozen():
    """torch skips on `grad is None`, not on requires_grad: a grad set by hand is used."""
    p = _p(2, value=1.0, requires_grad=False)
    opt = SGD([p], lr=0.5)
    _sgd_grad_step(opt, [p], [[1.0, -2.0]])
    np.testing.assert_array_equal(p.numpy(), [0.5, 2.0])


@pytest.mark.parametrize("make, error, message", [
    (lambda p, q: Adam(p), TypeError, "got a single Tensor"),
    (lambda p, q: Adam({p, q}), TypeError, "ordered collection"),
    (lambda p, q: Adam([p, np.zeros(3)]), TypeError, "parameter 1 is a ndarray"),
    (lambda p, q: Adam([p, p * 2]), ValueError, "parameter 1 (shape (3,)) is not a leaf"),
    (lambda p, q: Adam([p, q, p]), ValueError,
     "parameter group 0 lists the same parameter (shape (3,)) twice, at positions 0 and 2"),
    (lambda p, q: Adam([{"params": [p]}, {"params": [q, p]}]), ValueError,
     "parameter group 1: a parameter (shape (3,)) is already in parameter group 0"),
    (lambda p, q: Adam([("a", p), q]), ValueError, "(name, Tensor) pair or none of them"),
    (lambda p, q: Adam([{"params": [("a", p)]}, {"params": [q]}]), ValueError,
     "parameter group 0 is with"),
    (lambda p, q: Adam([{"lr": 1.0}]), ValueError, "parameter group 0 has no 'params' entry"),
    (lambda p, q: Adam([{"params": [p]}, [q]]), TypeError, "param_group must be a dict"),
])
def test_bad_parameter_lists_are_refused_clearly(make, error, message):
    p, q = _p(3), _p(3)
    with pytest.raises(error, match=re.escape(message)):
        make(p, q)


def test_named_parameters_are_accepted_and_their_names_kept():
    """torch >= 2.6: Adam(model.named_parameters()) stores the names as 'param_names'."""
    net, x, y = _model_and_data()
    opt = Adam(net.named_parameters(), lr=1e-2)
    names = [n for n, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert opt.param_groups[0]["param_names"] == names
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in net.parameters()]
    _train(net, opt, x, y, 2)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["param_names"] == names
    assert sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    opt2 = Adam(net.named_parameters())
    opt2.load_state_dict(json.loads(json.dumps({"state": {}, "param_groups":
                                                sd["param_groups"]})))
    assert opt2.param_groups[0]["param_names"] == names and opt2.param_groups[0]["lr"] == 1e-2
    with pytest.raises(ValueError, match="parameter group 1: all parameter groups must be "):
        opt.add_param_group({"params": [_p(3)]})


def test_repr_lists_each_group_like_torch():
    opt = SGD([{"params": [_p(2)]}, {"params": [_p(2)], "lr": 0.5}], lr=0.1, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (\nParameter Group 0\n") and text.endswith(")")
    assert "    lr: 0.1\n" in text and "    lr: 0.5\n" in text and "    momentum: 0.9" in text


# ----- hyperparameters and flags: refused unless implemented

@pytest.mark.parametrize("make, message", [
    (lambda p: Adam(p, amsgrad=True), "Adam: amsgrad=True is not implemented by minigan's Adam"),
    (lambda p: Adam(p, 1e-3, (0.9, 0.999), 1e-8, 0.0, True), "amsgrad=True is not implemented"),
    (lambda p: AdamW(p, amsgrad=True), "AdamW: amsgrad=True is not implemented"),
    (lambda p: Adam(p, fused=True), "Adam: fused=True is not implemented"),
    (lambda p: Adam(p, foreach="yes"), "Adam: foreach must be None, True or False, got 'yes'"),
    (lambda p: Adam([{"params": p, "foreach": 1}]),
     "Adam: parameter group 0: foreach must be None, True or False, got 1"),
    (lambda p: SGD(p, foreach=True), "SGD: foreach=True is not implemented by minigan's SGD"),
    (lambda p: Adam(p, capturable="yes"), "Adam: capturable must be True or False, got 'yes'"),
    (lambda p: Adam([{"params": p, "capturable": None}]),
     "Adam: parameter group 0: capturable must be True or False, got None"),
    (lambda p: AdamW(p, differentiable=True), "AdamW: differentiable=True is not implemented"),
    (lambda p: SGD(p, fused=True), "SGD: fused=True is not implemented by minigan's SGD"),
    (lambda p: SGD(p, differentiable=True), "SGD: differentiable=True is not implemented"),
    (lambda p: Adam([{"params": p, "amsgrad": True}]),
     "Adam: parameter group 0: amsgrad=True is not implemented"),
    (lambda p: Adam([{"params": p, "momentum": 0.9}]),
     ("Adam: parameter group 0: unknown key 'momentum'; supported keys are lr, betas, eps, "
      "weight_decay, maximize, foreach, capturable, decoupled_weight_decay, plus param_names, "
      "initial_lr")),
    (lambda p: SGD([{"params": p, "betas": (0.9, 0.9)}]),
     ("SGD: parameter group 0: unknown key 'betas'; supported keys are lr, momentum, "
      "dampening, weight_decay, nesterov, maximize")),
    (lambda p: Adam([{"params": p, "lr": -1.0}]),
     "Adam: parameter group 0: invalid learning rate -1.0"),
    (lambda p: SGD([{"params": p}, {"params": [_p(1)], "momentum": float("nan")}]),
     "SGD: parameter group 1: invalid momentum nan"),
    (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True),
     ("Nesterov momentum needs momentum > 0 and zero dampening, got momentum=0.9, "
      "dampening=0.1")),
])
def test_unimplemented_flags_and_bad_group_values_are_refused(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make([_p(3)])


def test_flags_at_torch_defaults_are_accepted_in_torch_argument_order():
    p = _p(3)
    # torch's positional order: params, lr, betas, eps, weight_decay, amsgrad
    opt = Adam([p], 2e-3, (0.5, 0.9), 1e-6, 0.1, False, foreach=None, maximize=False,
               capturable=False, differentiable=False, fused=None, decoupled_weight_decay=False)
    g = opt.param_groups[0]
    assert (g["lr"], g["betas"], g["eps"], g["weight_decay"]) == (2e-3, (0.5, 0.9), 1e-6, 0.1)
    assert not {"amsgrad", "differentiable", "fused"} & set(g)
    assert g["foreach"] is None and g["capturable"] is False  # implemented: GPU kernel choices
    opt = SGD([p], 0.1, 0.9, 0.0, 0.01, True, maximize=True, foreach=False, fused=None)
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"],
            g["maximize"]) == (0.1, 0.9, 0.0, 0.01, True, True)


def test_defaults_follow_torch():
    p = _p(3)
    assert Adam([p]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                      maximize=False, foreach=None, capturable=False,
                                      decoupled_weight_decay=False)
    assert AdamW([p]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                       weight_decay=1e-2, maximize=False, foreach=None,
                                       capturable=False, decoupled_weight_decay=True)
    assert SGD([p]).defaults == dict(lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                                     nesterov=False, maximize=False)


def _adam_sd(**group):
    return {"state": {}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                                           "weight_decay": 0.0, **group, "params": [0]}]}


@pytest.mark.parametrize("key,value", [("amsgrad", True), ("fused", True),
                                       ("differentiable", True)])
def test_load_state_dict_refuses_unimplemented_flags(key, value):
    opt = Adam([_p(3)], lr=0.5)
    with pytest.raises(ValueError, match=re.escape(
            f"Adam.load_state_dict: parameter group 0: {key}={value!r} is not implemented by "
            "minigan's Adam; supported keys are lr, betas, eps, weight_decay, maximize, ")):
        opt.load_state_dict(_adam_sd(lr=0.1, **{key: value}))
    assert opt.param_groups[0]["lr"] == 0.5  # nothing changed


@pytest.mark.parametrize("key,value", [("momentum", 0.9), ("name", "encoder"), ("nesterov", True)])
def test_load_state_dict_refuses_unknown_keys(key, value):
    opt = Adam([_p(3)], lr=0.5)
    with pytest.raises(ValueError, match=re.escape(
            f"Adam.load_state_dict: parameter group 0: unknown key {key!r}; supported keys are "
            "lr, betas, eps, weight_decay, maximize, foreach, capturable, "
            "decoupled_weight_decay, plus param_names, initial_lr, and torch's flags only at "
            "their defaults (amsgrad=False, differentiable=False")):
        opt.load_state_dict(_adam_sd(lr=0.1, **{key: value}))
    assert opt.param_groups[0]["lr"] == 0.5


def test_load_state_dict_drops_torch_flags_at_their_defaults_and_keeps_implemented_ones():
    opt = Adam([_p(3)])
    opt.load_state_dict(_adam_sd(lr=0.1, amsgrad=False, foreach=None, capturable=False,
                                 differentiable=False, fused=None, maximize=True,
                                 decoupled_weight_decay=True, initial_lr=0.2))
    g = opt.param_groups[0]
    assert {k: v for k, v in g.items() if k != "params"} == dict(
        lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=True, foreach=None,
        capturable=False, decoupled_weight_decay=True, initial_lr=0.2)


@pytest.mark.parametrize("value", [True, False, None])
def test_load_state_dict_keeps_adams_foreach(value):
    opt = Adam([_p(3)], foreach=not value)
    opt.load_state_dict(_adam_sd(foreach=value))
    assert opt.param_groups[0]["foreach"] is value
    with pytest.raises(ValueError, match=re.escape(
            "Adam.load_state_dict: parameter group 0: foreach must be None, True or False, got "
            "'no'")):
        opt.load_state_dict(_adam_sd(foreach="no"))
    assert opt.param_groups[0]["foreach"] is value  # nothing changed


def test_load_state_dict_validates_values_and_types():
    opt = Adam([_p(3)], lr=0.5)
    with pytest.raises(ValueError, match=re.escape("Adam.load_state_dict: parameter group 0: "
                                                   "invalid learning rate nan")):
        opt.load_state_dict(_adam_sd(lr=float("nan")))
    with pytest.raises(ValueError, match="parameter ids must be ints, got 'w'"):
        opt.load_state_dict({"state": {"w": {}}, "param_groups": [{"lr": 0.1, "params": ["w"]}]})
    with pytest.raises(ValueError, match=re.escape("state 'exp_avg' of parameter 0 has shape "
                                                   "(4,), the parameter has (3,)")):
        opt.load_state_dict({"state": {0: {"step": 1, "exp_avg": np.zeros(4),
                                           "exp_avg_sq": np.zeros(3)}},
                             "param_groups": _adam_sd()["param_groups"]})
    with pytest.raises(ValueError, match=re.escape("state for parameter 9, an id that no saved "
                                                   "parameter group lists (they list 1 ids)")):
        opt.load_state_dict({"state": {9: {"step": 1}},
                             "param_groups": _adam_sd()["param_groups"]})
    assert opt.param_groups[0]["lr"] == 0.5 and opt.state == {}


def test_load_state_dict_maps_saved_ids_in_group_order_like_torch():
    """Saved ids need not be 0..n-1: torch maps them through the saved groups' 'params'."""
    p, q = _p(2), _p(3)
    opt = Adam([p, q])
    opt.load_state_dict({"state": {7: {"step": 4.0, "exp_avg": np.ones(3),
                                       "exp_avg_sq": np.ones(3)}},
                         "param_groups": [{**_adam_sd()["param_groups"][0], "params": [5, 7]}]})
    assert [k is q for k in opt.state] == [True]  # keyed by the parameter, as in torch
    assert opt.state[q]["step"] == 4 and isinstance(opt.state[q]["step"], int)


# ----- step(closure)

def test_step_calls_the_closure_with_grad_enabled_and_returns_its_value():
    p = _p(3, value=1.0)
    t = minigan.tensor(np.array([0.0, 1.0, 2.0]))
    opt = SGD([p], lr=0.1)
    seen = []

    def closure():
        seen.append(minigan.is_grad_enabled())
        opt.zero_grad()
        loss = ((p - t) * (p - t)).sum()
        loss.backward()
        return loss

    with minigan.no_grad():
        loss = opt.step(closure)
    assert seen == [True]
    assert float(loss.numpy()) == 2.0  # the loss before the step
    np.testing.assert_allclose(p.numpy(), [1 - 0.2, 1.0, 1 + 0.2], rtol=0, atol=1e-15)
    assert opt.step() is None and Adam([p]).step() is None


@pytest.mark.parametrize("opt_cls", [Adam, AdamW, SGD])
def test_every_optimizer_takes_a_closure(opt_cls):
    p = _p(3, value=1.0)
    opt = opt_cls([p], lr=0.1)

    def closure():
        p.grad = minigan.tensor(np.ones(3))
        return 42.0

    assert opt.step(closure) == 42.0
    assert (p.numpy() < 1.0).all()
    assert list(inspect.signature(opt_cls.step).parameters) == ["self", "closure"]


# ----- add_param_group

def test_add_param_group_fills_defaults_and_steps_the_new_group():
    p, q = _p(2, value=1.0), _p(2, value=1.0)
    opt = SGD([p], lr=0.1, momentum=0.0)
    opt.add_param_group({"params": q, "lr": 0.5})  # a lone Tensor is wrapped, as in torch
    assert opt.param_groups[1]["params"] == [q]
    assert {k: v for k, v in opt.param_groups[1].items() if k != "params"} == dict(
        lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False)
    _sgd_grad_step(opt, [p, q], [[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_allclose(p.numpy(), [0.9, 0.8], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.numpy(), [0.5, 0.0], rtol=0, atol=1e-15)
    assert [g["params"] for g in opt.state_dict()["param_groups"]] == [[0], [1]]
    assert opt.state_dict()["state"] == {}  # plain SGD keeps no state, as torch's
    with pytest.raises(ValueError, match="is already in parameter group 1"):
        opt.add_param_group({"params": [q]})
    with pytest.raises(ValueError, match="unknown key 'betas'"):
        opt.add_param_group({"params": [_p(1)], "betas": (0.9, 0.9)})
    assert len(opt.param_groups) == 2


def test_unfreezing_a_layer_through_add_param_group():
    """The fine-tuning pattern torch documents: start with the head, add the body later."""
    net, x, y = _model_and_data()
    body, head = net[0], net[2]
    for prm in body.parameters():
        prm.requires_grad = False
    opt = Adam(head.parameters(), lr=1e-2)
    _train(net, opt, x, y, 2)
    w = body.weight.numpy().copy()
    for prm in body.parameters():
        prm.requires_grad = True
    opt.add_param_group({"params": body.parameters(), "lr": 1e-3})
    _train(net, opt, x, y, 2)
    assert not np.array_equal(body.weight.numpy(), w)
    assert opt.state[body.weight]["step"] == 2 and opt.state[head.weight]["step"] == 4


# ----- maximize

@pytest.mark.parametrize("opt_cls,kw", [(Adam, dict(lr=1e-2, weight_decay=0.1)),
                                        (AdamW, dict(lr=1e-2, weight_decay=0.1)),
                                        (SGD, dict(lr=1e-2, momentum=0.9, weight_decay=0.1))])
def test_maximize_equals_minimizing_the_negated_gradient(opt_cls, kw):
    """torch's maximize negates the gradient before anything else (weight decay included)."""
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((10, 4))
    p, q = _p(4, value=0.3), _p(4, value=0.3)
    up, down = opt_cls([p], maximize=True, **kw), opt_cls([q], **kw)
    for g in grads:
        _sgd_grad_step(up, [p], [g])
        _sgd_grad_step(down, [q], [-g])
    np.testing.assert_array_equal(p.numpy(), q.numpy())
    np.testing.assert_array_equal(p.grad.numpy(), grads[-1])  # the grad itself is untouched
    r = _p(4, value=0.3)
    plain = opt_cls([r], **kw)
    for g in grads:
        _sgd_grad_step(plain, [r], [g])
    assert np.abs(r.numpy() - p.numpy()).max() > 1e-3


# ----- AdamW

def _adamw_reference(p, target, steps, lr, b1, b2, eps, wd):
    """AdamW as in torch.optim.AdamW's documentation: decay first, then Adam without L2."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _quadratic_grads(p, target)
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - b2 ** t) + eps)
    return p


@pytest.mark.parametrize("foreach", [None, False])
@pytest.mark.parametrize("kw", [dict(), dict(lr=1e-2, betas=(0.5, 0.9), eps=1e-6,
                                             weight_decay=0.3)])
def test_adamw_matches_formula_over_20_steps_in_float64(device, kw, foreach):
    p0, target, got = _run(AdamW, 20, device, foreach=foreach, **kw)
    full = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2) | kw
    ref = _adamw_reference(p0, target, 20, full["lr"], *full["betas"], full["eps"],
                           full["weight_decay"])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    # and the decay is decoupled: plain Adam with the same weight_decay lands elsewhere
    adam = _adam_reference(p0, target, 20, full["lr"], *full["betas"], full["eps"],
                           full["weight_decay"])
    assert np.abs(adam - ref).max() > 1e-6


def test_adamw_is_adam_with_decoupled_weight_decay_and_adam_without_decay():
    kw = dict(lr=1e-2, betas=(0.5, 0.9), weight_decay=0.2)
    a = _run(AdamW, 15, **kw)[2]
    b = _run(Adam, 15, decoupled_weight_decay=True, **kw)[2]
    np.testing.assert_array_equal(a, b)
    c = _run(AdamW, 15, lr=1e-2, weight_decay=0.0)[2]
    d = _run(Adam, 15, lr=1e-2)[2]
    np.testing.assert_array_equal(c, d)


def test_adamw_groups_stay_decoupled_after_loading_an_adam_state():
    """As torch's AdamW.__setstate__: an AdamW always decays decoupled."""
    opt = AdamW([_p(3)])
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    opt.load_state_dict(_adam_sd(decoupled_weight_decay=False, weight_decay=0.5))
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    assert opt.param_groups[0]["weight_decay"] == 0.5


# ----- against torch itself (skipped where torch is missing)

def _torch_sd_as_numpy(sd):
    """A torch optimizer state dict with its tensors as NumPy arrays (what a converter gives)."""
    return {"state": {i: {k: (v.detach().numpy().copy() if hasattr(v, "detach") else v)
                          for k, v in st.items()} for i, st in sd["state"].items()},
            "param_groups": [dict(g) for g in sd["param_groups"]]}


def _twin_problem(seed=0, sizes=((4, 3), (5,), (2, 2))):
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s) for s in sizes]
    targets = [rng.standard_normal(s) for s in sizes]
    return p0, targets


def _minigan_steps(opt, params, targets, steps):
    ts = [minigan.tensor(t) for t in targets]
    for _ in range(steps):
        opt.zero_grad()
        loss = None
        for p, t in zip(params, ts):
            if p.requires_grad:
                term = ((p - t) * (p - t)).sum()
                loss = term if loss is None else loss + term
        loss.backward()
        opt.step()


def _torch_steps(torch, opt, params, targets, steps):
    ts = [torch.tensor(t) for t in targets]
    for _ in range(steps):
        opt.zero_grad()
        sum(((p - t) ** 2).sum() for p, t in zip(params, ts) if p.requires_grad).backward()
        opt.step()


TORCH_CASES = [
    ("Adam", dict(lr=1e-2, betas=(0.5, 0.999), weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=5e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.3, maximize=True)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=1e-2, momentum=0.5, dampening=0.3, maximize=True)),
]


def _build(lib, name, params, kw, groups):
    if groups:  # two groups, the second with its own lr, the first with a frozen parameter
        return getattr(lib, name)([{"params": params[:2]}, {"params": params[2:], "lr": 3e-2}],
                                  **kw)
    return getattr(lib, name)(params, **kw)


@pytest.mark.parametrize("groups", [False, True])
@pytest.mark.parametrize("name,kw", TORCH_CASES)
def test_trajectories_match_torch_in_float64(name, kw, groups):
    torch = pytest.importorskip("torch")
    p0, targets = _twin_problem()
    ours = [nn.Parameter(a.copy()) for a in p0]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in p0]
    if groups:
        ours[1].requires_grad = False
        theirs[1].requires_grad_(False)
    opt = _build(minigan.optim, name, ours, kw, groups)
    topt = _build(torch.optim, name, theirs, kw, groups)
    _minigan_steps(opt, ours, targets, 20)
    _torch_steps(torch, topt, theirs, targets, 20)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    if groups:
        np.testing.assert_array_equal(ours[1].numpy(), p0[1])
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i, st in sd["state"].items():
        assert set(st) == set(tsd["state"][i])
        for k, v in st.items():
            np.testing.assert_allclose(np.asarray(v, dtype=np.float64),
                                       np.asarray(tsd["state"][i][k], dtype=np.float64),
                                       rtol=1e-12, atol=1e-14)
    flags = set(type(opt)._unsupported_flags)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert set(tg) - set(g) <= flags  # torch's extra keys are exactly the dropped flags
        assert {k: v for k, v in tg.items() if k in g} == g


@pytest.mark.parametrize("name,kw", TORCH_CASES)
def test_a_torch_written_state_dict_loads_and_continues_like_torch(name, kw):
    torch = pytest.importorskip("torch")
    p0, targets = _twin_problem(seed=3)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in p0]
    topt = getattr(torch.optim, name)(list(zip("abc", theirs)), **kw)  # named, as torch >= 2.6
    _torch_steps(torch, topt, theirs, targets, 7)
    ours = [nn.Parameter(p.detach().numpy().copy()) for p in theirs]
    opt = getattr(minigan.optim, name)(ours, lr=0.5)  # everything must come from the state
    opt.load_state_dict(_torch_sd_as_numpy(topt.state_dict()))
    assert opt.param_groups[0]["param_names"] == ["a", "b", "c"]
    _torch_steps(torch, topt, theirs, targets, 10)
    _minigan_steps(opt, ours, targets, 10)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD"])
def test_constructor_signatures_match_torch(name):
    """Same argument names, order, kinds (positional or keyword-only) and defaults as torch."""
    torch = pytest.importorskip("torch")
    ours = inspect.signature(getattr(minigan.optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    assert list(ours) == list(theirs)
    for arg in ours:
        assert ours[arg].kind == theirs[arg].kind, arg
        assert ours[arg].default == theirs[arg].default, arg


def test_torch_also_accepts_frozen_parameters_and_refuses_what_we_refuse():
    """The behaviours copied from torch, checked against torch (guards the assumptions)."""
    torch = pytest.importorskip("torch")
    frozen = torch.nn.Parameter(torch.zeros(3), requires_grad=False)
    torch.optim.Adam([frozen, torch.nn.Parameter(torch.zeros(3))]).step()
    q = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.Adam([{"params": [q]}, {"params": [q]}])
    with pytest.raises(ValueError, match="non-leaf"):
        torch.optim.Adam([q * 2])
    with pytest.raises(TypeError):
        torch.optim.Adam(q)


@pytest.mark.parametrize("decoupled,maximize,foreach", [(False, False, None), (True, False, None),
                                                        (False, True, False)])
def test_capturable_adam_matches_plain_adam(device, decoupled, maximize, foreach):
    """Step count and learning rate read on the device (for a CUDA graph): the same updates,
    to the rounding of the device's pow, through a learning-rate change and a state reload."""
    rng = np.random.default_rng(1)
    shapes = [(4, 3), (5,), (2, 2, 3)]
    opts, params = [], []
    for capturable in (False, True):
        ps = [nn.Parameter(minigan.tensor(rng.standard_normal(s).astype(np.float32) if not
                                          params else params[0][i].numpy().copy(),
                                          device=device).data)
              for i, s in enumerate(shapes)]
        params.append(ps)
        opts.append(Adam(ps, lr=1e-2, betas=(0.5, 0.9), weight_decay=0.1, maximize=maximize,
                         decoupled_weight_decay=decoupled, foreach=foreach,
                         capturable=capturable))
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(12)]
    for k, gs in enumerate(grads):
        if k == 5:
            for o in opts:
                o.param_groups[0]["lr"] = 3e-3
        if k == 8:  # a reload rewrites the device copy of the step count
            for o in opts:
                o.load_state_dict(o.state_dict())
        for o, ps in zip(opts, params):
            for p, g in zip(ps, gs):
                p.grad = minigan.tensor(g, device=device)
            o.step()
    for a, b in zip(*params):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7)
    assert [st["step"] for st in opts[1].state.values()] == [12, 12, 12]
    if device == "cuda":
        hyper = backend.to_numpy(opts[1]._hyper[0][0])
        assert hyper.tolist() == [12.0, 3e-3]


def test_capturable_adam_needs_one_step_count_per_group(device):
    a = nn.Parameter(minigan.tensor(np.ones(3, np.float32), device=device).data)
    b = nn.Parameter(minigan.tensor(np.ones(2, np.float32), device=device).data)
    opt = Adam([a, b], lr=0.1, capturable=True)
    a.grad = minigan.tensor(np.ones(3, np.float32), device=device)
    opt.step()  # b had no gradient: a is one step ahead
    b.grad = minigan.tensor(np.ones(2, np.float32), device=device)
    if device == "cpu":  # nothing to capture on the CPU: the flag changes nothing
        opt.step()
        return
    with pytest.raises(ValueError, match=r"parameter group 0 has parameters at different step "
                       r"counts \(\[1, 2\]\)"):
        opt.step()


def test_adam_step_capturable_checks_its_arguments():
    from minigan.kernels.optim import adam_step_capturable
    p, g = np.ones(3, np.float32), np.ones(3, np.float32)
    m, v = np.zeros(3, np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"hyper must be a float64 array \[step, lr\], got "
                       r"float32 of shape \(2,\)"):
        adam_step_capturable([p], [g], [m], [v], np.zeros(2, np.float32), 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match="parameter 0 has shape"):
        adam_step_capturable([p], [np.ones(2, np.float32)], [m], [v], np.zeros(2), 0.9, 0.999,
                             1e-8)
    hyper = np.array([0.0, 0.1])
    adam_step_capturable([p], [g], [m], [v], hyper, 0.9, 0.999, 1e-8)
    assert hyper[0] == 1.0 and np.allclose(p, 1.0 - 0.1)  # the first Adam step moves by lr


@pytest.mark.parametrize("opt_cls", [Adam, SGD])
def test_a_gradient_on_another_device_than_its_parameter_is_named(emulated_gpu, opt_cls):
    cp = emulated_gpu
    gpu = nn.Parameter(minigan.Tensor(cp.zeros((2, 3), dtype=np.float32)))
    gpu.grad = minigan.Tensor(np.ones((2, 3), dtype=np.float32))  # set by hand, on the CPU
    with pytest.raises(backend.DeviceError,
                       match=r"parameter of shape \(2, 3\) on cuda has its gradient on cpu"):
        opt_cls([gpu], lr=0.1).step()
    cpu = nn.Parameter(minigan.Tensor(np.zeros(4, dtype=np.float32)))
    cpu.grad = minigan.Tensor(cp.ones(4, dtype=np.float32))
    with pytest.raises(backend.DeviceError, match=r"on cpu has its gradient on cuda"):
        opt_cls([cpu], lr=0.1).step()
    np.testing.assert_array_equal(cpu.data, np.zeros(4))  # nothing was updated


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop", "Adagrad"])
def test_a_torch_optimizer_state_dict_loads_and_continues_as_torch(name):
    """torch keeps step counts as 0-d tensors (whose .size is a method): they load as ints,
    and the run continues as torch's does."""
    torch = pytest.importorskip("torch")
    kw = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    tp = torch.nn.Parameter(torch.linspace(-1, 1, 5, dtype=torch.float64))
    topt = getattr(torch.optim, name)([tp], lr=0.05, **kw)

    def torch_step():
        topt.zero_grad()
        (tp ** 2).sum().backward()
        topt.step()
    for _ in range(3):
        torch_step()
    p = minigan.tensor(tp.detach().numpy().copy(), requires_grad=True)
    opt = getattr(minigan.optim, name)([p], lr=0.05, **kw)
    opt.load_state_dict(topt.state_dict())
    for _ in range(3):
        torch_step()
        opt.zero_grad()
        (p ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12, atol=1e-14)
