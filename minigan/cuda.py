"""``minigan.cuda``: the parts of ``torch.cuda`` that scripts reach for, on minigan's one GPU.

``is_available()`` and ``device_count()`` answer without a GPU (False and 0). The others need
one and raise ``minigan.DeviceError`` with the install hint where there is none, except the
seeding calls, which, as in PyTorch, only record the seed for the GPU generator made later.
Memory figures are those of CuPy's default memory pool, which holds minigan's GPU arrays:
``memory_allocated`` is what live arrays use, ``memory_reserved`` what the pool holds.
"""
from __future__ import annotations

from . import backend
from . import random as _random

__all__ = ["is_available", "device_count", "current_device", "get_device_name",
           "synchronize", "manual_seed", "manual_seed_all", "seed", "seed_all",
           "initial_seed", "memory_allocated", "memory_reserved", "empty_cache"]


def is_available() -> bool:
    """Whether CuPy imports and sees a GPU."""
    return backend.cuda_available()


def device_count() -> int:
    """1 with a GPU (minigan drives one), else 0."""
    return 1 if backend.cuda_available() else 0


def _need_gpu(what: str, device=None) -> None:
    if device is not None:
        d = backend.Device(device)
        if d.type != "cuda":
            raise ValueError(f"cuda.{what}: expected a CUDA device, got {str(d)!r}")
    if not backend.cuda_available():
        raise backend.DeviceError(f"cuda.{what}: " + backend._install_hint())


def current_device() -> int:
    """The GPU's index: always 0."""
    _need_gpu("current_device")
    return 0


def get_device_name(device=None) -> str:
    _need_gpu("get_device_name", device)
    return backend.gpu_name()


def synchronize(device=None) -> None:
    """Wait until the GPU has finished the work queued on minigan's stream."""
    _need_gpu("synchronize", device)
    backend.synchronize("cuda")


def manual_seed(seed: int) -> None:
    """Seed the GPU's default generator (only); the CPU's keeps its stream."""
    _random.seed_device("cuda", seed)


manual_seed_all = manual_seed  # one GPU


def seed() -> None:
    """Seed the GPU's default generator from fresh entropy."""
    _random.seed_device("cuda", None)


seed_all = seed


def initial_seed() -> int:
    """The seed the GPU's default generator was made with."""
    return _random.default_generator("cuda").seed


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory that live arrays use."""
    _need_gpu("memory_allocated", device)
    return backend.default_pool_bytes()[0]


def memory_reserved(device=None) -> int:
    """Bytes of GPU memory that the memory pool holds (in use or cached for reuse)."""
    _need_gpu("memory_reserved", device)
    return backend.default_pool_bytes()[1]


def empty_cache() -> None:
    """Return the pool's cached, unused GPU memory to the driver (no-op without a GPU)."""
    if backend.cuda_available():
        backend.free_cached_blocks()
