"""Weight averaging, as ``torch.optim.swa_utils``: ``AveragedModel`` (stochastic weight
averaging, or an exponential moving average of the weights such as a GAN generator's EMA),
the averaging functions ``get_ema_multi_avg_fn``, ``get_ema_avg_fn``, ``get_swa_multi_avg_fn``
and ``get_swa_avg_fn``, the ``SWALR`` learning-rate schedule, and ``update_bn``.

An EMA of a generator, updated after each generator step::

    ema = AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    ...
    g_opt.step()
    ema.update_parameters(G)
    samples = ema(z)            # or ema.module(z)

The averaged copy lives on the model's device (or ``device``) and is updated there without
reading anything back from the GPU.
"""
from __future__ import annotations

import copy
import itertools
import math
import numbers

import numpy as np

from .. import backend
from ..autograd import Tensor, mark_modified, no_grad
from ..nn.layers import _BatchNorm
from ..nn.module import Module
from .lr_scheduler import LRScheduler, _check_optimizer

__all__ = [
    "SWALR",
    "AveragedModel",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def _array(x):
    return x.data if isinstance(x, Tensor) else x


def _write(target, value) -> None:
    """``target.copy_(value)``: into the array, cast to its dtype (a float written into an
    integer buffer is truncated, as torch's copy_ does)."""
    t = _array(target)
    t[...] = _array(value).astype(t.dtype, copy=False)


def _lerp_(a, b, w) -> None:
    """``a = lerp(a, b, w)`` in place with torch's two forms; ``w`` a number, or a 0-d array
    (or Tensor) on a's device, whose form is then picked on the device."""
    a, b, w = _array(a), _array(b), _array(w)
    if isinstance(w, numbers.Real):
        if abs(w) < 0.5:
            a += w * (b - a)
        else:
            a[...] = b - (b - a) * (1 - w)
        return
    xp = backend.get_array_module(a, w)
    w = w.astype(a.dtype)
    a[...] = xp.where(xp.abs(w) < 0.5, a + w * (b - a), b - (b - a) * (1 - w))


def _check_decay(decay) -> None:
    if not isinstance(decay, numbers.Real) or not 0.0 <= decay <= 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def get_ema_multi_avg_fn(decay: float = 0.999):
    """An in-place EMA update of lists of arrays or Tensors (of one device and dtype):
    ``ema = decay * ema + (1 - decay) * current``, as torch's (a lerp for floating arrays)."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _num_averaged) -> None:
        if len(ema_param_list) != len(current_param_list):
            raise ValueError(f"ema_update: {len(ema_param_list)} averaged and "
                             f"{len(current_param_list)} current parameters")
        if not ema_param_list:
            return
        if _array(ema_param_list[0]).dtype.kind in "fc":
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                _lerp_(p_ema, p_model, 1 - decay)
        else:
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                _write(p_ema, _array(p_ema) * decay + _array(p_model) * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """An in-place running mean of lists of arrays or Tensors: ``avg += (current - avg) /
    (num_averaged + 1)``, as torch's (a lerp for floating arrays)."""

    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        if len(averaged_param_list) != len(current_param_list):
            raise ValueError(f"swa_update: {len(averaged_param_list)} averaged and "
                             f"{len(current_param_list)} current parameters")
        if not averaged_param_list:
            return
        n = _array(num_averaged)
        if _array(averaged_param_list[0]).dtype.kind in "fc":
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                _lerp_(p_avg, p_model, 1 / (n + 1))
        else:
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                a = _array(p_avg)
                _write(a, a + (_array(p_model) - a) * (1.0 / (n + 1)))
    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """``avg_fn(ema, current, num_averaged)`` returning ``decay * ema + (1 - decay) *
    current``."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """``avg_fn(avg, current, num_averaged)`` returning the running mean
    ``avg + (current - avg) / (num_averaged + 1)``."""

    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """A deep copy of ``model`` (on ``device`` if given) whose parameters are a running
    average of ``model``'s, as ``torch.optim.swa_utils.AveragedModel``.

    ``update_parameters(model)`` copies the model's parameters at its first call and averages
    them in afterwards: by default an equal-weight mean (SWA); with ``avg_fn(averaged,
    current, num_averaged)`` returning the new average of one parameter, or
    ``multi_avg_fn(averaged_list, current_list, num_averaged)`` updating lists in place (e.g.
    ``get_ema_multi_avg_fn(decay)`` for an EMA). The functions get detached Tensors sharing the
    arrays (``multi_avg_fn``: one list per device and dtype), and ``num_averaged`` as a Python
    int, where torch passes a 0-d long tensor; torch's own averaging functions take either.
    With ``use_buffers=True`` the buffers are averaged too; otherwise they are copied from the
    model at each update. Calling the averaged model runs the copy.

    ``n_averaged`` is a buffer, so ``state_dict()`` has torch's keys (``n_averaged`` and
    ``module.*``). It is kept on the host (a 0-d int64 NumPy array), wherever the model is,
    because every update reads it: on the GPU that read would wait for the device. ``to()``
    leaves it there, and one that another module's ``to()`` moved to the GPU comes back at the
    next update.
    """

    def __init__(self, model: Module, device=None, avg_fn=None, multi_avg_fn=None,
                 use_buffers: bool = False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: model must be a minigan.nn.Module, got "
                            f"{type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        for what, fn in (("avg_fn", avg_fn), ("multi_avg_fn", multi_avg_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"AveragedModel: {what} must be callable, got "
                                f"{type(fn).__name__}")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module.to(device)
        self.register_buffer("n_averaged", np.zeros((), dtype=np.int64))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def to(self, *args, **kwargs) -> AveragedModel:
        n = self._buffers.pop("n_averaged")
        try:
            super().to(*args, **kwargs)
        finally:
            self._buffers["n_averaged"] = n
        return self

    def _count(self) -> int:
        n = self._buffers["n_averaged"]
        if backend.is_cupy_array(n):  # moved by an enclosing module's to(): back to the host
            n = self._buffers["n_averaged"] = backend.to_numpy(n)
        return int(n)

    def _pairs(self, model: Module):
        if self.use_buffers:
            ours = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
            what = "parameters and buffers"
        else:
            ours, theirs, what = list(self.parameters()), list(model.parameters()), "parameters"
        if len(ours) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the averaged model has "
                             f"{len(ours)} {what}, the model {len(theirs)}; pass the model "
                             "it was made from")
        pairs = []
        for i, (a, m) in enumerate(zip(ours, theirs)):
            a_arr, m_arr = _array(a), _array(m)
            if tuple(a_arr.shape) != tuple(m_arr.shape):
                raise ValueError(f"AveragedModel.update_parameters: {what} {i} has shape "
                                 f"{tuple(a_arr.shape)} in the averaged model and "
                                 f"{tuple(m_arr.shape)} in the model")
            pairs.append((a_arr, backend.to_device(m_arr, backend.device_of(a_arr))))
        return pairs

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current parameters (and buffers, with ``use_buffers``) in."""
        n = self._count()
        pairs = self._pairs(model)
        with no_grad():
            if n == 0:
                for a, m in pairs:
                    a[...] = m
            elif self.avg_fn is not None:
                for a, m in pairs:
                    _write(a, self.avg_fn(Tensor(a), Tensor(m), n))
            elif self.multi_avg_fn is not None:
                groups: dict = {}
                for a, m in pairs:
                    key = (backend.device_of(a), a.dtype)
                    ours, theirs = groups.setdefault(key, ([], []))
                    ours.append(Tensor(a))
                    theirs.append(Tensor(m))
                for ours, theirs in groups.values():
                    self.multi_avg_fn(ours, theirs, n)
            else:
                for a, m in pairs:  # torch's get_swa_avg_fn, as its CPU path runs it
                    _write(a, a + (m - a) / (n + 1))
            if not self.use_buffers:
                ours = list(self.module.buffers())
                theirs = list(model.buffers())
                if len(ours) != len(theirs):
                    raise ValueError(f"AveragedModel.update_parameters: the averaged model has "
                                     f"{len(ours)} buffers, the model {len(theirs)}")
                for b_avg, b_model in zip(ours, theirs):
                    b_avg[...] = backend.to_device(b_model, backend.device_of(b_avg))
        self._buffers["n_averaged"][...] += 1
        mark_modified(*self.module.parameters())


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute the running statistics of every batch-norm layer of ``model`` from one pass
    over ``loader``, as torch's: the statistics are reset and averaged with equal weights
    (``momentum=None``) over the batches, in training mode; each layer's momentum and the
    model's mode are restored afterwards. A batch is a Tensor (or an array), or a list or tuple
    whose first item is; ``device`` moves each batch there first."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, (list, tuple)):
                    batch = batch[0]
                if not isinstance(batch, Tensor):
                    batch = Tensor(batch)
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


