"""Differentiable operations on Tensors (re-exported as ``minigan.nn.functional``).

This module is also the one place where Python operators are installed on ``Tensor``.
"""
import importlib

import numpy as np

from .. import backend
from ..autograd import Tensor
from .activation import (celu, dropout, elu, gelu, glu, hardshrink, hardsigmoid, hardswish,
                         hardtanh, leaky_relu, logsigmoid, mish, prelu, relu, relu6, rrelu,
                         selu, sigmoid, silu, softmin, softplus, softshrink, softsign, tanh,
                         tanhshrink, threshold)
from .basic import _binary, bitwise_and, bitwise_not, bitwise_or, bitwise_xor
from .basic import (abs, add, amax, amin, argmax, argmin, astype, broadcast_to, cat, clamp, clip,
                    clone, concat, div, embedding, exp, expand, flatten, floor_divide, fmod,
                    getitem, linear, log, matmul, max_, mean, min_, mul, neg, permute, pow,
                    remainder, reshape, sqrt, square, squeeze, stack, std, sub, sum, sum_to,
                    to_device, transpose, true_divide, unsqueeze, var, where)
from .promotion import promote_types, result_type
from .conv import (adaptive_avg_pool2d_1, avg_pool2d, conv2d, conv2d_grad_weight,
                   conv_transpose2d, max_pool2d, upsample_nearest2d)
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                   huber_loss, l1_loss, log_softmax, logsumexp, mse_loss, nll_loss, one_hot,
                   smooth_l1_loss, softmax)
from .loss import (cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss, kl_div,
                   margin_ranking_loss, multi_margin_loss, multilabel_soft_margin_loss,
                   poisson_nll_loss, soft_margin_loss, triplet_margin_loss)
from .norm import batch_norm
from .normalization import (cosine_similarity, group_norm, instance_norm, layer_norm, normalize,
                            pad, pairwise_distance, pixel_shuffle, pixel_unshuffle)
from . import pointwise as _pointwise, shape as _shape
from .pointwise import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .resize import interpolate
from .conv_1d import conv1d, conv_transpose1d
from .dropouts import alpha_dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout
from .attention import multi_head_attention_forward, scaled_dot_product_attention
from .folding import bilinear, fold, unfold
from .pooling import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,
                      adaptive_max_pool2d, avg_pool1d, lp_pool1d, lp_pool2d, max_pool1d,
                      max_pool2d_with_indices, max_unpool2d)
from .extra import (gumbel_softmax, local_response_norm, rms_norm, upsample_bilinear,
                    upsample_nearest)

# ``minigan.functional.norm`` stays the batch-norm module (torch.nn.functional has no norm;
# ``minigan.norm`` is torch.norm), so the star import's function is not kept under that name
norm = importlib.import_module(".norm", __name__)

max = max_  # noqa: A001 - PyTorch's names
min = min_  # noqa: A001

