"""PolynomialLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR, ReduceLROnPlateau and
ChainedScheduler: their sequences (lrs and cycled momentum) against closed forms written out
here with NumPy (no torch needed) and, where torch is installed, against
torch.optim.lr_scheduler bit for bit, over random settings; state dicts (own round trips and
torch's); bad arguments."""
import json
import math
import random
import re
import warnings

import numpy as np
import pytest

import minigan
import minigan.nn as nn
from minigan import optim
from minigan.optim import lr_scheduler
from minigan.optim.lr_scheduler import (ChainedScheduler, ConstantLR,
                                        CosineAnnealingWarmRestarts, CyclicLR, ExponentialLR,
                                        OneCycleLR, PolynomialLR, ReduceLROnPlateau,
                                        SequentialLR, StepLR)

BASE_LRS = (0.1, 0.03)  # two parameter groups, so per-group bookkeeping is exercised


def _optimizer(kind="sgd", lrs=BASE_LRS):
    params = [nn.Parameter(np.zeros(2)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if kind == "sgd":
        return optim.SGD(groups, lr=0.5, momentum=0.9)
    if kind == "adam":
        return optim.Adam(groups, lr=0.5)
    if kind == "rmsprop":
        return optim.RMSprop(groups, lr=0.5, momentum=0.5)
    return optim.Adagrad(groups, lr=0.5)


def _torch_optimizer(torch, kind="sgd", lrs=BASE_LRS):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0.5, momentum=0.9)
    return torch.optim.Adam(groups, lr=0.5)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def _run(scheduler, steps, metrics=None):
    """[(lrs, momenta) at step 0, ..., at step `steps`], stepping the optimizer first."""
    opt = scheduler.optimizer
    seq = [(scheduler.get_last_lr(), _momenta(opt))]
    for k in range(steps):
        if metrics is None:
            opt.step()
            scheduler.step()
        else:
            scheduler.step(metrics[k])
        seq.append((scheduler.get_last_lr(), _momenta(opt)))
    return seq


def _lrs(scheduler, steps):
    return [lrs for lrs, _ in _run(scheduler, steps)]


# ----- closed forms, written out here

def _poly(base, k, T, power):
    return base * (1.0 - min(k, T) / T) ** power


def _sgdr(base, t, T_0, T_mult, eta_min):
    """lr at (possibly fractional) epoch t: walk the restarts."""
    T_i = T_0
    while t >= T_i:
        t -= T_i
        T_i *= T_mult
    return eta_min + (base - eta_min) * (1 + np.cos(np.pi * t / T_i)) / 2


def _cyclic(base, top, k, up, down, mode, gamma):
    """(rise in [0, 1], amplitude scale) at step k."""
    total = up + down
    cycle = k // total + 1
    pos = k % total
    rise = pos / up if pos <= up else (total - pos) / down
    scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1),
             "exp_range": gamma ** k}[mode]
    return base + (top - base) * rise * scale, rise * scale


def _one_cycle(k, T, max_lr, pct_start, div, final_div, three_phase, linear, m_lo, m_hi):
    """(lr, momentum) at step k of OneCycleLR."""
    lo = max_lr / div
    floor = lo / final_div

    def anneal(a, b, f):
        return a + (b - a) * f if linear else b + (a - b) * (1 + np.cos(np.pi * f)) / 2

    rise_end = pct_start * T - 1
    if k <= rise_end:
        f = k / rise_end
        return anneal(lo, max_lr, f), anneal(m_hi, m_lo, f)
    if not three_phase:
        f = (k - rise_end) / (T - 1 - rise_end)
        return anneal(max_lr, floor, f), anneal(m_lo, m_hi, f)
    if k <= 2 * rise_end:
        f = (k - rise_end) / rise_end
        return anneal(max_lr, lo, f), anneal(m_lo, m_hi, f)
    f = (k - 2 * rise_end) / (T - 1 - 2 * rise_end)
    return anneal(lo, floor, f), m_hi


@pytest.mark.parametrize("T,power", [(7, 1.0), (10, 2.0), (9, 0.5), (1, 3.0), (12, 0.0)])
def test_polynomial_lr_is_the_closed_form_and_zero_after_total_iters(T, power):
    seq = _lrs(PolynomialLR(_optimizer(), T, power), 3 * T + 5)
    expected = [[_poly(b, k, T, power) for b in BASE_LRS] for k in range(3 * T + 6)]
    np.testing.assert_allclose(seq, expected, rtol=1e-12, atol=1e-18)
    assert seq[-1] == ([0.0, 0.0] if power > 0 else list(BASE_LRS))
    # the defaults are torch's: total_iters=5, power=1: a linear decay to 0 at step 5
    np.testing.assert_allclose(_lrs(PolynomialLR(_optimizer()), 6)[:6],
                               [[b * (1 - k / 5) for b in BASE_LRS] for k in range(6)],
                               rtol=1e-12, atol=1e-18)


@pytest.mark.parametrize("T_0,T_mult,eta_min", [(5, 1, 0.0), (3, 2, 1e-3), (2, 3, 0.01),
                                                (1, 1, 0.0), (4, 2, 0.0)])
