"""Differentiable operations on Tensors (re-exported as ``minigan.nn.functional``).

This module is also the one place where Python operators are installed on ``Tensor``.
"""
from .. import backend
from ..autograd import Tensor, as_tensor
from .activation import dropout, leaky_relu, relu, sigmoid, softplus, tanh
from .basic import (abs, add, astype, broadcast_to, cat, concat, div, exp, flatten, getitem,
                    linear, log, matmul, mean, mul, neg, permute, pow, reshape, sqrt, square,
                    stack, sub, sum, sum_to, to_device, transpose, var, where)
from .conv import (adaptive_avg_pool2d_1, avg_pool2d, conv2d, conv2d_grad_weight,
                   conv_transpose2d, max_pool2d, upsample_nearest2d)
from .loss import (binary_cross_entropy_with_logits, cross_entropy, log_softmax, logsumexp,
                   mse_loss, one_hot, softmax)
from .norm import batch_norm

__all__ = [
    "abs", "adaptive_avg_pool2d_1", "add", "astype", "avg_pool2d", "batch_norm",
    "binary_cross_entropy_with_logits", "broadcast_to", "cat", "concat", "conv2d",
    "conv2d_grad_weight", "conv_transpose2d", "cross_entropy", "div", "dropout", "exp",
    "flatten", "getitem", "leaky_relu", "linear", "log", "log_softmax", "logsumexp", "matmul",
    "max_pool2d", "mean", "mse_loss", "mul", "neg", "one_hot", "permute", "pow", "relu",
    "reshape", "sigmoid", "softmax", "softplus", "sqrt", "square", "stack", "sub", "sum",
    "sum_to", "tanh", "to_device", "transpose", "upsample_nearest2d", "var", "where",
]


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
    T.__abs__ = lambda a: abs(a)
    # comparisons give constant boolean tensors (no gradient), as in PyTorch
    for name, op in (("__lt__", "less"), ("__le__", "less_equal"), ("__gt__", "greater"),
                     ("__ge__", "greater_equal")):
        setattr(T, name, _comparison(op))
    T.sum = lambda a, axis=None, keepdims=False: sum(a, axis, keepdims)
    T.mean = lambda a, axis=None, keepdims=False: mean(a, axis, keepdims)
    T.var = lambda a, axis=None, keepdims=False, unbiased=False: var(a, axis, keepdims, unbiased)
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


def _const_like(value, like: Tensor) -> Tensor:
    return as_tensor(value, like)


def _comparison(ufunc_name):
    def compare(a, b):
        other = b.data if isinstance(b, Tensor) else b
        xp = backend.get_array_module(a.data)
        return Tensor(getattr(xp, ufunc_name)(a.data, other))
    return compare


_install_operators()
