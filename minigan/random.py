"""Seeded random numbers for both devices, with a state that fits in a checkpoint.

Each device has a default counter-based generator (``minigan.kernels.random.Generator``): its
whole state is ``{"seed", "offset"}``, so saving and restoring it resumes a stream exactly, on
the CPU and on the GPU alike.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor
from .kernels.random import Generator

__all__ = ["Generator", "manual_seed", "default_generator", "get_rng_state", "set_rng_state",
           "randn", "rand"]

_defaults: dict[str, Generator] = {}
_base_seed: list = [None]


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().entropy % (2 ** 63))


def manual_seed(seed: int) -> None:
    """Seed the default generator of every device (devices get distinct streams)."""
    _base_seed[0] = int(seed)
    _defaults.clear()


def default_generator(device: str = "cpu") -> Generator:
    device = backend.normalize_device(device)
    gen = _defaults.get(device)
    if gen is None:
        seed = _base_seed[0] if _base_seed[0] is not None else _fresh_seed()
        # a distinct stream per device from one user seed
        gen = _defaults[device] = Generator(seed + (1 if device == "cuda" else 0), device)
    return gen


def get_rng_state() -> dict:
    """The default generators' states, JSON-serialisable."""
    return {dev: gen.state_dict() for dev, gen in _defaults.items()}


def set_rng_state(state: dict) -> None:
    for dev, st in state.items():
        default_generator(dev).load_state_dict(st)


def randn(*shape, device="cpu", dtype=np.float32, generator: Generator | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples (PyTorch's ``torch.randn``)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    gen = generator or default_generator(device)
    return Tensor(gen.normal(shape, dtype=dtype), requires_grad=requires_grad)


def rand(*shape, device="cpu", dtype=np.float32, generator: Generator | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) (PyTorch's ``torch.rand``)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    gen = generator or default_generator(device)
    return Tensor(gen.uniform(shape, dtype=dtype), requires_grad=requires_grad)