def test_warm_restarts_follow_sgdr(T_0, T_mult, eta_min):
    sched = CosineAnnealingWarmRestarts(_optimizer(), T_0, T_mult, eta_min)
    seq = _lrs(sched, 80)
    expected = [[_sgdr(b, k, T_0, T_mult, eta_min) for b in BASE_LRS] for k in range(81)]
    np.testing.assert_allclose(seq, expected, rtol=1e-12, atol=1e-15)
    # the lr is back at the initial lr right at each restart
    restart, T_i = T_0, T_0
    while restart <= 80:
        assert seq[restart] == list(BASE_LRS)
        T_i *= T_mult
        restart += T_i


def test_warm_restarts_take_fractional_epochs_and_interleave():
    opt = _optimizer()
    sched = CosineAnnealingWarmRestarts(opt, 3, 2, 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # step(epoch) is not deprecated here
        for t in [0.25, 1.5, 2.999, 3.0, 4.75, 8.5, 9.0, 9.25, 20.5, 21.5, 2.0]:
            sched.step(t)
            np.testing.assert_allclose(sched.get_last_lr(),
                                       [_sgdr(b, t, 3, 2, 1e-3) for b in BASE_LRS], rtol=1e-12)
            assert sched.last_epoch == math.floor(t)
    sched.step(26)
    sched.step()  # on from 26: step 27, as torch's docs promise
    assert sched.last_epoch == 27
    np.testing.assert_allclose(sched.get_last_lr(), [_sgdr(b, 27, 3, 2, 1e-3) for b in BASE_LRS],
                               rtol=1e-12)
    with pytest.raises(ValueError, match=re.escape("CosineAnnealingWarmRestarts.step: epoch "
                                                   "must be a finite number >= 0, got -1")):
        sched.step(-1)


@pytest.mark.parametrize("mode,gamma", [("triangular", 1.0), ("triangular2", 1.0),
                                        ("exp_range", 0.97)])
@pytest.mark.parametrize("up,down", [(4, None), (3, 7), (5, 1), (2, 0)])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_cyclic_lr_and_momentum_follow_the_triangle(mode, gamma, up, down, kind):
    opt = _optimizer(kind)
    sched = CyclicLR(opt, [0.01, 0.002], 0.1, up, down, mode, gamma,
                     base_momentum=0.8, max_momentum=0.9)
    d = up if down is None else down
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.002]  # base_lr replaces the lr
    seq = _run(sched, 60)
    for k, (lrs, momenta) in enumerate(seq):
        expected = [_cyclic(b, 0.1, k, up, d, mode, gamma) for b in (0.01, 0.002)]
        np.testing.assert_allclose(lrs, [lr for lr, _ in expected], rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(momenta, [0.9 - 0.1 * s for _, s in expected], rtol=1e-12)
    if kind == "adam":  # the second beta is left alone
        assert all(g["betas"][1] == 0.999 for g in opt.param_groups)


def test_cyclic_lr_with_a_scale_fn_per_iteration_or_per_cycle():
    for scale_mode, arg in (("cycle", lambda k, c: c), ("iterations", lambda k, c: k)):
        opt = _optimizer()
        sched = CyclicLR(opt, 0.01, 0.05, 3, scale_fn=lambda x: 1 / (1 + x),
                         scale_mode=scale_mode, cycle_momentum=False)
        seq = _lrs(sched, 30)
        for k, lrs in enumerate(seq):
            rise, _ = _cyclic(0.0, 1.0, k, 3, 3, "triangular", 1.0)
            scale = 1 / (1 + arg(k, k // 6 + 1))
            np.testing.assert_allclose(lrs, [0.01 + 0.04 * rise * scale] * 2, rtol=1e-12)
        assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]  # not cycled


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_one_cycle_follows_its_phases(three_phase, strategy, kind):
    T = 40
    opt = _optimizer(kind)
    sched = OneCycleLR(opt, [0.1, 0.2], T, pct_start=0.25, anneal_strategy=strategy,
                       three_phase=three_phase, div_factor=10.0, final_div_factor=100.0)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.01, 0.02]
    seq = _run(sched, T - 1)
    for k, (lrs, momenta) in enumerate(seq):
        expected = [_one_cycle(k, T, m, 0.25, 10.0, 100.0, three_phase, strategy == "linear",
                               0.85, 0.95) for m in (0.1, 0.2)]
        np.testing.assert_allclose(lrs, [lr for lr, _ in expected], rtol=1e-12)
        np.testing.assert_allclose(momenta, [m for _, m in expected], rtol=1e-12)
    np.testing.assert_allclose(seq[-1][0], [1e-4, 2e-4], rtol=1e-12)  # max_lr / 10 / 100
    np.testing.assert_allclose(seq[9][0], [0.1, 0.2], rtol=1e-12)  # the peak, at step 9


def test_one_cycle_total_steps_from_epochs_and_the_step_past_the_end():
    opt = _optimizer()
    sched = OneCycleLR(opt, 0.1, epochs=3, steps_per_epoch=4)
    assert sched.total_steps == 12
    _lrs(sched, 12)  # step 12 (one past the last planned step) is still allowed, as in torch
    with pytest.raises(ValueError, match=re.escape("OneCycleLR: Tried to step 13 times. The "
                                                   "specified number of total steps is 12")):
        sched.step()
    # as torch, total_steps wins over epochs * steps_per_epoch
    assert OneCycleLR(_optimizer(), 0.1, 7, epochs=3, steps_per_epoch=4).total_steps == 7


def test_one_cycle_phase_without_steps_is_an_error_not_a_division_by_zero():
    with pytest.raises(ValueError, match="OneCycleLR: phase 0 of the schedule has no steps"):
        OneCycleLR(_optimizer(), 0.1, 10, pct_start=0.1, three_phase=True)


def test_reduce_on_plateau_by_hand():
    """patience=2, cooldown=1, factor=0.5, rel threshold 0.1: a new best must be below 0.9 of
    the old one."""
    opt = _optimizer()
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.1, cooldown=1,
                              min_lr=[0.02, 0.0])
    metrics = [1.0, 0.95, 0.95, 0.95, 0.5, 0.46, 0.46, 0.46, 0.46, 0.46, 0.44, 0.2]
    # reductions at index 3 (a 3rd bad step) and 7; the step after each is a cooldown step
    bad = [0, 1, 2, 0, 0, 1, 2, 0, 0, 1, 0, 0]
    best = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.44, 0.2]
    cooldown = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    lrs = [[0.1, 0.03]] * 3 + [[0.05, 0.015]] * 4 + [[0.025, 0.0075]] * 5
    for k, m in enumerate(metrics):
        sched.step(m)
        assert (sched.num_bad_epochs, sched.best, sched.cooldown_counter, sched.last_epoch) == \
            (bad[k], best[k], cooldown[k], k + 1), k
        assert sched.get_last_lr() == pytest.approx(lrs[k], rel=1e-15), k
    # min_lr bounds the first group: 0.025 -> max(0.0125, 0.02)
    for _ in range(4):
        sched.step(1.0)
    assert sched.get_last_lr() == pytest.approx([0.02, 0.00375], rel=1e-15)


