"""Shared fixtures: every backend-aware test runs on NumPy and, where a GPU is present, on CuPy."""
import numpy as np
import pytest

from minigan import backend


def _require_cuda():
    if not backend.cuda_available():
        pytest.skip("CuPy or a CUDA GPU is missing")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """The device name, "cpu" or "cuda"; the cuda case skips without CuPy and a GPU."""
    if request.param == "cuda":
        _require_cuda()
    return request.param


@pytest.fixture
def xp(device):
    """The array module of the `device` fixture: numpy or cupy."""
    return backend.xp_for(device)


@pytest.fixture
def cuda():
    """For CPU-vs-GPU parity tests: skips without CuPy and a GPU, else returns the cupy module."""
    _require_cuda()
    return backend.cupy


@pytest.fixture
def rng():
    return np.random.default_rng(0)