# the weight of swa_lr at a fraction t of the annealing, per anneal_strategy
_RAMPS = {"linear": lambda t: t, "cos": lambda t: (1 - math.cos(math.pi * t)) / 2}


class SWALR(LRScheduler):
    """The learning rate of stochastic weight averaging, as
    ``torch.optim.swa_utils.SWALR``: each group's lr is annealed from its current value to
    ``swa_lr`` over ``anneal_epochs`` steps (``"cos"`` or ``"linear"``), then held there.

    As in torch the target is stored in each parameter group as ``group["swa_lr"]``
    (``swa_lr`` is one number, or one per group); the optimizers take that entry as
    bookkeeping, so a saved optimizer state whose groups carry it loads as any other."""

    _not_state = LRScheduler._not_state + ("anneal_func",)

    def __init__(self, optimizer, swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        groups = optimizer.param_groups
        if isinstance(swa_lr, (list, tuple)):
            if len(swa_lr) != len(groups):
                raise ValueError(f"{name}: swa_lr must have the same length as "
                                 f"optimizer.param_groups. swa_lr has {len(swa_lr)} values, "
                                 f"param_groups has {len(groups)}.")
            swa_lrs = list(swa_lr)
        else:
            swa_lrs = [swa_lr] * len(groups)
        for v in swa_lrs:
            if not isinstance(v, numbers.Real) or isinstance(v, bool) \
                    or not 0.0 <= v < math.inf:
                raise ValueError(f"{name}: swa_lr must be a finite number >= 0 (or a list of "
                                 f"them, one per parameter group), got {v!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy!r}")
        if not isinstance(anneal_epochs, numbers.Integral) or isinstance(anneal_epochs, bool) \
                or anneal_epochs < 0:
            raise ValueError(f"{name}: anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs!r}")
        for v, group in zip(swa_lrs, groups):
            group["swa_lr"] = v
        self._set_anneal_func(anneal_strategy)
        self.anneal_epochs = int(anneal_epochs)
        super().__init__(optimizer, last_epoch)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        """Keep the strategy (a state entry, as in torch) and the ramp it names."""
        self._anneal_strategy = anneal_strategy
        self.anneal_func = _RAMPS[anneal_strategy]

    def _share(self, step: int) -> float:
        """The weight of swa_lr in the lr after ``step`` steps: the ramp at the step's
        fraction of ``anneal_epochs`` (clipped to [0, 1])."""
        return self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))

    def get_lr(self) -> list:
        # Each group's current lr is first traced back to the lr the annealing started from
        # (the blend of the previous step, undone), so that a change another piece of code
        # made to the lr carries on into the schedule, as torch's does.
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        before, now = self._share(step - 1), self._share(step)
        lrs = []
        for group in self.optimizer.param_groups:
            target = group["swa_lr"]
            start = target if before == 1 else (group["lr"] - before * target) / (1 - before)
            lrs.append(target * now + start * (1 - now))
        return lrs

    def load_state_dict(self, state_dict: dict) -> None:
        strategy = state_dict.get("_anneal_strategy", self._anneal_strategy)
        if strategy not in ("cos", "linear"):
            raise ValueError(f"{type(self).__name__}.load_state_dict: _anneal_strategy must be "
                             f"'cos' or 'linear', got {strategy!r}")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "anneal_func"})
        self._set_anneal_func(self._anneal_strategy)
