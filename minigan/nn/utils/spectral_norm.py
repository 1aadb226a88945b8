"""Spectral normalisation (Miyato et al. 2018), as ``torch.nn.utils.spectral_norm``.

``spectral_norm(module)`` replaces the parameter ``weight`` by ``weight_orig`` and two buffers
``weight_u``/``weight_v``; before each forward (a forward pre-hook) it sets

    module.weight = weight_orig / sigma,   sigma = u^T W v,

where W is weight_orig as a matrix (dimension ``dim`` first). In training mode ``u`` and ``v``
first take ``n_power_iterations`` power-iteration steps, in place, without gradient; sigma is
then differentiated with u and v held constant, as in PyTorch. State-dict keys are PyTorch's.
"""
from __future__ import annotations

from ... import backend
from ... import functional as F
from ...autograd import Tensor
from ...random import default_generator
from ..module import Module, Parameter


def _normalize(a, eps: float):
    """a / max(||a||, eps), on arrays (PyTorch's F.normalize for a vector)."""
    xp = backend.get_array_module(a)
    return a / xp.maximum(xp.linalg.norm(a), eps)


def _matrix_array(w, dim: int):
    xp = backend.get_array_module(w)
    if dim != 0:
        w = xp.moveaxis(w, dim, 0)
    return w.reshape(w.shape[0], -1)


def spectral_normalized(weight, u, v, dim: int = 0) -> Tensor:
    """weight / (u^T W v), differentiable in ``weight``; u and v are constants."""
    w = weight if isinstance(weight, Tensor) else Tensor(weight)
    mat = w
    if dim != 0:
        mat = F.permute(mat, (dim,) + tuple(d for d in range(w.ndim) if d != dim))
    mat = F.reshape(mat, (mat.shape[0], -1))
    u = u.data if isinstance(u, Tensor) else u
    v = v.data if isinstance(v, Tensor) else v
    sigma = F.sum(Tensor(u) * F.matmul(mat, Tensor(v)))
    return w / sigma


class SpectralNorm:
    """The forward pre-hook that ``spectral_norm`` registers."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim = name, dim
        self.n_power_iterations, self.eps = n_power_iterations, eps

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = module._parameters[self.name + "_orig"]
        u = module._buffers[self.name + "_u"]
        v = module._buffers[self.name + "_v"]
        if do_power_iteration:
            mat = _matrix_array(weight.data, self.dim)
            for _ in range(self.n_power_iterations):
                v[...] = _normalize(mat.T @ u, self.eps)
                u[...] = _normalize(mat @ v, self.eps)
        # copies: the graph must keep this step's u and v while the buffers move on
        return spectral_normalized(weight, u.copy(), v.copy(), self.dim)

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.data.copy()))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> "SpectralNorm":
        for hook, _ in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same "
                                   f"parameter {name}")
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter "
                             f"{name!r}")
        if not -weight.ndim <= dim < weight.ndim:
            raise ValueError(f"spectral_norm: dim {dim} is out of range for {name} of shape "
                             f"{weight.shape}")
        fn = SpectralNorm(name, n_power_iterations, dim % weight.ndim, eps)
        h, w = _matrix_array(weight.data, fn.dim).shape
        gen = default_generator(weight.device)
        u = _normalize(gen.normal((h,), dtype=weight.dtype), eps)
        v = _normalize(gen.normal((w,), dtype=weight.dtype), eps)
        delattr(module, name)
        module.register_parameter(name + "_orig", weight)
        # a plain attribute until the first forward recomputes it, as in PyTorch
        setattr(module, name, Tensor(weight.data))
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Apply spectral normalisation to ``module``'s parameter ``name``; returns the module.

    ``dim`` defaults to 0, or 1 for ConvTranspose2d (whose weight is (in, out, kh, kw)).
    """
    if dim is None:
        from ..layers import ConvTranspose2d
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo ``spectral_norm``: ``name`` becomes a plain parameter holding weight_orig / sigma
    (with the current u and v)."""
    for key, (hook, _) in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(f"spectral_norm of {name!r} not found in {module}")