__all__ = [
    "abs", "adaptive_avg_pool2d_1", "add", "amax", "amin", "argmax", "argmin", "astype",
    "avg_pool2d", "batch_norm", "bitwise_and", "bitwise_not", "bitwise_or", "bitwise_xor",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "cosine_embedding_loss", "gaussian_nll_loss", "hinge_embedding_loss", "kl_div",
    "margin_ranking_loss", "multi_margin_loss", "multilabel_soft_margin_loss",
    "poisson_nll_loss", "soft_margin_loss", "triplet_margin_loss",
    "broadcast_to", "cat", "clamp", "clip", "clone", "concat", "conv2d", "conv2d_grad_weight",
    "conv_transpose2d", "cross_entropy", "div", "dropout", "embedding", "exp", "expand",
    "flatten", "floor_divide", "fmod", "getitem", "huber_loss", "interpolate", "l1_loss",
    "leaky_relu", "linear", "log", "log_softmax", "logsumexp", "matmul", "max", "max_pool2d",
    "mean", "min", "mse_loss", "mul", "neg", "nll_loss", "one_hot", "permute", "pow",
    "promote_types", "relu", "remainder", "reshape", "result_type", "sigmoid", "smooth_l1_loss",
    "softmax", "softplus", "sqrt", "square", "squeeze", "stack", "std", "sub", "sum", "sum_to",
    "tanh", "to_device", "transpose", "true_divide", "unsqueeze", "upsample_nearest2d", "var",
    "where",
] + [
    "cosine_similarity", "group_norm", "instance_norm", "layer_norm", "normalize", "pad",
    "pairwise_distance", "pixel_shuffle", "pixel_unshuffle",
] + [
    "celu", "elu", "gelu", "glu", "hardshrink", "hardsigmoid", "hardswish", "hardtanh",
    "logsigmoid", "mish", "prelu", "relu6", "rrelu", "selu", "silu", "softmin", "softshrink",
    "softsign", "tanhshrink", "threshold",
] + [
    "conv1d", "conv_transpose1d", "gumbel_softmax", "local_response_norm", "rms_norm",
    "upsample_bilinear", "upsample_nearest",
    "alpha_dropout", "dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "avg_pool1d", "lp_pool1d", "lp_pool2d", "max_pool1d", "max_pool2d_with_indices",
    "max_unpool2d", "multi_head_attention_forward", "scaled_dot_product_attention",
    "bilinear", "fold", "unfold",
] + [n for n in _pointwise.__all__ if n != "norm"] + _shape.__all__


def _refuse_recorded(a, name: str, method: bool) -> bool:
    """Whether a gradient is being recorded for ``a`` (then an in-place write is refused: for a
    leaf that requires grad always, as torch does; for a tensor inside a recorded graph only
    in the method form, ``x.add_(y)``, whose caller keeps the old name)."""
    from ..autograd import is_grad_enabled
    if not (a.requires_grad and is_grad_enabled()):
        return False
    if a.creator is None:
        raise RuntimeError(f"a leaf Tensor that requires grad is used in an in-place "
                           f"operation ({name}); use no_grad() for an update of its "
                           "values, or x = x + y for a new tensor")
    if method:
        raise RuntimeError(f"{name}: in-place operations on a tensor inside a recorded graph "
                           "are not supported (its history would no longer match its values); "
                           "use the out-of-place form, e.g. x = x.add(y)")
    return True


def _records_other(args, kwargs) -> bool:
    """Whether an operand other than the target requires grad, with grad mode on: written into
    the target in place, its gradient would be lost (torch records the target instead)."""
    from ..autograd import is_grad_enabled
    if not is_grad_enabled():
        return False
    for v in (*args, *kwargs.values()):  # (a loop: this module's any is torch's)
        if isinstance(v, Tensor) and v.requires_grad:
            return True
    return False


def _write(a, result, name: str):
    """Write ``result`` (a Tensor or array) into ``a``'s array; ``a`` must keep its shape and
    dtype kind. Graphs that saved ``a`` then refuse to backward through its old values."""
    from ..autograd import mark_modified
    d = a.data
    if not getattr(d.flags, "writeable", True):
        raise RuntimeError(f"in-place {name}: the tensor is a read-only view (an expand or a "
                           "broadcast, whose elements share memory); clone() it first")
    r = result.data if isinstance(result, Tensor) else result
    if r.shape != d.shape:
        raise RuntimeError(f"in-place {name}: the result has shape {tuple(r.shape)}, which "
                           f"does not fit the tensor's {tuple(d.shape)}")
    # torch's rule: integers narrow (and wrap) in place, but a float result is not written
    # into an integer tensor, nor anything but bools into a bool one
    if ((r.dtype.kind == "f" and d.dtype.kind != "f")
            or (d.dtype.kind == "b" and r.dtype.kind != "b")):
        raise RuntimeError(f"in-place {name}: a result of dtype {r.dtype} cannot be "
                           f"written into a tensor of dtype {d.dtype}")
    d[...] = r
    mark_modified(a)
    return a


