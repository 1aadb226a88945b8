"""Differentiable operations on Tensors (re-exported as ``minigan.nn.functional``).

This module is also the one place where Python operators are installed on ``Tensor``.
"""
import numpy as np

from .. import backend
from ..autograd import Tensor, as_tensor
from .activation import dropout, leaky_relu, relu, sigmoid, softplus, tanh
from .basic import (abs, add, amax, amin, argmax, argmin, astype, broadcast_to, cat, clamp, clip,
                    clone, concat, div, embedding, exp, expand, flatten, getitem, linear, log,
                    matmul, max_, mean, min_, mul, neg, permute, pow, reshape, sqrt, square,
                    squeeze, stack, std, sub, sum, sum_to, to_device, transpose, unsqueeze, var,
                    where)
from .conv import (adaptive_avg_pool2d_1, avg_pool2d, conv2d, conv2d_grad_weight,
                   conv_transpose2d, max_pool2d, upsample_nearest2d)
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                   huber_loss, l1_loss, log_softmax, logsumexp, mse_loss, nll_loss, one_hot,
                   smooth_l1_loss, softmax)
from .norm import batch_norm
from .resize import interpolate

max = max_  # noqa: A001 - PyTorch's names
min = min_  # noqa: A001

__all__ = [
    "abs", "adaptive_avg_pool2d_1", "add", "amax", "amin", "argmax", "argmin", "astype",
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "broadcast_to", "cat", "clamp", "clip", "clone", "concat", "conv2d", "conv2d_grad_weight",
    "conv_transpose2d", "cross_entropy", "div", "dropout", "embedding", "exp", "expand",
    "flatten", "getitem", "huber_loss", "interpolate", "l1_loss", "leaky_relu", "linear",
    "log", "log_softmax", "logsumexp", "matmul", "max", "max_pool2d", "mean", "min",
    "mse_loss", "mul", "neg", "nll_loss", "one_hot", "permute", "pow", "relu", "reshape",
    "sigmoid", "smooth_l1_loss", "softmax", "softplus", "sqrt", "square", "squeeze", "stack",
    "std", "sub", "sum", "sum_to", "tanh", "to_device", "transpose", "unsqueeze",
    "upsample_nearest2d", "var", "where",
]


def _in_place(op, name: str):
    """``x op= y`` as torch reads it. Where no gradient is being recorded for x (it needs none,
    or under ``no_grad``, as a hand-written optimizer step runs), x's array is written in
    place: every name and view of x sees the new values, the result must keep x's shape and
    dtype kind, and graphs that saved x refuse to backward through the old value. A leaf that
    requires grad is refused with grad mode on, as torch does. A tensor inside a recorded graph
    (not a leaf) gets the out-of-place result instead: the same values, under the same name."""
    from ..autograd import is_grad_enabled, mark_modified, no_grad

    def apply(a, b):
        recording = a.requires_grad and is_grad_enabled()
        if recording and a.creator is None:
            raise RuntimeError(f"a leaf Tensor that requires grad is used in an in-place "
                               f"operation ({name}); use no_grad() for an update of its "
                               "values, or x = x + y for a new tensor")
        if recording:
            return op(a, b)  # (a recorded op: x's name now holds the new node)
        with no_grad():
            out = op(a, b)
        d, r = a.data, out.data
        if r.shape != d.shape:
            raise RuntimeError(f"in-place {name}: the result has shape {tuple(r.shape)}, which "
                               f"does not fit the tensor's {tuple(d.shape)}")
        if not np.can_cast(r.dtype, d.dtype, casting="same_kind"):
            raise RuntimeError(f"in-place {name}: a result of dtype {r.dtype} cannot be "
                               f"written into a tensor of dtype {d.dtype}")
        d[...] = r
        mark_modified(a)
        return a
    apply.__name__ = name
    return apply


def _iterate(a):
    """Iteration over the first dimension, as torch; a 0-d tensor is refused (Python would
    otherwise fall back to indexing and see an empty sequence)."""
    if a.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (a[i] for i in range(a.shape[0]))


