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

CyclicLR and OneCycleLR also cycle the momentum (``momentum``, or the first of ``betas``);
ReduceLROnPlateau steps on a metric, ``step(metrics)``; ChainedScheduler steps several
schedulers of one optimizer together.
"""
from __future__ import annotations

import math
import numbers
import warnings
from bisect import bisect_right

from . import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
           "LinearLR", "ExponentialLR", "CosineAnnealingLR", "SequentialLR", "PolynomialLR",
           "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "ReduceLROnPlateau",
           "ChainedScheduler"]

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

    def _sync_groups(self) -> list:
        """The optimizer's groups, after adopting any added since the last step."""
        groups = self.optimizer.param_groups
        if len(groups) < len(self.base_lrs):
            raise ValueError(f"{type(self).__name__}: the optimizer has {len(groups)} parameter "
                             f"groups, but the scheduler was built for {len(self.base_lrs)} (a "
                             "group was removed)")
        if len(groups) > len(self.base_lrs):
            self._adopt(groups[len(self.base_lrs):])
        return groups

    def _update_lr(self, epoch=None) -> None:
        groups = self._sync_groups()
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


class _OfSchedulers(LRScheduler):
    """A scheduler made of others (SequentialLR, ChainedScheduler): its state holds theirs,
    under ``_schedulers``, as torch's does."""

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
            raise ValueError(f"{name}: unknown keys {unknown}; a {type(self).__name__} state "
                             f"has {sorted(own) + ['_schedulers']}")
        for s, s_state in zip(self._schedulers, saved):
            s.load_state_dict(s_state)
        for key, value in state.items():
            if key in own:
                setattr(self, key, self._load_value(key, value))


class SequentialLR(_OfSchedulers):
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
        _check_schedulers(name, schedulers, optimizer)
        for i, s in enumerate(schedulers[1:], 1):
            if isinstance(s, ChainedScheduler):
                # it would have to restart at its step 0 at its milestone, and the closed forms
                # of its schedulers do not compose (torch fails there, in get_lr)
                raise ValueError(f"{name}: schedulers[{i}] is a ChainedScheduler, which cannot "
                                 "restart at a milestone; only schedulers[0] may be one")
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



def _undo_step(scheduler) -> None:
    """Take back the step a scheduler's constructor took (nested sequences included)."""
    children = getattr(scheduler, "_schedulers", None)
    if children is not None:
        for child in children:
            _undo_step(child)
    else:
        scheduler.last_epoch -= 1


def _check_schedulers(name: str, schedulers, optimizer) -> None:
    """Schedulers that a SequentialLR or a ChainedScheduler may drive: of ``optimizer``, and
    stepped without arguments (so no ReduceLROnPlateau, as in torch)."""
    for i, s in enumerate(schedulers):
        if not isinstance(s, LRScheduler):
            raise TypeError(f"{name}: schedulers[{i}] is a {type(s).__name__}, not an "
                            "LRScheduler")
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"{name}: schedulers[{i}] is a ReduceLROnPlateau, which needs the "
                             "metric at each step(metrics); step it on its own")
        if s.optimizer is not optimizer:
            raise ValueError(f"{name}: schedulers[{i}] ({type(s).__name__}) belongs to "
                             "another optimizer")


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def _per_group(where: str, what: str, optimizer, value, upper: float = math.inf) -> list:
    """One value per parameter group: a number for all, or a list/tuple with one for each;
    each finite, >= 0 and below ``upper``."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{where}: expected {n} values of {what}, one per parameter group, "
                             f"got {len(value)}")
        values = list(value)
    else:
        values = [value] * n
    for v in values:
        if not _number(v) or not 0.0 <= v < upper:
            bound = "" if upper == math.inf else f" and < {upper}"
            raise ValueError(f"{where}: {what} must be a finite number >= 0{bound} (or a list "
                             f"of them, one per parameter group), got {value!r}")
    return values


def _momentum_key(where: str, optimizer) -> bool:
    """Whether momentum is the first of ``betas`` (Adam) rather than ``momentum`` (SGD,
    RMSprop): torch's ``use_beta1``."""
    if "betas" in optimizer.defaults:
        return True
    if "momentum" in optimizer.defaults:
        return False
    raise ValueError(f"{where}: cycle_momentum=True needs an optimizer with momentum or betas, "
                     f"and {type(optimizer).__name__} has neither; pass cycle_momentum=False")


