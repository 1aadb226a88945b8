"""Losses, written so that their derivatives of every order are exact.

Signatures are PyTorch's, including the deprecated ``size_average``/``reduce`` positions (so
that positional arguments line up); those two only accept None: use ``reduction``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor, is_grad_enabled
from ..kernels import elementwise as K
from . import basic as B
from .activation import sigmoid, softplus
from .normalization import pairwise_distance
from .pointwise import _cast, minimum

_REDUCTIONS = ("mean", "sum", "none")


def _float_like(v, x: Tensor) -> Tensor:
    """A target or weight as a tensor on ``x``'s device; floats take ``x``'s float dtype (a
    float64 NumPy target with a float32 input would otherwise make the loss, and the GPU
    kernels' operands, float64)."""
    t = as_tensor(v, x)
    if t.dtype.kind == "f" and x.dtype.kind == "f" and t.dtype != x.dtype:
        t = t.to(dtype=x.dtype)
    return t


def _check_reduction(fn: str, size_average, reduce, reduction: str) -> None:
    if size_average is not None or reduce is not None:
        hint = ""
        if isinstance(size_average, str) or isinstance(reduce, str):
            hint = (" (as in PyTorch, the positional argument after target/weight is "
                    "size_average, not reduction; pass reduction= by keyword)")
        raise ValueError(f"{fn}: size_average={size_average!r} and reduce={reduce!r} are "
                         "deprecated in PyTorch and not supported by minigan; pass "
                         f"reduction='mean', 'sum' or 'none' instead{hint}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return B.mean(loss)
    if reduction == "sum":
        return B.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _weighted_reduce(loss: Tensor, weight: Tensor, reduction: str) -> Tensor:
    """PyTorch's weighted mse/l1: 'mean' divides by the sum of the weights."""
    loss = loss * weight
    if reduction == "mean":
        return B.sum(loss) / B.sum(weight)
    return _reduce(loss, reduction)


def _broadcast_weight(fn: str, name: str, w: Tensor, shape: tuple) -> Tensor:
    """A weight that broadcasts to ``shape`` without enlarging it (as PyTorch requires)."""
    try:
        ok = tuple(np.broadcast_shapes(w.shape, shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: {name} of shape {w.shape} cannot be broadcast to the input "
                         f"shape {tuple(shape)}")
    return w


def _warn_size_mismatch(fn: str, x: Tensor, t: Tensor) -> None:
    if t.shape != x.shape:
        warnings.warn(f"{fn}: using a target size {t.shape} that is different to the input "
                      f"size {x.shape}; it is broadcast, which will likely lead to incorrect "
                      "results. Please ensure they have the same size.", stacklevel=3)


def _clamped_log(v: Tensor, floor: float = -100.0) -> Tensor:
    """max(log v, floor), differentiable (zero gradient where clamped, no 0/0 at v = 0)."""
    mask = v.data > np.exp(floor)
    return B.where(mask, B.log(B.where(mask, v, 1.0)), floor)


_BCE_EPS = float(np.float32(1e-12))  # PyTorch clamps x (1 - x) at a float constant 1e-12


class BCEInputGrad(Function):
    """gx = gy (x - t) / max(x (1 - x), 1e-12), binary_cross_entropy's input gradient (torch's
    formula), with torch's derivatives: d/dgy = (x - t) / max(x (1 - x), 1e-12), d/dt = -gy /
    max(x (1 - x), 1e-12) and d/dx = gy (x^2 - 2 x t + t) / ((x + 1e-12)^2 (1 - x + 1e-12)^2),
    the last finite (and 0 where t = x) at x = 0 and 1, where the clamp's constant would give
    gy / 1e-12. Composed of differentiable ops, so every higher order is exact."""

    def forward(self, gy, x, t):
        xp = backend.get_array_module(x)
        return gy * (x - t) / xp.maximum(x * (1 - x), x.dtype.type(_BCE_EPS))

    def backward(self, ggx):
        gy, x, t = self.inputs
        need = self.needs_input_grad
        d = x * (1.0 - x)
        d = B.where(d.data > _BCE_EPS, d, _BCE_EPS)
        g_gy = ggx * (x - t) / d if need[0] else None
        g_x = None
        if need[1]:
            a, b = x + _BCE_DOUBLE_EPS, (1.0 - x) + _BCE_DOUBLE_EPS
            g_x = ggx * gy * (x * x - x * t * 2.0 + t) / (a * a * (b * b))
        g_t = B.neg(ggx * gy) / d if need[2] else None
        return g_gy, g_x, g_t


_BCE_DOUBLE_EPS = 1e-12  # torch's binary_cross_entropy_double_backward (a double)


class BinaryCrossEntropy(Function):
    """l = -(t log x + (1 - t) log(1 - x)) with each log clamped at -100 (PyTorch's rule);
    gx = gy (x - t) / max(x (1 - x), 1e-12) (PyTorch's formula, ``BCEInputGrad``, with its
    derivatives), gt = gy (log(1-x) - log x)."""

    def forward(self, x, t):
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        return (t - 1) * log_1mx - t * log_x

    def backward(self, gy):
        x, t = self.inputs
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = BCEInputGrad()(gy, x, t)
        if self.needs_input_grad[1]:
            gt = gy * (_clamped_log(1.0 - x) - _clamped_log(x))
        return gx, gt


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.binary_cross_entropy`` of probabilities ``input`` in [0, 1].

    The logs are clamped at -100, so that x = 0 or 1 gives a finite loss (100 per element), as in
    PyTorch. For logits, ``binary_cross_entropy_with_logits`` is the stable form. On the CPU the
    values are checked to lie in [0, 1]; on the GPU that check would cost a host sync per call.
    """
    _check_reduction("binary_cross_entropy", size_average, reduce, reduction)
    x = as_tensor(input)
    t = _float_like(target, x)
    if t.shape != x.shape:
        raise ValueError(f"binary_cross_entropy: using a target size {t.shape} that is "
                         f"different to the input size {x.shape} is not supported (PyTorch "
                         "refuses it too); please ensure they have the same size")
    backend.check_same_device(x.data, t.data, what="binary_cross_entropy")
    if not backend.is_cupy_array(x.data):
        for name, v in (("input", x.data), ("target", t.data)):
            if v.size and not bool(((v >= 0) & (v <= 1)).all()):
                bad = v[~((v >= 0) & (v <= 1))].ravel()[0]
                raise ValueError(f"binary_cross_entropy: all elements of {name} should be "
                                 f"between 0 and 1, got {bad}")
    loss = BinaryCrossEntropy()(x, t)
    if weight is not None:
        loss = loss * _broadcast_weight("binary_cross_entropy", "weight", _float_like(weight, x),
                                        x.shape)
    return _reduce(loss, reduction)


class BCEWithLogits(Function):
    """l = softplus(x) - x*t, computed stably; gx = gy * (sigmoid(x) - t), gt = -gy * x."""

    def forward(self, x, t):
        return K.bce_with_logits_forward(x, t)

    def backward(self, gy):
        x, t = self.inputs
        gx = gt = None
        if self.needs_input_grad[0]:
            if is_grad_enabled():  # a graph is being built: compose, so that it is exact
                gx = gy * (sigmoid(x) - t)
            else:  # first order only: one fused kernel
                gx = Tensor(K.bce_with_logits_backward(gy.data, x.data, t.data))
        if self.needs_input_grad[1]:
            gt = B.neg(gy * x)
        return gx, gt


class BCEWithLogitsConst(Function):
    """``BCEWithLogits`` against a target that is one number for every element (a GAN's real and
    fake labels): the number is a kernel argument, so no target array is filled. The same
    values as with a target array of that number."""

    def __init__(self, t):
        self.t = t

    def forward(self, x):
        return K.bce_with_logits_forward(x, self.t)

    def backward(self, gy):
        x = self.inputs[0]
        if is_grad_enabled():  # a graph is being built: compose, so that it is exact
            return gy * B.sub(sigmoid(x), self.t)
        return Tensor(K.bce_with_logits_backward(gy.data, x.data, self.t))


class BCEWithLogitsConstMean(Function):
    """``mean(BCEWithLogitsConst(t)(x))`` as one op, the same values: on the GPU one kernel
    forward and one backward, where the two ops launch two each (the loss, then the mean;
    the mean's backward scaling of gy, then the loss's backward)."""

    def __init__(self, t, scale):
        self.t, self.scale = t, scale

    def forward(self, x):
        return K.bce_with_logits_const_mean(x, self.t, self.scale)

    def backward(self, gy):
        x = self.inputs[0]
        if is_grad_enabled():  # a graph is being built: the two ops' backward formulas
            g = B.broadcast_to(B.reshape(gy * self.scale, (1,) * x.ndim), x.shape)
            return g * B.sub(sigmoid(x), self.t)
        return Tensor(K.bce_with_logits_const_mean_backward(gy.data, x.data, self.t,
                                                            self.scale))


def bce_with_logits_const(input, value: float, reduction: str = "mean") -> Tensor:
    """``binary_cross_entropy_with_logits(input, full_like(input, value))``, without making the
    full target (which on the GPU is one more kernel launch and allocation per call)."""
    _check_reduction("bce_with_logits_const", None, None, reduction)
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"bce_with_logits_const: logits must be floating point, got {x.dtype}")
    t = x.dtype.type(value)
    if reduction == "mean" and x.size:
        return BCEWithLogitsConstMean(t, x.dtype.type(1.0 / x.size))(x)
    return _reduce(BCEWithLogitsConst(t)(x), reduction)


class BCEWithLogitsConstMeanPair(Function):
    """``BCEWithLogitsConstMean(t1, s1)(x1) + BCEWithLogitsConstMean(t2, s2)(x2)`` as one op,
    the same values (a GAN discriminator's loss on its real and its fake logits): on the GPU
    one kernel forward and one backward, where the two losses and their sum launch three and
    two."""

    def __init__(self, t1, t2, s1, s2):
        self.t1, self.t2, self.s1, self.s2 = t1, t2, s1, s2

    def forward(self, x1, x2):
        return K.bce_with_logits_const_mean_pair(x1, x2, self.t1, self.t2, self.s1, self.s2)

    def backward(self, gy):
        x1, x2 = self.inputs
        need = self.needs_input_grad
        if is_grad_enabled():  # a graph is being built: each loss's backward formula
            out = []
            for x, t, sc, wanted in ((x1, self.t1, self.s1, need[0]),
                                     (x2, self.t2, self.s2, need[1])):
                g = B.broadcast_to(B.reshape(gy * sc, (1,) * x.ndim), x.shape)
                out.append(g * B.sub(sigmoid(x), t) if wanted else None)
            return tuple(out)
        if need[0] and need[1]:
            g1, g2 = K.bce_with_logits_const_mean_pair_backward(
                gy.data, x1.data, x2.data, self.t1, self.t2, self.s1, self.s2)
            return Tensor(g1), Tensor(g2)
        return tuple(Tensor(K.bce_with_logits_const_mean_backward(gy.data, x.data, t, sc))
                     if wanted else None
                     for x, t, sc, wanted in ((x1, self.t1, self.s1, need[0]),
                                              (x2, self.t2, self.s2, need[1])))


def bce_with_logits_const_pair(input1, value1: float, input2, value2: float) -> Tensor:
    """``bce_with_logits_const(input1, value1) + bce_with_logits_const(input2, value2)`` (both
    with the mean), with the same values, as one op when both are non-empty and of one float
    dtype: a GAN discriminator's loss on its real and its fake logits."""
    x1, x2 = as_tensor(input1), as_tensor(input2)
    if x1.dtype != x2.dtype or x1.dtype.kind != "f" or not x1.size or not x2.size:
        return bce_with_logits_const(x1, value1) + bce_with_logits_const(x2, value2)
    dt = x1.dtype.type
    return BCEWithLogitsConstMeanPair(dt(value1), dt(value2), dt(1.0 / x1.size),
                                      dt(1.0 / x2.size))(x1, x2)


class BCEWithLogitsConstMeanSplit(Function):
    """``BCEWithLogitsConstMeanPair`` of ``x[:n]`` and ``x[n:]``, as an op on x: a GAN
    discriminator's loss when it scored the real and the fake batch in one pass. The same
    values; the gradient is one array of x's shape, written half by half by the pair's
    kernel (no zero fill, no scatter of two slices' gradients)."""

    def __init__(self, n, t1, t2, s1, s2):
        self.n, self.t1, self.t2, self.s1, self.s2 = n, t1, t2, s1, s2

    def forward(self, x):
        n = self.n
        return K.bce_with_logits_const_mean_pair(x[:n], x[n:], self.t1, self.t2, self.s1,
                                                 self.s2)

    def backward(self, gy):
        x, n = self.inputs[0], self.n
        if is_grad_enabled():  # a graph is being built: each half's backward formula
            halves = []
            for part, t, sc in ((B.getitem(x, slice(None, n)), self.t1, self.s1),
                                (B.getitem(x, slice(n, None)), self.t2, self.s2)):
                g = B.broadcast_to(B.reshape(gy * sc, (1,) * part.ndim), part.shape)
                halves.append(g * B.sub(sigmoid(part), t))
            return B.concat(halves, 0)
        xd = x.data
        gx = backend.get_array_module(xd).empty_like(xd)
        K.bce_with_logits_const_mean_pair_backward(gy.data, xd[:n], xd[n:], self.t1, self.t2,
                                                   self.s1, self.s2, out=(gx[:n], gx[n:]))
        return Tensor(gx)


def bce_with_logits_const_split(input, n: int, value1: float, value2: float) -> Tensor:
    """``bce_with_logits_const_pair(input[:n], value1, input[n:], value2)`` (each half's mean
    loss against its constant target, summed), as one op on ``input`` of a float dtype whose
    first axis is split at ``0 < n < len(input)``: a discriminator's loss on one pass over a
    real batch followed by a fake one."""
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"bce_with_logits_const_split: logits must be floating point, got "
                        f"{x.dtype}")
    if (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or x.ndim < 1
            or not 0 < n < x.shape[0]):
        raise ValueError(f"bce_with_logits_const_split: n must be an integer with 0 < n < "
                         f"{x.shape[0] if x.ndim else 0} (the logits' first axis, shape "
                         f"{tuple(x.shape)}), got {n!r}")
    n = int(n)
    dt = x.dtype.type
    per_row = x.size // x.shape[0]
    if not per_row:
        return bce_with_logits_const_pair(B.getitem(x, slice(None, n)), value1,
                                          B.getitem(x, slice(n, None)), value2)
    return BCEWithLogitsConstMeanSplit(n, dt(value1), dt(value2), dt(1.0 / (n * per_row)),
                                       dt(1.0 / ((x.shape[0] - n) * per_row)))(x)


class UnitNormPenalty(Function):
    """``weight * mean_i (sqrt(sum_j x_ij^2 + eps) - 1)^2`` of a 2-D x as one op: on the GPU
    one kernel forward and one backward, where the eight ops it is made of launch about
    eighteen. The forward keeps the row norms, which only the plain backward reads; the
    graph-building backward recomputes them from x, so every order of derivative is exact."""

    def __init__(self, weight, eps):
        self.weight, self.eps = weight, eps

    def forward(self, x):
        y, norms = K.norm_penalty(x, self.eps, 1.0 / x.shape[0], self.weight)
        self.saved = norms
        return y

    def backward(self, gy):
        x = self.inputs[0]
        k = 2.0 * self.weight / x.shape[0]
        if is_grad_enabled():  # a graph is being built: the formula in differentiable ops
            n = B.sqrt(B.sum(x * x, 1) + self.eps)
            c = gy * k * (n - 1.0) / n
            return x * B.reshape(c, (x.shape[0], 1))
        return Tensor(K.norm_penalty_backward(gy.data, x.data, self.saved, k))


def unit_norm_penalty(input, weight: float = 1.0, eps: float = 1e-12) -> Tensor:
    """``weight * mean((sqrt(sum(x * x, 1) + eps) - 1) ** 2)`` with x the input flattened to one
    row per sample: the gradient-norm penalty of DRAGAN and WGAN-GP, pulling each sample's
    norm towards 1, as one op. ``eps`` (> 0) keeps the norm's derivative finite at zero."""
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"unit_norm_penalty: input must be floating point, got {x.dtype}")
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"unit_norm_penalty: input needs at least one sample (one row), got "
                         f"shape {x.shape}")
    if not eps > 0:
        raise ValueError(f"unit_norm_penalty: eps must be > 0, got {eps!r}")
    if x.ndim != 2:
        x = B.reshape(x, (x.shape[0], -1))
    return UnitNormPenalty(float(weight), float(eps))(x)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """PyTorch's ``F.binary_cross_entropy_with_logits``, in the stable softplus form.

    ``target`` must have the input's shape; ``weight`` and ``pos_weight`` (per class, along the
    last axis) must broadcast to it.
    """
    _check_reduction("binary_cross_entropy_with_logits", size_average, reduce, reduction)
    x = as_tensor(input)
    t = _float_like(target, x)
    if t.shape != x.shape:
        raise ValueError(f"Target size {t.shape} must be the same as input size {x.shape} "
                         "(binary_cross_entropy_with_logits)")
    if pos_weight is not None:
        # l = (1 - t) x + (1 + (pw - 1) t) softplus(-x), written as the sum of two terms that
        # are >= 0 for t in [0, 1], (1 - t) softplus(x) + pw t softplus(-x) (softplus(x) = x +
        # softplus(-x)): no cancellation, so a confident, right logit keeps its small loss
        # (x = -25, t = 0: 1.4e-11, not 25 - 25), and softplus without its linear cut-off
        pw = _broadcast_weight("binary_cross_entropy_with_logits", "pos_weight",
                               _float_like(pos_weight, x), x.shape)
        loss = ((1.0 - t) * softplus(x, threshold=math.inf)
                + (pw * t) * softplus(B.neg(x), threshold=math.inf))
    else:
        loss = BCEWithLogits()(x, t)
    if weight is not None:
        loss = loss * _broadcast_weight("binary_cross_entropy_with_logits", "weight",
                                        _float_like(weight, x), x.shape)
    return _reduce(loss, reduction)


def _pointwise_inputs(fn: str, input, target, weight):
    x = as_tensor(input)
    t = _float_like(target, x)
    _warn_size_mismatch(fn, x, t)
    B._broadcast_check(fn, x.shape, t.shape)
    w = None
    if weight is not None:
        w = _float_like(weight, x)
        if w.shape != x.shape:
            raise ValueError(f"{fn}: weights of shape {w.shape} and input of shape {x.shape} "
                             "must have the same size")
    return x, t, w


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """PyTorch's ``F.mse_loss``: (x - t)^2; with ``weight`` the mean is sum(w l) / sum(w)."""
    _check_reduction("mse_loss", size_average, reduce, reduction)
    x, t, w = _pointwise_inputs("mse_loss", input, target, weight)
    d = x - t
    loss = d * d
    return _reduce(loss, reduction) if w is None else _weighted_reduce(loss, w, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """PyTorch's ``F.l1_loss``: |x - t|; with ``weight`` the mean is sum(w l) / sum(w)."""
    _check_reduction("l1_loss", size_average, reduce, reduction)
    x, t, w = _pointwise_inputs("l1_loss", input, target, weight)
    loss = B.abs(x - t)
    return _reduce(loss, reduction) if w is None else _weighted_reduce(loss, w, reduction)


def _huber(d: Tensor, delta: float) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - delta / 2): the branch is a constant mask."""
    ad = B.abs(d)
    xp = backend.get_array_module(d.data)
    return B.where(xp.abs(d.data) < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0,
               weight=None) -> Tensor:
    """PyTorch's ``F.huber_loss``; with ``weight`` the mean is mean(w l), as in PyTorch."""
    _check_reduction("huber_loss", None, None, reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got "
                         f"{delta}")
    x, t, w = _pointwise_inputs("huber_loss", input, target, weight)
    loss = _huber(x - t, delta)
    return _reduce(loss if w is None else loss * w, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """PyTorch's ``F.smooth_l1_loss``: huber_loss(delta=beta) / beta, and l1_loss for beta=0."""
    _check_reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    x, t, _ = _pointwise_inputs("smooth_l1_loss", input, target, None)
    d = x - t
    loss = B.abs(d) if beta == 0 else _huber(d, beta) * (1.0 / beta)
    return _reduce(loss, reduction)


def logsumexp(x, dim=-1, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """log(sum(exp(x))) over ``dim`` (an int or a tuple; ``axis``/``keepdims`` are NumPy's
    names), with the max subtracted as a constant (it cancels in every derivative)."""
    x = as_tensor(x)
    dim, keepdim = B._dims("logsumexp", axis, keepdim if keepdims is None else keepdims,
                           None if axis is not None else dim, None)
    axes = B._norm_axis(dim, x.ndim, "logsumexp")
    y = _logsumexp(x, axes)
    return y if keepdim else B.reshape(y, tuple(s for i, s in enumerate(y.shape)
                                                 if i not in axes))


def _logsumexp(x: Tensor, axes: tuple, posinf_nan: bool = False) -> Tensor:
    """``logsumexp`` over ``axes`` (kept). With ``posinf_nan``, a slice holding +inf gives NaN
    (not inf): what ``log_softmax`` subtracts, so that the whole slice of its result is NaN,
    as torch's softmax and log_softmax give (x - max is inf - inf there)."""
    xp = backend.get_array_module(x.data)
    m = xp.max(x.data, axis=axes, keepdims=True) if x.ndim else x.data
    shift = xp.where(xp.isfinite(m), m, 0)
    if posinf_nan and m.dtype.kind == "f":
        shift = xp.where(m == np.inf, m.dtype.type(np.nan), shift)
    return B.log(B.sum(B.exp(x - Tensor(shift)), axes, keepdims=True)) + Tensor(shift)


def _softmax_dim(fn: str, x: Tensor, dim, stacklevel: int):
    """torch's rule for a softmax without ``dim`` (deprecated there, with this warning): dim 0
    for 0-, 1- and 3-d input, else 1. The warning points ``stacklevel`` frames up from here
    (torch's ``_stacklevel``: 3 is the caller of the softmax)."""
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {fn} has been deprecated (as in torch). "
                  "Change the call to include dim=X as an argument.", UserWarning,
                  stacklevel=stacklevel)
    return 0 if x.ndim in (0, 1, 3) else 1


def log_softmax(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``log(softmax(input, dim))``, computed as ``x - logsumexp(x, dim)``. Without ``dim``,
    torch's deprecated implicit choice (see ``softmax``); ``dtype`` casts the input first."""
    x = _cast("log_softmax", as_tensor(input), dtype)
    dim = _softmax_dim("log_softmax", x, dim, _stacklevel)
    return x - _logsumexp(x, B._norm_axis(dim, x.ndim, "log_softmax"), posinf_nan=True)


def softmax(input, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x))`` over ``dim``. Without ``dim`` it is torch's deprecated implicit
    choice, with its warning: dim 0 for 0-, 1- and 3-d input, else 1. ``dtype`` casts the
    input first, as torch does (e.g. float32 logits to a float64 softmax)."""
    x = _cast("softmax", as_tensor(input), dtype)
    return B.exp(log_softmax(x, _softmax_dim("softmax", x, dim, _stacklevel)))


def one_hot(tensor, num_classes: int = -1, dtype=np.int64) -> Tensor:
    """Integer labels (``tensor``: a tensor or an array) to a constant one-hot tensor on their
    device, of ``dtype`` (int64 as torch's ``F.one_hot``; pass the dtype to concatenate it to
    floats). ``num_classes=-1`` takes the largest label + 1, as torch, which on the GPU reads
    the labels back (a sync): give the count in a training step."""
    data = tensor.data if isinstance(tensor, Tensor) else tensor
    xp = backend.get_array_module(data)
    data = xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got {data.dtype}")
    if num_classes == -1:
        if not data.size:
            raise ValueError("one_hot: cannot infer num_classes from no labels; give it")
        num_classes = int(data.max()) + 1
    # Range check on the host only: on the GPU it would force a sync inside training steps
    # (GPU labels come from the loader, which validated them once at load time).
    if xp is backend.np and data.size and (int(data.min()) < 0
                                          or int(data.max()) >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got values from "
                         f"{int(data.min())} to {int(data.max())}")
    eye = xp.eye(num_classes, dtype=dtype)
    return Tensor(eye[data])


def _class_targets(fn: str, x: Tensor, target, ignore_index: int):
    """Integer class targets checked against input (C,), (N, C) or (N, C, d1, ...): returns the
    target array, the class axis and a constant mask (input's shape) of each target class, all
    false where the target is ``ignore_index``."""
    t = target.data if isinstance(target, Tensor) else target
    xp = backend.get_array_module(x.data)
    if not hasattr(t, "dtype"):
        t = xp.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must hold integer class indices, got dtype {t.dtype}")
    backend.check_same_device(x.data, t, what=fn)
    if x.ndim == 0:
        raise ValueError(f"{fn}: input must have at least one dimension, got a 0-D tensor")
    axis = 0 if x.ndim == 1 else 1
    expected = () if x.ndim == 1 else x.shape[:1] + x.shape[2:]
    if x.ndim >= 2 and t.ndim >= 1 and t.shape[0] != x.shape[0]:
        raise ValueError(f"{fn}: expected input batch_size ({x.shape[0]}) to match target "
                         f"batch_size ({t.shape[0]})")
    if t.shape != expected:
        raise ValueError(f"{fn}: expected target size {expected} for input of shape "
                         f"{x.shape}, got {t.shape}")
    n_classes = x.shape[axis]
    valid = xp.asarray(t != ignore_index)  # an array also for 0-D targets
    # Range check on the host only: on the GPU it would force a sync inside training steps.
    if not backend.is_cupy_array(t) and t.size:
        bad = valid & ((t < 0) | (t >= n_classes))
        if bad.any():
            raise IndexError(f"{fn}: Target {int(t[bad].ravel()[0])} is out of bounds for "
                             f"{n_classes} classes")
    classes = xp.arange(n_classes).reshape((n_classes,) + (1,) * (x.ndim - axis - 1))
    mask = (xp.expand_dims(t, axis) == classes) & xp.expand_dims(valid, axis)
    return t, axis, mask, valid


def _class_weight(fn: str, weight, x: Tensor, axis: int):
    """``weight`` (C,) as a tensor shaped to broadcast along the class axis, or None."""
    if weight is None:
        return None
    w = _float_like(weight, x)
    if w.shape != (x.shape[axis],):
        raise ValueError(f"{fn}: weight tensor should be defined either for all "
                         f"{x.shape[axis]} classes or no classes but got weight tensor of shape "
                         f"{w.shape}")
    return B.reshape(w, (-1,) + (1,) * (x.ndim - axis - 1))


def _nll(fn, logp: Tensor, target, weight, ignore_index, reduction):
    """The summed-over-classes terms of nll_loss and the denominator of its mean."""
    _, axis, mask, valid = _class_targets(fn, logp, target, ignore_index)
    xp = backend.get_array_module(logp.data)
    w = _class_weight(fn, weight, logp, axis)
    picker = Tensor(mask.astype(logp.dtype))
    # the target classes' log-probabilities, selected (not multiplied by a 0/1 mask: another
    # class at -inf, as masked logits are, would make 0 * -inf = NaN)
    picked = B.where(mask, logp, 0.0)
    if w is not None:
        picker = picker * w
        picked = picked * w
    loss = B.neg(B.sum(picked, axis))
    if reduction != "mean":
        return loss, None, w, valid, axis
    if w is None:  # the count of non-ignored targets, kept on the device
        denom = Tensor(xp.asarray(valid.sum(), dtype=logp.dtype))
    else:
        denom = B.sum(picker)
    return loss, denom, w, valid, axis


def _mean_over(loss: Tensor, valid, denom: Tensor) -> Tensor:
    """sum(loss) / denom, as torch computes it: each counted sample's loss is scaled by
    1/denom, an ignored one's by exactly 0. So when every target is ignored (denom 0) the value
    is NaN, as torch's, yet the gradient is 0, not 0 * inf = NaN: one such batch would
    otherwise turn every parameter into NaN. (No host sync: the test runs on the device.)"""
    xp = backend.get_array_module(loss.data)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = B.where(valid, 1.0 / denom, 0.0)
        nothing_counted = Tensor(xp.where(denom.data == 0, np.nan, 0.0).astype(loss.dtype))
        return B.sum(loss * scale) + nothing_counted


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,
             reduce=None, reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.nll_loss``: -w[t] * input[t] per sample, for log-probabilities input (C,),
    (N, C) or (N, C, d1, ...) and integer targets (), (N,) or (N, d1, ...).

    Targets equal to ``ignore_index`` contribute 0; 'mean' divides by the sum of the weights of
    the other targets (when every target is ignored: NaN, with a zero gradient, as in PyTorch).
    Out-of-range targets raise an IndexError on the CPU. On the GPU they are not checked (that
    needs a host sync): such a target adds 0 to the loss but still counts in the mean's
    denominator.
    """
    _check_reduction("nll_loss", size_average, reduce, reduction)
    x = as_tensor(input)
    loss, denom, _, valid, _ = _nll("nll_loss", x, target, weight, ignore_index, reduction)
    if reduction == "mean":
        return _mean_over(loss, valid, denom)
    return _reduce(loss, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """PyTorch's ``F.cross_entropy`` of logits (C,), (N, C) or (N, C, d1, ...).

    ``target`` holds integer class indices (with ``weight``, ``ignore_index`` and
    ``label_smoothing`` as in PyTorch: the smoothed loss is (1 - s) nll + s/C * sum over classes
    of -w_c log p_c, with the same denominator), or class probabilities of the input's shape.
    """
    _check_reduction("cross_entropy", size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    x = as_tensor(input)
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must have at least one dimension, got a 0-D "
                         "tensor")
    axis = 0 if x.ndim == 1 else 1
    n_classes = x.shape[axis]
    logp = log_softmax(x, axis)
    t_data = target.data if isinstance(target, Tensor) else target
    if hasattr(t_data, "dtype") and t_data.dtype.kind == "f":
        # class probabilities
        if ignore_index >= 0:
            raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) is not supported "
                             "for floating point (probability) targets")
        probs = _float_like(target, x)
        if probs.shape != x.shape:
            raise ValueError(f"cross_entropy: probability targets must have the input's shape "
                             f"{x.shape}, got {probs.shape}")
        if label_smoothing > 0:
            probs = probs * (1.0 - label_smoothing) + label_smoothing / n_classes
        terms = logp * probs
        w = _class_weight("cross_entropy", weight, x, axis)
        if w is not None:
            terms = terms * w
        loss = B.neg(B.sum(terms, axis))
        if reduction == "mean":  # over the samples (and positions); none: NaN, as torch's
            return B.sum(loss) * (n_classes / x.size if x.size else np.nan)
        return _reduce(loss, reduction)
    loss, denom, w, valid, axis = _nll("cross_entropy", logp, target, weight, ignore_index,
                                       reduction)
    if label_smoothing > 0:
        smooth = B.neg(B.sum(logp if w is None else logp * w, axis))
        smooth = smooth * Tensor(valid.astype(x.dtype))
        loss = loss * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)
    if reduction == "mean":
        return _mean_over(loss, valid, denom)
    return _reduce(loss, reduction)


# The rest of torch's common losses. Targets of the margin losses are only compared (with 1
# and -1, or with the class indices), so they get no gradient, as in torch.

def _like_input(fn: str, x: Tensor, *others) -> list:
    """``others`` as tensors on ``x``'s device (float ones in ``x``'s float dtype)."""
    out = [_float_like(v, x) for v in others]
    backend.check_same_device(x.data, *(t.data for t in out), what=fn)
    return out


class XLogX(Function):
    """y = x log x, 0 at x = 0 (torch's ``xlogy(x, x)``); gx = gy (log x + 1), which at x = 0
    is NaN, as torch's (its xlogy gradient there is 0 / 0)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where(x == 0, 0, x * xp.log(x)).astype(x.dtype, copy=False)

    def backward(self, gy):
        x = self.inputs[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return gy * B.where(x.data == 0, np.nan, B.log(x) + 1.0)


_KL_MEAN_WARNING = ("reduction: 'mean' divides the total loss by both the batch size and the "
                    "support size. 'batchmean' divides only by the batch size, and aligns with "
                    "the KL div math definition. 'mean' will be changed to behave the same as "
                    "'batchmean' in the next major release (as torch warns).")


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """PyTorch's ``F.kl_div`` of log-probabilities ``input``: t (log t - x) per element, or
    exp(t) (t - x) with ``log_target`` (the inputs broadcast together).

    'batchmean' divides the sum by input's first size (the KL divergence per sample); 'mean'
    divides by the number of elements and warns, as torch does. A target 0 adds 0 (its
    gradient there is NaN, as torch's); a negative one gives NaN.
    """
    if size_average is not None or reduce is not None:
        _check_reduction("kl_div", size_average, reduce, "mean")
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"kl_div: reduction must be 'mean', 'batchmean', 'sum' or 'none', got "
                         f"{reduction!r}")
    if reduction == "mean":
        warnings.warn(_KL_MEAN_WARNING, UserWarning, stacklevel=2)
    x = as_tensor(input)
    (t,) = _like_input("kl_div", x, target)
    B._broadcast_check("kl_div", x.shape, t.shape)
    if log_target:
        loss = B.exp(t) * (t - x)
    else:
        loss = XLogX()(t) - t * x
    if reduction == "batchmean":
        total = B.sum(loss)
        return total / x.shape[0] if x.ndim else total
    return _reduce(loss, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.soft_margin_loss``: log(1 + exp(-t x)), for targets t of +-1 that
    broadcast to the input's shape. Computed stably: a large -t x gives -t x where torch's
    log1p(exp(.)) overflows to inf."""
    _check_reduction("soft_margin_loss", size_average, reduce, reduction)
    x = as_tensor(input)
    (t,) = _like_input("soft_margin_loss", x, target)
    _broadcast_weight("soft_margin_loss", "target", t, x.shape)
    return _reduce(softplus(B.neg(x) * t, 1.0, np.inf), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.hinge_embedding_loss``: x where t = 1, max(0, margin - x) where t = -1
    (and, as in torch, the sum of both for any other target value)."""
    _check_reduction("hinge_embedding_loss", size_average, reduce, reduction)
    x = as_tensor(input)
    (t,) = _like_input("hinge_embedding_loss", x, target)
    B._broadcast_check("hinge_embedding_loss", x.shape, t.shape)
    hinge = B.clamp(margin - x, min=0.0)  # (at margin - x = 0 the gradient passes, as torch's)
    return _reduce(B.where(t.data != 1, hinge, 0.0) + B.where(t.data != -1, x, 0.0), reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.margin_ranking_loss``: max(0, -t (x1 - x2) + margin), for three inputs of
    one number of dimensions that broadcast together."""
    _check_reduction("margin_ranking_loss", size_average, reduce, reduction)
    x1 = as_tensor(input1)
    x2, t = _like_input("margin_ranking_loss", x1, input2, target)
    if not x1.ndim == x2.ndim == t.ndim:
        raise ValueError(f"margin_ranking_loss: all input tensors should have the same number "
                         f"of dimensions, got sizes input1: {x1.shape}, input2: {x2.shape}, "
                         f"target: {t.shape}")
    B._broadcast_check("margin_ranking_loss", x1.shape, x2.shape, t.shape)
    return _reduce(B.clamp(B.neg(t) * (x1 - x2) + margin, min=0.0), reduction)


_COSINE_EPS = 1e-12  # torch's, added to each squared norm


def cosine_embedding_loss(input1, input2, target, margin: float = 0, size_average=None,
                          reduce=None, reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.cosine_embedding_loss``: 1 - cos(x1, x2) where t = 1, max(0, cos - margin)
    where t = -1 (0 for other targets), for rows (N, D) with targets (N,) or vectors (D,) with a
    0-D target. The cosine is x1.x2 / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12)), as in torch."""
    _check_reduction("cosine_embedding_loss", size_average, reduce, reduction)
    a = as_tensor(input1)
    b, t = _like_input("cosine_embedding_loss", a, input2, target)
    if t.ndim > 1:
        raise ValueError(f"cosine_embedding_loss: 0D or 1D target tensor expected, multi-target "
                         f"not supported; got a target of shape {t.shape}")
    want = t.ndim + 1
    if a.ndim != want or b.ndim != want:
        raise ValueError(f"cosine_embedding_loss: {t.ndim}D target tensor expects {want}D input "
                         f"tensors, but found inputs with sizes {a.shape} and {b.shape}")
    d = t.ndim
    rows = B._broadcast_check("cosine_embedding_loss", a.shape, b.shape)[:d]
    B._broadcast_check("cosine_embedding_loss", rows, t.shape)
    dot = B.sum(a * b, d)
    sq1 = B.sum(a * a, d) + _COSINE_EPS
    sq2 = B.sum(b * b, d) + _COSINE_EPS
    cos = dot / B.sqrt(sq1 * sq2)
    loss = (B.where(t.data == 1, 1.0 - cos, 0.0)
            + B.where(t.data == -1, B.clamp(cos - margin, min=0.0), 0.0))
    return _reduce(loss, reduction)


class ClampedNoGrad(Function):
    """y = max(x, lo); gx = gy everywhere: the clamp changes the value only (torch clamps the
    variance of ``gaussian_nll_loss`` under no_grad). Linear in gy, so exact at every order."""

    saves_inputs = False

    def __init__(self, lo):
        self.lo = lo

    def forward(self, x):
        return backend.get_array_module(x).maximum(x, x.dtype.type(self.lo))

    def backward(self, gy):
        return gy


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.gaussian_nll_loss``: 0.5 (log v + (x - t)^2 / v) (+ 0.5 log(2 pi) when
    ``full``), with v = max(var, eps) whose gradient passes as if unclamped, as torch's.

    ``var`` is a number, or a tensor of the input's shape, of its shape without the last
    dimension, or of its shape with one dimension of size 1 (torch's rules). Negative variances
    raise a ValueError on the CPU; on the GPU that check would cost a host sync per call.
    """
    _check_reduction("gaussian_nll_loss", None, None, reduction)
    x = as_tensor(input)
    if _is_number(var):
        if var < 0:
            raise ValueError(f"gaussian_nll_loss: var has negative entry/entries (got {var})")
        v = Tensor(backend.get_array_module(x.data).full(x.shape, var, dtype=x.dtype))
        (t,) = _like_input("gaussian_nll_loss", x, target)
    else:
        t, v = _like_input("gaussian_nll_loss", x, target, var)
        if not backend.is_cupy_array(v.data) and v.size and bool((v.data < 0).any()):
            raise ValueError(f"gaussian_nll_loss: var has negative entry/entries (e.g. "
                             f"{v.data[v.data < 0].ravel()[0]})")
    if v.shape != x.shape:
        if x.ndim and v.shape == x.shape[:-1]:  # one variance per row: unsqueezed, as torch
            v = B.reshape(v, v.shape + (1,))
        elif not (v.ndim == x.ndim and sum(m for n, m in zip(x.shape, v.shape) if n != m) == 1):
            raise ValueError(f"gaussian_nll_loss: var is of incorrect size {v.shape} for input "
                             f"of shape {x.shape} (give the input's shape, that shape without "
                             "its last dimension, or with one dimension of size 1)")
    B._broadcast_check("gaussian_nll_loss", x.shape, t.shape, v.shape)
    v = ClampedNoGrad(eps)(v)
    d = x - t
    loss = (B.log(v) + d * d / v) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


class StirlingTerm(Function):
    """y = t log t - t + 0.5 log(2 pi t) where t > 1, else 0 (poisson_nll_loss's ``full``
    term, as torch masks it); gx = gy (log t + 0.5 / t) where t > 1. Elsewhere the masked
    gradient meets log t and 1 / t as torch's does: 0 for 0 < t <= 1, NaN for t <= 0."""

    def forward(self, t):
        xp = backend.get_array_module(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = t * xp.log(t) - t + 0.5 * xp.log(2 * math.pi * t)
        return xp.where(t <= 1, 0, y).astype(t.dtype, copy=False)

    def backward(self, gy):
        t = self.inputs[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return B.where(t.data <= 1, 0.0, gy) * (B.log(t) + 0.5 / t)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.poisson_nll_loss``: exp(x) - t x for a log-rate x (``log_input``), else
    x - t log(x + eps); ``full`` adds Stirling's t log t - t + 0.5 log(2 pi t) where t > 1."""
    _check_reduction("poisson_nll_loss", size_average, reduce, reduction)
    x = as_tensor(input)
    (t,) = _like_input("poisson_nll_loss", x, target)
    B._broadcast_check("poisson_nll_loss", x.shape, t.shape)
    loss = B.exp(x) - t * x if log_input else x - t * B.log(x + eps)
    if full:
        loss = loss + StirlingTerm()(t)
    return _reduce(loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.multilabel_soft_margin_loss``: -(t log sigmoid(x) + (1 - t) log
    sigmoid(-x)), times ``weight`` (broadcast), averaged over the last (class) dimension of
    the input; the reduction then runs over the samples."""
    _check_reduction("multilabel_soft_margin_loss", size_average, reduce, reduction)
    x = as_tensor(input)
    if x.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have a class dimension, got a "
                         "0-D tensor")
    (t,) = _like_input("multilabel_soft_margin_loss", x, target)
    B._broadcast_check("multilabel_soft_margin_loss", x.shape, t.shape)
    # -log sigmoid(x) = softplus(-x), without a threshold: exact for every x
    loss = t * softplus(B.neg(x), 1.0, np.inf) + (1.0 - t) * softplus(x, 1.0, np.inf)
    if weight is not None:
        (w,) = _like_input("multilabel_soft_margin_loss", x, weight)
        B._broadcast_check("multilabel_soft_margin_loss", loss.shape, w.shape)
        loss = loss * w
    class_dim = x.ndim - 1
    return _reduce(B.sum(loss, class_dim) / x.shape[class_dim], reduction)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,
                      size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.multi_margin_loss``: per sample, the sum over the classes j other than the
    target y of w[y] max(0, margin - x[y] + x[j])^p, divided by the number of classes; input
    (C,) or (N, C) (or 0-D, one class), integer targets () or (N,).

    At margin - x[y] + x[j] = 0 the term has no gradient, as in torch. Out-of-range targets
    raise an IndexError on the CPU. On the GPU they are not checked (that needs a host sync):
    such a target picks no class, so every class counts against x[y] = 0.
    """
    fn = "multi_margin_loss"
    _check_reduction(fn, size_average, reduce, reduction)
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"{fn}: only p == 1 and p == 2 supported, got p={p!r}")
    x = as_tensor(input)
    w = None
    if weight is not None:
        (w,) = _like_input(fn, x, weight)
        if w.ndim != 1:
            raise ValueError(f"{fn}: weight must be one-dimensional, got shape {w.shape}")
    if x.ndim > 2 or (x.ndim and not x.shape[-1]):
        raise ValueError(f"{fn}: expected a non-empty vector or matrix (with an optional 0-dim "
                         f"batch size) as input, got shape {x.shape}")
    n = x.shape[0] if x.ndim == 2 else 1
    c = x.shape[-1] if x.ndim else 1
    xp = backend.get_array_module(x.data)
    t = target.data if isinstance(target, Tensor) else target
    if not hasattr(t, "dtype"):
        t = xp.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must hold integer class indices, got dtype {t.dtype}")
    backend.check_same_device(x.data, t, what=fn)
    if t.ndim > 1 or t.size != n:
        raise ValueError(f"{fn}: target should be 0-D or 1-D with size equal to the number of "
                         f"input samples ({n}), got shape {t.shape} for input of shape "
                         f"{x.shape}")
    if w is not None and w.size != c:
        raise ValueError(f"{fn}: inconsistent weight size, expected {c} but got {w.shape}")
    # Range check on the host only: on the GPU it would force a sync inside training steps.
    if not backend.is_cupy_array(t) and t.size:
        bad = (t < 0) | (t >= c)
        if bad.any():
            raise IndexError(f"{fn}: target {int(t[bad].ravel()[0])} is out of range for {c} "
                             "classes")
    rows = B.reshape(x, (n, c))
    is_target = xp.reshape(t, (n, 1)) == xp.arange(c)
    x_target = B.sum(B.where(is_target, rows, 0.0), 1, keepdims=True)
    z = (margin - x_target) + rows
    h = z if p == 1 else z * z
    if w is not None:
        h = h * B.sum(B.where(is_target, B.reshape(w, (1, c)), 0.0), 1, keepdims=True)
    counted = (z.data > 0) & ~is_target
    loss = B.sum(B.where(counted, h, 0.0), 1) / c
    if t.ndim == 0:
        loss = B.reshape(loss, ())
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """PyTorch's ``F.triplet_margin_loss``: max(0, margin + d(a, p) - d(a, n)) with d torch's
    ``pairwise_distance`` (the p-norm of the difference + eps over the last dimension); with
    ``swap``, d(a, n) is replaced by d(p, n) where that is smaller."""
    fn = "triplet_margin_loss"
    _check_reduction(fn, size_average, reduce, reduction)
    if not margin > 0:
        raise ValueError(f"{fn}: margin must be greater than 0, got {margin}")
    a = as_tensor(anchor)
    pos, neg = _like_input(fn, a, positive, negative)
    if not a.ndim == pos.ndim == neg.ndim:
        raise ValueError(f"{fn}: the anchor, positive, and negative tensors are expected to have "
                         f"the same number of dimensions, but got: anchor {a.ndim}D, positive "
                         f"{pos.ndim}D, and negative {neg.ndim}D inputs")
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return _reduce(B.clamp(margin + d_pos - d_neg, min=0.0), reduction)