@pytest.mark.parametrize("mode,threshold_mode,seq,reduced_at", [
    ("min", "abs", [5.0, 4.5, 4.4, 4.35, 3.0], 3),   # 4.5 improves by 0.5, then < 0.2
    ("max", "rel", [1.0, 1.5, 1.6, 1.55, 1.7], 3),   # 1.6 < 1.5 * 1.1: no improvement
    ("max", "abs", [1.0, 2.0, 2.1, 2.15, 9.0], 3),
    ("min", "rel", [1.0, 0.8, 0.75, 0.73, 0.5], 3),
])
def test_reduce_on_plateau_modes(mode, threshold_mode, seq, reduced_at):
    opt = _optimizer()
    sched = ReduceLROnPlateau(opt, mode, 0.1, patience=1, threshold=0.2 if
                              threshold_mode == "abs" else 0.1, threshold_mode=threshold_mode)
    got = []
    for m in seq:
        sched.step(m)
        got.append(sched.get_last_lr()[0])
    assert got.index(got[-1]) == reduced_at and got[-1] == pytest.approx(0.01)


def test_reduce_on_plateau_takes_a_0d_tensor_and_skips_changes_below_eps():
    opt = _optimizer()
    sched = ReduceLROnPlateau(opt, patience=0, eps=0.05)
    sched.step(minigan.tensor(np.float32(2.0)))
    assert sched.best == 2.0 and isinstance(sched.best, float)
    sched.step(minigan.tensor(3.0))
    # 0.1 -> 0.01 is a change of 0.09 > eps; 0.03 -> 0.003 is 0.027 <= eps: kept
    assert sched.get_last_lr() == [0.1 * 0.1, 0.03]
    with pytest.raises(ValueError):
        sched.step(minigan.tensor(np.array([1.0, 2.0])))
    with pytest.warns(UserWarning, match=re.escape("ReduceLROnPlateau.step(epoch) is "
                                                   "deprecated")):
        sched.step(1.0, 7)
    assert sched.last_epoch == 7


def test_reduce_on_plateau_with_a_group_added():
    opt = _optimizer()
    sched = ReduceLROnPlateau(opt, patience=0, min_lr=0.001)
    opt.add_param_group({"params": [nn.Parameter(np.zeros(1))], "lr": 0.5})
    sched.step(1.0)
    sched.step(2.0)
    assert sched.get_last_lr() == pytest.approx([0.01, 0.003, 0.05])
    opt = _optimizer()
    sched = ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
    opt.add_param_group({"params": [nn.Parameter(np.zeros(1))], "lr": 0.5})
    sched.step(1.0)
    with pytest.raises(ValueError, match="min_lr was given for 2"):
        sched.step(2.0)