def _cycle_momentum(scheduler, name: str, optimizer, last_epoch: int, **bounds) -> None:
    """CyclicLR's and OneCycleLR's momentum cycling: which key the groups' momentum is
    (``momentum`` or the first beta), the per-group bounds (checked in the order given, as
    torch checks them), and on a fresh start the groups' momentum set to its maximum."""
    scheduler.use_beta1 = _momentum_key(name, optimizer)
    upper = 1.0 if scheduler.use_beta1 else math.inf
    for key, value in bounds.items():  # base_momentum -> base_momentums, ...
        setattr(scheduler, key + "s", _per_group(name, key, optimizer, value, upper))
    if last_epoch == -1:
        for group, m in zip(optimizer.param_groups, scheduler.max_momentums):
            _set_momentum(group, m, scheduler.use_beta1)


def _set_momentum(group: dict, value, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class PolynomialLR(LRScheduler):
    """lr = initial_lr * (1 - min(last_epoch, total_iters) / total_iters) ** power: down to 0
    at total_iters, and 0 from then on. Updated from the current lr, as torch does."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1):
        name = type(self).__name__
        self.total_iters = _positive_int(name, "total_iters", total_iters)
        self.power = _nonnegative(name, "power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        k, T = self.last_epoch, self.total_iters
        if self._is_initial or k > T:
            return self._current_lrs()
        # (remaining fraction now / remaining fraction one step ago) ** power
        factor = ((1.0 - k / T) / (1.0 - (k - 1) / T)) ** self.power
        return [lr * factor for lr in self._current_lrs()]

    def _closed_form_lr(self) -> list:
        remaining = 1.0 - min(self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * remaining ** self.power for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR: lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where
    T_cur counts the steps since the last restart and the period T_i starts at T_0 and is
    multiplied by T_mult at each restart.

    ``step(epoch)`` is not deprecated here (as in torch): it takes a fractional epoch, e.g.
    ``step(epoch + i / iters)`` after each batch, and may be interleaved with ``step()``.
    ``last_epoch`` is then ``floor(epoch)``."""

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1):
        name = type(self).__name__
        self.T_0 = _positive_int(name, "T_0", T_0)
        self.T_i = self.T_0
        self.T_mult = _positive_int(name, "T_mult", T_mult)
        self.eta_min = _nonnegative(name, "eta_min", eta_min)
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        cos = math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None) -> None:
        """One step on (``epoch=None``), or to ``epoch`` (a number >= 0, fractions allowed)."""
        groups = self._sync_groups()
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:  # a restart
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if not _number(epoch) or epoch < 0:
                raise ValueError(f"{type(self).__name__}.step: epoch must be a finite number "
                                 f">= 0, got {epoch!r}")
            if epoch < self.T_0:
                self.T_i = self.T_0
                self.T_cur = epoch
            elif self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:
                # restarts so far: the n with T_0 (T_mult**n - 1) / (T_mult - 1) <= epoch,
                # computed as torch does (so a float rounding at a boundary is torch's too)
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith, 2017): the lr goes from ``base_lr`` up to ``max_lr`` in
    ``step_size_up`` steps and back in ``step_size_down`` (default: the same), the amplitude
    scaled by ``scale_fn`` of the cycle number (from 1) or of the step count, per
    ``scale_mode``. The modes: "triangular" (scale 1), "triangular2" (halved each cycle),
    "exp_range" (``gamma ** step``); a ``scale_fn`` replaces the mode. Step it after every
    batch.

    With ``cycle_momentum`` the momentum (SGD, RMSprop) or the first of ``betas`` (Adam) cycles
    the other way, from ``max_momentum`` down to ``base_momentum`` at the lr's peak.

    As in torch, the constructor's step (step 0) sets each group's lr to its ``initial_lr``,
    which is ``base_lr`` unless the group already had one (from another scheduler, say, in a
    ChainedScheduler); ``base_lr`` rules from step 1. The momentum bounds live in the scheduler
    (torch also copies them into each group as ``max_momentum``/``base_momentum``, keys that
    minigan's optimizers do not accept)."""

    def __init__(self, optimizer, base_lr, max_lr, step_size_up: int = 2000,
                 step_size_down=None, mode: str = "triangular", gamma: float = 1.0,
                 scale_fn=None, scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum=0.8, max_momentum=0.9, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        base_lrs = _per_group(name, "base_lr", optimizer, base_lr)
        self.max_lrs = _per_group(name, "max_lr", optimizer, max_lr)
        up = _positive_int(name, "step_size_up", step_size_up)
        if step_size_down is None:
            down = up
        elif _is_int(step_size_down) and step_size_down >= 0:
            down = step_size_down
        else:
            raise ValueError(f"{name}: step_size_down must be None or an int >= 0, got "
                             f"{step_size_down!r}")
        self.total_size = float(up) + float(down)
        self.step_ratio = float(up) / self.total_size
        if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"{name}: mode must be 'triangular', 'triangular2' or "
                             f"'exp_range' (or give a scale_fn), got {mode!r}")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"{name}: scale_fn must be callable or None, got {scale_fn!r}")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"{name}: scale_mode must be 'cycle' or 'iterations', got "
                             f"{scale_mode!r}")
        self.mode = mode
        self.gamma = _nonnegative(name, "gamma", gamma)
        self.scale_mode = scale_mode
        self._scale_fn_custom = scale_fn
        self._init_scale_mode()
        if not isinstance(cycle_momentum, bool):
            raise TypeError(f"{name}: cycle_momentum must be True or False, got "
                            f"{cycle_momentum!r}")
        self.cycle_momentum = cycle_momentum
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr
        if cycle_momentum:
            _cycle_momentum(self, name, optimizer, last_epoch, base_momentum=base_momentum,
                            max_momentum=max_momentum)
        super().__init__(optimizer, last_epoch)
        # as torch: the constructor's step took the groups' initial_lr as base_lrs (base_lr,
        # unless a group already had one); base_lr holds from the next step on
        self.base_lrs = base_lrs

    def _adopt(self, new_groups) -> None:
        raise ValueError(f"{type(self).__name__}: {len(new_groups)} parameter group(s) were "
                         "added after it was built, and it holds base_lr and max_lr per group; "
                         "build it after add_param_group")

    def _init_scale_mode(self) -> None:
        # a built-in mode fixes the scale mode, as in torch; a scale_fn keeps the one given
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x) -> float:
        """The amplitude's scale at ``x`` (the cycle number or the step, per scale_mode)."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self) -> list:
        """The lrs for step ``last_epoch``; sets the cycled momentum as it goes (as torch)."""
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle  # position in the cycle, [0, 1)
        if x <= self.step_ratio:
            rise = x / self.step_ratio
        else:
            rise = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * rise * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):
                _set_momentum(group, high - (high - low) * rise * scale, self.use_beta1)
        return lrs

    def state_dict(self) -> dict:
        """As torch's: a ``scale_fn`` is saved as None when it is a plain function and as its
        ``__dict__`` when it is a callable object."""
        state = super().state_dict()
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = dict(fn.__dict__) if fn is not None and \
            _has_own_state(fn) else None
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        fn_state = state.pop("_scale_fn_custom", None)
        if fn_state is not None and self._scale_fn_custom is None:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state holds a "
                             "scale_fn's attributes, and this scheduler has no scale_fn")
        state.pop("_scale_fn_ref", None)
        fn = self._scale_fn_custom
        super().load_state_dict(state)
        self._scale_fn_custom = fn
        if fn_state is not None:
            fn.__dict__.update(fn_state)
        self._init_scale_mode()


def _anneal_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start, end, pct):
    return (end - start) * pct + start


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2017): the lr rises from ``max_lr / div_factor`` to
    ``max_lr`` over the first ``pct_start`` of ``total_steps`` (or ``epochs *
    steps_per_epoch``), then falls to ``initial_lr / final_div_factor``; ``three_phase``
    instead comes back down to the initial lr symmetrically and then annihilates it. The
    annealing is "cos" or "linear". With ``cycle_momentum`` the momentum (or the first of
    Adam's ``betas``) goes the other way, between ``max_momentum`` and ``base_momentum``.

    Step it after every batch; as in torch, stepping past ``total_steps`` is an error. The
    per-group max_lr, min_lr and momentum bounds live in the scheduler (``max_lrs``,
    ``min_lrs``, ``max_momentums``, ``base_momentums``): torch keeps them in the optimizer's
    groups, under keys minigan's optimizers do not accept. A torch state dict loads."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        if total_steps is not None:
            self.total_steps = _positive_int(name, "total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int(name, "epochs", epochs)
                                * _positive_int(name, "steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError(f"{name}: give total_steps, or both epochs and steps_per_epoch "
                             f"(got total_steps={total_steps!r}, epochs={epochs!r}, "
                             f"steps_per_epoch={steps_per_epoch!r})")
        pct_start = _fraction(name, "pct_start", pct_start, zero_allowed=True)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        if not isinstance(three_phase, bool) or not isinstance(cycle_momentum, bool):
            raise TypeError(f"{name}: three_phase and cycle_momentum must be True or False, "
                            f"got {three_phase!r} and {cycle_momentum!r}")
        for what, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not _number(value) or value <= 0:
                raise ValueError(f"{name}: {what} must be a finite number > 0, got {value!r}")
        T = self.total_steps
        rise_end = float(pct_start * T) - 1
        # each phase: the step it ends at, and which bounds it anneals between (torch's keys)
        if three_phase:
            self._schedule_phases = [
                _phase(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * T) - 2, "max_lr", "initial_lr", "base_momentum",
                       "max_momentum"),
                _phase(T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._schedule_phases = [
                _phase(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        self._anneal_func_type = anneal_strategy
        self.max_lrs = _per_group(name, "max_lr", optimizer, max_lr)
        initial_lrs = [m / div_factor for m in self.max_lrs]
        self.min_lrs = [lr / final_div_factor for lr in initial_lrs]
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, initial_lrs):
                group["initial_lr"] = lr
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            _cycle_momentum(self, name, optimizer, last_epoch, max_momentum=max_momentum,
                            base_momentum=base_momentum)
        super().__init__(optimizer, last_epoch)

    def _adopt(self, new_groups) -> None:
        raise ValueError(f"{type(self).__name__}: {len(new_groups)} parameter group(s) were "
                         "added after it was built, and it holds max_lr per group; build it "
                         "after add_param_group")

    def _bounds(self, i: int) -> dict:
        bounds = {"initial_lr": self.base_lrs[i], "max_lr": self.max_lrs[i],
                  "min_lr": self.min_lrs[i]}
        if self.cycle_momentum:
            bounds["max_momentum"] = self.max_momentums[i]
            bounds["base_momentum"] = self.base_momentums[i]
        return bounds

    def get_lr(self) -> list:
        """The lrs for step ``last_epoch``; sets the cycled momentum as it goes (as torch)."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"{type(self).__name__}: Tried to step {step} times. The "
                             f"specified number of total steps is {self.total_steps}")
        anneal = _anneal_cos if self._anneal_func_type == "cos" else _anneal_linear
        phases = self._schedule_phases
        start = 0.0
        for i, phase in enumerate(phases):
            end = phase["end_step"]
            if step <= end or i == len(phases) - 1:
                if end == start:
                    raise ValueError(f"{type(self).__name__}: phase {i} of the schedule has no "
                                     f"steps (it ends at step {end}, where it starts), so step "
                                     f"{step} has no lr; change pct_start or total_steps "
                                     "(torch divides by zero here)")
                pct = (step - start) / (end - start)
                break
            start = end
        lrs = []
        for i, group in enumerate(self.optimizer.param_groups):
            bounds = self._bounds(i)
            lrs.append(anneal(bounds[phase["start_lr"]], bounds[phase["end_lr"]], pct))
            if self.cycle_momentum:
                _set_momentum(group, anneal(bounds[phase["start_momentum"]],
                                            bounds[phase["end_momentum"]], pct), self.use_beta1)
        return lrs

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["_schedule_phases"] = [dict(p) for p in self._schedule_phases]
        return state

    def _load_value(self, key, value):
        if key == "_schedule_phases":
            return [dict(p) for p in value]
        return super()._load_value(key, value)


