"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s names, arguments and sequences.

A scheduler rewrites ``group["lr"]`` in each parameter group of its optimizer; call its
``step()`` after ``optimizer.step()``. ``last_epoch`` counts the scheduler's steps: the
constructor takes step 0 (recording each group's starting lr as ``group["initial_lr"]``, which
becomes ``base_lrs``), and ``step()`` number k sets the lr for step k.

The numbers are torch's to the last bit, because the arithmetic is the same: most schedulers
multiply the *current* lr by a factor each step (so an lr that other code changed between steps
is carried on), and only the deprecated ``step(epoch)`` jumps to ``last_epoch = epoch`` through
the closed form. Loading ``state_dict()`` of the optimizer and of the scheduler into fresh ones
continues the same sequence.
"""
from __future__ import annotations

import math
import numbers
import warnings
from bisect import bisect_right

from . import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
           "LinearLR", "ExponentialLR", "CosineAnnealingLR", "SequentialLR"]

# Entries of torch-written scheduler state dicts that carry no part of the schedule.
_TORCH_INTERNAL_KEYS = ("_get_lr_called_within_step", "_is_initial", "verbose")


def _check_optimizer(where: str, optimizer) -> None:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{where}: optimizer must be a minigan.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(where: str, what: str, value) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r}")
    return int(value)


def _nonnegative(where: str, what: str, value):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) \
            or not 0.0 <= value < math.inf:
        raise ValueError(f"{where}: {what} must be a finite number >= 0, got {value!r}")
    return value


def _fraction(where: str, what: str, value, zero_allowed: bool):
    """A factor in [0, 1], or (0, 1] where the schedule divides by it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        0.0 <= value <= 1.0 if zero_allowed else 0.0 < value <= 1.0)
    if not ok:
        raise ValueError(f"{where}: {what} must lie in {'[0' if zero_allowed else '(0'}, 1], "
                         f"got {value!r}")
    return value


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``state_dict()``/``load_state_dict()``.

    A subclass defines ``get_lr()``, the lrs for step ``last_epoch`` computed from the current
    ones (``_is_initial`` is true during the constructor's step), and may define
    ``_closed_form_lr()``, the lrs for step ``last_epoch`` from ``base_lrs`` alone.

    ``last_epoch=-1`` starts a schedule. A larger value resumes one: the optimizer's groups must
    then already hold ``initial_lr`` (load the optimizer's state first), and as in torch the
    constructor still takes one step from there.
    """

    _is_initial = False
    _not_state = ("optimizer", "_is_initial")

    def __init__(self, optimizer, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{name}: resuming with last_epoch={last_epoch} needs "
                                   f"'initial_lr' in param_groups[{i}]; load the optimizer's "
                                   "state dict first, or start with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._initial_step()

    def _adopt(self, new_groups) -> None:
        """Groups added (``add_param_group``) after the scheduler was built: as torch's
        multiplicative schedulers do, they are scheduled from now on, and a closed form starts
        from each one's ``initial_lr`` (its lr when it was added)."""
        for group in new_groups:
            group.setdefault("initial_lr", group["lr"])
            self.base_lrs.append(group["initial_lr"])

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial  # back to the class's False

    def _current_lrs(self) -> list:
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> list:
        """The lrs for step ``last_epoch``, from the current ones. To read the lrs in use, call
        ``get_last_lr()``: this is the update rule that ``step()`` applies."""
        raise NotImplementedError

    def get_last_lr(self) -> list:
        """The lrs the last step set, one per parameter group (a copy)."""
        return list(self._last_lr)

    def step(self, epoch=None) -> None:
        """Advance one step. ``step(epoch)`` is deprecated, as in torch: it sets
        ``last_epoch = epoch`` and uses the closed form where the scheduler has one."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(f"{type(self).__name__}.step(epoch) is deprecated, as in torch; call "
                          "step() without an argument", UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None) -> None:
        groups = self.optimizer.param_groups
        if len(groups) < len(self.base_lrs):
            raise ValueError(f"{type(self).__name__}: the optimizer has {len(groups)} parameter "
                             f"groups, but the scheduler was built for {len(self.base_lrs)} (a "
                             "group was removed)")
        if len(groups) > len(self.base_lrs):
            self._adopt(groups[len(self.base_lrs):])
        if epoch is None:
            self.last_epoch += 1
            lrs = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_closed_form_lr", None)
            lrs = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    # ----- state
    def state_dict(self) -> dict:
        """Every attribute but the optimizer (lists copied): plain numbers and lists, so the
        dict survives JSON for every scheduler whose lr_lambdas (if any) hold JSON-able state."""
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in vars(self).items() if key not in self._not_state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore ``state_dict()`` (this class's, or torch's for the same scheduler)."""
        name = f"{type(self).__name__}.load_state_dict"
        own = self.state_dict()
        unknown = [k for k in state_dict if k not in own and k not in _TORCH_INTERNAL_KEYS]
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; a {type(self).__name__} state "
                             f"has {sorted(own)}")
        base_lrs = state_dict.get("base_lrs", self.base_lrs)
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"{name}: the state is for {len(base_lrs)} parameter groups, the "
                             f"optimizer has {len(self.optimizer.param_groups)}")
        for key, value in state_dict.items():
            if key in own:
                setattr(self, key, self._load_value(key, value))

    def _load_value(self, key, value):
        return list(value) if isinstance(value, (list, tuple)) else value


