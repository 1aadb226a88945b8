"""minigan: a from-scratch GAN engine on NumPy (CPU) and CuPy (GPU).

The core API mirrors PyTorch: ``minigan.tensor``, ``minigan.grad``, ``minigan.no_grad``,
``minigan.nn``, ``minigan.nn.functional`` and ``minigan.optim``, with the tensor factories
(``zeros``, ``arange``, ``randn_like``, ...) and the common ops (``cat``, ``stack``, ``where``,
``clamp``, ...) at the top level, as ``torch.*`` has them.
"""
from . import functional  # noqa: F401  (installs the Tensor operators)
from .autograd import (Function, Tensor, as_tensor, enable_grad, grad, inference_mode,
                       is_grad_enabled, no_grad, set_grad_enabled, tensor)
from .backend import Device as device, DeviceError, cuda_available, synchronize
from .creation import (arange, empty, empty_like, eye, full, full_like, linspace, ones,
                       ones_like, rand_like, randint, randn_like, zeros, zeros_like)
from .functional import bitwise_and, bitwise_not, bitwise_or, bitwise_xor
from .functional import (eq, ge, greater, greater_equal, gt, le, less, less_equal, lt, ne,
                         not_equal)
from .functional import _top_log_softmax as log_softmax, _top_logsumexp as logsumexp
from .functional import _top_relu as relu, _top_softmax as softmax
from .functional import (abs, add, amax, amin, argmax, argmin, broadcast_to, cat, clamp, clip,
                         clone, concat, div, exp, floor_divide, fmod, log, matmul, max, mean,
                         min, mul, permute, pow, promote_types, remainder, reshape, result_type,
                         sigmoid, sqrt, square, squeeze, stack, std, sub, sum, tanh, transpose,
                         true_divide, unsqueeze, var, where)
from .functional import flatten as _flatten_from
from .functional import pointwise as _pointwise, shape as _shape
from .functional.pointwise import *  # noqa: F401,F403
from .functional.linalg import *  # noqa: F401,F403
from .functional import linalg as _linalg
from .functional.shape import *  # noqa: F401,F403
from .random import (Generator, bernoulli, get_rng_state, initial_seed, manual_seed,
                     multinomial, normal, rand, randn, randperm, seed, set_rng_state)
from .kernels.parallel import get_num_threads, set_num_threads
from .serialization import load, save
from . import cuda, nn, optim, utils  # noqa: E402,F401  (as torch.cuda, .nn, .optim, .utils)

__version__ = "0.1.0"

import numpy as _np  # noqa: E402

# torch's dtype names, as the NumPy dtypes minigan's tensors have (``x.dtype == minigan.float32``,
# ``zeros(3, dtype=minigan.long)``). Not in __all__: a star import would shadow float, int and
# bool. NumPy has no bfloat16, so neither has minigan.
float16 = half = _np.dtype("float16")
float32 = _np.dtype("float32")
float64 = double = _np.dtype("float64")
uint8 = _np.dtype("uint8")
int8 = _np.dtype("int8")
int16 = short = _np.dtype("int16")
int32 = _np.dtype("int32")
int64 = long = _np.dtype("int64")
globals().update({"float": float32, "int": int32, "bool": _np.dtype("bool")})


def from_numpy(ndarray) -> Tensor:
    """A tensor that shares the NumPy array's memory (``torch.from_numpy``): writes to one are
    seen by the other. The array's dtype is kept."""
    if not isinstance(ndarray, _np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy: unsupported dtype {ndarray.dtype}; minigan tensors hold "
                        "bool, integer and floating point values")
    return Tensor(ndarray)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    _need_tensor("is_floating_point", input)
    return input.dtype.kind == "f"


def numel(input) -> int:
    _need_tensor("numel", input)
    return _builtin_int(input.data.size)


def get_default_dtype():
    """The dtype of floating tensors made from Python floats: float32 (fixed in minigan)."""
    return float32


def _need_tensor(fn, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: expected a Tensor, got {type(x).__name__}")


_builtin_int = __builtins__["int"] if isinstance(__builtins__, dict) else __builtins__.int


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """``torch.flatten``: from ``start_dim`` 0 by default (``nn.functional.flatten`` and
    ``nn.Flatten`` start at 1, as ``nn.Flatten`` does in PyTorch)."""
    return _flatten_from(input, start_dim, end_dim)


__all__ = [
    "Function", "Tensor", "as_tensor", "enable_grad", "grad", "is_grad_enabled", "no_grad",
    "tensor", "DeviceError", "cuda_available", "synchronize", "manual_seed", "rand", "randn",
    "save", "load", "device", "set_grad_enabled", "inference_mode", "Generator", "seed",
    "initial_seed", "get_rng_state", "set_rng_state", "randperm", "normal", "bernoulli",
    "multinomial", "get_num_threads", "set_num_threads", "from_numpy", "is_tensor", "is_floating_point", "numel",
    "get_default_dtype", "eq", "ne", "not_equal", "lt", "less", "le", "less_equal", "gt",
    "greater", "ge", "greater_equal", "logsumexp", "softmax", "log_softmax", "relu",
    "arange", "empty", "empty_like", "eye", "full", "full_like", "linspace", "ones",
    "ones_like", "rand_like", "randint", "randn_like", "zeros", "zeros_like", "__version__",
    "abs", "add", "amax", "amin", "argmax", "argmin", "bitwise_and", "bitwise_not", "bitwise_or",
    "bitwise_xor", "broadcast_to", "cat", "clamp", "clip",
    "clone", "concat", "div", "exp", "flatten", "floor_divide", "fmod", "log", "matmul", "max",
    "mean", "min", "mul", "permute", "pow", "promote_types", "remainder", "reshape", "result_type",
    "sigmoid", "sqrt", "square", "squeeze", "stack", "std", "sub", "sum", "tanh", "transpose",
    "true_divide", "unsqueeze", "var", "where",
] + _pointwise.__all__ + _shape.__all__ + _linalg.__all__
