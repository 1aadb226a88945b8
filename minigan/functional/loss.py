"""Losses, written so that their derivatives of every order are exact.

Signatures are PyTorch's, including the deprecated ``size_average``/``reduce`` positions (so
that positional arguments line up); those two only accept None: use ``reduction``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, as_tensor, is_grad_enabled
from ..kernels import elementwise as K
from . import basic as B
from .activation import sigmoid, softplus
from .pointwise import _cast

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


class BinaryCrossEntropy(Function):
    """l = -(t log x + (1 - t) log(1 - x)) with each log clamped at -100 (PyTorch's rule);
    gx = gy (x - t) / max(x (1 - x), 1e-12) (PyTorch's formula), gt = gy (log(1-x) - log x)."""

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
            d = x * (1.0 - x)
            d = B.where(d.data > _BCE_EPS, d, _BCE_EPS)
            gx = gy * (x - t) / d
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
        # l = (1 - t) x + (1 + (pw - 1) t) softplus(-x)
        pw = _broadcast_weight("binary_cross_entropy_with_logits", "pos_weight",
                               _float_like(pos_weight, x), x.shape)
        loss = (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * softplus(B.neg(x))
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
    xp = backend.get_array_module(x.data)
    m = xp.max(x.data, axis=axes, keepdims=True) if x.ndim else x.data
    m = xp.where(xp.isfinite(m), m, 0)
    y = B.log(B.sum(B.exp(x - Tensor(m)), axes, keepdims=True)) + Tensor(m)
    return y if keepdim else B.reshape(y, tuple(s for i, s in enumerate(y.shape)
                                                 if i not in axes))


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
    return x - logsumexp(x, _softmax_dim("log_softmax", x, dim, _stacklevel), keepdim=True)


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
        if reduction == "mean":
            return B.sum(loss) * (n_classes / max(x.size, 1))
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
