"""Optimizers with PyTorch's names, argument orders, defaults and semantics, running on
minigan's fused kernels (``minigan.kernels.optim``): ``Adam``, ``AdamW``, ``SGD``, ``RMSprop``
and ``Adagrad``, plus ``lr_scheduler``.

What differs from ``torch.optim`` is refused loudly rather than ignored: a torch flag that
minigan does not implement (``amsgrad``, ``differentiable``, ``fused``, SGD's ``foreach``,
RMSprop's ``capturable``) is accepted only at torch's default value, as a keyword argument, in
a parameter group or in a loaded state dict, and is then dropped; any other key a parameter
group carries must be a hyperparameter of the optimizer or one of the bookkeeping keys
``param_names`` (from ``named_parameters()``) and ``initial_lr`` (set by a learning-rate
scheduler). ``foreach`` of Adam, RMSprop and Adagrad, and Adam's ``capturable``, are
implemented: they pick the GPU kernel (see ``Adam``).
"""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .. import backend
from ..autograd import Tensor, enable_grad, mark_modified
from ..kernels import optim as K
from ..nn.module import zero_grads

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]

# group entries that are no optimizer settings: the parameters and their names, and what
# LRScheduler stores. Also taken (and kept) on load: what torch's schedulers write into the
# groups (SWALR's swa_lr; OneCycleLR's and CyclicLR's bounds, which minigan's keep in the
# scheduler), so that a torch optimizer state saved under one of them loads.
_BOOKKEEPING_KEYS = ("params", "param_names", "initial_lr")
_SCHEDULER_KEYS = ("swa_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")


