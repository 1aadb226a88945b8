"""More of ``torch.optim``: ``Adadelta``, ``Adamax``, ``NAdam``, ``RAdam``, ``ASGD``, ``Rprop``
and ``LBFGS``, with torch 2.13's constructor signatures, defaults, update rules, state names and
state-dict layout (a torch state dict loads, and continues as torch would).

Each update is torch's single-tensor algorithm written with the array module (NumPy or CuPy),
one parameter at a time, in torch's order of operations; float64 parameters follow torch to
rounding (torch's CPU kernels fuse some multiply-adds, NumPy does not). The step-dependent
factors are Python numbers computed from the host's step counts, so a GPU step never waits on
the device. ``LBFGS`` is the exception: its line search and stopping tests read the loss and
dot products on the host, as torch's does.

torch keeps a few per-parameter scalars in float32 tensors (its default scalar dtype): NAdam's
``mu_product`` and ASGD's ``eta`` and ``mu``. They are Python floats here, rounded to float32
after each update as torch's tensors round them, so that the parameters agree with torch's.

As for the optimizers of ``minigan.optim``: ``foreach`` is accepted at None or False (the
per-parameter path is the only one), ``capturable`` and ``differentiable`` at False; any other
value is refused by name, in the constructor, a parameter group or a loaded state dict.
"""
from __future__ import annotations

import math
import numbers
from typing import ClassVar, NamedTuple

import numpy as np

from .. import backend
from ..autograd import Tensor, mark_modified
from . import _NOT_IMPLEMENTED_FLAGS, Optimizer, _check_nonnegative, _gradients

