"""Shared fixtures: every backend-aware test runs on NumPy and, where a GPU is present, on CuPy.

With ``MINIGAN_EMULATE_GPU=1`` and no GPU, the "cuda" cases run on the CPU instead, through the
CuPy stand-in of ``tests/kernels/emulated_cupy.py`` (each GPU kernel's own CUDA source, compiled
by g++): ``MINIGAN_EMULATE_GPU=1 pytest -m gpu`` checks the GPU code paths on any machine.
"""
import os

import numpy as np
import pytest

from minigan import backend

EMULATE_GPU = os.environ.get("MINIGAN_EMULATE_GPU") == "1"


def _require_cuda(request):
    if backend.cuda_available():
        return
    if EMULATE_GPU:
        from tests.kernels import emulated_cupy
        if not emulated_cupy.have_cxx():
            pytest.skip("MINIGAN_EMULATE_GPU=1 needs g++ to compile the kernels")
        emulated_cupy.install(request.getfixturevalue("monkeypatch"))
        request.addfinalizer(emulated_cupy.clear_kernel_caches)
        return
    pytest.skip("CuPy or a CUDA GPU is missing")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """The device name, "cpu" or "cuda"; the cuda case skips without CuPy and a GPU."""
    if request.param == "cuda":
        _require_cuda(request)
    return request.param


@pytest.fixture
def xp(device):
    """The array module of the `device` fixture: numpy or cupy."""
    return backend.xp_for(device)


@pytest.fixture
def cuda(request):
    """For CPU-vs-GPU parity tests: skips without CuPy and a GPU, else returns the cupy module."""
    _require_cuda(request)
    return backend.cupy


@pytest.fixture
def emulated_gpu(monkeypatch):
    """The emulated CuPy (tests/kernels/emulated_cupy.py) as minigan's GPU, whether or not a
    real one is present; skips without g++. Returns the emulated cupy module."""
    from tests.kernels import emulated_cupy
    if not emulated_cupy.have_cxx():
        pytest.skip("no C++ compiler (g++) to emulate the GPU with")
    mod = emulated_cupy.install(monkeypatch)
    yield mod
    emulated_cupy.clear_kernel_caches()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