class Optimizer:
    """Parameter groups and per-parameter state, as ``torch.optim.Optimizer``.

    ``params`` is an iterable of Tensors, of ``(name, Tensor)`` pairs (``named_parameters()``)
    or of dicts (parameter groups, each with a ``"params"`` entry and optional per-group
    hyperparameters). A parameter that does not require grad (a frozen one) is accepted and
    skipped while its ``grad`` is None. Subclasses define ``step`` and ``_check_group``, and list
    in ``_unsupported_flags`` the torch flags they accept only at torch's default.
    """

    # flag -> the values accepted (torch's default, plus False where None is the default)
    _unsupported_flags: ClassVar[dict] = {}
    # state entries that are counts: torch stores them as float tensors
    _integer_state = ("step",)
    # state entries that are arrays of the parameter's shape (the subclasses name theirs)
    _array_state: tuple = ()

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors, (name, Tensor) "
                            "pairs or dicts, got a single Tensor; pass [tensor]")
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be an ordered collection (a set's order "
                            "changes between runs, and state dicts number parameters by "
                            "position); pass a list")
        self.defaults = dict(defaults)
        self._check_group(self.defaults, name)
        self.param_groups: list[dict] = []
        # per-parameter state, keyed by the parameter itself as in torch (a Tensor hashes by
        # identity): opt.state[p]["exp_avg"]
        self.state: dict = {}
        groups = list(params)
        if not groups:
            raise ValueError(f"{name} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- parameter groups
    def add_param_group(self, param_group: dict) -> None:
        """Append a parameter group (a dict with ``"params"``); missing hyperparameters come
        from the optimizer's defaults. As in torch, e.g. to unfreeze layers while training."""
        name = type(self).__name__
        where = f"{name}: parameter group {len(self.param_groups)}"
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}.add_param_group: param_group must be a dict, got "
                            f"{type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{where} has no 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{where}: params must be an ordered collection, got a set; "
                            "pass a list")
        else:
            params = list(params)
        named = [isinstance(p, tuple) for p in params]
        if any(named):
            if not all(named) or any(len(p) != 2 for p in params):
                raise ValueError(f"{where}: give every parameter as a (name, Tensor) pair or "
                                 "none of them")
            if "param_names" in group:
                raise ValueError(f"{where}: names given both as (name, Tensor) pairs and as "
                                 "'param_names'")
            group["param_names"] = [n for n, _ in params]
            params = [p for _, p in params]
        group["params"] = params
        if "param_names" in group:
            group["param_names"] = list(group["param_names"])
            if len(group["param_names"]) != len(params):
                raise ValueError(f"{where}: {len(group['param_names'])} param_names for "
                                 f"{len(params)} parameters")
        positions = {}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{where}: {name} can only optimize Tensors, but parameter {i} "
                                f"is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{where}: parameter {i} (shape {p.shape}) is not a leaf: it "
                                 "is computed from other tensors, so optimize those instead")
            if id(p) in positions:
                raise ValueError(f"{where} lists the same parameter (shape {p.shape}) twice, at "
                                 f"positions {positions[id(p)]} and {i}")
            positions[id(p)] = i
        for gi, other in enumerate(self.param_groups):
            for p in other["params"]:
                if id(p) in positions:
                    raise ValueError(f"{where}: a parameter (shape {p.shape}) is already in "
                                     f"parameter group {gi}; some parameters appear in more "
                                     "than one parameter group")
            if ("param_names" in other) != ("param_names" in group):
                raise ValueError(f"{where}: all parameter groups must be with names or all "
                                 f"without, and parameter group {gi} is "
                                 + ("with" if "param_names" in other else "without"))
        for key in list(group):
            if not self._accept_key(key, group[key], where):
                del group[key]
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group, where)
        self.param_groups.append(group)

    def _accept_key(self, key, value, where: str) -> bool:
        """True to keep a group entry, False to drop it (a torch flag at its default); raises
        for a key this optimizer does not implement."""
        if key in self.defaults or key in _BOOKKEEPING_KEYS or key in _SCHEDULER_KEYS:
            return True
        if key in self._unsupported_flags:
            if value in self._unsupported_flags[key]:
                return False
            raise ValueError(f"{where}: {key}={value!r} is not implemented by minigan's "
                             f"{type(self).__name__}; {self._supported_text()}")
        raise ValueError(f"{where}: unknown key {key!r}; {self._supported_text()}")

    def _supported_text(self) -> str:
        flags = ", ".join(f"{k}={v[0]!r}" for k, v in self._unsupported_flags.items())
        return (f"supported keys are {', '.join(self.defaults)}, plus "
                f"{', '.join(_BOOKKEEPING_KEYS[1:])}"
                + (f", and torch's flags only at their defaults ({flags})" if flags else ""))

    def _refuse_flags(self, **flags) -> None:
        """Constructor flags that minigan does not implement: torch's default, or an error."""
        for key, value in flags.items():
            self._accept_key(key, value, type(self).__name__)

    def _check_group(self, group: dict, where: str) -> None:
        """Validate (and normalise) a group's hyperparameters; ``where`` starts the message."""

    def _params(self):
        for g in self.param_groups:
            for p in g["params"]:
                yield g, p

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {g[k]}" for k in sorted(g) if k not in ("params", "param_names")]
        return "\n".join(lines + [")"])

    # ----- stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grads([p for g in self.param_groups for p in g["params"]], set_to_none)

    @staticmethod
    def _evaluate(closure):
        """torch's ``step(closure)``: the closure re-evaluates the loss (and usually calls
        backward), so it runs with grad mode on even when the step is called under no_grad."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _grad(self, p, maximize: bool = False):
        g, d = p.grad.data, p.data
        # (arrays of one class live on one kind of device: the usual case, without two calls)
        if g.__class__ is not d.__class__ and backend.is_cupy_array(g) is not \
                backend.is_cupy_array(d):
            raise backend.DeviceError(f"{type(self).__name__}: parameter of shape {p.shape} on "
                                      f"{backend.device_of(d)} has its gradient on "
                                      f"{backend.device_of(g)}")
        if g.shape != d.shape:  # (NumPy would broadcast a (1,) or a row gradient silently)
            raise ValueError(f"{type(self).__name__}: parameter of shape {p.shape} has a "
                             f"gradient of shape {tuple(g.shape)}; they must match")
        if g.dtype != d.dtype:
            # a .grad set by hand in another dtype: used in the parameter's, as backward stores
            # it (the GPU kernels take one dtype; NumPy would promote on the CPU alone)
            g = g.astype(d.dtype)
        # maximize ascends: the update is the one for -grad (a new array; the grad is kept)
        return -g if maximize else g

    def step(self, closure=None):
        raise NotImplementedError

    # ----- state: arrays by position, plus JSON-able scalars
    def state_dict(self) -> dict:
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}``, with
        parameters numbered in group order as in PyTorch."""
        state, groups, idx = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                if p in self.state:
                    state[idx] = dict(self.state[p])
                ids.append(idx)
                idx += 1
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a ``state_dict()`` (this optimizer's, or torch's with tensors as arrays).

        Saved parameter ids map to this optimizer's parameters in group order, as in torch.
        Group entries replace this optimizer's; a torch flag at its default is dropped, and any
        other key this optimizer does not implement is refused. Nothing changes on an error.
        A loaded lr below 0 by rounding only (at most 1e-12 of the group's ``initial_lr``, as
        torch's ``LinearLR(end_factor=0)`` leaves) is taken as 0."""
        name = f"{type(self).__name__}.load_state_dict"
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}: {len(groups)} parameter groups in the state, "
                             f"{len(self.param_groups)} in the optimizer")
        id_map, new_groups = {}, []
        for gi, (g_new, g_own) in enumerate(zip(groups, self.param_groups)):
            where = f"{name}: parameter group {gi}"
            if len(g_new["params"]) != len(g_own["params"]):
                raise ValueError(f"{name}: group {gi} has {len(g_new['params'])} parameters in "
                                 f"the state, {len(g_own['params'])} in the optimizer")
            for saved_id, p in zip(g_new["params"], g_own["params"]):
                id_map[_param_id(saved_id, name)] = p
            merged = dict(g_own)
            for key, value in g_new.items():
                if key == "params" or not self._accept_key(key, value, where):
                    continue
                if isinstance(value, list) and key != "param_names":
                    value = tuple(value)  # JSON turns betas into a list
                merged[key] = value
            lr, initial = merged.get("lr"), merged.get("initial_lr")
            if isinstance(lr, float) and isinstance(initial, (int, float)) \
                    and -1e-12 * initial <= lr < 0:
                # torch's LinearLR(end_factor=0) ends at an lr of -5e-19 or so (rounding): 0
                merged["lr"] = 0.0
            self._check_group(merged, where)
            new_groups.append(merged)
        new_state = {}
        for key, st in state_dict["state"].items():
            p = id_map.get(_param_id(key, name))
            if p is None:
                raise ValueError(f"{name}: state for parameter {key!r}, an id that no saved "
                                 f"parameter group lists (they list {len(id_map)} ids)")
            new_state[p] = {k: self._load_value(k, v, p, key, name) for k, v in st.items()}
        for g_own, merged in zip(self.param_groups, new_groups):
            g_own.update(merged)
        self.state = new_state

    def _load_value(self, key, v, p, index, name):
        if key in self._array_state and v is not None:
            # an array of the parameter's shape, a 0-d one included (a scalar parameter's
            # buffer must stay an array: the update writes into it)
            if isinstance(v, (int, float)) and p.ndim == 0:
                v = np.asarray(v)
            if not hasattr(v, "shape"):
                raise ValueError(f"{name}: state {key!r} of parameter {index} must be an "
                                 f"array of shape {p.shape}, got {type(v).__name__}")
            if tuple(v.shape) != p.shape:
                raise ValueError(f"{name}: state {key!r} of parameter {index} has shape "
                                 f"{tuple(v.shape)}, the parameter has {p.shape}")
            return backend.to_device(v, p.device).astype(p.dtype, copy=True)
        if hasattr(v, "shape"):  # an array or a torch tensor (whose .size is a method)
            if math.prod(tuple(v.shape)) != 1:
                raise ValueError(f"{name}: state {key!r} of parameter {index} must be a "
                                 f"number, got an array of shape {tuple(v.shape)}")
            v = v.item()
        if key in self._integer_state and isinstance(v, float) and v.is_integer():
            v = int(v)  # torch keeps Adam's step count as a float tensor
        return v


