"""Run a 1-D CUDA kernel's source on the CPU, for testing the index arithmetic of kernels that
minigan generates, on machines without a GPU.

The source is compiled by the host C++ compiler with the CUDA keywords defined away, and a
launcher calls the kernel once per (block, thread), in order. That is exact for kernels whose
threads neither share memory nor synchronise (each writes its own elements), such as the
multi-tensor Adam; it says nothing about timing, occupancy or the CUDA compiler, which
``compile_with_nvcc`` checks separately where ``nvcc`` is installed.
"""
from __future__ import annotations

import ctypes
import hashlib
import pathlib
import shutil
import subprocess

import numpy as np

_PRELUDE = r"""
#include <cmath>
#include <cstdint>
namespace mg_emu { struct dim3 { unsigned int x, y, z; }; }
static mg_emu::dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
using std::sqrt;
"""

_CTYPES = {"float": np.float32, "double": np.float64, "int": np.int32,
           "long long": np.int64, "unsigned int": np.uint32}


def have_cxx() -> bool:
    return shutil.which("g++") is not None


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
    scalar arguments Python or NumPy numbers.
    """

    def __init__(self, code: str, name: str, signature, tmp_path: pathlib.Path):
        self.signature = list(signature)
        casts, ptr_i, sc_i = [], 0, 0
        for kind, ctype in self.signature:
            if kind == "ptr":
                casts.append(f"({ctype}*)ptrs[{ptr_i}]")
                ptr_i += 1
            else:
                casts.append(f"({ctype})scalars[{sc_i}]")
                sc_i += 1
        launcher = f"""
extern "C" void mg_emu_launch(unsigned int grid, unsigned int block, void** ptrs,
                              const double* scalars) {{
    gridDim = {{grid, 1u, 1u}};
    blockDim = {{block, 1u, 1u}};
    for (unsigned int b = 0; b < grid; ++b) {{
        for (unsigned int t = 0; t < block; ++t) {{
            blockIdx = {{b, 0u, 0u}};
            threadIdx = {{t, 0u, 0u}};
            {name}({", ".join(casts)});
        }}
    }}
}}
"""
        text = _PRELUDE + code + launcher
        tag = hashlib.sha1(text.encode()).hexdigest()[:16]
        src, lib = tmp_path / f"emu_{tag}.cpp", tmp_path / f"emu_{tag}.so"
        src.write_text(text)
        res = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(lib), str(src)],
                             capture_output=True, text=True, timeout=300, check=False)
        if res.returncode:
            raise AssertionError(f"g++ failed on the emulated kernel:\n{res.stderr}")
        self._lib = ctypes.CDLL(str(lib))
        self._launch = self._lib.mg_emu_launch
        self._launch.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p),
                                 ctypes.POINTER(ctypes.c_double)]
        self._launch.restype = None
        self.n_ptrs, self.n_scalars = ptr_i, sc_i

    def __call__(self, grid, block, args) -> None:
        (g,), (b,) = tuple(grid), tuple(block)
        if len(args) != len(self.signature):
            raise TypeError(f"{len(args)} arguments for a kernel of {len(self.signature)}")
        ptrs, scalars = [], []
        for (kind, ctype), a in zip(self.signature, args):
            if kind == "ptr":
                if not (isinstance(a, np.ndarray) and a.dtype == _CTYPES[ctype]
                        and a.flags.c_contiguous):
                    raise TypeError(f"pointer argument must be a C-contiguous {ctype} array")
                ptrs.append(a.ctypes.data)
            else:
                scalars.append(float(a))
        p_arr = (ctypes.c_void_p * max(len(ptrs), 1))(*ptrs)
        s_arr = (ctypes.c_double * max(len(scalars), 1))(*scalars)
        self._launch(int(g), int(b), p_arr, s_arr)