def _in_place(op, name: str):
    """``x op= y`` as torch reads it. Where no gradient is being recorded for x (it needs none,
    or under ``no_grad``, as a hand-written optimizer step runs), x's array is written in
    place: every name and view of x sees the new values, the result must keep x's shape and
    dtype kind, and graphs that saved x refuse to backward through the old value. A leaf that
    requires grad is refused with grad mode on, as torch does. A tensor inside a recorded graph
    (not a leaf) gets the out-of-place result instead: the same values, under the same name."""
    from ..autograd import no_grad

    def apply(a, b):
        if _refuse_recorded(a, name, method=False) or _records_other((b,), {}):
            return op(a, b)  # (a recorded op: x's name now holds the new node)
        with no_grad():
            out = op(a, b)
        return _write(a, out, name)
    apply.__name__ = name
    return apply


def _in_place_method(op, name: str):
    """The method ``x.name(...)`` (torch's trailing-underscore form): ``op(x, ...)`` written
    into x's array. Refused while a gradient is recorded for x (see ``_refuse_recorded``)."""
    from ..autograd import no_grad

    def method(a, *args, **kwargs):
        _refuse_recorded(a, name, method=True)
        if _records_other(args, kwargs):
            raise RuntimeError(f"{name}: an operand requires grad but the tensor written into "
                               "does not, so the gradient would be lost; use the out-of-place "
                               "form, e.g. acc = acc.add(x), which records it")
        with no_grad():
            out = op(a, *args, **kwargs)
        return _write(a, out, name)
    method.__name__ = name
    return method


def _filled(a, value):
    """``value`` (a number or a 0-d tensor on a's device) broadcast to a's shape and dtype."""
    xp = backend.get_array_module(a.data)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"fill_: the value must be a number or a 0-d tensor, got a "
                               f"tensor of shape {tuple(value.shape)}")
        backend.check_same_device(a.data, value.data, what="fill_")
        return xp.broadcast_to(value.data.astype(a.dtype), a.shape)
    if not isinstance(value, (int, float, np.number, np.bool_)):
        raise TypeError(f"fill_: the value must be a real number, got {value!r}")
    return xp.full(a.shape, value, dtype=a.dtype)


def _copied(a, src):
    """``src`` broadcast to a's shape and cast to its dtype, on a's device (``copy_`` moves
    data between devices when asked to, as torch's does)."""
    src = src.data if isinstance(src, Tensor) else src
    if not (isinstance(src, np.ndarray) or backend.is_cupy_array(src)):
        src = np.asarray(src)
    src = backend.to_device(src, a.device)
    try:
        out = backend.get_array_module(src).broadcast_to(src, a.shape)
    except ValueError:
        raise RuntimeError(f"copy_: the source of shape {tuple(src.shape)} cannot be broadcast "
                           f"to the tensor's shape {tuple(a.shape)}") from None
    return out.astype(a.dtype, copy=False)


def _detach_(a):
    """Make ``a`` a leaf that requires no grad, in place (torch's ``detach_``)."""
    a.creator = None
    a.requires_grad = False
    a.generation = 0
    return a


