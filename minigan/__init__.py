"""minigan: a from-scratch GAN engine on NumPy (CPU) and CuPy (GPU).

The core API mirrors PyTorch: ``minigan.tensor``, ``minigan.grad``, ``minigan.no_grad``,
``minigan.nn``, ``minigan.nn.functional`` and ``minigan.optim``.
"""
from . import functional  # noqa: F401  (installs the Tensor operators)
from .autograd import (Function, Tensor, as_tensor, enable_grad, grad, is_grad_enabled,
                       no_grad, tensor)
from .backend import DeviceError, cuda_available, synchronize
from .random import manual_seed, rand, randn

__version__ = "0.1.0"

__all__ = ["Function", "Tensor", "as_tensor", "enable_grad", "grad", "is_grad_enabled",
           "no_grad", "tensor", "DeviceError", "cuda_available", "synchronize", "manual_seed",
           "rand", "randn", "__version__"]
