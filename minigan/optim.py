"""Optimizers with PyTorch's semantics, running on minigan's fused kernels."""
from __future__ import annotations

from . import backend
from .kernels import optim as K

__all__ = ["Optimizer", "Adam", "SGD"]


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses implement ``step``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups: list[dict] = []
        seen = set()
        for g in groups:
            g = dict(g)
            g["params"] = list(g["params"])
            for p in g["params"]:
                if id(p) in seen:
                    raise ValueError("a parameter appears in more than one group")
                seen.add(id(p))
                if not p.requires_grad:
                    raise ValueError(f"{type(self).__name__}: a parameter of shape {p.shape} "
                                     "does not require grad")
            for k, v in self.defaults.items():
                g.setdefault(k, v)
            self.param_groups.append(g)
        self.state: dict[int, dict] = {}  # keyed by id(param)

    def _params(self):
        for g in self.param_groups:
            for p in g["params"]:
                yield g, p

    def zero_grad(self, set_to_none: bool = True) -> None:
        for _, p in self._params():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def _grad(self, p):
        g = p.grad.data
        if backend.device_of(g) != p.device:
            raise backend.DeviceError(f"{type(self).__name__}: parameter of shape {p.shape} on "
                                      f"{p.device} has its gradient on {backend.device_of(g)}")
        return g

    # ----- state: arrays by position, plus JSON-able scalars
    def state_dict(self) -> dict:
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}``, with
        parameters numbered in group order as in PyTorch."""
        state, groups, idx = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                if id(p) in self.state:
                    state[idx] = dict(self.state[id(p)])
                ids.append(idx)
                idx += 1
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(groups)} parameter "
                             f"groups in the state, {len(self.param_groups)} in the optimizer")
        params = [p for _, p in self._params()]
        for gi, (g_new, g_own) in enumerate(zip(groups, self.param_groups)):
            if len(g_new["params"]) != len(g_own["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: group {gi} has "
                                 f"{len(g_new['params'])} parameters in the state, "
                                 f"{len(g_own['params'])} in the optimizer")
        new_state = {}
        for key, st in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for parameter "
                                 f"{i}, but the optimizer has {len(params)}")
            p = params[i]
            entry = {}
            for name, v in st.items():
                if hasattr(v, "shape") and getattr(v, "ndim", 0) > 0:
                    if tuple(v.shape) != p.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state "
                                         f"{name!r} of parameter {i} has shape {tuple(v.shape)}, "
                                         f"the parameter has {p.shape}")
                    v = backend.to_device(v, p.device).astype(p.dtype, copy=True)
                elif hasattr(v, "shape"):
                    v = v.item()
                entry[name] = v
            new_state[id(p)] = entry
        for g_new, g_own in zip(groups, self.param_groups):
            for k, v in g_new.items():
                if k != "params":
                    g_own[k] = tuple(v) if isinstance(v, list) else v
        self.state = new_state

    def step(self):
        raise NotImplementedError


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; ``weight_decay`` is L2 added to the gradient,
    as in ``torch.optim.Adam``. One fused kernel per parameter on the GPU, in place on the CPU."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        # written as `not 0 <= x` so that NaN is refused too, as in torch.optim
        if not 0.0 <= lr:
            raise ValueError(f"Adam: invalid learning rate {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        if not 0.0 <= eps:
            raise ValueError(f"Adam: invalid eps {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Adam: invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def step(self) -> None:
        for g, p in self._params():
            if p.grad is None:
                continue
            grad = self._grad(p)
            st = self.state.get(id(p))
            if st is None:
                xp = backend.get_array_module(p.data)
                st = self.state[id(p)] = {"step": 0, "exp_avg": xp.zeros_like(p.data),
                                          "exp_avg_sq": xp.zeros_like(p.data)}
            st["step"] += 1
            b1, b2 = g["betas"]
            K.adam_step(p.data, grad, st["exp_avg"], st["exp_avg_sq"], st["step"], g["lr"],
                        b1, b2, g["eps"], g["weight_decay"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as ``torch.optim.SGD``."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        if not 0.0 <= lr:
            raise ValueError(f"SGD: invalid learning rate {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"SGD: invalid momentum {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def step(self) -> None:
        for g, p in self._params():
            if p.grad is None:
                continue
            grad = self._grad(p)
            st = self.state.setdefault(id(p), {})
            buf = st.get("momentum_buffer")
            first = buf is None
            if first and g["momentum"] != 0:
                buf = st["momentum_buffer"] = backend.get_array_module(p.data).zeros_like(p.data)
            K.sgd_step(p.data, grad, buf, g["lr"], g["momentum"], g["weight_decay"],
                       g["dampening"], g["nesterov"], first)