def test_chained_scheduler_compounds_the_factors():
    opt = _optimizer()
    chain = ChainedScheduler([ConstantLR(opt, 0.1, 4), ExponentialLR(opt, 0.9)])
    seq = _lrs(chain, 12)
    np.testing.assert_allclose(seq, [[b * (0.1 if k < 4 else 1.0) * 0.9 ** k for b in BASE_LRS]
                                     for k in range(13)], rtol=1e-12)
    assert chain.optimizer is opt and set(chain.state_dict()) == {"_last_lr", "_schedulers"}
    # first in a SequentialLR; later, where it would have to restart, it is refused
    opt = _optimizer()
    seq_lr = SequentialLR(opt, [ChainedScheduler([ConstantLR(opt, 0.5, 2),
                                                  ExponentialLR(opt, 0.5)], opt),
                                StepLR(opt, 2)], [3])
    got = [lrs[0] for lrs in _lrs(seq_lr, 6)]
    # (the chain's constructor step is undone and its first step is not an initial one, so
    # ExponentialLR already halves at step 0: torch's arithmetic)
    np.testing.assert_allclose(got, [0.025, 0.0125, 0.0125, 0.1, 0.1, 0.01, 0.01], rtol=1e-12)
    with pytest.raises(ValueError, match="SequentialLR: schedulers.1. is a ChainedScheduler, "
                                         "which cannot restart at a milestone"):
        SequentialLR(opt, [StepLR(opt, 2), ChainedScheduler([StepLR(opt, 3)])], [3])


def test_step_with_an_epoch_is_deprecated_and_jumps():
    sched = PolynomialLR(_optimizer(), 10, 2.0)
    with pytest.warns(UserWarning, match=re.escape("PolynomialLR.step(epoch) is deprecated")):
        sched.step(4)
    np.testing.assert_allclose(sched.get_last_lr(), [_poly(b, 4, 10, 2.0) for b in BASE_LRS],
                               rtol=1e-12)
    cyc = CyclicLR(_optimizer(), 0.0, 1.0, 4)
    with pytest.warns(UserWarning):
        cyc.step(6)
    assert cyc.get_last_lr() == [0.5, 0.5]


# ----- state dicts