def _random_fill(kind: str):
    def fill(a, *args, generator=None, **kwargs):
        from ..nn import init
        _refuse_recorded(a, kind + "_", method=True)
        return getattr(init, kind + "_")(a, *args, generator=generator, **kwargs)
    fill.__name__ = kind + "_"
    return fill


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
    T.__rpow__ = lambda a, b: pow(b, a)  # (b a number: promoted as torch's wrapped numbers)
    T.__floordiv__ = lambda a, b: floor_divide(a, b)
    T.__rfloordiv__ = lambda a, b: floor_divide(b, a)
    T.__mod__ = lambda a, b: remainder(a, b)
    T.__rmod__ = lambda a, b: remainder(b, a)
    T.__and__ = lambda a, b: bitwise_and(a, b)
    T.__rand__ = lambda a, b: bitwise_and(b, a)
    T.__or__ = lambda a, b: bitwise_or(a, b)
    T.__ror__ = lambda a, b: bitwise_or(b, a)
    T.__xor__ = lambda a, b: bitwise_xor(a, b)
    T.__rxor__ = lambda a, b: bitwise_xor(b, a)
    T.__invert__ = lambda a: bitwise_not(a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__getitem__ = lambda a, idx: getitem(a, idx)
    T.__setitem__ = _setitem
    for name, op in (("__iadd__", add), ("__isub__", sub), ("__imul__", mul),
                     ("__itruediv__", div), ("__ipow__", pow), ("__ifloordiv__", floor_divide),
                     ("__imod__", remainder), ("__iand__", bitwise_and),
                     ("__ior__", bitwise_or), ("__ixor__", bitwise_xor)):
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
    T.add = lambda a, other, *, alpha=1: add(a, other, alpha=alpha)
    T.sub = lambda a, other, *, alpha=1: sub(a, other, alpha=alpha)
    T.subtract = T.sub
    T.mul = lambda a, other: mul(a, other)
    T.multiply = T.mul
    T.div = lambda a, other, *, rounding_mode=None: div(a, other, rounding_mode=rounding_mode)
    T.divide = T.div
    T.true_divide = lambda a, other: div(a, other)
    T.floor_divide = lambda a, other: floor_divide(a, other)
    T.remainder = lambda a, other: remainder(a, other)
    T.fmod = lambda a, other: fmod(a, other)
    T.bitwise_and = lambda a, other: bitwise_and(a, other)
    T.bitwise_or = lambda a, other: bitwise_or(a, other)
    T.bitwise_xor = lambda a, other: bitwise_xor(a, other)
    T.bitwise_not = lambda a: bitwise_not(a)
    for name, op in (
            ("add_", lambda a, b, *, alpha=1: add(a, b, alpha=alpha)),
            ("sub_", lambda a, b, *, alpha=1: sub(a, b, alpha=alpha)),
            ("mul_", mul), ("div_", lambda a, b, *, rounding_mode=None: div(
                a, b, rounding_mode=rounding_mode)),
            ("pow_", pow), ("remainder_", remainder), ("fmod_", fmod),
            ("floor_divide_", floor_divide), ("bitwise_and_", bitwise_and),
            ("bitwise_or_", bitwise_or), ("bitwise_xor_", bitwise_xor),
            ("bitwise_not_", bitwise_not), ("logical_not_", _pointwise.logical_not),
            ("clamp_", lambda a, min=None, max=None: clamp(a, min, max)),
            ("neg_", neg), ("abs_", abs), ("exp_", exp), ("log_", log), ("sqrt_", sqrt),
            ("tanh_", tanh), ("sigmoid_", sigmoid), ("relu_", relu),
            ("zero_", lambda a: _filled(a, 0)), ("fill_", _filled), ("copy_", _copied),
            ("masked_fill_", _shape.masked_fill), ("scatter_", _shape.scatter),
            ("scatter_add_", _shape.scatter_add)):
        setattr(T, name, _in_place_method(op, name))
    T.clip_ = T.clamp_
    T.detach_ = _detach_
    for name in COMPARISONS:
        fn = globals()[name]
        setattr(T, name, fn)
        # x.lt_(y): the comparison's 0/1 written into x's dtype
        setattr(T, name + "_", _in_place_method(
            lambda a, b, fn=fn: fn(a, b).to(dtype=a.dtype), name + "_"))
    T.logsumexp = lambda a, dim, keepdim=False: logsumexp(a, dim, keepdim)
    T.softmax = lambda a, dim, dtype=None: softmax(a, dim, dtype=dtype)
    T.log_softmax = lambda a, dim, dtype=None: log_softmax(a, dim, dtype=dtype)
    T.normal_ = _random_fill("normal")
    T.uniform_ = _random_fill("uniform")
    for name, fill in (("bernoulli_", "fill_bernoulli"), ("random_", "fill_random"),
                       ("exponential_", "fill_exponential"), ("log_normal_", "fill_log_normal"),
                       ("cauchy_", "fill_cauchy"), ("geometric_", "fill_geometric")):
        setattr(T, name, _sampling_fill(name, fill))
    T.bernoulli = _bernoulli_method
    T.multinomial = lambda a, num_samples, replacement=False, *, generator=None: \
        _random().multinomial(a, num_samples, replacement, generator=generator)
    T.int = lambda a: astype(a, "int32")
    T.short = lambda a: astype(a, "int16")
    T.char = lambda a: astype(a, "int8")
    T.byte = lambda a: astype(a, "uint8")
    T.bool = lambda a: astype(a, "bool")
    T.type = _type
    T.element_size = lambda a: a.data.dtype.itemsize
    T.nelement = lambda a: int(a.data.size)
    T.is_floating_point = lambda a: a.data.dtype.kind == "f"
    T.is_complex = lambda a: a.data.dtype.kind == "c"
    T.is_signed = lambda a: a.data.dtype.kind in "fic"
    T.stride = _stride
    T.data_ptr = lambda a: int(a.data.ctypes.data if isinstance(a.data, np.ndarray)
                               else a.data.data.ptr)
    T.grad_fn = property(lambda a: a.creator)
    for mod in (_pointwise, _shape):
        for name, fn in mod.TENSOR_METHODS.items():
            setattr(T, name, fn)
    from . import linalg
    for name in ("mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger", "addmm", "addmv",
                 "addr", "baddbmm", "addbmm", "kron", "cross"):
        setattr(T, name, getattr(linalg, name))
    for name in ("addmm", "addmv", "addr", "baddbmm", "addbmm"):
        setattr(T, name + "_", _in_place_method(getattr(linalg, name), name + "_"))
    # torch's in-place forms of the value-changing methods (x.cos_(), x.lerp_(y, w), ...)
    for name in ("acos", "arccos", "arcsin", "arctan2", "arctan", "asin", "atan2", "atan",
                 "ceil", "cos", "cosh", "cumprod", "cumsum", "divide", "erf", "erfc", "erfinv",
                 "exp2", "expm1", "fix", "floor", "frac", "lerp", "log10", "log1p", "log2",
                 "logical_and", "logical_or", "logical_xor", "multiply", "nan_to_num",
                 "reciprocal", "round", "rsqrt", "sgn", "sign", "sin", "sinh", "square",
                 "subtract", "tan", "tril", "triu", "true_divide", "trunc",
                 "index_add", "index_copy", "index_fill", "index_put", "clamp_min", "clamp_max",
                 "addcmul", "addcdiv", "hypot", "xlogy", "sinc", "deg2rad", "rad2deg",
                 "copysign", "heaviside", "logit"):
        setattr(T, name + "_", _in_place_method(getattr(T, name), name + "_"))
    T.float_power_ = _float_power_
    # ... and of the shape-changing ones, which make x a view of its own data
    for name in ("squeeze", "unsqueeze", "t", "transpose", "swapaxes", "swapdims"):
        setattr(T, name + "_", _reshaped_in_place(getattr(T, name), name + "_"))


def _setitem(a, index, value) -> None:
    """``x[index] = value``, as torch's: the values are written into x's array in place (every
    view of it sees them) with torch's reading of the index (``getitem``'s), value broadcast to
    the selection and cast to x's dtype. As for the other in-place writes, x must not be
    recorded for a gradient (a leaf that requires grad needs ``no_grad()``; a tensor inside a
    graph is refused), and a value that requires grad is refused where its gradient would be
    lost."""
    from ..autograd import is_grad_enabled, mark_modified
    from . import basic as B
    if a.requires_grad and a.creator is not None and is_grad_enabled():
        raise RuntimeError("x[index] = value: x is inside a recorded graph, whose history would "
                           "no longer match its values; build the result out of place "
                           "(minigan.where(mask, value, x), x.index_put(...)) instead")
    _refuse_recorded(a, "x[index] = value", method=True)
    d = a.data
    if isinstance(value, Tensor):
        if value.requires_grad and is_grad_enabled():
            raise RuntimeError("x[index] = value: value requires grad but x does not, so its "
                               "gradient would be lost; build the result out of place (e.g. "
                               "minigan.where, or index_put) or write under no_grad()")
        v = value.data
        if v.__class__ is not d.__class__:
            backend.check_same_device(d, v, what="x[index] = value")
    elif isinstance(value, (bool, int, float, np.generic)):
        v = value
    else:
        v = backend.get_array_module(d).asarray(value)  # a list or a host array: on x's device
    if not getattr(d.flags, "writeable", True):
        raise RuntimeError("x[index] = value: the tensor is a read-only view (an expand or a "
                           "broadcast, whose elements share memory); clone() it first")
    if index.__class__ is list and B._list_is_tuple(index):
        index = tuple(index)
    index = B._device_index(index, a)  # (tensors unwrapped; index arrays on x's device)
    steps = B._torch_steps(index, a) if isinstance(index, tuple) else None
    if steps is None:
        try:
            d[index] = v
        except ValueError as e:  # (CuPy's word for index arrays that do not broadcast, too)
            err = B.index_broadcast_error(e, d, index)
            if err is None:
                raise
            raise err from e
    else:  # torch's order of the selected elements: write through their flat positions
        xp = backend.get_array_module(d)
        pos = xp.arange(d.size).reshape(d.shape)
        for step in steps:
            pos = B.take_index(pos, step)
        d[xp.unravel_index(pos, d.shape)] = xp.broadcast_to(xp.asarray(v), pos.shape)
    mark_modified(a)


def _float_power_(a, exponent):
    """``x.float_power_(e)``: as torch, only on a float64 tensor (the result is float64)."""
    if a.dtype != np.float64:
        raise RuntimeError(f"float_power_: the result is float64, which cannot be written into "
                           f"a tensor of dtype {a.dtype}")
    return _in_place_method(_pointwise.float_power, "float_power_")(a, exponent)


def _reshaped_in_place(method, name: str):
    def reshaped(a, *args, **kwargs):
        _refuse_recorded(a, name, method=True)
        from ..autograd import no_grad
        from ..autograd import mark_modified
        with no_grad():
            a.data = method(a, *args, **kwargs).data  # (a view of the same values)
        mark_modified(a)  # a graph that saved x would read the new shape: it must refuse
        return a
    reshaped.__name__ = name
    return reshaped


def _top_softmax(input, dim, *, dtype=None):
    """``torch.softmax`` (``dim`` required, ``dtype`` keyword-only)."""
    return softmax(input, dim, dtype=dtype)


def _top_log_softmax(input, dim, *, dtype=None):
    """``torch.log_softmax``."""
    return log_softmax(input, dim, dtype=dtype)


def _top_logsumexp(input, dim, keepdim: bool = False):
    """``torch.logsumexp`` (``dim`` required: an int or a tuple of ints)."""
    return logsumexp(input, dim, keepdim)


def _top_relu(input):
    """``torch.relu``."""
    return relu(input)


for _f, _n in ((_top_softmax, "softmax"), (_top_log_softmax, "log_softmax"),
               (_top_logsumexp, "logsumexp"), (_top_relu, "relu")):
    _f.__name__ = _f.__qualname__ = _n


def _random():
    from .. import random
    return random


def _sampling_fill(name: str, fill: str):
    def method(a, *args, generator=None, **kwargs):
        _refuse_recorded(a, name, method=True)
        return getattr(_random(), fill)(a, *args, generator=generator, **kwargs)
    method.__name__ = name
    return method


def _bernoulli_method(a, p=None, *, generator=None):
    """``x.bernoulli()``: 0/1 samples with probabilities x; ``x.bernoulli(p)``: with the
    probability p (a number or a tensor) for every element, of x's dtype."""
    if p is None or not isinstance(p, Tensor):
        return _random().bernoulli(a, p, generator=generator)
    out = a.detach().clone() if a.dtype.kind == "f" else a.to(dtype="float32")
    return _random().fill_bernoulli(out, p, generator=generator)


# torch's legacy type names, by dtype
_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}
_TYPE_DTYPES = {v: k for k, v in _TYPE_NAMES.items()}


