"""Learning-rate schedulers: torch's sequences, checked against the closed forms written out here
(no torch needed) and, where torch is installed, against torch.optim.lr_scheduler bit for bit."""
import inspect
import json
import math
import re
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import optim
from minigan.optim import SGD, lr_scheduler
from minigan.optim.lr_scheduler import (ConstantLR, CosineAnnealingLR, ExponentialLR, LambdaLR,
                                        LinearLR, LRScheduler, MultiplicativeLR, MultiStepLR,
                                        SequentialLR, StepLR)

BASE_LRS = (0.1, 0.03)  # two parameter groups, so per-group bookkeeping is exercised
STEPS = 50


def _optimizer(lrs=BASE_LRS):
    params = [nn.Parameter(np.zeros(2)) for _ in lrs]
    return SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=0.5)


def _torch_optimizer(torch, lrs=BASE_LRS):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    return torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=0.5)


def _lambda(epoch):
    return 0.95 ** epoch + 0.01 * epoch


def _cosine(base, k, T, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * k / T)) / 2


def _sequential_closed_form(base, k):
    """LinearLR(0.1 -> 1, 5 steps), then CosineAnnealingLR(T_max=10, eta_min=1e-4) from step 5,
    then ExponentialLR(0.9) from step 20; each starts at its own step 0 at its milestone."""
    if k < 5:
        return base * (0.1 + 0.9 * k / 5)
    if k < 20:
        return _cosine(base, k - 5, 10, 1e-4)
    return base * 0.9 ** (k - 20)


