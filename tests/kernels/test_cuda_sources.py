"""Every CUDA source that minigan hands to CuPy's ``RawKernel``, compiled by nvcc for Hopper
(sm_90) on the CPU: a typo or a type error in a GPU kernel fails CI, which has no GPU, instead
of the next session that gets one. (The GPU tests, ``pytest -m gpu``, run the kernels.)

The sources are collected by calling each kernel builder with ``backend.raw_kernel`` replaced
by a recorder, for every dtype and index type the builders take."""
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from minigan import backend
from minigan.kernels import batchnorm as KB
from minigan.kernels import conv as KC
from minigan.kernels import optim as KO
from minigan.kernels import pool as KP
from tests.kernels.cuda_emulation import compile_with_nvcc

DTYPES = (np.float32, np.float64)
INDEX_CTYPES = ("int", "long long")


def _collect_sources(monkeypatch) -> list:
    """(kernel name, CUDA source) of every RawKernel the package builds."""
    seen = []

    def record(code, name, options=()):
        seen.append((name, code))
        return name

    monkeypatch.setattr(backend, "raw_kernel", record)
    for dt in DTYPES:
        for which in ("stats", "grad_stats"):
            KB._bn_raw_kernel.__wrapped__(which, dt)
        for ictype in INDEX_CTYPES:
            for which in ("im2col", "col2im"):
                KC._conv_kernel.__wrapped__(which, dt, ictype)
            for which in ("maxpool_fwd", "maxpool_bwd", "avgpool_fwd", "avgpool_bwd"):
                KP._pool_kernel.__wrapped__(which, dt, ictype)
        KO._adam_multi_kernel.__wrapped__(np.dtype(dt).name, (7, 300, 100_000))
    return seen


def test_every_kernel_name_is_defined_in_its_source(monkeypatch):
    sources = _collect_sources(monkeypatch)
    assert len(sources) == 2 * 2 + 2 * 2 * 2 + 2 * 2 * 4 + 2  # bn, conv, pool, adam
    for name, code in sources:
        assert re.search(r'extern "C" __global__ void ' + re.escape(name) + r"\(", code), name


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_every_raw_kernel_source_compiles_for_sm90(monkeypatch, tmp_path):
    codes = sorted({code for _, code in _collect_sources(monkeypatch)})  # kernels share them
    dirs = []
    for i in range(len(codes)):
        d = tmp_path / str(i)
        d.mkdir()
        dirs.append(d)
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(compile_with_nvcc, codes, dirs))
    assert len(codes) == 2 + 4 + 4 + 2  # bn and adam per dtype; conv and pool per index type too
    for report in reports:
        kernels = re.findall(r"Used (\d+) registers", report)
        spills = [int(v) for v in re.findall(r"(\d+) bytes spill stores", report)]
        assert kernels and spills and not any(spills), report


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_nvcc_check_fails_on_a_broken_source(tmp_path):
    """The check above can fail: a source with a type error does not compile."""
    code, _, _ = KO.adam_multi_source("float", [5])
    with pytest.raises(AssertionError, match="nvcc failed"):
        compile_with_nvcc(code.replace("const T decay", "const Q decay"), tmp_path)