def _param_id(key, name: str) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: parameter ids must be ints, got {key!r}") from None


def _check_nonnegative(where: str, what: str, value) -> None:
    # written as `not 0 <= x` so that NaN is refused too, as in torch.optim
    if not 0.0 <= value:
        raise ValueError(f"{where}: invalid {what} {value}")


def _check_foreach(group: dict, where: str) -> None:
    if group["foreach"] is not None and not isinstance(group["foreach"], bool):
        raise ValueError(f"{where}: foreach must be None, True or False, got "
                         f"{group['foreach']!r}")


_NOT_IMPLEMENTED_FLAGS = {"amsgrad": (False,), "foreach": (None, False),
                          "capturable": (False,), "differentiable": (False,),
                          "fused": (None, False)}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``: ``weight_decay`` is L2
    added to the gradient, or with ``decoupled_weight_decay=True`` (= ``AdamW``) a shrink of
    the parameter by ``1 - lr * weight_decay`` before the step. ``maximize`` ascends.

    ``foreach`` picks the GPU implementation, as in torch: None (the default) or True updates
    all of a group's parameters with ONE multi-tensor kernel launch (per dtype and step count),
    False with one fused kernel per parameter. The results agree to rounding. On the CPU the
    update runs in place per parameter whatever ``foreach`` says.

    ``capturable=True`` (as torch's) makes a GPU step safe to capture in a CUDA graph
    (``minigan.gan.graph``): each group keeps its step count and learning rate in a small
    device array, which the update kernels read and advance, instead of passing them as
    numbers that a graph would replay unchanged. The host keeps its counts too (the state dict
    is the same); the device copy is rewritten, outside any capture, when the learning rate or
    a loaded state changes it. Every parameter of a group with a gradient must then be at the
    same step count. On the CPU the flag changes nothing."""

    _unsupported_flags: ClassVar[dict] = {k: v for k, v in _NOT_IMPLEMENTED_FLAGS.items()
                                          if k not in ("foreach", "capturable")}
    _array_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused=None, decoupled_weight_decay: bool = False):
        self._hyper = {}  # group index -> [device [steps, lr], steps and lr it holds]
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize,
                                  "foreach": foreach, "capturable": capturable,
                                  "decoupled_weight_decay": decoupled_weight_decay})
        self._refuse_flags(amsgrad=amsgrad, differentiable=differentiable, fused=fused)

    def _check_group(self, group: dict, where: str) -> None:
        _check_foreach(group, where)
        if not isinstance(group.get("capturable", False), bool):
            raise ValueError(f"{where}: capturable must be True or False, got "
                             f"{group['capturable']!r}")
        group.setdefault("capturable", False)  # a state saved before the flag existed
        _check_nonnegative(where, "learning rate", group["lr"])
        betas = group["betas"] = tuple(group["betas"])
        if not (len(betas) == 2 and 0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{where}: betas must lie in [0, 1), got {betas}")
        _check_nonnegative(where, "eps", group["eps"])
        _check_nonnegative(where, "weight_decay", group["weight_decay"])

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._hyper.clear()  # the device copies are rewritten from the loaded counts

    def graph_counters(self) -> dict:
        """The host counts a step advances (for ``minigan.gan.graph``, which replays steps that
        the host does not run): each parameter's step count, and each group's device copy."""
        out = {("step", k): st["step"] for k, st in self.state.items()}
        out.update({("hyper", gi): rec[1] for gi, rec in self._hyper.items()})
        return out

    def set_graph_counters(self, counters: dict) -> None:
        for (kind, k), v in counters.items():
            if kind == "step":
                self.state[k]["step"] = v
            else:
                self._hyper[k][1] = v

    def _device_hyper(self, gi: int, lr: float, steps_taken: int, like):
        """Group ``gi``'s device array [steps taken, lr], rewritten if the host's differ."""
        rec = self._hyper.get(gi)
        if rec is not None and rec[1] == steps_taken and rec[2] == lr:
            return rec[0]
        if backend.is_capturing():
            raise RuntimeError(f"{type(self).__name__}: parameter group {gi}'s step count or "
                               "learning rate changed during a CUDA-graph capture (a graph "
                               "would replay the change every step); run a step eagerly first")
        xp = backend.get_array_module(like)
        if rec is None:
            rec = self._hyper[gi] = [xp.zeros(2, dtype=xp.float64), None, None]
        if rec[1] != steps_taken:
            rec[0][0:1].fill(float(steps_taken))  # fills by kernel: no upload, no sync
        if rec[2] != lr:
            rec[0][1:2].fill(float(lr))
        rec[1], rec[2] = steps_taken, lr
        return rec[0]

    def sync_device_state(self) -> None:
        """Rewrite the device copies of the learning rates that changed on the host (a CUDA
        graph replay runs no Python: ``minigan.gan.graph`` calls this before each one)."""
        for gi, rec in list(self._hyper.items()):
            lr = self.param_groups[gi]["lr"]
            if rec[2] != lr:
                self._device_hyper(gi, lr, rec[1], rec[0])

    def step(self, closure=None):
        loss = self._evaluate(closure)
        updated = []
        state = self.state
        for gi, g in enumerate(self.param_groups):
            lr, (b1, b2), eps, wd = g["lr"], g["betas"], g["eps"], g["weight_decay"]
            datas, grads, avgs, avg_sqs, steps, states = [], [], [], [], [], []
            for p in g["params"]:
                grad = p.grad
                if grad is None:
                    continue
                d, gd = p.data, grad.data
                # (a gradient of the parameter's class and dtype is used as it is; _grad
                # checks the device and casts the others, once per parameter and step)
                grads.append(gd if gd.__class__ is d.__class__ and gd.dtype == d.dtype
                             else self._grad(p))
                st = state.get(p)
                if st is None:
                    xp = backend.get_array_module(d)
                    st = state[p] = {"step": 0, "exp_avg": xp.zeros_like(d),
                                         "exp_avg_sq": xp.zeros_like(d)}
                datas.append(d)
                avgs.append(st["exp_avg"])
                avg_sqs.append(st["exp_avg_sq"])
                steps.append(st["step"] + 1)
                states.append(st)
                updated.append(p)
            if datas and g["capturable"] and backend.is_cupy_array(datas[0]):
                if len(set(steps)) != 1:
                    raise ValueError(f"Adam(capturable=True): parameter group {gi} has "
                                     f"parameters at different step counts ({sorted(set(steps))}"
                                     "); a captured step needs one count per group")
                hyper = self._device_hyper(gi, lr, steps[0] - 1, datas[0])
                K.adam_step_capturable(datas, grads, avgs, avg_sqs, hyper, b1, b2, eps, wd,
                                       decoupled=g["decoupled_weight_decay"],
                                       maximize=g["maximize"],
                                       foreach=g["foreach"] is not False)
                self._hyper[gi][1] = steps[0]
            elif datas:
                # the step counts move only once the update has passed its checks
                K.adam_step_multi(datas, grads, avgs, avg_sqs, steps, lr, b1, b2, eps, wd,
                                  decoupled=g["decoupled_weight_decay"],
                                  maximize=g["maximize"], foreach=g["foreach"] is not False)
            for st, step in zip(states, steps):
                st["step"] = step
        mark_modified(*updated)  # a graph recorded before the step may not backward now
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``: each
    step first shrinks the parameter by ``1 - lr * weight_decay``, then takes an Adam step
    without weight decay. Its groups always have ``decoupled_weight_decay=True``."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach=None, capturable: bool = False, differentiable: bool = False,
                 fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def _check_group(self, group: dict, where: str) -> None:
        super()._check_group(group, where)
        group["decoupled_weight_decay"] = True  # as torch's AdamW, even for a loaded Adam state


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``;
    ``maximize`` ascends."""

    _unsupported_flags: ClassVar[dict] = {k: _NOT_IMPLEMENTED_FLAGS[k]
                                          for k in ("foreach", "differentiable", "fused")}
    _array_state = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None):
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov,
                                  "maximize": maximize})
        self._refuse_flags(foreach=foreach, differentiable=differentiable, fused=fused)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "momentum", group["momentum"])
        _check_nonnegative(where, "weight_decay", group["weight_decay"])
        if not math.isfinite(group["dampening"]):
            raise ValueError(f"{where}: invalid dampening {group['dampening']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{where}: Nesterov momentum needs momentum > 0 and zero "
                             f"dampening, got momentum={group['momentum']}, "
                             f"dampening={group['dampening']}")

    def step(self, closure=None):
        loss = self._evaluate(closure)
        # every gradient is checked before any parameter moves: an error changes nothing
        todo = [(g, p, self._grad(p, g["maximize"])) for g in self.param_groups
                for p in g["params"] if p.grad is not None]
        for g, p, grad in todo:
            buf, first = None, False
            if g["momentum"] != 0:  # (plain SGD keeps no state, as torch's)
                st = self.state.setdefault(p, {})
                buf = st.get("momentum_buffer")
                first = buf is None
                if first:
                    xp = backend.get_array_module(p.data)
                    buf = st["momentum_buffer"] = xp.zeros_like(p.data)
            K.sgd_step(p.data, grad, buf, g["lr"], g["momentum"], g["weight_decay"],
                       g["dampening"], g["nesterov"], first)
        mark_modified(*[p for _, p, _ in todo])
        return loss


