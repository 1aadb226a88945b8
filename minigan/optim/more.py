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
from typing import ClassVar

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
        super().__init__(params, {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                                  "tolerance_grad": tolerance_grad,
                                  "tolerance_change": tolerance_change,
                                  "history_size": history_size,
                                  "line_search_fn": line_search_fn})

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
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        state = self.state.setdefault(params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = self._evaluate(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad(params, xp)
        if float(xp.abs(flat_grad).max()) <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            # the direction: the two-loop recursion over the stored curvature pairs
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y.dot(s))
                if ys > 1e-10:  # keep the pair only where the curvature is positive
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / float(y.dot(y))
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = float(old_stps[i].dot(q)) * ro[i]
                    q += -al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = float(old_dirs[i].dot(r)) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss

            # the step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(xp.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad.dot(d))
            if gtd > -tolerance_change:  # not a descent direction
                break

            ls_func_evals = 0
            if group["line_search_fn"] is not None:
                x_init = [p.data.copy() for p in params]

                def obj_func(t_, d_, x_init=x_init):
                    return self._directional_evaluate(closure, params, xp, x_init, t_, d_)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, t, d, loss, flat_grad, gtd, xp, max_ls=max_eval - current_evals)
                self._add_grad(params, t, d)
                mark_modified(*params)
                opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
            else:
                self._add_grad(params, t, d)
                mark_modified(*params)
                opt_cond = False
                if n_iter != max_iter:
                    # re-evaluate where the fixed step led, except after the last iteration
                    loss = float(self._evaluate(closure))
                    flat_grad = self._gather_flat_grad(params, xp)
                    opt_cond = float(xp.abs(flat_grad).max()) <= tolerance_grad
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if float(xp.abs(d * t).max()) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

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


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clamped
    to ``bounds`` (by default the interval), or the interval's middle if it has none."""
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, t, d, f, g, gtd, xp, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """torch's line search (after minFunc's WolfeLineSearch): bracket a step satisfying the
    strong Wolfe conditions, then zoom in by cubic interpolation. ``obj_func(t, d)`` returns
    the loss and the flat gradient at x + t d. Returns (loss, gradient, t, evaluations)."""
    d_norm = float(xp.abs(d).max())
    g = g.copy()
    f_new, g_new = obj_func(t, d)
    ls_func_evals = 1
    gtd_new = float(g_new.dot(d))

    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        # the bracketing phase
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # extrapolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(t, d)
        ls_func_evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1

    if ls_iter == max_ls:  # reached the most evaluations: the bracket is [0, t]
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # the zoom phase: a point satisfying the criteria inside the bracket
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break  # the bracket is too small
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1],
                               bracket_f[1], bracket_gtd[1])
        # keep away from the bracket's ends unless the last steps made progress
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(t, d)
        ls_func_evals += 1
        gtd_new = float(g_new.dot(d))
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # the Armijo condition fails, or the point is not lower than the low end
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new.copy(), gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # the Wolfe conditions hold
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # the old high end becomes the low end
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            # the new point becomes the low end
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new.copy(), gtd_new

    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals
