"""Helpers for checking minigan's generated CUDA sources without a GPU.

* ``compile_with_nvcc``: compiles a source for Hopper (sm_90) where ``nvcc`` is installed,
  and returns ptxas's report (registers, spills).
* ``EmulatedKernel``: calls a kernel on plain NumPy arrays with an explicit signature, for
  tests that drive a GPU path's host code with NumPy standing in for CuPy. It runs through the
  emulated CuPy's ``RawKernel`` (``emulated_cupy``: the source compiled by g++, one (block,
  thread) at a time); it says nothing about timing, occupancy or the CUDA compiler.
"""
from __future__ import annotations

import pathlib
import subprocess

import numpy as np

from tests.kernels import emulated_cupy

_CTYPES = {"float": np.float32, "double": np.float64, "int": np.int32,
           "long long": np.int64, "unsigned int": np.uint32}


def have_cxx() -> bool:
    return emulated_cupy.have_cxx()


def compile_with_nvcc(code: str, tmp_path: pathlib.Path, arch: str = "sm_90") -> str:
    """Compile ``code`` to a cubin for ``arch`` (no GPU needed); returns ptxas's report."""
    src = tmp_path / "kernel.cu"
    src.write_text(code)
    res = subprocess.run(["nvcc", f"-arch={arch}", "-cubin", "-Xptxas", "-v", "-o",
                          str(tmp_path / "kernel.cubin"), str(src)],
                         capture_output=True, text=True, timeout=300, check=False)
    if res.returncode:
        raise AssertionError(f"nvcc failed on the kernel source:\n{res.stderr}\n{code}")
    return res.stderr


class EmulatedKernel:
    """``kernel(grid, block, args)`` like a CuPy ``RawKernel``, on NumPy arrays.

    ``signature`` lists the kernel's parameters in order, each ``("ptr", ctype)`` or
    ``("scalar", ctype)``; pointer arguments are NumPy arrays of that ctype (C-contiguous),
    scalar arguments Python or NumPy numbers, cast to the ctype. The kernel runs through the
    emulated CuPy's ``RawKernel`` (``emulated_cupy``), on views of the arrays' own memory.
    """

    def __init__(self, code: str, name: str, signature):
        self.signature = list(signature)
        self._kernel = emulated_cupy.RawKernel(code, name)

    def __call__(self, grid, block, args) -> None:
        if len(args) != len(self.signature):
            raise TypeError(f"{len(args)} arguments for a kernel of {len(self.signature)}")
        conv = []
        for (kind, ctype), a in zip(self.signature, args):
            if kind == "ptr":
                if not (isinstance(a, np.ndarray) and a.dtype == _CTYPES[ctype]
                        and a.flags.c_contiguous):
                    raise TypeError(f"pointer argument must be a C-contiguous {ctype} array")
                conv.append(a.view(emulated_cupy.ndarray))  # the same memory, as a device array
            else:
                conv.append(_CTYPES[ctype](a))
        self._kernel(tuple(grid), tuple(block), tuple(conv))