CASES = {
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, 30, 1.5),
    "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, 3, 2, 1e-4),
    "CyclicLR": lambda M, o: M.CyclicLR(o, 0.001, [0.1, 0.05], 5, 3, "exp_range", 0.99),
    "CyclicLR-triangular2": lambda M, o: M.CyclicLR(o, 0.001, 0.1, 4, mode="triangular2",
                                                    base_momentum=[0.7, 0.75]),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, [0.1, 0.2], 60, three_phase=True),
    "OneCycleLR-linear": lambda M, o: M.OneCycleLR(o, 0.1, epochs=5, steps_per_epoch=11,
                                                   anneal_strategy="linear",
                                                   cycle_momentum=False),
    "ChainedScheduler": lambda M, o: M.ChainedScheduler([M.PolynomialLR(o, 40, 0.9),
                                                         M.CyclicLR(o, 0.01, 0.1, 3)]),
}
NAMES = list(CASES)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_the_same_sequence(name, kind):
    """Save optimizer and scheduler at step 20 through JSON, load both into fresh ones built
    with other lrs, and the remaining steps (lrs and momenta) are identical."""
    build = CASES[name]
    full = _run(build(lr_scheduler, _optimizer(kind)), 50)
    opt = _optimizer(kind)
    sched = build(lr_scheduler, opt)
    _run(sched, 20)
    saved_opt = json.loads(json.dumps(opt.state_dict()))
    saved_sched = json.loads(json.dumps(sched.state_dict()))
    opt2 = _optimizer(kind, lrs=(0.7, 0.9))
    sched2 = build(lr_scheduler, opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert sched2.get_last_lr() == full[20][0]
    assert _run(sched2, 30) == full[20:]


def test_reduce_on_plateau_state_round_trip():
    metrics = [1.0, 0.9, 0.95, 0.97, 0.91, 0.89, 0.95, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    sched = ReduceLROnPlateau(_optimizer(), "min", 0.5, 1, cooldown=2, min_lr=[1e-3, 0.0])
    full = _run(sched, len(metrics), metrics)
    opt = _optimizer()
    sched = ReduceLROnPlateau(opt, "min", 0.5, 1, cooldown=2, min_lr=[1e-3, 0.0])
    _run(sched, 5, metrics)
    state = json.loads(json.dumps(sched.state_dict()))
    assert {"best", "num_bad_epochs", "cooldown_counter", "mode_worse", "min_lrs",
            "default_min_lr", "last_epoch", "_last_lr"} <= set(state)
    opt2 = _optimizer(lrs=(0.5, 0.5))
    sched2 = ReduceLROnPlateau(opt2, "max", 0.1, 7)  # all of it comes from the state
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    assert (sched2.mode, sched2.patience, sched2.cooldown, sched2.min_lrs) == \
        ("min", 1, 2, [1e-3, 0.0])
    assert _run(sched2, len(metrics) - 5, metrics[5:]) == full[5:]
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode must be 'min' or 'max'"):
        sched2.load_state_dict({**state, "mode": "lowest"})
    with pytest.raises(ValueError, match=re.escape("unknown keys ['T_0']")):
        sched2.load_state_dict({**state, "T_0": 3})


class _Halving:
    """A callable object with state of its own: CyclicLR saves and restores its __dict__."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, x):
        return self.rate ** (x - 1)


def test_cyclic_lr_saves_the_state_of_a_scale_fn_object():
    sched = CyclicLR(_optimizer(), 0.01, 0.1, 2, scale_fn=_Halving(0.5))
    assert sched.state_dict()["_scale_fn_custom"] == {"rate": 0.5}
    other = _Halving(0.9)
    sched2 = CyclicLR(_optimizer(), 0.01, 0.1, 2, scale_fn=other)
    sched2.load_state_dict(sched.state_dict())
    assert other.rate == 0.5 and sched2._scale_fn_custom is other
    plain = CyclicLR(_optimizer(), 0.01, 0.1, 2, scale_fn=lambda x: 1.0)
    assert plain.state_dict()["_scale_fn_custom"] is None
    with pytest.raises(ValueError, match="this scheduler has no scale_fn"):
        CyclicLR(_optimizer(), 0.01, 0.1, 2).load_state_dict(sched.state_dict())


def test_groups_added_after_a_cyclic_or_one_cycle_scheduler_are_an_error():
    for make in (lambda o: CyclicLR(o, 0.01, 0.1, 2), lambda o: OneCycleLR(o, 0.1, 10)):
        opt = _optimizer()
        sched = make(opt)
        opt.add_param_group({"params": [nn.Parameter(np.zeros(1))], "lr": 0.5})
        with pytest.raises(ValueError, match="parameter group.s. were added after it was "
                                             "built"):
            sched.step()


def test_polynomial_and_warm_restarts_schedule_an_added_group():
    opt = _optimizer(lrs=(0.1,))
    sched = CosineAnnealingWarmRestarts(opt, 4)
    sched.step()
    opt.add_param_group({"params": [nn.Parameter(np.zeros(1))], "lr": 0.5})
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [_sgdr(0.1, 2, 4, 1, 0.0),
                                                     _sgdr(0.5, 2, 4, 1, 0.0)], rtol=1e-12)


# ----- bad arguments

def _o():
    return _optimizer()


@pytest.mark.parametrize("make, error, message", [
    (lambda: PolynomialLR(_o(), 0), ValueError,
     "PolynomialLR: total_iters must be a positive int, got 0"),
    (lambda: PolynomialLR(_o(), 5, -1.0), ValueError,
     "PolynomialLR: power must be a finite number >= 0, got -1.0"),
    (lambda: PolynomialLR("sgd"), TypeError,
     "PolynomialLR: optimizer must be a minigan.optim.Optimizer, got str"),
    (lambda: CosineAnnealingWarmRestarts(_o(), 0), ValueError,
     "CosineAnnealingWarmRestarts: T_0 must be a positive int, got 0"),
    (lambda: CosineAnnealingWarmRestarts(_o(), 2.5), ValueError,
     "CosineAnnealingWarmRestarts: T_0 must be a positive int, got 2.5"),
    (lambda: CosineAnnealingWarmRestarts(_o(), 3, 0), ValueError,
     "CosineAnnealingWarmRestarts: T_mult must be a positive int, got 0"),
    (lambda: CosineAnnealingWarmRestarts(_o(), 3, 1.5), ValueError,
     "CosineAnnealingWarmRestarts: T_mult must be a positive int, got 1.5"),
    (lambda: CosineAnnealingWarmRestarts(_o(), 3, eta_min=-1.0), ValueError,
     "CosineAnnealingWarmRestarts: eta_min must be a finite number >= 0, got -1.0"),
    (lambda: CosineAnnealingWarmRestarts(_o(), 3, last_epoch=-3), ValueError,
     "CosineAnnealingWarmRestarts: last_epoch must be an int >= -1, got -3"),
    (lambda: CyclicLR(_o(), 0.01, 0.1, mode="triangle"), ValueError,
     "CyclicLR: mode must be 'triangular', 'triangular2' or 'exp_range' (or give a scale_fn), "
     "got 'triangle'"),
    (lambda: CyclicLR(_o(), 0.01, 0.1, scale_fn=lambda x: 1.0, scale_mode="epoch"), ValueError,
     "CyclicLR: scale_mode must be 'cycle' or 'iterations', got 'epoch'"),
    (lambda: CyclicLR(_o(), 0.01, 0.1, scale_fn=0.5), TypeError,
     "CyclicLR: scale_fn must be callable or None, got 0.5"),
    (lambda: CyclicLR(_o(), [0.01], 0.1), ValueError,
     "CyclicLR: expected 2 values of base_lr, one per parameter group, got 1"),
    (lambda: CyclicLR(_o(), 0.01, -0.1), ValueError,
     "CyclicLR: max_lr must be a finite number >= 0"),
    (lambda: CyclicLR(_o(), 0.01, 0.1, 0), ValueError,
     "CyclicLR: step_size_up must be a positive int, got 0"),
    (lambda: CyclicLR(_o(), 0.01, 0.1, 3, -1), ValueError,
     "CyclicLR: step_size_down must be None or an int >= 0, got -1"),
    (lambda: CyclicLR(_o(), 0.01, 0.1, gamma=-0.5), ValueError,
     "CyclicLR: gamma must be a finite number >= 0, got -0.5"),
    (lambda: CyclicLR(_optimizer("adagrad"), 0.01, 0.1), ValueError,
     "CyclicLR: cycle_momentum=True needs an optimizer with momentum or betas, and Adagrad "
     "has neither"),
    (lambda: CyclicLR(_optimizer("adam"), 0.01, 0.1, max_momentum=1.0), ValueError,
     "CyclicLR: max_momentum must be a finite number >= 0 and < 1.0"),
    (lambda: OneCycleLR(_o(), 0.1), ValueError,
     "OneCycleLR: give total_steps, or both epochs and steps_per_epoch"),
    (lambda: OneCycleLR(_o(), 0.1, epochs=3), ValueError,
     "OneCycleLR: give total_steps, or both epochs and steps_per_epoch"),
    (lambda: OneCycleLR(_o(), 0.1, 0), ValueError,
     "OneCycleLR: total_steps must be a positive int, got 0"),
    (lambda: OneCycleLR(_o(), 0.1, epochs=2, steps_per_epoch=1.5), ValueError,
     "OneCycleLR: steps_per_epoch must be a positive int, got 1.5"),
    (lambda: OneCycleLR(_o(), 0.1, 10, pct_start=1.2), ValueError,
     "OneCycleLR: pct_start must lie in [0, 1], got 1.2"),
    (lambda: OneCycleLR(_o(), 0.1, 10, anneal_strategy="cosine"), ValueError,
     "OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'cosine'"),
    (lambda: OneCycleLR(_o(), 0.1, 10, div_factor=0), ValueError,
     "OneCycleLR: div_factor must be a finite number > 0, got 0"),
    (lambda: OneCycleLR(_o(), [0.1, 0.2, 0.3], 10), ValueError,
     "OneCycleLR: expected 2 values of max_lr, one per parameter group, got 3"),
    (lambda: OneCycleLR(_optimizer("adagrad"), 0.1, 10), ValueError,
     "OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas"),
    (lambda: ReduceLROnPlateau(_o(), "lowest"), ValueError,
     "ReduceLROnPlateau: mode must be 'min' or 'max', got 'lowest'"),
    (lambda: ReduceLROnPlateau(_o(), threshold_mode="relative"), ValueError,
     "ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got 'relative'"),
    (lambda: ReduceLROnPlateau(_o(), factor=1.0), ValueError,
     "ReduceLROnPlateau: factor must lie in [0, 1), got 1.0"),
    (lambda: ReduceLROnPlateau(_o(), patience=-1), ValueError,
     "ReduceLROnPlateau: patience must be an int >= 0, got -1"),
    (lambda: ReduceLROnPlateau(_o(), cooldown=0.5), ValueError,
     "ReduceLROnPlateau: cooldown must be an int >= 0, got 0.5"),
    (lambda: ReduceLROnPlateau(_o(), min_lr=[0.1]), ValueError,
     "ReduceLROnPlateau: expected 2 values of min_lr, one per parameter group, got 1"),
    (lambda: ReduceLROnPlateau(_o(), eps=-1e-8), ValueError,
     "ReduceLROnPlateau: eps must be a finite number >= 0, got -1e-08"),
    (lambda: ChainedScheduler([]), ValueError,
     "ChainedScheduler: expects at least one scheduler, got none"),
    (lambda: ChainedScheduler(["step"]), TypeError,
     "ChainedScheduler: optimizer must be a minigan.optim.Optimizer, got NoneType"),
    (lambda: ChainedScheduler([StepLR(_o(), 2), StepLR(_o(), 3)]), ValueError,
     "ChainedScheduler: schedulers[1] (StepLR) belongs to another optimizer"),
    (lambda: (lambda o: ChainedScheduler([StepLR(o, 2), ReduceLROnPlateau(o)]))(_o()),
     ValueError, "ChainedScheduler: schedulers[1] is a ReduceLROnPlateau"),
    (lambda: (lambda o: SequentialLR(o, [StepLR(o, 2), ReduceLROnPlateau(o)], [3]))(_o()),
     ValueError, "SequentialLR: schedulers[1] is a ReduceLROnPlateau"),
])
def test_bad_arguments_are_refused_naming_the_value(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


# ----- against torch itself (skipped where torch is missing)

def _random_case(rng):
    """(name, build(module, optimizer), steps, metrics or None) with random settings."""
    name = rng.choice(["PolynomialLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
                       "ReduceLROnPlateau", "ChainedScheduler"])
    if name == "PolynomialLR":
        args = (rng.randint(1, 40), rng.choice([1.0, 0.5, 2.0, 0.9, 3, 1.7]))
        return name, lambda M, o: M.PolynomialLR(o, *args), 80, None
    if name == "CosineAnnealingWarmRestarts":
        args = (rng.randint(1, 12), rng.randint(1, 3), rng.choice([0.0, 1e-3, 0.01, 0]))
        return name, lambda M, o: M.CosineAnnealingWarmRestarts(o, *args), 150, None
    if name == "CyclicLR":
        kw = dict(base_lr=rng.choice([0.001, [0.001, 0.0023]]),
                  max_lr=rng.choice([0.1, 0.05, [0.07, 0.3]]), step_size_up=rng.randint(1, 12),
                  step_size_down=rng.choice([None, 0, 1, 5, 13]),
                  mode=rng.choice(["triangular", "triangular2", "exp_range"]),
                  gamma=rng.choice([1.0, 0.99, 0.9]), cycle_momentum=rng.choice([True, False]),
                  base_momentum=rng.choice([0.8, 0.5]), max_momentum=rng.choice([0.9, 0.95]))
        if rng.random() < 0.2:
            kw.update(scale_fn=lambda x: 1 / (1.0 + x) ** 0.5,
                      scale_mode=rng.choice(["cycle", "iterations"]))
        return name, lambda M, o: M.CyclicLR(o, **kw), 150, None
    if name == "OneCycleLR":
        T = rng.randint(5, 120)
        kw = dict(max_lr=rng.choice([0.1, [0.1, 0.2]]),
                  pct_start=rng.choice([0.3, 0.25, 0.5, 0.1, 0.45, 0.37]),
                  anneal_strategy=rng.choice(["cos", "linear"]),
                  cycle_momentum=rng.choice([True, False]),
                  base_momentum=rng.choice([0.85, [0.8, 0.7]]), max_momentum=0.95,
                  div_factor=rng.choice([25.0, 10.0, 3.0]),
                  final_div_factor=rng.choice([1e4, 100.0]),
                  three_phase=rng.choice([True, False]))
        if rng.random() < 0.5:
            kw["total_steps"] = T
        else:
            kw["epochs"], kw["steps_per_epoch"] = rng.randint(1, 6), rng.randint(1, 20)
            T = kw["epochs"] * kw["steps_per_epoch"]
        return name, lambda M, o: M.OneCycleLR(o, **kw), T, None
    if name == "ReduceLROnPlateau":
        kw = dict(mode=rng.choice(["min", "max"]), factor=rng.choice([0.1, 0.5, 0.3, 0.0]),
                  patience=rng.randint(0, 4), threshold=rng.choice([1e-4, 0.01, 0.1, 0.0]),
                  threshold_mode=rng.choice(["rel", "abs"]), cooldown=rng.randint(0, 3),
                  min_lr=rng.choice([0, 1e-4, [1e-3, 1e-5]]), eps=rng.choice([1e-8, 1e-3]))
        metrics = [rng.choice([1.0, 0.99, 0.9999, 0.5, 2.0, -1.0, rng.random(), float("nan")])
                   for _ in range(100)]
        return name, lambda M, o: M.ReduceLROnPlateau(o, **kw), 100, metrics
    T = rng.randint(3, 30)
    if rng.random() < 0.5:
        return name, lambda M, o: M.ChainedScheduler(
            [M.ConstantLR(o, 0.25, 5), M.PolynomialLR(o, T, 2.0), M.ExponentialLR(o, 0.97)],
            optimizer=o), 60, None
    return name, lambda M, o: M.ChainedScheduler(
        [M.LinearLR(o, 0.1, 1.0, 6), M.CyclicLR(o, 0.01, 0.1, 4), M.ExponentialLR(o, 0.97)]), \
        60, None


def _torch_run(torch, TL, build, kind, steps, metrics):
    topt = _torch_optimizer(torch, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = build(TL, topt)
        return _run(theirs, steps, metrics), theirs


@pytest.mark.parametrize("seed", range(40))
def test_random_settings_match_torch_bit_for_bit(seed):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    rng = random.Random(seed)
    for _ in range(6):
        name, build, steps, metrics = _random_case(rng)
        kind = rng.choice(["sgd", "adam"])
        ours = build(lr_scheduler, _optimizer(kind))
        expected, theirs = _torch_run(torch, TL, build, kind, steps, metrics)
        assert _run(ours, steps, metrics) == expected, name
        if hasattr(theirs, "last_epoch"):  # (a ChainedScheduler has none)
            assert ours.last_epoch == theirs.last_epoch
        if name == "OneCycleLR":
            with pytest.raises(ValueError, match="Tried to step"):
                ours.step()


def _torch_state_keys(theirs):
    return set(theirs.state_dict()) - {"_get_lr_called_within_step", "_is_initial"}


@pytest.mark.parametrize("name", NAMES + ["ReduceLROnPlateau"])
def test_state_dict_keys_are_torchs(name):
    """The same keys as torch's state dict; OneCycleLR adds the per-group bounds that torch
    keeps in the optimizer's groups."""
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES.get(name, lambda M, o: M.ReduceLROnPlateau(o))
    ours = build(lr_scheduler, _optimizer())
    _, theirs = _torch_run(torch, TL, build, "sgd", 0, None)
    extra = {"max_lrs", "min_lrs", "max_momentums", "base_momentums"} \
        if name.startswith("OneCycleLR") else set()
    if name == "OneCycleLR-linear":  # no momentum cycled
        extra -= {"max_momentums", "base_momentums"}
    assert set(ours.state_dict()) == _torch_state_keys(theirs) | extra
    if name == "ChainedScheduler":
        assert [set(s) for s in ours.state_dict()["_schedulers"]] == \
            [set(s) - {"_get_lr_called_within_step", "_is_initial"}
             for s in theirs.state_dict()["_schedulers"]]


_SCHEDULER_GROUP_KEYS = ("max_lr", "min_lr", "max_momentum", "base_momentum")


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", NAMES)
def test_a_torch_scheduler_state_loads_and_continues_like_torch(name, kind):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES[name]
    topt = _torch_optimizer(torch, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = build(TL, topt)
        _run(theirs, 17)
    opt = _optimizer(kind)
    ours = build(lr_scheduler, opt)
    # torch's groups also hold OneCycleLR's/CyclicLR's bounds, which minigan's optimizers
    # refuse: those live in the scheduler here
    groups = [{k: v for k, v in g.items() if k not in _SCHEDULER_GROUP_KEYS}
              for g in topt.state_dict()["param_groups"]]
    opt.load_state_dict({"state": {}, "param_groups": groups})
    ours.load_state_dict(theirs.state_dict())
    assert ours.get_last_lr() == theirs.get_last_lr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _run(ours, 30) == _run(theirs, 30)


def test_a_torch_reduce_on_plateau_state_loads_and_continues_like_torch():
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    metrics = [1.0, 0.9, 0.95, 0.97, 0.91, 0.89, 0.95, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] * 2
    build = lambda M, o: M.ReduceLROnPlateau(o, "min", 0.5, 1, cooldown=2,  # noqa: E731
                                             min_lr=[1e-3, 0.0])
    topt = _torch_optimizer(torch)
    theirs = build(TL, topt)
    _run(theirs, 7, metrics)
    opt = _optimizer()
    ours = build(lr_scheduler, opt)
    opt.load_state_dict({"state": {}, "param_groups": topt.state_dict()["param_groups"]})
    ours.load_state_dict(theirs.state_dict())
    assert _run(ours, 20, metrics[7:]) == _run(theirs, 20, metrics[7:])


def test_warm_restarts_with_fractional_epochs_match_torch():
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    rng = random.Random(5)
    for T_0, T_mult in [(3, 1), (3, 2), (1, 3), (5, 2), (2, 2)]:
        pair = [lr_scheduler.CosineAnnealingWarmRestarts(_optimizer(), T_0, T_mult, 1e-4),
                TL.CosineAnnealingWarmRestarts(_torch_optimizer(torch), T_0, T_mult, 1e-4)]
        for _ in range(200):
            r = rng.random()
            if r < 0.3:
                for s in pair:
                    s.step()
            else:
                t = rng.choice([rng.uniform(0, 60), float(rng.randint(0, 60)),
                                rng.randint(0, 60), T_0 * (T_mult ** rng.randint(0, 4) - 1)
                                / max(T_mult - 1, 1)])
                for s in pair:
                    s.step(t)
            assert pair[0].get_last_lr() == pair[1].get_last_lr()
            assert (pair[0].T_cur, pair[0].T_i, pair[0].last_epoch) == \
                (pair[1].T_cur, pair[1].T_i, pair[1].last_epoch)


@pytest.mark.parametrize("name", ["PolynomialLR", "CyclicLR", "OneCycleLR",
                                  "CosineAnnealingWarmRestarts"])
def test_step_with_an_epoch_and_resuming_with_last_epoch_match_torch(name):
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    build = CASES[name]
    pair = [build(lr_scheduler, _optimizer()), build(TL, _torch_optimizer(torch))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in pair:
            s.step(9)
        assert pair[0].get_last_lr() == pair[1].get_last_lr()
        assert _run(pair[0], 10) == _run(pair[1], 10)
    # resuming: the optimizer's groups hold initial_lr (and, for torch, the bounds)
    states = [build(lr_scheduler, _optimizer()), build(TL, _torch_optimizer(torch))]
    for s in states:
        _run(s, 6)
    opts = [_optimizer(), _torch_optimizer(torch)]
    opts[0].load_state_dict({"state": {}, "param_groups": [
        {k: v for k, v in g.items() if k not in _SCHEDULER_GROUP_KEYS}
        for g in states[0].optimizer.state_dict()["param_groups"]]})
    opts[1].load_state_dict(states[1].optimizer.state_dict())
    args = {"PolynomialLR": (30, 1.5), "CyclicLR": (0.001, [0.1, 0.05], 5, 3, "exp_range", 0.99),
            "OneCycleLR": ([0.1, 0.2], 60), "CosineAnnealingWarmRestarts": (3, 2, 1e-4)}[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pair = [getattr(lr_scheduler, name)(opts[0], *args, last_epoch=6),
                getattr(TL, name)(opts[1], *args, last_epoch=6)]
        assert _run(pair[0], 20) == _run(pair[1], 20)


def test_chained_scheduler_in_a_sequential_lr_matches_torch():
    torch = pytest.importorskip("torch")
    import torch.optim.lr_scheduler as TL
    seqs = []
    for M, o in ((lr_scheduler, _optimizer()), (TL, _torch_optimizer(torch))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sched = M.SequentialLR(o, [M.ChainedScheduler([M.PolynomialLR(o, 20, 1.3),
                                                           M.ExponentialLR(o, 0.95)]),
                                       M.CosineAnnealingWarmRestarts(o, 4, 2)], [12])
            seqs.append(_lrs(sched, 40))
    assert seqs[0] == seqs[1]
