"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Device-agnostic and free of host syncs: the total norm and the scale factor stay on the
gradients' device (the norm is returned as a 0-D Tensor, as PyTorch returns a tensor). Only
``error_if_nonfinite=True`` reads the norm back to test it.

As in PyTorch the gradients are changed in place, except where a gradient array is not the
parameter's own (a view, or one array set as two parameters' ``.grad``): those are replaced by
changed copies, so that nothing is scaled twice and no other tensor is touched.
"""
from __future__ import annotations

import math

import numpy as np

from ... import backend
from ...autograd import Tensor
from ..module import _private_grads


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients together so that their total ``norm_type``-norm (the norm of the
    per-parameter norms) is at most ``max_norm``; returns the total norm before clipping.

    ``foreach`` is accepted for PyTorch compatibility and ignored.
    """
    params = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not params:
        return Tensor(np.zeros((), dtype=np.float32))
    arrays = [p.grad.data for p in params]
    xp = backend.get_array_module(*arrays)  # refuses gradients on two devices
    # float16 norms are taken in float32: the sum of squares overflows float16 at a norm of 256
    wide = [a.astype(xp.float32) if a.dtype == xp.float16 else a for a in arrays]
    if math.isinf(norm_type):
        norms = [xp.max(xp.abs(a)) if a.size else xp.zeros((), a.dtype) for a in wide]
        total = xp.max(xp.stack([xp.asarray(n) for n in norms]))
    else:
        norms = [xp.linalg.norm(a.ravel(), norm_type) for a in wide]
        total = xp.linalg.norm(xp.stack([xp.asarray(n) for n in norms]), norm_type)
    total = xp.asarray(total)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for p, private in zip(params, _private_grads(arrays)):
        g = p.grad.data
        if private:
            g *= coef.astype(g.dtype)
        else:
            p.grad = Tensor(xp.asarray(g * coef).astype(g.dtype, copy=False))
    return Tensor(total)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    params = _grads(parameters)
    for p, private in zip(params, _private_grads([p.grad.data for p in params])):
        g = p.grad.data
        xp = backend.get_array_module(g)
        if private:
            xp.clip(g, -clip_value, clip_value, out=g)
        else:
            p.grad = Tensor(xp.clip(g, -clip_value, clip_value).astype(g.dtype, copy=False))
