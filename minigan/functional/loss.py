"""Losses, written so that their derivatives of every order are exact."""
from __future__ import annotations

from .. import backend
from ..autograd import Function, Tensor, as_tensor, is_grad_enabled
from ..kernels import elementwise as K
from . import basic as B
from .activation import sigmoid


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return B.mean(loss)
    if reduction == "sum":
        return B.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


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


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """PyTorch's ``F.binary_cross_entropy_with_logits``, in the stable softplus form."""
    x = as_tensor(input)
    t = as_tensor(target, x)
    if t.shape != x.shape:
        if B.np.broadcast_shapes(t.shape, x.shape) != x.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {t.shape} does not "
                             f"match input shape {x.shape}")
        t = B.broadcast_to(t, x.shape)
    if pos_weight is not None:
        # l = (1 - t) x + (1 + (pw - 1) t) softplus(-x)
        from .activation import softplus
        pw = as_tensor(pos_weight, x)
        loss = (1.0 - t) * x + (1.0 + (pw - 1.0) * t) * softplus(B.neg(x))
    else:
        loss = BCEWithLogits()(x, t)
    if weight is not None:
        loss = loss * as_tensor(weight, x)
    return _reduce(loss, reduction)


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    x = as_tensor(input)
    t = as_tensor(target, x)
    B._broadcast_check("mse_loss", x.shape, t.shape)
    d = x - t
    return _reduce(d * d, reduction)


def logsumexp(x, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) with the max subtracted as a constant (it cancels in every derivative)."""
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    m = xp.max(x.data, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    y = B.log(B.sum(B.exp(x - Tensor(m)), axis, keepdims=True)) + Tensor(m)
    return y if keepdims else B.reshape(y, tuple(s for i, s in enumerate(y.shape)
                                                  if i != axis % x.ndim))


def log_softmax(x, dim: int = -1) -> Tensor:
    x = as_tensor(x)
    return x - logsumexp(x, dim, keepdims=True)


def softmax(x, dim: int = -1) -> Tensor:
    return B.exp(log_softmax(x, dim))


def one_hot(labels, num_classes: int, dtype="float32") -> Tensor:
    """Labels (int array or tensor) to a constant one-hot tensor on the labels' device."""
    data = labels.data if isinstance(labels, Tensor) else labels
    xp = backend.get_array_module(data)
    data = xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got {data.dtype}")
    # Range check on the host only: on the GPU it would force a sync inside training steps
    # (GPU labels come from the loader, which validated them once at load time).
    if xp is backend.np and data.size and (int(data.min()) < 0
                                          or int(data.max()) >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got values from "
                         f"{int(data.min())} to {int(data.max())}")
    eye = xp.eye(num_classes, dtype=dtype)
    return Tensor(eye[data])


def cross_entropy(input, target, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits (N, C) against integer class labels (N,)."""
    x = as_tensor(input)
    if x.ndim != 2:
        raise ValueError(f"cross_entropy: expected logits of shape (N, C), got {x.shape}")
    t = target.data if isinstance(target, Tensor) else target
    if t.shape != (x.shape[0],):
        raise ValueError(f"cross_entropy: target shape {t.shape} does not match logits "
                         f"shape {x.shape}")
    oh = one_hot(t, x.shape[1], dtype=x.dtype)
    backend.check_same_device(x.data, oh.data, what="cross_entropy")
    nll = B.neg(B.sum(oh * log_softmax(x, 1), 1))
    return _reduce(nll, reduction)
