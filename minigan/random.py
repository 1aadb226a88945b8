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


def _checked(fn: str, shape, dtype) -> tuple:
    """The size as a tuple of ints >= 0 and a float dtype, or an error naming what is wrong
    (NumPy would read -1 as 'infer this size', and 2.7 as 2)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{fn}: the size must be ints, got {shape!r}")
        if s < 0:
            raise ValueError(f"{fn}: negative dimension in size {shape!r}")
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"{fn}: samples are floats; dtype {np.dtype(dtype)} is not a floating "
                        "point dtype")
    return tuple(int(s) for s in shape)


def randn(*shape, device="cpu", dtype=np.float32, generator: Generator | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples (PyTorch's ``torch.randn``)."""
    shape = _checked("randn", shape, dtype)
    gen = generator or default_generator(device)
    return Tensor(gen.normal(shape, dtype=dtype), requires_grad=requires_grad)


def rand(*shape, device="cpu", dtype=np.float32, generator: Generator | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) (PyTorch's ``torch.rand``)."""
    shape = _checked("rand", shape, dtype)
    gen = generator or default_generator(device)
    return Tensor(gen.uniform(shape, dtype=dtype), requires_grad=requires_grad)