# name -> (build(module, optimizer), lr at step k from the group's initial lr)
CASES = {
    "StepLR": (lambda M, o: M.StepLR(o, 3, 0.5),
               lambda base, k: base * 0.5 ** (k // 3)),
    "MultiStepLR": (lambda M, o: M.MultiStepLR(o, [9, 2, 5, 5], 0.3),  # unsorted, 5 twice
                    lambda base, k: base * 0.3 ** sum(m <= k for m in (2, 5, 5, 9))),
    "ExponentialLR": (lambda M, o: M.ExponentialLR(o, 0.9),
                      lambda base, k: base * 0.9 ** k),
    "LambdaLR": (lambda M, o: M.LambdaLR(o, _lambda),
                 lambda base, k: base * _lambda(k)),
    "MultiplicativeLR": (lambda M, o: M.MultiplicativeLR(o, lambda e: 0.97),
                         lambda base, k: base * 0.97 ** k),
    "LinearLR": (lambda M, o: M.LinearLR(o, 0.1, 0.9, 7),
                 lambda base, k: base * (0.1 + 0.8 * min(k, 7) / 7)),
    # 0.45: here lr * (1 / f) and lr / f round differently, and torch multiplies
    "ConstantLR": (lambda M, o: M.ConstantLR(o, 0.45, 4),
                   lambda base, k: base * (0.45 if k < 4 else 1.0)),
    "CosineAnnealingLR": (lambda M, o: M.CosineAnnealingLR(o, 7, 1e-3),
                          lambda base, k: _cosine(base, k, 7, 1e-3)),
    "SequentialLR": (lambda M, o: M.SequentialLR(o, [M.LinearLR(o, 0.1, 1.0, 5),
                                                     M.CosineAnnealingLR(o, 10, 1e-4),
                                                     M.ExponentialLR(o, 0.9)], [5, 20]),
                     _sequential_closed_form),
}
NAMES = list(CASES)


def _lrs(scheduler, steps=STEPS):
    """[lrs at step 0, ..., lrs at step `steps`], stepping the optimizer first, as torch asks."""
    seq = [scheduler.get_last_lr()]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        seq.append(scheduler.get_last_lr())
    return seq


@pytest.mark.parametrize("name", NAMES)
def test_sequence_matches_the_closed_form(name):
    build, closed_form = CASES[name]
    seq = _lrs(build(lr_scheduler, _optimizer()))
    expected = [[closed_form(base, k) for base in BASE_LRS] for k in range(STEPS + 1)]
    np.testing.assert_allclose(seq, expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_construction_takes_step_zero_and_each_step_counts(name):
    opt = _optimizer()
    sched = CASES[name][0](lr_scheduler, opt)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASE_LRS)
    assert sched.last_epoch == 0
    assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    expected = [CASES[name][1](base, 0) for base in BASE_LRS]
    np.testing.assert_allclose(sched.get_last_lr(), expected, rtol=1e-15)
    for k in range(1, 4):
        opt.step()
        sched.step()
        assert sched.last_epoch == k
    last = sched.get_last_lr()
    last[0] = 123.0  # a copy: changing it changes nothing
    assert sched.get_last_lr()[0] != 123.0 and opt.param_groups[0]["lr"] != 123.0


def test_constant_lr_restores_with_torchs_rounding():
    """torch multiplies by 1 / factor at total_iters (not divides by factor), so the lr comes
    back one ulp off; these literals are torch's own values."""
    sched = ConstantLR(_optimizer(), 0.45, 4)
    seq = _lrs(sched, 5)
    assert seq[3] == [0.1 * 0.45, 0.03 * 0.45]
    assert seq[4] == seq[5] == [0.10000000000000002, 0.030000000000000002]


def test_base_lrs_come_from_an_existing_initial_lr():
    opt = _optimizer()
    opt.param_groups[0]["initial_lr"] = 0.5
    sched = StepLR(opt, 2, 0.1)
    assert sched.base_lrs == [0.5, 0.03]
    assert opt.param_groups[0]["lr"] == 0.1  # step 0 of StepLR leaves the lr as it is
    assert isinstance(sched, LRScheduler) and lr_scheduler is optim.lr_scheduler


def test_the_schedule_drives_the_optimizer_steps():
    """SGD without momentum moves each parameter by -lr * grad: the deltas are the schedule."""
    opt = _optimizer()
    sched = StepLR(opt, 2, 0.5)
    params = [g["params"][0] for g in opt.param_groups]
    moves = []
    for _ in range(6):
        before = [p.numpy().copy() for p in params]
        for p in params:
            p.grad = minigan.tensor(np.ones(2))
        opt.step()
        sched.step()
        moves.append([float(b[0] - p.numpy()[0]) for b, p in zip(before, params)])
    expected = [[base * 0.5 ** (k // 2) for base in BASE_LRS] for k in range(6)]
    np.testing.assert_allclose(moves, expected, rtol=1e-12)


def test_recursive_schedulers_carry_on_from_an_lr_changed_between_steps():
    """As torch: most schedulers multiply the current lr, so a manual change persists, while
    LambdaLR recomputes from the initial lr."""
    opt = _optimizer()
    exp = ExponentialLR(opt, 0.9)
    exp.step()
    opt.param_groups[0]["lr"] = 1.0
    exp.step()
    assert exp.get_last_lr() == [1.0 * 0.9, 0.03 * 0.9 * 0.9]
    opt = _optimizer()
    lam = LambdaLR(opt, _lambda)
    opt.param_groups[0]["lr"] = 1.0
    lam.step()
    assert lam.get_last_lr() == [0.1 * _lambda(1), 0.03 * _lambda(1)]


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_the_same_sequence(name):
    """Save optimizer and scheduler at step 20 (through JSON, as a checkpoint's metadata), load
    both into fresh ones built with other lrs, and the remaining 30 steps are identical."""
    build = CASES[name][0]
    full = _lrs(build(lr_scheduler, _optimizer()))
    opt = _optimizer()
    sched = build(lr_scheduler, opt)
    _lrs(sched, 20)
    saved_opt = json.loads(json.dumps(opt.state_dict()))
    saved_sched = json.loads(json.dumps(sched.state_dict()))

    opt2 = _optimizer(lrs=(0.7, 0.9))
    sched2 = build(lr_scheduler, opt2)  # built before loading, as torch's docs ask
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert sched2.last_epoch == 20 and sched2.get_last_lr() == full[20]
    assert _lrs(sched2, 30) == full[20:]


def test_step_with_an_epoch_is_deprecated_and_jumps_by_the_closed_form():
    opt = _optimizer()
    sched = MultiStepLR(opt, [2, 5], 0.5)
    with pytest.warns(UserWarning, match=re.escape("MultiStepLR.step(epoch) is deprecated")):
        sched.step(6)
    assert sched.last_epoch == 6 and sched.get_last_lr() == [0.1 * 0.5 ** 2, 0.03 * 0.5 ** 2]
    opt = _optimizer()
    lam = LambdaLR(opt, _lambda)  # no closed form: get_lr at that epoch
    with pytest.warns(UserWarning):
        lam.step(4)
    assert lam.get_last_lr() == [0.1 * _lambda(4), 0.03 * _lambda(4)]


def test_resuming_with_last_epoch_needs_initial_lr():
    opt = _optimizer()
    with pytest.raises(KeyError, match=re.escape("StepLR: resuming with last_epoch=5 needs "
                                                 "'initial_lr' in param_groups[0]")):
        StepLR(opt, 3, last_epoch=5)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    sched = StepLR(opt, 3, 0.5, last_epoch=5)
    # as torch, the constructor still steps once: to step 6, a multiple of 3, so one decay
    assert sched.last_epoch == 6 and sched.get_last_lr() == [0.1 * 0.5, 0.03 * 0.5]


@pytest.mark.parametrize("name,make,next_factor", [
    ("ExponentialLR", lambda o, k: ExponentialLR(o, 0.9, last_epoch=k), lambda k: 0.9),
    ("MultiplicativeLR", lambda o, k: MultiplicativeLR(o, lambda e: 0.97, last_epoch=k),
     lambda k: 0.97),
    ("LinearLR", lambda o, k: LinearLR(o, 0.1, 0.9, 20, last_epoch=k),
     lambda k: (0.1 + 0.8 * k / 20) / (0.1 + 0.8 * (k - 1) / 20)),
    ("CosineAnnealingLR", lambda o, k: CosineAnnealingLR(o, 30, last_epoch=k),
     lambda k: (1 + math.cos(math.pi * k / 30)) / (1 + math.cos(math.pi * (k - 1) / 30))),
])
def test_resuming_with_last_epoch_keeps_the_lr_then_continues(name, make, next_factor):
    """As torch: for these schedulers the constructor's step leaves the current lr alone when
    resuming (it counts last_epoch on by one), and the next step() applies the usual factor."""
    opt = _optimizer()
    for g in opt.param_groups:
        g["initial_lr"], g["lr"] = g["lr"], g["lr"] * 0.37
    current = [g["lr"] for g in opt.param_groups]
    sched = make(opt, 6)
    assert sched.last_epoch == 7 and sched.get_last_lr() == current
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [lr * next_factor(8) for lr in current],
                               rtol=1e-12)


def test_load_state_dict_refuses_foreign_states():
    opt = _optimizer()
    sched = StepLR(opt, 3)
    with pytest.raises(ValueError, match=re.escape("StepLR.load_state_dict: unknown keys "
                                                   "['T_max', 'eta_min']; a StepLR state has")):
        sched.load_state_dict(CosineAnnealingLR(_optimizer(), 5).state_dict())
    one_group = StepLR(_optimizer(lrs=(0.1,)), 3).state_dict()
    with pytest.raises(ValueError, match=re.escape("the state is for 1 parameter groups, the "
                                                   "optimizer has 2")):
        sched.load_state_dict(one_group)
    seq = SequentialLR(opt, [StepLR(opt, 2), ExponentialLR(opt, 0.9)], [3])
    with pytest.raises(ValueError, match="expects states for 2 schedulers, got 1"):
        seq.load_state_dict({**seq.state_dict(), "_schedulers": [{}]})
    assert sched.last_epoch == 0 and sched.step_size == 3  # unchanged


class _Warmup:
    """A callable object with state of its own: LambdaLR saves and restores its __dict__."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.steps)


def test_lambda_schedulers_save_the_state_of_callable_objects():
    opt = _optimizer()
    sched = LambdaLR(opt, [_Warmup(4), _lambda])
    assert sched.state_dict()["lr_lambdas"] == [{"steps": 4}, None]
    opt2 = _optimizer()
    other = _Warmup(10)
    sched2 = LambdaLR(opt2, [other, _lambda])
    sched2.load_state_dict(sched.state_dict())
    assert other.steps == 4
    mult = MultiplicativeLR(_optimizer(), _Warmup(3))
    assert mult.state_dict()["lr_lambdas"] == [{"steps": 3}, {"steps": 3}]


def _two_optimizers():
    return _optimizer(), _optimizer()


@pytest.mark.parametrize("make, error, message", [
    (lambda o, o2: StepLR(o, 0), ValueError, "StepLR: step_size must be a positive int, got 0"),
    (lambda o, o2: StepLR(o, 2.5), ValueError,
     "StepLR: step_size must be a positive int, got 2.5"),
    (lambda o, o2: StepLR(o, 3, gamma=-0.1), ValueError,
     "StepLR: gamma must be a finite number >= 0, got -0.1"),
    (lambda o, o2: StepLR(o, 3, gamma=float("nan")), ValueError,
     "StepLR: gamma must be a finite number >= 0, got nan"),
    (lambda o, o2: StepLR("sgd", 3), TypeError,
     "StepLR: optimizer must be a minigan.optim.Optimizer, got str"),
    (lambda o, o2: StepLR(o, 3, last_epoch=-2), ValueError,
     "StepLR: last_epoch must be an int >= -1, got -2"),
    (lambda o, o2: MultiStepLR(o, [3, -1]), ValueError,
     "MultiStepLR: milestones must be ints >= 0, got -1 in [3, -1]"),
    (lambda o, o2: MultiStepLR(o, [2.5]), ValueError,
     "MultiStepLR: milestones must be ints >= 0, got 2.5 in [2.5]"),
    (lambda o, o2: ExponentialLR(o, float("inf")), ValueError,
     "ExponentialLR: gamma must be a finite number >= 0, got inf"),
    (lambda o, o2: LinearLR(o, start_factor=0), ValueError,
     "LinearLR: start_factor must lie in (0, 1], got 0"),
    (lambda o, o2: LinearLR(o, end_factor=1.5), ValueError,
     "LinearLR: end_factor must lie in [0, 1], got 1.5"),
    (lambda o, o2: LinearLR(o, total_iters=0), ValueError,
     "LinearLR: total_iters must be a positive int, got 0"),
    (lambda o, o2: ConstantLR(o, factor=0), ValueError,
     "ConstantLR: factor must lie in (0, 1], got 0"),
    (lambda o, o2: ConstantLR(o, total_iters=-2), ValueError,
     "ConstantLR: total_iters must be a positive int, got -2"),
    (lambda o, o2: CosineAnnealingLR(o, 0), ValueError,
     "CosineAnnealingLR: T_max must be a positive int, got 0"),
    (lambda o, o2: CosineAnnealingLR(o, 10, eta_min=-1e-3), ValueError,
     "CosineAnnealingLR: eta_min must be a finite number >= 0, got -0.001"),
    (lambda o, o2: LambdaLR(o, [_lambda]), ValueError,
     "LambdaLR: expected 2 lr_lambdas, one per parameter group, got 1"),
    (lambda o, o2: MultiplicativeLR(o, 0.5), TypeError,
     "MultiplicativeLR: lr_lambda must be callable, got 0.5"),
    (lambda o, o2: SequentialLR(o, [], []), ValueError,
     "SequentialLR: expects at least one scheduler, got none"),
    (lambda o, o2: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3)], []), ValueError,
     "SequentialLR: expects one milestone fewer than schedulers, got 2 schedulers and "
     "milestones []"),
    (lambda o, o2: SequentialLR(o, [StepLR(o, 2), StepLR(o, 3)], [0]), ValueError,
     "SequentialLR: milestones must be increasing positive ints, got [0]"),
    (lambda o, o2: SequentialLR(o, [StepLR(o, 2), StepLR(o2, 3)], [4]), ValueError,
     "SequentialLR: schedulers[1] (StepLR) belongs to another optimizer"),
    (lambda o, o2: SequentialLR(o, [StepLR(o, 2), "cosine"], [4]), TypeError,
     "SequentialLR: schedulers[1] is a str, not an LRScheduler"),
])
def test_bad_arguments_are_refused_naming_the_value(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make(*_two_optimizers())


# ----- against torch itself (skipped where torch is missing)

@pytest.mark.parametrize("name", NAMES)
def test_sequence_is_torchs_bit_for_bit(name):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES[name][0]
    ours = build(lr_scheduler, _optimizer())
    theirs = build(TL, _torch_optimizer(torch))
    assert _lrs(ours) == _lrs(theirs)
    assert ours.last_epoch == theirs.last_epoch
    assert [g["lr"] for g in ours.optimizer.param_groups] == \
        [g["lr"] for g in theirs.optimizer.param_groups]
    internal = {"_get_lr_called_within_step", "_is_initial"}
    assert set(ours.state_dict()) == set(theirs.state_dict()) - internal


@pytest.mark.parametrize("name", NAMES)
def test_an_lr_changed_between_steps_is_handled_as_torch_does(name):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES[name][0]
    scheds = [build(lr_scheduler, _optimizer()), build(TL, _torch_optimizer(torch))]
    seqs = []
    for s in scheds:
        seq = _lrs(s, 12)
        for g in s.optimizer.param_groups:
            g["lr"] = 0.05
        seqs.append(seq + _lrs(s, 30))
    assert seqs[0] == seqs[1]


@pytest.mark.parametrize("name", NAMES)
def test_a_torch_scheduler_state_loads_and_continues_like_torch(name):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES[name][0]
    topt = _torch_optimizer(torch)
    theirs = build(TL, topt)
    _lrs(theirs, 17)
    opt = _optimizer()
    ours = build(lr_scheduler, opt)
    opt.load_state_dict({"state": {}, "param_groups": topt.state_dict()["param_groups"]})
    ours.load_state_dict(theirs.state_dict())
    assert _lrs(ours, 30) == _lrs(theirs, 30)


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
                                  "ConstantLR", "CosineAnnealingLR", "LambdaLR"])
def test_step_with_an_epoch_and_resuming_with_last_epoch_match_torch(name):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES[name][0]
    pair = [build(lr_scheduler, _optimizer()), build(TL, _torch_optimizer(torch))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in pair:
            s.step(9)
    assert pair[0].get_last_lr() == pair[1].get_last_lr()
    assert _lrs(pair[0], 10) == _lrs(pair[1], 10)

    opts = [_optimizer(), _torch_optimizer(torch)]
    for o in opts:
        for g, base in zip(o.param_groups, BASE_LRS):
            g["initial_lr"], g["lr"] = base, base * 0.37
    sig = {"StepLR": (3, 0.5), "MultiStepLR": ([9, 2, 5, 5], 0.3), "ExponentialLR": (0.9,),
           "LinearLR": (0.1, 0.9, 7), "ConstantLR": (0.45, 4), "CosineAnnealingLR": (7, 1e-3),
           "LambdaLR": (_lambda,)}[name]
    pair = [getattr(lr_scheduler, name)(opts[0], *sig, last_epoch=6),
            getattr(TL, name)(opts[1], *sig, last_epoch=6)]
    assert _lrs(pair[0], 20) == _lrs(pair[1], 20)


@pytest.mark.parametrize("name", lr_scheduler.__all__)
def test_signatures_match_torch(name):
    pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    ours = inspect.signature(getattr(lr_scheduler, name)).parameters
    theirs = inspect.signature(getattr(TL, name)).parameters
    assert list(ours) == list(theirs)
    for arg in ours:
        assert ours[arg].kind == theirs[arg].kind, arg
        assert ours[arg].default == theirs[arg].default, arg
    for method in ("step", "get_last_lr", "get_lr", "state_dict", "load_state_dict"):
        assert hasattr(getattr(lr_scheduler, name), method)


def test_a_group_added_after_the_scheduler_is_scheduled_from_then_on():
    """As torch's multiplicative schedulers: the new group is scaled from the step it arrives
    at (torch gives [0.05, 0.05] after StepLR(2, 0.5)'s first decay, then both halve), and a
    closed form starts from the lr the group was added with."""
    opt = _optimizer([0.1])
    step = StepLR(opt, 2, 0.5)
    seen = []
    for i in range(6):
        if i == 2:
            opt.add_param_group({"params": [nn.Parameter(minigan.ones(2).data)], "lr": 0.05})
        step.step()
        seen.append([round(g["lr"], 9) for g in opt.param_groups])
    assert seen == [[0.1], [0.05], [0.05, 0.05], [0.025, 0.025], [0.025, 0.025],
                    [0.0125, 0.0125]]
    assert step.base_lrs == [0.1, 0.05] and opt.param_groups[1]["initial_lr"] == 0.05
    opt = _optimizer([0.1])
    lam = LambdaLR(opt, lambda k: 1.0 / (k + 1))  # one function: it serves the new group too
    opt.add_param_group({"params": [nn.Parameter(minigan.ones(2).data)], "lr": 0.3})
    lam.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.15])


def test_a_group_added_to_per_group_lambdas_or_removed_is_an_error():
    opt = _optimizer([0.1, 0.2])
    lam = LambdaLR(opt, [lambda k: 1.0, lambda k: 0.5])
    opt.add_param_group({"params": [nn.Parameter(minigan.ones(2).data)], "lr": 0.3})
    with pytest.raises(ValueError, match="LambdaLR: 1 parameter group.s. were added after it was "
                                         "built with one lr_lambda for each of 2 groups"):
        lam.step()
    opt = _optimizer([0.1, 0.2])
    step = StepLR(opt, 2)
    opt.param_groups.pop()
    with pytest.raises(ValueError, match="built for 2 .a group was removed"):
        step.step()