def _gradients(opt: Optimizer) -> list:
    """``(group, [params], [grad arrays])`` for each parameter group, over the parameters with
    a gradient: every gradient checked (device, shape) and cast to its parameter's dtype
    before any parameter moves, so that an error changes nothing."""
    todo = []
    for g in opt.param_groups:
        params, grads = [], []
        for p in g["params"]:
            grad = p.grad
            if grad is None:
                continue
            d, gd = p.data, grad.data
            # (a gradient of the parameter's class, dtype and shape is used as it is)
            grads.append(gd if gd.__class__ is d.__class__ and gd.dtype == d.dtype
                         and gd.shape == d.shape else opt._grad(p))
            params.append(p)
        todo.append((g, params, grads))
    return todo


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture notes; Graves 2013 for ``centered``), as
    ``torch.optim.RMSprop``: with g the gradient (negated when ``maximize``) plus
    ``weight_decay * param``,

        square_avg = alpha square_avg + (1 - alpha) g^2
        avg = sqrt(square_avg) + eps, or with centered=True, grad_avg = lerp(grad_avg, g,
              1 - alpha) and avg = sqrt(square_avg - grad_avg^2) + eps
        momentum > 0:  momentum_buffer = momentum momentum_buffer + g / avg,
                       param -= lr momentum_buffer;  else  param -= lr g / avg

    The state has torch's names (``step``, ``square_avg``, and ``momentum_buffer`` and
    ``grad_avg`` where the group uses them), so a torch state dict loads with its meaning.
    ``foreach`` picks the GPU kernels as in ``Adam``: None or True, ONE multi-tensor launch
    per group and dtype; False, one fused kernel per parameter. ``capturable`` is refused
    (``minigan.gan.graph`` captures Adam steps only)."""

    _unsupported_flags: ClassVar[dict] = {k: _NOT_IMPLEMENTED_FLAGS[k]
                                          for k in ("capturable", "differentiable")}
    _array_state = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                                  "centered": centered, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize})
        self._refuse_flags(capturable=capturable, differentiable=differentiable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_foreach(group, where)
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "eps", group["eps"])
        _check_nonnegative(where, "momentum", group["momentum"])
        _check_nonnegative(where, "weight_decay", group["weight_decay"])
        _check_nonnegative(where, "alpha", group["alpha"])

    def step(self, closure=None):
        loss = self._evaluate(closure)
        todo = _gradients(self)
        for g, params, grads in todo:
            if not params:
                continue
            centered, momentum = g["centered"], g["momentum"] > 0
            sq, avg, buf = [], [] if centered else None, [] if momentum else None
            for p in params:
                # As torch, a state holds the buffers its group's settings use, made at the
                # first step; one that a changed setting needs later starts at zero then
                # (where torch would fail)
                st = self.state.setdefault(p, {"step": 0})
                for name, out in (("square_avg", sq), ("grad_avg", avg),
                                  ("momentum_buffer", buf)):
                    if out is not None:
                        if name not in st:
                            st[name] = backend.get_array_module(p.data).zeros_like(p.data)
                        out.append(st[name])
            K.rmsprop_step_multi([p.data for p in params], grads, sq, avg, buf, g["lr"],
                                 g["alpha"], g["eps"], g["weight_decay"], g["momentum"],
                                 maximize=g["maximize"], foreach=g["foreach"] is not False)
            for p in params:
                self.state[p]["step"] += 1
        mark_modified(*[p for _, params, _ in todo for p in params])
        return loss


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``: with g the gradient (negated
    when ``maximize``) plus ``weight_decay * param``, and the step count t after the step,

        sum += g^2;   param -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)

    As in torch, the constructor gives every parameter its state at once (``step`` 0 and
    ``sum`` filled with ``initial_accumulator_value``); a parameter added later gets it at its
    first step. One difference: the fill is the parameter group's
    ``initial_accumulator_value`` (torch takes the constructor's for every group).
    ``foreach`` picks the GPU kernels as in ``Adam``."""

    _unsupported_flags: ClassVar[dict] = {k: _NOT_IMPLEMENTED_FLAGS[k]
                                          for k in ("differentiable", "fused")}
    _array_state = ("sum",)

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, fused=None):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value,
                                  "foreach": foreach, "maximize": maximize})
        self._refuse_flags(differentiable=differentiable, fused=fused)
        for g, p in self._params():
            self._init_state(g, p)

    def _check_group(self, group: dict, where: str) -> None:
        _check_foreach(group, where)
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "lr_decay", group["lr_decay"])
        _check_nonnegative(where, "weight_decay", group["weight_decay"])
        _check_nonnegative(where, "initial_accumulator_value",
                           group["initial_accumulator_value"])
        _check_nonnegative(where, "eps", group["eps"])

    def _init_state(self, group: dict, p) -> dict:
        xp = backend.get_array_module(p.data)
        st = self.state[p] = {"step": 0, "sum": xp.full_like(
            p.data, group["initial_accumulator_value"])}
        return st

    def step(self, closure=None):
        loss = self._evaluate(closure)
        todo = _gradients(self)
        for g, params, grads in todo:
            if not params:
                continue
            sums, steps = [], []
            for p in params:
                st = self.state.get(p) or self._init_state(g, p)
                sums.append(st["sum"])
                steps.append(st["step"] + 1)
            K.adagrad_step_multi([p.data for p in params], grads, sums, steps, g["lr"],
                                 g["lr_decay"], g["eps"], g["weight_decay"],
                                 maximize=g["maximize"], foreach=g["foreach"] is not False)
            for p, step in zip(params, steps):
                self.state[p]["step"] = step
        mark_modified(*[p for _, params, _ in todo for p in params])
        return loss


from . import lr_scheduler  # noqa: E402  (it needs Optimizer, defined above)
from . import swa_utils  # noqa: E402
from .more import ASGD, LBFGS, NAdam, RAdam, Adadelta, Adamax, Rprop  # noqa: E402

__all__ += ["ASGD", "Adadelta", "Adamax", "LBFGS", "NAdam", "RAdam", "Rprop", "swa_utils"]