def _type(a, dtype=None, non_blocking: bool = False):
    """``x.type()``: the type's name ("minigan.FloatTensor", "minigan.cuda.FloatTensor");
    ``x.type(dtype)``: x as that dtype (a dtype, or such a name, torch's spelling included)."""
    if dtype is None:
        kind = _TYPE_NAMES.get(a.dtype.name, a.dtype.name)
        return f"minigan.{'cuda.' if backend.is_cupy_array(a.data) else ''}{kind}"
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        parts = dtype.split(".")
        if parts[-1] not in _TYPE_DTYPES or parts[0] not in ("minigan", "torch"):
            raise TypeError(f"type(): unknown tensor type {dtype!r}")
        device = "cuda" if "cuda" in parts[1:-1] else "cpu"
        return a.to(device, _TYPE_DTYPES[parts[-1]])
    return astype(a, dtype)


def _stride(a, dim=None):
    """The strides in elements (as torch counts them, not NumPy's bytes)."""
    item = a.data.dtype.itemsize
    strides = tuple(s // item for s in a.data.strides)
    if dim is None:
        return strides
    nd = a.ndim
    if nd == 0 or not -nd <= dim < nd:
        raise IndexError(f"stride({dim}): dimension out of range for a tensor of shape "
                         f"{a.shape}")
    return strides[dim]


def _t(a: Tensor) -> Tensor:
    if a.ndim > 2:
        raise ValueError(f"t(): expects a tensor with at most 2 dimensions, got shape {a.shape}")
    return transpose(a, 0, 1) if a.ndim == 2 else a


def _comparison(ufunc_name):
    def compare(a, b):
        if b is None:  # t == None is False (and != is True), by identity, as in PyTorch
            return NotImplemented
        mine = a.data
        if isinstance(b, Tensor):
            other = b.data
            if other.__class__ is not mine.__class__:
                backend.check_same_device(mine, other, what=_COMPARE_NAMES[ufunc_name])
        else:
            other = b
        if not (isinstance(b, Tensor) and other.dtype == mine.dtype):
            # torch's promotion (a float32 tensor == 0.1 compares float32 values; a uint8 one
            # < -1 compares with -1 as uint8), not NumPy's
            from ..autograd import no_grad
            with no_grad():
                ta, tb = _binary(a, b)
            mine, other = ta.data, tb.data
        xp = backend.get_array_module(mine)
        out = getattr(xp, ufunc_name)(mine, other)
        return Tensor(np.asarray(out) if isinstance(out, np.generic) else out)
    return compare


# torch's comparison functions (boolean results, no gradient), by NumPy's ufunc names
_COMPARE_NAMES = {"equal": "eq", "not_equal": "ne", "less": "lt", "less_equal": "le",
                  "greater": "gt", "greater_equal": "ge"}


def _compare_function(ufunc_name: str):
    op = _comparison(ufunc_name)
    name = _COMPARE_NAMES[ufunc_name]

    def fn(input, other):
        if not isinstance(input, Tensor):
            if not isinstance(other, Tensor):
                raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__} and "
                                f"{type(other).__name__}")
            # a number first: the mirrored comparison of the tensor
            mirror = {"less": "greater", "greater": "less", "less_equal": "greater_equal",
                      "greater_equal": "less_equal"}.get(ufunc_name, ufunc_name)
            return _comparison(mirror)(other, input)
        return op(input, other)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``torch.{name}``: the elementwise comparison, a bool tensor (other "
                  "a tensor that broadcasts, or a number).")
    return fn


eq = _compare_function("equal")
ne = not_equal = _compare_function("not_equal")
lt = less = _compare_function("less")
le = less_equal = _compare_function("less_equal")
gt = greater = _compare_function("greater")
ge = greater_equal = _compare_function("greater_equal")
COMPARISONS = ("eq", "ne", "not_equal", "lt", "less", "le", "less_equal", "gt", "greater",
               "ge", "greater_equal")


_install_operators()