def _install_operators() -> None:
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: sub(b, a)
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(b, a)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pos__ = lambda a: a
    T.__pow__ = lambda a, b: pow(a, b)
    T.__rpow__ = lambda a, b: pow(_const_like(b, a), a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__getitem__ = lambda a, idx: getitem(a, idx)
    for name, op in (("__iadd__", add), ("__isub__", sub), ("__imul__", mul),
                     ("__itruediv__", div), ("__ipow__", pow)):
        setattr(T, name, _in_place(op, name))
    T.__iter__ = _iterate
    T.__abs__ = lambda a: abs(a)
    # comparisons give constant boolean tensors (no gradient), as in PyTorch; == and != too
    # (the graph's bookkeeping keys tensors by id, and __hash__ stays the identity's)
    for name, op in (("__lt__", "less"), ("__le__", "less_equal"), ("__gt__", "greater"),
                     ("__ge__", "greater_equal"), ("__eq__", "equal"),
                     ("__ne__", "not_equal")):
        setattr(T, name, _comparison(op))
    T.__hash__ = object.__hash__
    T.sum = lambda a, axis=None, keepdims=False, **kw: sum(a, axis, keepdims, **kw)
    T.mean = lambda a, axis=None, keepdims=False, **kw: mean(a, axis, keepdims, **kw)
    T.var = lambda a, axis=None, unbiased=None, keepdims=False, **kw: var(
        a, axis, unbiased, keepdims, **kw)
    T.std = lambda a, axis=None, unbiased=None, keepdims=False, **kw: std(
        a, axis, unbiased, keepdims, **kw)
    T.amax = lambda a, axis=None, keepdims=False, **kw: amax(a, axis, keepdims, **kw)
    T.amin = lambda a, axis=None, keepdims=False, **kw: amin(a, axis, keepdims, **kw)
    T.max = lambda a, dim=None, keepdim=False, **kw: max_(a, dim, keepdim, **kw)
    T.min = lambda a, dim=None, keepdim=False, **kw: min_(a, dim, keepdim, **kw)
    T.argmax = lambda a, axis=None, keepdims=False, **kw: argmax(a, axis, keepdims, **kw)
    T.argmin = lambda a, axis=None, keepdims=False, **kw: argmin(a, axis, keepdims, **kw)
    T.clamp = lambda a, min=None, max=None: clamp(a, min, max)  # noqa: A006
    T.clip = T.clamp
    T.clone = lambda a: clone(a)
    T.unsqueeze = lambda a, dim: unsqueeze(a, dim)
    T.squeeze = lambda a, dim=None: squeeze(a, dim)
    T.expand = lambda a, *sizes: expand(a, *sizes)
    T.abs = lambda a: abs(a)
    T.neg = lambda a: neg(a)
    T.t = lambda a: _t(a)
    T.float = lambda a: astype(a, "float32")
    T.double = lambda a: astype(a, "float64")
    T.half = lambda a: astype(a, "float16")
    T.long = lambda a: astype(a, "int64")
    T.reshape = lambda a, *shape: reshape(a, *shape)
    T.view = T.reshape
    T.flatten = lambda a, start_dim=0, end_dim=-1: flatten(a, start_dim, end_dim)
    T.permute = lambda a, *axes: permute(a, *axes)
    T.transpose = lambda a, dim0=-2, dim1=-1: transpose(a, dim0, dim1)
    T.T = property(lambda a: permute(a, tuple(reversed(range(a.ndim)))))
    T.exp = lambda a: exp(a)
    T.log = lambda a: log(a)
    T.sqrt = lambda a: sqrt(a)
    T.tanh = lambda a: tanh(a)
    T.sigmoid = lambda a: sigmoid(a)
    T.relu = lambda a: relu(a)
    T.pow = lambda a, e: pow(a, e)
    T.matmul = lambda a, b: matmul(a, b)
    T.broadcast_to = lambda a, shape: broadcast_to(a, shape)
    T.sum_to = lambda a, shape: sum_to(a, shape)
    T.astype = lambda a, dtype: astype(a, dtype)


def _t(a: Tensor) -> Tensor:
    if a.ndim > 2:
        raise ValueError(f"t(): expects a tensor with at most 2 dimensions, got shape {a.shape}")
    return transpose(a, 0, 1) if a.ndim == 2 else a


def _const_like(value, like: Tensor) -> Tensor:
    return as_tensor(value, like)


def _comparison(ufunc_name):
    def compare(a, b):
        if b is None:  # t == None is False (and != is True), by identity, as in PyTorch
            return NotImplemented
        other = b.data if isinstance(b, Tensor) else b
        xp = backend.get_array_module(a.data)
        out = getattr(xp, ufunc_name)(a.data, other)
        return Tensor(np.asarray(out) if isinstance(out, np.generic) else out)
    return compare


_install_operators()