__all__ = ["ASGD", "LBFGS", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop"]


def _flags(*names) -> dict:
    return {k: _NOT_IMPLEMENTED_FLAGS[k] for k in names}


def _f32(x: float) -> float:
    """``x`` rounded to float32, as torch's float32 scalar-state tensors hold it."""
    return float(np.float32(x))


def _lerp_(a, b, w: float) -> None:
    """``a = lerp(a, b, w)`` in place, with torch's two forms (exact at both ends)."""
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


def _check_betas(group: dict, where: str) -> None:
    betas = group["betas"] = tuple(group["betas"])
    if not (len(betas) == 2 and 0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
        raise ValueError(f"{where}: betas must be two numbers in [0, 1), got {betas}")


def _check_bool(group: dict, where: str, key: str) -> None:
    if not isinstance(group[key], (bool, np.bool_)):
        raise TypeError(f"{where}: {key} must be True or False, got {group[key]!r}")


class _PerParameter(Optimizer):
    """The shared loop: every gradient checked (device, shape, dtype) before any parameter
    moves, the gradient negated for ``maximize``, the state made at a parameter's first step,
    and the parameters marked as changed in place afterwards."""

    def _new_state(self, group: dict, p) -> dict:
        raise NotImplementedError

    def _update(self, group: dict, d, grad, st: dict) -> None:
        """One step of one parameter: ``d`` its array (updated in place), ``grad`` its
        gradient (never written), ``st`` its state."""
        raise NotImplementedError

    def step(self, closure=None):
        loss = self._evaluate(closure)
        todo = _gradients(self)
        for g, params, grads in todo:
            for p, grad in zip(params, grads):
                st = self.state.get(p)
                if not st:
                    st = self.state[p] = self._new_state(g, p)
                self._update(g, p.data, -grad if g["maximize"] else grad, st)
        mark_modified(*[p for _, params, _ in todo for p in params])
        return loss


class Adadelta(_PerParameter):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``: with g the gradient (negated when
    ``maximize``) plus ``weight_decay * param``,

        square_avg = rho square_avg + (1 - rho) g^2
        delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) * g
        acc_delta = rho acc_delta + (1 - rho) delta^2;   param -= lr delta
    """

    _unsupported_flags: ClassVar[dict] = _flags("foreach", "capturable", "differentiable")
    _array_state = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize})
        self._refuse_flags(foreach=foreach, capturable=capturable,
                           differentiable=differentiable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"{where}: invalid rho {group['rho']} (it must lie in [0, 1])")
        _check_nonnegative(where, "eps", group["eps"])
        _check_nonnegative(where, "weight_decay", group["weight_decay"])

    def _new_state(self, group, p):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "square_avg": xp.zeros_like(p.data),
                "acc_delta": xp.zeros_like(p.data)}

    def _update(self, g, d, grad, st):
        rho, eps, wd = g["rho"], g["eps"], g["weight_decay"]
        xp = backend.get_array_module(d)
        st["step"] += 1
        if wd != 0:
            grad = grad + wd * d
        sq, acc = st["square_avg"], st["acc_delta"]
        sq *= rho
        sq += (1 - rho) * grad * grad
        std = xp.sqrt(sq + eps)
        delta = xp.sqrt(acc + eps)
        delta /= std
        delta *= grad
        acc *= rho
        acc += (1 - rho) * delta * delta
        d += -g["lr"] * delta


class Adamax(_PerParameter):
    """Adamax (Kingma & Ba, the infinity-norm Adam), as ``torch.optim.Adamax``: with g the
    gradient (negated when ``maximize``) plus ``weight_decay * param`` and t the step count,

        exp_avg = lerp(exp_avg, g, 1 - beta1);  exp_inf = max(beta2 exp_inf, |g| + eps)
        param -= lr / (1 - beta1^t) * exp_avg / exp_inf
    """

    _unsupported_flags: ClassVar[dict] = _flags("foreach", "capturable", "differentiable")
    _array_state = ("exp_avg", "exp_inf")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize})
        self._refuse_flags(foreach=foreach, differentiable=differentiable,
                           capturable=capturable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "eps", group["eps"])
        _check_betas(group, where)
        _check_nonnegative(where, "weight_decay", group["weight_decay"])

    def _new_state(self, group, p):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "exp_avg": xp.zeros_like(p.data), "exp_inf": xp.zeros_like(p.data)}

    def _update(self, g, d, grad, st):
        (b1, b2), wd = g["betas"], g["weight_decay"]
        xp = backend.get_array_module(d)
        st["step"] += 1
        if wd != 0:
            grad = grad + wd * d
        exp_avg, exp_inf = st["exp_avg"], st["exp_inf"]
        _lerp_(exp_avg, grad, 1 - b1)
        exp_inf *= b2
        xp.maximum(exp_inf, xp.abs(grad) + g["eps"], out=exp_inf)
        clr = g["lr"] / (1 - b1 ** st["step"])
        d += (-clr * exp_avg) / exp_inf


class NAdam(_PerParameter):
    """NAdam (Dozat 2016), as ``torch.optim.NAdam``: Adam with Nesterov momentum, whose
    momentum coefficient at step t is mu_t = beta1 (1 - 0.96^(t momentum_decay) / 2). With g
    the gradient (negated when ``maximize``), plus ``weight_decay * param`` (or, with
    ``decoupled_weight_decay=True``, the parameter first shrunk by ``1 - lr * weight_decay``),

        mu_product *= mu_t;  exp_avg = lerp(exp_avg, g, 1 - beta1)
        exp_avg_sq = beta2 exp_avg_sq + (1 - beta2) g^2
        denom = sqrt(exp_avg_sq / (1 - beta2^t)) + eps
        param -= lr (1 - mu_t) / (1 - mu_product) g / denom
                 + lr mu_{t+1} / (1 - mu_product mu_{t+1}) exp_avg / denom

    ``mu_product`` is a float rounded to float32 after each step, as torch's float32 tensor.
    """

    _unsupported_flags: ClassVar[dict] = _flags("foreach", "capturable", "differentiable")
    _array_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize})
        self._refuse_flags(foreach=foreach, capturable=capturable,
                           differentiable=differentiable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "eps", group["eps"])
        _check_betas(group, where)
        _check_nonnegative(where, "weight_decay", group["weight_decay"])
        _check_nonnegative(where, "momentum_decay", group["momentum_decay"])
        group.setdefault("decoupled_weight_decay", False)  # a state saved before torch 2.5
        _check_bool(group, where, "decoupled_weight_decay")

    def _new_state(self, group, p):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "mu_product": 1.0, "exp_avg": xp.zeros_like(p.data),
                "exp_avg_sq": xp.zeros_like(p.data)}

    def _update(self, g, d, grad, st):
        lr, (b1, b2), wd, md = g["lr"], g["betas"], g["weight_decay"], g["momentum_decay"]
        xp = backend.get_array_module(d)
        step = st["step"] = st["step"] + 1
        bias_correction2 = 1 - b2 ** step
        if wd != 0:
            if g["decoupled_weight_decay"]:
                d *= 1 - lr * wd
            else:
                grad = grad + wd * d
        mu = b1 * (1.0 - 0.5 * (0.96 ** (step * md)))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * md)))
        # torch multiplies in float32: its float32 tensor by mu cast to float32
        mu_product = st["mu_product"] = float(np.float32(st["mu_product"]) * np.float32(mu))
        exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
        _lerp_(exp_avg, grad, 1 - b1)
        exp_avg_sq *= b2
        exp_avg_sq += (1 - b2) * grad * grad
        denom = xp.sqrt(exp_avg_sq / bias_correction2)
        denom += g["eps"]
        mu_product_next = mu_product * mu_next
        d += ((-lr * (1.0 - mu) / (1.0 - mu_product)) * grad) / denom
        d += (((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg) / denom


class RAdam(_PerParameter):
    """RAdam (Liu et al. 2019), as ``torch.optim.RAdam``: Adam whose adaptive step is switched
    on, and rectified, once the variance of its estimate is tractable. With g the gradient
    (negated when ``maximize``) plus ``weight_decay * param`` (or, with
    ``decoupled_weight_decay=True``, the parameter first shrunk by ``1 - lr * weight_decay``),
    t the step count, rho_inf = 2 / (1 - beta2) - 1 and
    rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t):

        exp_avg = lerp(exp_avg, g, 1 - beta1);  exp_avg_sq = beta2 exp_avg_sq + (1 - beta2) g^2
        m = exp_avg / (1 - beta1^t)
        rho_t > 5:  param -= lr m sqrt(1 - beta2^t) / (sqrt(exp_avg_sq) + eps) r_t, with
                    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        else:       param -= lr m
    """

    _unsupported_flags: ClassVar[dict] = _flags("foreach", "capturable", "differentiable")
    _array_state = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *, foreach=None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "maximize": maximize})
        self._refuse_flags(foreach=foreach, capturable=capturable,
                           differentiable=differentiable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "eps", group["eps"])
        _check_betas(group, where)
        _check_nonnegative(where, "weight_decay", group["weight_decay"])
        group.setdefault("decoupled_weight_decay", False)  # a state saved before torch 2.5
        _check_bool(group, where, "decoupled_weight_decay")

    def _new_state(self, group, p):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "exp_avg": xp.zeros_like(p.data),
                "exp_avg_sq": xp.zeros_like(p.data)}

    def _update(self, g, d, grad, st):
        lr, (b1, b2), wd = g["lr"], g["betas"], g["weight_decay"]
        xp = backend.get_array_module(d)
        step = st["step"] = st["step"] + 1
        if wd != 0:
            if g["decoupled_weight_decay"]:
                d *= 1 - lr * wd
            else:
                grad = grad + wd * d
        exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
        _lerp_(exp_avg, grad, 1 - b1)
        exp_avg_sq *= b2
        exp_avg_sq += (1 - b2) * grad * grad
        bias_correction1 = 1 - b1 ** step
        bias_correction2 = 1 - b2 ** step
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * step * (b2 ** step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = (bias_correction2 ** 0.5) / (xp.sqrt(exp_avg_sq) + g["eps"])
            d -= corrected * lr * adaptive * rect
        else:
            d -= corrected * lr


class ASGD(_PerParameter):
    """Averaged SGD (Polyak & Juditsky 1992), as ``torch.optim.ASGD``: with g the gradient
    (negated when ``maximize``) plus ``weight_decay * param`` and t the step count,

        param = param (1 - lambd eta) - eta g
        ax = param while mu = 1, else ax += mu (param - ax)   (the running average)
        eta = lr / (1 + lambd lr t)^alpha;  mu = 1 / max(1, t - t0)

    ``eta`` starts at ``lr``. ``eta`` and ``mu`` are floats rounded to float32, as torch's
    float32 tensors hold them. As in torch, a learning rate changed after a parameter's first
    step (by a scheduler) enters through the next ``eta`` only.
    """

    _unsupported_flags: ClassVar[dict] = _flags("foreach", "capturable", "differentiable")
    _array_state = ("ax",)

    def __init__(self, params, lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75,
                 t0: float = 1e6, weight_decay: float = 0, foreach=None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False):
        super().__init__(params, {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                                  "weight_decay": weight_decay, "maximize": maximize})
        self._refuse_flags(foreach=foreach, differentiable=differentiable,
                           capturable=capturable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        _check_nonnegative(where, "weight_decay", group["weight_decay"])
        for key in ("lambd", "alpha", "t0"):
            if not isinstance(group[key], numbers.Real) or not math.isfinite(group[key]):
                raise ValueError(f"{where}: invalid {key} {group[key]!r} (a finite number "
                                 "is needed)")

    def _new_state(self, group, p):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "eta": _f32(group["lr"]), "mu": 1.0, "ax": xp.zeros_like(p.data)}

    def _update(self, g, d, grad, st):
        lr, lambd, wd = g["lr"], g["lambd"], g["weight_decay"]
        step = st["step"] = st["step"] + 1
        if wd != 0:
            grad = grad + wd * d
        eta, mu, ax = st["eta"], st["mu"], st["ax"]
        d *= 1 - lambd * eta
        d += -eta * grad
        if mu != 1:
            ax += (d - ax) * mu
        else:
            ax[...] = d
        st["eta"] = _f32(lr / ((1 + lambd * lr * step) ** g["alpha"]))
        st["mu"] = _f32(1 / max(1, step - g["t0"]))


class Rprop(_PerParameter):
    """Resilient backpropagation (Riedmiller & Braun 1993), as ``torch.optim.Rprop``: each
    element keeps its own step size, which starts at ``lr``, grows by ``etas[1]`` while the
    gradient keeps its sign and shrinks by ``etas[0]`` when it flips (clamped to
    ``step_sizes``); the parameter moves by its step size against the gradient's sign, and not
    at all right after a flip (that gradient is forgotten). Only the sign of the gradient
    (negated when ``maximize``) is used; as in torch, ``lr`` matters at a parameter's first
    step only."""

    _unsupported_flags: ClassVar[dict] = _flags("foreach", "capturable", "differentiable")
    _array_state = ("prev", "step_size")

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False):
        super().__init__(params, {"lr": lr, "etas": etas, "step_sizes": step_sizes,
                                  "maximize": maximize})
        self._refuse_flags(capturable=capturable, foreach=foreach,
                           differentiable=differentiable)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        etas = group["etas"] = tuple(group["etas"])
        if not (len(etas) == 2 and 0.0 < etas[0] < 1.0 < etas[1]):
            raise ValueError(f"{where}: invalid etas {etas} (they must satisfy "
                             "0 < etaminus < 1 < etaplus)")
        sizes = group["step_sizes"] = tuple(group["step_sizes"])
        if not (len(sizes) == 2 and 0.0 <= sizes[0] <= sizes[1]):
            raise ValueError(f"{where}: invalid step_sizes {sizes} (they must satisfy "
                             "0 <= min <= max)")

    def _new_state(self, group, p):
        xp = backend.get_array_module(p.data)
        return {"step": 0, "prev": xp.zeros_like(p.data),
                "step_size": xp.full_like(p.data, group["lr"])}

    def _update(self, g, d, grad, st):
        (etaminus, etaplus), (smin, smax) = g["etas"], g["step_sizes"]
        xp = backend.get_array_module(d)
        st["step"] += 1
        prev, step_size = st["prev"], st["step_size"]
        sign = xp.sign(grad * prev)
        # the factor in the parameter's dtype, as torch writes the etas into its sign tensor
        # (a NaN sign stays NaN, as there)
        factor = xp.where(sign > 0, etaplus, xp.where(sign < 0, etaminus, xp.where(
            sign == 0, 1.0, sign))).astype(d.dtype, copy=False)
        step_size *= factor
        xp.clip(step_size, smin, smax, out=step_size)
        grad = xp.where(sign < 0, 0.0, grad).astype(d.dtype, copy=False)
        d -= xp.sign(grad) * step_size
        prev[...] = grad


class LBFGS(Optimizer):
    """L-BFGS (Nocedal 1980; Liu & Nocedal 1989), as ``torch.optim.LBFGS`` (after minFunc):
    ``step(closure)`` runs up to ``max_iter`` iterations (``max_eval`` evaluations of the
    closure) of limited-memory BFGS with ``history_size`` curvature pairs, each followed by a
    fixed step of ``lr`` (the first one scaled by ``min(1, 1 / |g|_1)``) or, with
    ``line_search_fn="strong_wolfe"``, by a line search satisfying the strong Wolfe conditions.
    It stops early when the largest gradient element is at most ``tolerance_grad``, or the step
    or the change of the loss is below ``tolerance_change``. The closure must zero the
    gradients, compute the loss, call ``backward`` and return the loss.

    All parameters form one group on one device; the state (torch's names, under the first
    parameter) holds flat arrays of all of them. The loss and the dot products are read on the
    host every iteration, as in torch. Scalars are Python floats here (torch keeps 0-d tensors
    of the parameters' dtype: float32 parameters round them to float32 there).
    """

    _integer_state = ("func_evals", "n_iter")
    _flat_state = ("d", "prev_flat_grad")
    _flat_lists = ("old_dirs", "old_stps")
    _scalar_lists = ("ro", "al")
    _scalars = ("t", "H_diag", "prev_loss")

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval=None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn=None):
        if max_eval is None and isinstance(max_iter, numbers.Integral):
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size,
                                      line_search_fn=line_search_fn))

    def add_param_group(self, param_group: dict) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): "
                             "give all parameters in one group")
        super().add_param_group(param_group)

    def _check_group(self, group: dict, where: str) -> None:
        _check_nonnegative(where, "learning rate", group["lr"])
        for key in ("max_iter", "max_eval", "history_size"):
            v = group[key]
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{where}: {key} must be a positive int, got {v!r}")
        _check_nonnegative(where, "tolerance_grad", group["tolerance_grad"])
        _check_nonnegative(where, "tolerance_change", group["tolerance_change"])
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"{where}: line_search_fn must be None or 'strong_wolfe', got "
                             f"{group['line_search_fn']!r}")

    # ----- flat views of the parameters
    def _flat_params(self):
        params = self.param_groups[0]["params"]
        devices = {backend.device_of(p.data) for p in params}
        if len(devices) > 1:
            raise backend.DeviceError("LBFGS: all parameters must be on one device, got "
                                      "parameters on cpu and on cuda")
        return params, backend.get_array_module(params[0].data)

    def _gather_flat_grad(self, params, xp):
        return xp.concatenate([self._grad(p).ravel() if p.grad is not None
                               else xp.zeros(p.data.size, dtype=p.data.dtype) for p in params])

    @staticmethod
    def _add_grad(params, step_size, update) -> None:
        offset = 0
        for p in params:
            n = p.data.size
            p.data += step_size * update[offset:offset + n].reshape(p.data.shape)
            offset += n

    def _directional_evaluate(self, closure, params, xp, x, t, d):
        self._add_grad(params, t, d)
        mark_modified(*params)
        loss = float(self._evaluate(closure))
        flat_grad = self._gather_flat_grad(params, xp)
        for p, saved in zip(params, x):
            p.data[...] = saved
        mark_modified(*params)
        return loss, flat_grad

    def step(self, closure=None):
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that zeroes the gradients, computes "
                             "the loss, calls backward() and returns the loss")
        params, xp = self._flat_params()
        opts = self.param_groups[0]
        iter_cap, eval_cap, memory = opts["max_iter"], opts["max_eval"], opts["history_size"]
        grad_tol, change_tol = opts["tolerance_grad"], opts["tolerance_change"]

        def small_gradient(flat):
            return float(xp.abs(flat).max()) <= grad_tol

        state = self.state.setdefault(params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        returned = self._evaluate(closure)  # the loss before this call moves anything
        loss = float(returned)
        spent_here = 1
        state["func_evals"] += 1
        grad = self._gather_flat_grad(params, xp)
        if small_gradient(grad):
            return returned

        # what the previous call left: the last direction and step length, the curvature
        # pairs (y = gradient change, s = parameter change, rho = 1 / y.s), the initial
        # inverse-Hessian scale, and the gradient and loss the last iteration started from
        direction, length = state.get("d"), state.get("t")
        ys, ss, rho = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        gamma = state.get("H_diag")
        start_grad, start_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        for it in range(1, iter_cap + 1):
            state["n_iter"] += 1
            fresh = state["n_iter"] == 1
            if fresh:  # steepest descent, with an empty memory
                direction = -grad
                ys, ss, rho = [], [], []
                gamma = 1
            else:
                y = grad - start_grad
                s = direction * length
                curvature = float(y.dot(s))
                if curvature > 1e-10:  # only pairs of positive curvature keep H positive
                    if len(ys) == memory:
                        del ys[0], ss[0], rho[0]
                    ys.append(y)
                    ss.append(s)
                    rho.append(1.0 / curvature)
                    gamma = curvature / float(y.dot(y))
                # H_k (-g) by the two-loop recursion, newest pair first on the way down
                alpha = state.setdefault("al", [None] * memory)
                q = -grad
                for k in reversed(range(len(ys))):
                    alpha[k] = float(ss[k].dot(q)) * rho[k]
                    q -= alpha[k] * ys[k]
                direction = q * gamma
                for k in range(len(ys)):
                    beta = float(ys[k].dot(direction)) * rho[k]
                    direction += (alpha[k] - beta) * ss[k]

            if start_grad is None:
                start_grad = grad.copy()
            else:
                start_grad[...] = grad
            start_loss = loss

            # the first step ever is scaled down to at most lr / |g|_1
            if fresh:
                length = min(1.0, 1.0 / float(xp.abs(grad).sum())) * opts["lr"]
            else:
                length = opts["lr"]
            slope = float(grad.dot(direction))
            if slope > -change_tol:  # no descent along the direction
                break

            if opts["line_search_fn"] is None:
                self._add_grad(params, length, direction)
                mark_modified(*params)
                used, at_optimum = 0, False
                if it < iter_cap:  # the last iteration leaves the new point unevaluated
                    loss = float(self._evaluate(closure))
                    grad = self._gather_flat_grad(params, xp)
                    used, at_optimum = 1, small_gradient(grad)
            else:
                origin = [p.data.copy() for p in params]

                def along(step_size, dirn, origin=origin):
                    return self._directional_evaluate(closure, params, xp, origin, step_size,
                                                      dirn)

                loss, grad, length, used = _wolfe_search(along, length, direction, loss, grad,
                                                         slope, xp,
                                                         max_ls=eval_cap - spent_here)
                self._add_grad(params, length, direction)
                mark_modified(*params)
                at_optimum = small_gradient(grad)
            spent_here += used
            state["func_evals"] += used

            if it == iter_cap or spent_here >= eval_cap or at_optimum:
                break
            if float(xp.abs(direction * length).max()) <= change_tol:
                break  # the step barely moved the parameters
            if abs(loss - start_loss) < change_tol:
                break  # the loss barely changed

        state.update(d=direction, t=length, old_dirs=ys, old_stps=ss, ro=rho, H_diag=gamma,
                     prev_flat_grad=start_grad, prev_loss=start_loss)
        return returned

    # ----- state: flat arrays on the parameters' device, scalars as Python numbers
    def _load_value(self, key, v, p, index, name):
        if key in self._flat_state:
            return self._flat_array(v, key, name)
        if key in self._flat_lists:
            return [self._flat_array(a, f"{key}[{i}]", name) for i, a in enumerate(v)]
        if key in self._scalar_lists:
            return [None if a is None else _number(a, f"{key}[{i}]", name)
                    for i, a in enumerate(v)]
        if key in self._scalars:
            return None if v is None else _number(v, key, name)
        return super()._load_value(key, v, p, index, name)

    def _flat_array(self, v, key, name):
        params, _ = self._flat_params()
        numel = sum(p.data.size for p in params)
        if isinstance(v, Tensor):
            v = v.data
        if not hasattr(v, "shape"):
            raise ValueError(f"{name}: state {key!r} must be an array of {numel} elements, "
                             f"got {type(v).__name__}")
        if tuple(v.shape) != (numel,):
            raise ValueError(f"{name}: state {key!r} has shape {tuple(v.shape)}; the "
                             f"parameters have {numel} elements in all")
        dtype = np.result_type(*[p.data.dtype for p in params])
        return backend.to_device(np.asarray(v) if not backend.is_cupy_array(v) else v,
                                 params[0].device).astype(dtype, copy=True)


def _number(v, key, name):
    """A loaded scalar (a number, or a one-element array or tensor) as a Python number."""
    if hasattr(v, "shape"):
        if math.prod(tuple(v.shape)) != 1:
            raise ValueError(f"{name}: state {key!r} must be a number, got an array of shape "
                             f"{tuple(v.shape)}")
        v = v.item()
    if not isinstance(v, numbers.Real):
        raise TypeError(f"{name}: state {key!r} must be a number, got {type(v).__name__}")
    return v


class _Trial(NamedTuple):
    """A point the line search evaluated: the step length along the direction, and there the
    loss, the flat gradient and the slope (the gradient's dot product with the direction)."""
    step: float
    loss: float
    grad: object
    slope: float


def _clamp(x, lo, hi):
    return min(max(x, lo), hi)


def _cubic_minimizer(a: _Trial, b: _Trial, window=None) -> float:
    """The step where the cubic with the losses and slopes of ``a`` and ``b`` at their steps
    has its local minimum, clamped to ``window`` (by default the interval between the two);
    the window's middle where the cubic has no local minimum.

    With the two steps ordered as l < r and their losses and slopes f_l, f_r, g_l, g_r, write
    m = (f_l - f_r) / (l - r) for the secant slope, th = g_l + g_r - 3 m and
    w = sqrt(th^2 - g_l g_r). The cubic's derivative is a quadratic; its roots are real exactly
    when th^2 >= g_l g_r, and the one where the derivative turns from negative to positive
    (the local minimum) is r - (r - l) (g_r + w - th) / (g_r - g_l + 2 w)
    (Nocedal & Wright, Numerical Optimization, 2nd ed., eq. 3.59).
    """
    left, right = (a, b) if a.step <= b.step else (b, a)
    lo, hi = (left.step, right.step) if window is None else window
    th = left.slope + right.slope - 3 * (left.loss - right.loss) / (left.step - right.step)
    disc = th ** 2 - left.slope * right.slope
    if disc < 0:
        return (lo + hi) / 2.0
    w = math.sqrt(disc)
    fraction = (right.slope + w - th) / (right.slope - left.slope + 2 * w)
    return _clamp(right.step - (right.step - left.step) * fraction, lo, hi)


def _wolfe_search(evaluate, step, direction, loss, grad, slope, xp, c1=1e-4, c2=0.9,
                  tolerance_change=1e-9, max_ls=25):
    """A step length satisfying the strong Wolfe conditions along ``direction``, from the
    point with ``loss``, flat gradient ``grad`` and slope ``slope`` (< 0): sufficient decrease,
    f(t) <= f(0) + c1 t f'(0), and curvature, |f'(t)| <= -c2 f'(0). The search follows
    Nocedal & Wright's Algorithms 3.5 and 3.6 in the variant of torch and minFunc: extrapolate
    with safeguarded cubic steps until an interval is known to hold such a step, then shrink
    it by cubic interpolation, kept off the interval's ends while that makes little progress.
    ``evaluate(t, direction)`` gives the loss and the flat gradient at x + t direction; at most
    ``max_ls`` evaluations follow the first. Returns (loss, gradient, step, evaluations), for
    the lowest point found when the conditions could not be met."""
    scale = float(xp.abs(direction).max())
    start = _Trial(0.0, loss, grad.copy(), slope)

    def probe(t):
        f_t, g_t = evaluate(t, direction)
        return _Trial(t, f_t, g_t, float(g_t.dot(direction)))

    def decrease_fails(p):
        return p.loss > loss + c1 * p.step * slope

    def flat_enough(p):
        return abs(p.slope) <= -c2 * slope

    # phase 1: walk out until a step fails the decrease test, stops decreasing, satisfies
    # both conditions, or has a non-negative slope
    older, newest = start, probe(step)
    extra = 0  # evaluations after the first
    ends = None
    while extra < max_ls:
        if decrease_fails(newest) or (extra > 1 and newest.loss >= older.loss):
            ends = [older, newest]
            break
        if flat_enough(newest):
            return newest.loss, newest.grad, newest.step, extra + 1
        if newest.slope >= 0:
            ends = [older, newest]
            break
        # the next step: beyond the newest one by at least 1% of the last stride, and at
        # most ten times as far from the origin
        nearest = newest.step + 0.01 * (newest.step - older.step)
        t = _cubic_minimizer(older, newest, window=(nearest, newest.step * 10))
        older, newest = newest, probe(t)
        extra += 1
    if ends is None:  # the budget ran out while extrapolating
        ends = [start, newest]

    # phase 2: shrink the interval; ends[low] is the lowest point seen inside it, and the
    # step of ends[1 - low] lies on the side where its slope points downhill
    low = 0 if ends[0].loss <= ends[1].loss else 1
    near_end = False  # whether the previous trial already fell close to an end
    while extra < max_ls:
        left, right = min(ends[0].step, ends[1].step), max(ends[0].step, ends[1].step)
        width = right - left
        if width * scale < tolerance_change:
            break
        t = _cubic_minimizer(ends[0], ends[1])
        margin = 0.1 * width
        if min(right - t, t - left) < margin:
            # a point this close to an end gets one chance; the next time (or when it lies
            # on or outside an end) it moves in to a tenth of the width from that end
            if near_end or t >= right or t <= left:
                t = right - margin if abs(t - right) < abs(t - left) else left + margin
                near_end = False
            else:
                near_end = True
        else:
            near_end = False

        trial = probe(t)
        extra += 1
        high = 1 - low
        if decrease_fails(trial) or trial.loss >= ends[low].loss:
            ends[high] = trial  # the trial bounds the interval from above
            low = 0 if ends[0].loss <= ends[1].loss else 1
            continue
        satisfied = flat_enough(trial)
        if not satisfied and trial.slope * (ends[high].step - ends[low].step) >= 0:
            ends[high] = ends[low]  # the minimum lies on the other side of the trial
        ends[low] = trial
        if satisfied:
            break

    best = ends[low]
    return best.loss, best.grad, best.step, extra + 1
