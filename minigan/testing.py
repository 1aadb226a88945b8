"""Gradient checking against finite differences, first and second order.

Use float64 inputs: central differences in float64 are accurate to about 1e-8 relative with the
default step, while float32 would hide real errors behind rounding.

``check_backward`` compares the analytic vector-Jacobian product with central differences, either
along random directions (cheap, any size: each direction tests a random linear combination of all
partial derivatives, so a wrong one is caught with probability 1) or, for tiny inputs, over the
full Jacobian. ``check_double_backward`` runs ``check_backward`` on the first-order gradient
function, with respect to the inputs and the incoming gradients.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import backend
from .autograd import Tensor, enable_grad, grad, no_grad

__all__ = ["check_backward", "check_double_backward", "GradientCheckError"]


class GradientCheckError(AssertionError):
    """The analytic gradient disagrees with finite differences."""


def _as_tuple(y) -> tuple:
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def _data(x):
    return x.data if isinstance(x, Tensor) else x


def _dot(outputs, grad_outputs) -> float:
    total = 0.0
    for y, u in zip(outputs, grad_outputs):
        if y is None or u is None:
            continue
        total += float(backend.to_numpy((_data(y) * u).sum()))
    return total


def check_backward(fn: Callable, inputs: Sequence, grad_outputs=None, *, eps: float = 1e-6,
                   atol: float = 1e-7, rtol: float = 1e-6, mode: str = "directional",
                   n_directions: int = 4, no_grads: Sequence[bool] | None = None,
                   seed: int = 0) -> None:
    """Raise ``GradientCheckError`` unless ``fn``'s backward matches central differences.

    ``fn(*tensors)`` returns a tensor or a tuple of tensors. ``inputs`` are arrays (or tensors,
    whose data is used); those marked in ``no_grads`` (e.g. integer labels) are held fixed.
    ``grad_outputs`` are the output cotangents ``u`` (random if omitted): the check compares
    ``d/dx <u, fn(x)>`` analytically and numerically.
    """
    if mode not in ("directional", "jacobian"):
        raise ValueError(f"mode must be 'directional' or 'jacobian', got {mode!r}")
    arrays = [_data(x) for x in inputs]
    if no_grads is None:
        no_grads = [a.dtype.kind != "f" for a in arrays]
    xp = backend.get_array_module(*arrays)
    rng = np.random.default_rng(seed)

    def rand_like(a):
        return xp.asarray(rng.standard_normal(a.shape)).astype(a.dtype)

    leaves = [Tensor(a.copy(), requires_grad=not ng) for a, ng in zip(arrays, no_grads)]
    with enable_grad():
        outputs = _as_tuple(fn(*leaves))
    if grad_outputs is None:
        grad_outputs = [None if y is None else rand_like(y.data) for y in outputs]
    else:
        grad_outputs = [_data(g) for g in _as_tuple(grad_outputs)]
    diff_leaves = [t for t, ng in zip(leaves, no_grads) if not ng]
    live = [(y, u) for y, u in zip(outputs, grad_outputs)
            if y is not None and u is not None and y.requires_grad]
    if live:
        analytic = grad([y for y, _ in live], diff_leaves, [Tensor(u) for _, u in live],
                        allow_unused=True)
    else:
        analytic = [None] * len(diff_leaves)
    analytic = [xp.zeros_like(t.data) if g is None else g.data
                for t, g in zip(diff_leaves, analytic)]

    def f_dot(perturbed) -> float:
        # constant inputs record no graph; fn may still differentiate inside (a penalty does)
        ys = _as_tuple(fn(*[Tensor(a) for a in perturbed]))
        return _dot(ys, grad_outputs)

    diff_idx = [i for i, ng in enumerate(no_grads) if not ng]
    if mode == "directional":
        for k in range(n_directions):
            dirs = [rand_like(arrays[i]) for i in diff_idx]
            plus, minus = list(arrays), list(arrays)
            for i, d in zip(diff_idx, dirs):
                plus[i] = xp.asarray(arrays[i] + eps * d)
                minus[i] = xp.asarray(arrays[i] - eps * d)
            numeric = (f_dot(plus) - f_dot(minus)) / (2 * eps)
            exact = sum(float(backend.to_numpy((g * d).sum())) for g, d in zip(analytic, dirs))
            if not abs(numeric - exact) <= atol + rtol * abs(numeric):
                raise GradientCheckError(
                    f"directional derivative {k}: backward gives {exact:.10g}, finite differences "
                    f"give {numeric:.10g} (difference {abs(numeric - exact):.3g}, tolerance "
                    f"{atol + rtol * abs(numeric):.3g})")
        return
    for pos, i in enumerate(diff_idx):
        flat = backend.to_numpy(arrays[i]).ravel()
        numeric = np.empty(flat.size)
        for j in range(flat.size):
            plus, minus = list(arrays), list(arrays)
            fp, fm = flat.copy(), flat.copy()
            fp[j] += eps
            fm[j] -= eps
            plus[i] = xp.asarray(fp.reshape(arrays[i].shape))
            minus[i] = xp.asarray(fm.reshape(arrays[i].shape))
            numeric[j] = (f_dot(plus) - f_dot(minus)) / (2 * eps)
        exact = backend.to_numpy(analytic[pos]).ravel().astype(np.float64)
        bad = np.abs(numeric - exact) > atol + rtol * np.abs(numeric)
        if bad.any():
            j = int(np.argmax(np.abs(numeric - exact)))
            raise GradientCheckError(
                f"input {i} (shape {arrays[i].shape}): {int(bad.sum())} of {flat.size} partial "
                f"derivatives disagree; worst at flat index {j}: backward {exact[j]:.10g}, "
                f"finite differences {numeric[j]:.10g}")


def check_double_backward(fn: Callable, inputs: Sequence, grad_outputs=None,
                          grad_grad_inputs=None, *, no_grads: Sequence[bool] | None = None,
                          **kwargs) -> None:
    """Check second derivatives: ``check_backward`` of x, gy -> grad(fn(x), x, gy, create_graph)."""
    arrays = [_data(x) for x in inputs]
    if no_grads is None:
        no_grads = [a.dtype.kind != "f" for a in arrays]
    xp = backend.get_array_module(*arrays)
    rng = np.random.default_rng(kwargs.get("seed", 0) + 1)
    n = len(arrays)
    if grad_outputs is None:
        with no_grad():
            ys = _as_tuple(fn(*[Tensor(a) for a in arrays]))
        grad_outputs = [xp.asarray(rng.standard_normal(y.shape)).astype(y.dtype) for y in ys]
    else:
        grad_outputs = [_data(g) for g in _as_tuple(grad_outputs)]
    diff_idx = [i for i in range(n) if not no_grads[i]]

    def first_order(*args):
        with enable_grad():
            xs = [a if a.requires_grad or no_grads[i] else Tensor(a.data, requires_grad=True)
                  for i, a in enumerate(args[:n])]
            gys = list(args[n:])
            ys = _as_tuple(fn(*xs))
            gxs = grad(list(ys), [xs[i] for i in diff_idx], gys, create_graph=True,
                       allow_unused=True)
        return tuple(Tensor(xp.zeros_like(xs[i].data)) if g is None else g
                     for i, g in zip(diff_idx, gxs))

    if grad_grad_inputs is not None:
        grad_grad_inputs = [_data(g) for g in _as_tuple(grad_grad_inputs)]
    check_backward(first_order, list(arrays) + list(grad_outputs), grad_grad_inputs,
                   no_grads=list(no_grads) + [False] * len(grad_outputs), **kwargs)