def _phase(end_step, start_lr, end_lr, start_momentum, end_momentum) -> dict:
    return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
            "start_momentum": start_momentum, "end_momentum": end_momentum}


class ReduceLROnPlateau(LRScheduler):
    """Multiply each group's lr by ``factor`` (not below its ``min_lr``; a change of ``eps``
    or less is skipped) once the metric passed to ``step(metrics)`` has not improved for more
    than ``patience`` steps; then wait ``cooldown`` steps before counting again.

    An improvement beats the best so far by ``threshold``: relatively (``best * (1 -
    threshold)`` in mode "min", ``best * (1 + threshold)`` in mode "max") or absolutely
    (``best -/+ threshold``), per ``threshold_mode``. ``metrics`` is a number or a 0-d Tensor
    (whose value is read). The state (``best``, ``num_bad_epochs``, ``cooldown_counter``, ...)
    is torch's, and torch's state dict loads."""

    _not_state = ("optimizer",)

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr=0, eps: float = 1e-8):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        if not _number(factor) or not 0.0 <= factor < 1.0:
            raise ValueError(f"{name}: factor must lie in [0, 1), got {factor!r}")
        self.factor = factor
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
        else:
            self.default_min_lr = min_lr
        self.min_lrs = _per_group(name, "min_lr", optimizer, min_lr)
        self.patience = _nonnegative_int(name, "patience", patience)
        self.cooldown = _nonnegative_int(name, "cooldown", cooldown)
        self.eps = _nonnegative(name, "eps", eps)
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        _nonnegative(name, "threshold", threshold)
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _init_is_better(self, mode, threshold, threshold_mode) -> None:
        name = type(self).__name__
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a, best) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return a < best * (1.0 - self.threshold)
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def get_lr(self) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no lr formula: its step(metrics) "
                                  "reduces the lrs; read them with get_last_lr()")

    def step(self, metrics, epoch=None) -> None:
        """Record one value of the metric; reduce the lrs if it has not improved for more than
        ``patience`` steps. ``epoch`` is deprecated, as in torch."""
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(f"{type(self).__name__}.step(epoch) is deprecated, as in torch; call "
                          "step(metrics) without an epoch", UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(f"{type(self).__name__}: the optimizer has {len(groups)} "
                                 f"parameter groups, and min_lr was given for {len(self.min_lrs)}"
                                 " (a group was added or removed); set min_lrs to one value "
                                 "per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def load_state_dict(self, state_dict: dict) -> None:
        name = f"{type(self).__name__}.load_state_dict"
        own = self.state_dict()
        unknown = [k for k in state_dict if k not in own and k not in _TORCH_INTERNAL_KEYS]
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; a {type(self).__name__} state "
                             f"has {sorted(own)}")
        merged = {**own, **{k: v for k, v in state_dict.items() if k in own}}
        self._init_is_better(merged["mode"], merged["threshold"], merged["threshold_mode"])
        for key, value in merged.items():
            setattr(self, key, self._load_value(key, value))


def _nonnegative_int(where: str, what: str, value) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{where}: {what} must be an int >= 0, got {value!r}")
    return int(value)


class ChainedScheduler(_OfSchedulers):
    """Steps every one of ``schedulers`` at each ``step()``, in order, so that their factors
    compound (e.g. a ConstantLR warmup under an ExponentialLR decay). They must share one
    optimizer (``optimizer``, by default the first scheduler's)."""

    _not_state = ("optimizer", "_schedulers")

    def __init__(self, schedulers, optimizer=None):
        name = type(self).__name__
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError(f"{name}: expects at least one scheduler, got none")
        if optimizer is None:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _check_optimizer(name, optimizer)
        _check_schedulers(name, schedulers, optimizer)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = self._current_lrs()

    def step(self) -> None:
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()

    def get_lr(self) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no lr formula of its own: its "
                                  "schedulers set the lrs; read them with get_last_lr()")

