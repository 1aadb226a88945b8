"""minigan: a from-scratch GAN engine on NumPy (CPU) and CuPy (GPU).

The core API mirrors PyTorch: ``minigan.tensor``, ``minigan.grad``, ``minigan.no_grad``,
``minigan.nn``, ``minigan.nn.functional`` and ``minigan.optim``, with the tensor factories
(``zeros``, ``arange``, ``randn_like``, ...) and the common ops (``cat``, ``stack``, ``where``,
``clamp``, ...) at the top level, as ``torch.*`` has them.
"""
from . import functional  # noqa: F401  (installs the Tensor operators)
from .autograd import (Function, Tensor, as_tensor, enable_grad, grad, is_grad_enabled,
                       no_grad, tensor)
from .backend import DeviceError, cuda_available, synchronize
from .creation import (arange, empty, empty_like, eye, full, full_like, linspace, ones,
                       ones_like, rand_like, randint, randn_like, zeros, zeros_like)
from .functional import bitwise_and, bitwise_not, bitwise_or, bitwise_xor
from .functional import (abs, add, amax, amin, argmax, argmin, broadcast_to, cat, clamp, clip,
                         clone, concat, div, exp, floor_divide, fmod, log, matmul, max, mean,
                         min, mul, permute, pow, promote_types, remainder, reshape, result_type,
                         sigmoid, sqrt, square, squeeze, stack, std, sub, sum, tanh, transpose,
                         true_divide, unsqueeze, var, where)
from .functional import flatten as _flatten_from
from .functional import pointwise as _pointwise, shape as _shape
from .functional.pointwise import *  # noqa: F401,F403
from .functional.shape import *  # noqa: F401,F403
from .random import manual_seed, rand, randn
from .serialization import load, save
from . import nn, optim  # noqa: E402,F401  (minigan.nn and minigan.optim, as torch.nn/optim)

__version__ = "0.1.0"


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """``torch.flatten``: from ``start_dim`` 0 by default (``nn.functional.flatten`` and
    ``nn.Flatten`` start at 1, as ``nn.Flatten`` does in PyTorch)."""
    return _flatten_from(input, start_dim, end_dim)


__all__ = [
    "Function", "Tensor", "as_tensor", "enable_grad", "grad", "is_grad_enabled", "no_grad",
    "tensor", "DeviceError", "cuda_available", "synchronize", "manual_seed", "rand", "randn",
    "save", "load",
    "arange", "empty", "empty_like", "eye", "full", "full_like", "linspace", "ones",
    "ones_like", "rand_like", "randint", "randn_like", "zeros", "zeros_like", "__version__",
    "abs", "add", "amax", "amin", "argmax", "argmin", "bitwise_and", "bitwise_not", "bitwise_or",
    "bitwise_xor", "broadcast_to", "cat", "clamp", "clip",
    "clone", "concat", "div", "exp", "flatten", "floor_divide", "fmod", "log", "matmul", "max",
    "mean", "min", "mul", "permute", "pow", "promote_types", "remainder", "reshape", "result_type",
    "sigmoid", "sqrt", "square", "squeeze", "stack", "std", "sub", "sum", "tanh", "transpose",
    "true_divide", "unsqueeze", "var", "where",
] + _pointwise.__all__ + _shape.__all__