class _LambdaScheduler(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one function of the step per group. The state
    holds, per function, the ``__dict__`` of a callable object (its own state) or None for a
    plain function, as in torch."""

    _not_state = ("optimizer", "_is_initial", "lr_lambdas", "_one_lambda")

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"{name}: expected {n} lr_lambdas, one per parameter group, "
                                 f"got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"{name}: lr_lambda must be callable, got {fn!r}")
        self.lr_lambdas = lambdas
        self._one_lambda = not isinstance(lr_lambda, (list, tuple))
        super().__init__(optimizer, last_epoch)

    def _adopt(self, new_groups) -> None:
        if not self._one_lambda:
            raise ValueError(f"{type(self).__name__}: {len(new_groups)} parameter group(s) "
                             f"were added after it was built with one lr_lambda for each of "
                             f"{len(self.lr_lambdas)} groups; build it after add_param_group, "
                             "or give one lr_lambda for all groups")
        self.lr_lambdas += [self.lr_lambdas[0]] * len(new_groups)
        super()._adopt(new_groups)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["lr_lambdas"] = [dict(fn.__dict__) if _has_own_state(fn) else None
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        if len(saved) != len(self.lr_lambdas):
            raise ValueError(f"{type(self).__name__}.load_state_dict: state for {len(saved)} "
                             f"lr_lambdas, the scheduler has {len(self.lr_lambdas)}")
        super().load_state_dict(state)
        for fn, fn_state in zip(self.lr_lambdas, saved):
            if fn_state is not None:
                fn.__dict__.update(fn_state)


def _has_own_state(fn) -> bool:
    # a plain function or lambda is rebuilt from code; a callable object carries its state
    return hasattr(fn, "__dict__") and not hasattr(fn, "__code__")


class LambdaLR(_LambdaScheduler):
    """lr = initial_lr * lr_lambda(last_epoch); ``lr_lambda`` is one function or one per group."""

    def get_lr(self) -> list:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas,
                                                                     self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """lr *= lr_lambda(last_epoch) at each step after the first."""

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas,
                                                           self._current_lrs())]


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (last_epoch // step_size): times gamma every step_size steps."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = _positive_int(type(self).__name__, "step_size", step_size)
        self.gamma = _nonnegative(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= last_epoch); a milestone listed twice
    counts twice. ``milestones`` is kept as a sorted list (torch keeps a Counter; a torch state
    dict loads)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = self._load_value("milestones", milestones)
        self.gamma = _nonnegative(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def _load_value(self, key, value):
        if key != "milestones":
            return super()._load_value(key, value)
        if isinstance(value, dict):  # torch's Counter {milestone: count}, maybe via JSON
            value = [int(m) for m, count in value.items() for _ in range(count)]
        milestones = list(value)
        for m in milestones:
            if not _is_int(m) or m < 0:
                raise ValueError(f"{type(self).__name__}: milestones must be ints >= 0, got "
                                 f"{m!r} in {milestones}")
        return sorted(int(m) for m in milestones)

    def get_lr(self) -> list:
        hits = self.milestones.count(self.last_epoch)
        if hits == 0:
            return self._current_lrs()
        return [lr * self.gamma ** hits for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        return [base_lr * self.gamma ** bisect_right(self.milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """lr = initial_lr * factor for steps 0 .. total_iters - 1, then initial_lr."""

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):
        name = type(self).__name__
        # torch allows 0, then divides by it at total_iters
        self.factor = _fraction(name, "factor", factor, zero_allowed=False)
        self.total_iters = _positive_int(name, "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        done = self.last_epoch >= self.total_iters
        return [base_lr * (self.factor + done * (1 - self.factor)) for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """The factor on initial_lr goes linearly from start_factor (step 0) to end_factor (step
    total_iters) and stays there. One difference from torch: where torch's update rounds an lr
    to a hair below 0 (end_factor=0), it is 0 here."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        name = type(self).__name__
        self.start_factor = _fraction(name, "start_factor", start_factor, zero_allowed=False)
        self.end_factor = _fraction(name, "end_factor", end_factor, zero_allowed=True)
        self.total_iters = _positive_int(name, "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # factor(k) / factor(k - 1), with factor(k) = start + (end - start) * k / total_iters
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor
                               + (self.last_epoch - 1) * delta)
        # With end_factor=0 the last ratio is 0 up to rounding, and torch's lr can come out as
        # -5e-19: such an lr is 0 here (every optimizer refuses a negative one, so a state dict
        # saved with it would not load); any other value is torch's to the last bit
        return [lr * ratio if lr < 0 or ratio >= 0 else 0.0 for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        delta = self.end_factor - self.start_factor
        progress = min(self.total_iters, self.last_epoch)
        return [base_lr * (self.start_factor + delta * progress / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = initial_lr * gamma ** last_epoch."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = _nonnegative(type(self).__name__, "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * last_epoch / T_max)) / 2, without
    restarts: past T_max the cosine climbs back, with period 2 * T_max.

    Updated recursively from the current lr, as torch does, so that the lr which other code set
    between steps is annealed on from where it is."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = _positive_int(type(self).__name__, "T_max", T_max)
        self.eta_min = _nonnegative(type(self).__name__, "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        if self._is_initial:
            return self._current_lrs()
        k, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if (k - 1 - T) % (2 * T) == 0:
            # leaving the trough at eta_min, where the ratio below would divide by zero
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base_lr in zip(self._current_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * k / T)) / (1 + math.cos(math.pi * (k - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2
                for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Runs ``schedulers[i]`` from ``milestones[i - 1]`` on; each one starts from its own step
    0 (its closed form there) when its milestone is reached. The schedulers must belong to
    ``optimizer``; building them already stepped them, and this undoes that."""

    _not_state = ("optimizer", "_schedulers")

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError(f"{name}: expects at least one scheduler, got none")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(f"{name}: schedulers[{i}] is a {type(s).__name__}, not an "
                                "LRScheduler")
            if s.optimizer is not optimizer:
                raise ValueError(f"{name}: schedulers[{i}] ({type(s).__name__}) belongs to "
                                 "another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"{name}: expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and milestones {milestones}")
        for prev, m in zip([0] + milestones, milestones):
            if not _is_int(m) or m <= prev:
                raise ValueError(f"{name}: milestones must be increasing positive ints, got "
                                 f"{milestones}")
        if not _is_int(last_epoch) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = int(last_epoch) + 1
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in schedulers:
            _undo_step(s)
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # its step 0, by its closed form where it has one
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        name = f"{type(self).__name__}.load_state_dict"
        state = dict(state_dict)
        saved = state.pop("_schedulers", None)
        if saved is None or len(saved) != len(self._schedulers):
            raise ValueError(f"{name}: expects states for {len(self._schedulers)} schedulers, "
                             f"got {None if saved is None else len(saved)}")
        own = super().state_dict()
        unknown = [k for k in state if k not in own and k not in _TORCH_INTERNAL_KEYS]
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; a SequentialLR state has "
                             f"{sorted(own) + ['_schedulers']}")
        for s, s_state in zip(self._schedulers, saved):
            s.load_state_dict(s_state)
        for key, value in state.items():
            if key in own:
                setattr(self, key, self._load_value(key, value))


def _undo_step(scheduler) -> None:
    """Take back the step a scheduler's constructor took (nested sequences included)."""
    children = getattr(scheduler, "_schedulers", None)
    if children is not None:
        for child in children:
            _undo_step(child)
    else:
        scheduler.last_epoch -= 1
