"""Regressions found by differential testing of minigan.optim against torch.optim (no torch
needed: the expected values are the textbook schedules)."""
import numpy as np
import pytest

import minigan.nn as nn
from minigan.optim import SGD, Adam
from minigan.optim.lr_scheduler import LinearLR


def _sgd(lr=0.1):
    return SGD([nn.Parameter(np.zeros(2))], lr=lr)


@pytest.mark.parametrize("start_factor,total_iters", [(0.1, 4), (1 / 3, 13), (0.5, 9)])
def test_linear_lr_decaying_to_zero_ends_at_zero_and_its_state_loads(start_factor,
                                                                       total_iters):
    # lr_k = 0.1 * (s + (0 - s) * min(k, T) / T): exactly 0 from step T on. torch's recursive
    # update rounds to about -5e-19 there, an lr that every optimizer refuses to load.
    opt = _sgd()
    sched = LinearLR(opt, start_factor, 0.0, total_iters)
    for k in range(1, total_iters + 4):
        opt.step()
        sched.step()
        expected = 0.1 * (start_factor - start_factor * min(k, total_iters) / total_iters)
        assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12, abs=1e-30)
        assert opt.param_groups[0]["lr"] >= 0.0
    assert opt.param_groups[0]["lr"] == 0.0
    fresh = _sgd()
    fresh_sched = LinearLR(fresh, start_factor, 0.0, total_iters)
    fresh.load_state_dict(opt.state_dict())
    fresh_sched.load_state_dict(sched.state_dict())
    fresh.step()
    fresh_sched.step()
    assert fresh_sched.get_last_lr() == [0.0]


@pytest.mark.parametrize("make", [_sgd, lambda: Adam([nn.Parameter(np.zeros(2))], lr=0.1)])
def test_a_state_whose_lr_rounded_just_below_zero_loads_as_zero(make):
    # what torch.optim.lr_scheduler.LinearLR(opt, 0.1, 0.0, 4) leaves in a torch optimizer's
    # state dict at step 4 (lr 0.1)
    opt = make()
    state = opt.state_dict()
    state["param_groups"][0].update(lr=-5.551115123125785e-19, initial_lr=0.1)
    opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.0
    # a clearly negative lr is still refused, and changes nothing
    state["param_groups"][0].update(lr=-1e-3)
    with pytest.raises(ValueError, match="invalid learning rate"):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.0
