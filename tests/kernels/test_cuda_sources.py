"""Every CUDA source that minigan hands to CuPy's ``RawKernel``, compiled by nvcc for Hopper
(sm_90) on the CPU: a typo or a type error in a GPU kernel fails CI, which has no GPU, instead
of the next session that gets one. (The GPU tests, ``pytest -m gpu``, run the kernels.)

The sources are collected by calling each kernel builder with ``backend.raw_kernel`` replaced
by a recorder, for every dtype and index type the builders take. The conv and pool kernels,
which are all gather kernels, also run on the CPU through the emulated CuPy's ``RawKernel``
(``cuda_emulation.EmulatedKernel``) against the NumPy versions."""
import itertools
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from minigan import backend
from minigan.kernels import batchnorm as KB
from minigan.kernels import conv as KC
from minigan.kernels import elementwise as KE
from minigan.kernels import gemm as KG
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
            for which in ("im2col", "im2col_tanh", "col2im"):
                KC._conv_kernel.__wrapped__(which, dt, ictype)
            for which in ("maxpool_fwd", "maxpool_bwd", "avgpool_fwd", "avgpool_bwd"):
                KP._pool_kernel.__wrapped__(which, dt, ictype)
        KO._adam_multi_kernel.__wrapped__(np.dtype(dt).name, (7, 300, 100_000))
        for centered, momentum in itertools.product((False, True), repeat=2):
            KO._rmsprop_multi_kernel.__wrapped__(np.dtype(dt).name, (7, 300, 100_000),
                                                 centered, momentum)
        KO._adagrad_multi_kernel.__wrapped__(np.dtype(dt).name, (7, 300, 100_000))
        for which in KE._COLSUM_BWD:
            KE._colsum_kernel.__wrapped__(which, dt)
        for which in KE._MEAN_OF_MAPS:
            KE._mean_of_kernel.__wrapped__(which, dt)
            KE._mean_of_kernel.__wrapped__(which, dt, True)
        KE._norm_penalty_kernel.__wrapped__(dt)
        KE._std_all_kernel.__wrapped__(dt)
        for which in ("fwd", "bwd"):
            KG._one_output_kernel.__wrapped__(which, dt)
    return seen


def test_every_kernel_name_is_defined_in_its_source(monkeypatch):
    sources = _collect_sources(monkeypatch)
    # bn, conv, pool, adam, rmsprop (centered or not, momentum or not), adagrad, colsum (leaky,
    # tanh), the three means (mean_all, bce_const_mean, sigmoid_mean) alone and in pairs, the
    # norm penalty, the std and the one-output Linear (forward, backward); conv: im2col, its
    # tanh-backward variant, col2im
    assert len(sources) == (2 * 2 + 2 * 2 * 3 + 2 * 2 * 4 + 2 + 2 * 4 + 2 + 2 * 2
                            + 2 * 3 * 2 + 2 + 2 + 2 * 2)
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
    # bn, adam, rmsprop (4 variants), adagrad, colsum (leaky, tanh), the three means alone and
    # in pairs, the norm penalty and the std per dtype, the one-output Linear's (one source for
    # both kernels) per dtype; conv and pool per index type too
    assert len(codes) == 2 + 4 + 4 + 2 + 2 * 4 + 2 + 2 * 2 + 2 * 3 * 2 + 2 + 2 + 2
    # A Hopper SM has 65536 registers, so a block of t threads launches only at 65536 // t or
    # fewer per thread (else the launch itself fails). The block reductions launch up to 1024
    # threads (64 registers); the gather kernels of conv and pool go through conv._launch,
    # KC._BLOCK threads a block.
    gather_limit = min(255, 65536 // KC._BLOCK)
    for report in reports:
        kernels = re.findall(r"Compiling entry function '(\w+)'.*?Used (\d+) registers", report,
                             re.S)
        spills = [int(v) for v in re.findall(r"(\d+) bytes spill stores", report)]
        assert kernels and spills and not any(spills), report
        for name, regs in kernels:
            gather = re.match(r"minigan_(im2col|col2im|maxpool|avgpool)", name) is not None
            assert int(regs) <= (gather_limit if gather else 64), (name, regs, report)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_products_rounded_alone_are_not_contracted_into_a_fused_multiply_add(tmp_path):
    """``minigan_mul_rn`` (the elementwise kernels that must give NumPy's bits) compiles to a
    multiply and an add, where the plain expression becomes one fma: the check can fail."""
    def ptx(expr_f, expr_d):
        src = tmp_path / "k.cu"
        src.write_text(KE._MUL_RN + 'extern "C" __global__ void k(float* y, const float* a, '
                       f"double* z, const double* b) {{ y[0] = {expr_f}; z[0] = {expr_d}; }}\n")
        out = tmp_path / "k.ptx"
        subprocess.run(["nvcc", "-arch=sm_90", "-ptx", "-o", str(out), str(src)], check=True,
                       capture_output=True, timeout=300)
        return out.read_text()
    fused = ptx("a[2] + a[0] * a[1]", "b[2] + b[0] * b[1]")
    assert "fma.rn.f32" in fused and "fma.rn.f64" in fused
    alone = ptx("a[2] + minigan_mul_rn(a[0], a[1])", "b[2] + minigan_mul_rn(b[0], b[1])")
    assert "fma.rn" not in alone
    assert "mul.rn.f32" in alone and "mul.rn.f64" in alone


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_nvcc_check_fails_on_a_broken_source(tmp_path):
    """The check above can fail: a source with a type error does not compile."""
    code, _, _ = KO.adam_multi_source("float", [5])
    with pytest.raises(AssertionError, match="nvcc failed"):
        compile_with_nvcc(code.replace("const T decay", "const Q decay"), tmp_path)


# The conv kernels run on the CPU: im2col and col2im are gather kernels (each thread writes its
# own outputs, no shared memory, no barriers), so the emulator runs them exactly. The GPU
# path's own host code (_im2col_cupy, _col2im_cupy: argument order, strides, the bias flag)
# drives them, with NumPy standing in for CuPy.

CONV_GEOMETRIES = [  # (N, C, H, W), kernel, stride, padding, dilation
    ((2, 3, 7, 7), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((2, 2, 8, 8), (4, 4), (2, 2), (1, 1), (1, 1)),  # DCGAN's k4 s2 p1
    ((1, 3, 9, 6), (3, 2), (2, 1), (0, 2), (2, 1)),
    ((3, 1, 5, 5), (1, 1), (1, 1), (0, 0), (1, 1)),
]


def _emulated_builder(monkeypatch, builder, signatures):
    """A stand-in for a cached kernel builder ``builder(which, dtype, idx_ctype)`` that returns
    the real source of ``which`` compiled for the CPU emulator, with ``signatures[which]``."""
    from tests.kernels import cuda_emulation as emu
    if not emu.have_cxx():
        pytest.skip("no C++ compiler (g++) to emulate the kernels with")
    real = builder.__wrapped__

    def emulated(which, dt, idx_ctype):
        assert idx_ctype == "int"  # small arrays
        captured = {}
        monkeypatch.setattr(backend, "raw_kernel",
                            lambda code, name, options=(): captured.update(code=code, name=name))
        real(which, dt, idx_ctype)
        return emu.EmulatedKernel(captured["code"], captured["name"], signatures[which])
    return emulated


def _ctype(dtype):
    return "float" if dtype == np.float32 else "double"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES)
def test_conv_gather_kernels_emulated_match_numpy(monkeypatch, geometry, dtype):
    shape, k, s, p, d = geometry
    ctype = _ctype(dtype)
    i_sig = [("scalar", "int")] * 8  # kh, kw, sh, sw, ph, pw, dh, dw
    signatures = {
        "im2col": [("ptr", ctype)] * 2 + [("scalar", "int")] * 7 + i_sig + [("scalar", "int")] * 4,
        "im2col_tanh": [("ptr", ctype)] * 2 + [("scalar", "int")] * 7 + i_sig
        + [("scalar", "int")] * 4 + [("ptr", ctype)] + [("scalar", "int")] * 2,
        "col2im": [("ptr", ctype)] * 3 + [("scalar", "int")] * 6 + i_sig
        + [("scalar", "int")] * 5,
    }
    monkeypatch.setattr(KC, "_conv_kernel",
                        _emulated_builder(monkeypatch, KC._conv_kernel, signatures))
    monkeypatch.setattr(backend, "cupy", np, raising=False)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    out_hw = KC.conv_output_size(shape[2:], k, s, p, d)
    cols = KC._im2col_cupy(x, k, s, p, d, out_hw)
    np.testing.assert_array_equal(cols, KC.im2col(x, k, s, p, d))
    # the variant that takes x through a Tanh's backward as it gathers (other layouts of ty:
    # test_conv_kernels, through the emulated CuPy)
    ty = np.tanh(rng.standard_normal(shape)).astype(dtype)
    np.testing.assert_array_equal(KC._im2col_cupy(x, k, s, p, d, out_hw, tanh_y=ty),
                                  KC.im2col(x * (dtype(1) - ty * ty), k, s, p, d))
    g = rng.standard_normal(cols.shape).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(KC._col2im_cupy(g, shape, out_hw, k, s, p, d),
                               KC.col2im(g, shape, k, s, p, d), rtol=tol, atol=tol)
    np.testing.assert_allclose(KC._col2im_cupy(g, shape, out_hw, k, s, p, d, bias=bias),
                               KC.col2im(g, shape, k, s, p, d) + bias.reshape(1, -1, 1, 1),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(
        KC._col2im_cupy(g, shape, out_hw, k, s, p, d, bias=bias, tanh=True),
        np.tanh(KC.col2im(g, shape, k, s, p, d) + bias.reshape(1, -1, 1, 1)), rtol=tol, atol=tol)
    # conv2d and its weight gradient from one im2col, and conv2d's two gradients from one
    # transposed copy of gy, through the GPU branches
    w = rng.standard_normal((5, shape[1], *k)).astype(dtype)
    y_ref = KC.conv2d_forward(x, w, None, s, p, d)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    gw_ref = KC.conv2d_grad_weight(x, gy, k, s, p, d)
    op = KC.conv_transpose_output_padding(shape[2:], y_ref.shape[2:], k, s, p, d)
    gx_ref = KC.conv_transpose2d_forward(gy, w, None, s, p, op, d)
    monkeypatch.setattr(backend, "is_cupy_array", lambda a: True)
    gathers = []
    real_im2col = KC._im2col_cupy
    monkeypatch.setattr(KC, "_im2col_cupy",
                        lambda *a: gathers.append(1) or real_im2col(*a))
    y, gw = KC.conv2d_forward_and_grad_weight(x, w, gy, s, p, d)
    assert len(gathers) == 1
    np.testing.assert_allclose(y, y_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(gw, gw_ref, rtol=tol, atol=tol * 10)
    handed = []
    real_transpose = KC._conv_transpose_cupy
    monkeypatch.setattr(KC, "_conv_transpose_cupy", lambda *a, **kw: handed.append(
        kw.get("xt") is not None) or real_transpose(*a, **kw))
    gx, gw = KC.conv2d_input_and_weight_grads(x, w, gy, s, p, d)
    assert handed == [True]  # gy's transposed copy went to both GEMMs
    np.testing.assert_allclose(gx, gx_ref, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(gw, gw_ref, rtol=tol, atol=tol * 10)


POOL_GEOMETRIES = [  # (N, C, H, W), kernel, stride, padding
    ((2, 3, 8, 8), 2, 2, 0),
    ((1, 2, 7, 9), 3, 2, 1),  # overlapping windows, padding
    ((2, 1, 6, 5), (3, 2), (1, 2), (1, 0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", POOL_GEOMETRIES)
def test_pool_kernels_emulated_match_numpy(monkeypatch, geometry, dtype):
    """The four pool kernels, driven by the public functions' GPU branches (NumPy standing in
    for CuPy), against the same functions' NumPy branches."""
    shape, k, s, p = geometry
    ctype = _ctype(dtype)
    sizes = [("scalar", "int")] * 5  # total, H, W, Ho, Wo
    geom = [("scalar", "int")] * 6  # kh, kw, sh, sw, ph, pw
    signatures = {
        "maxpool_fwd": [("ptr", ctype)] * 2 + [("ptr", "long long")] + sizes + geom
        + [("scalar", ctype)],
        "maxpool_bwd": [("ptr", ctype), ("ptr", "long long"), ("ptr", ctype)] + sizes + geom,
        "avgpool_fwd": [("ptr", ctype)] * 2 + sizes + geom,
        "avgpool_bwd": [("ptr", ctype)] * 2 + sizes + geom,
    }
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, 1, 0] = x[0, 0, 1, 1] = 10.0  # a tie for a window's maximum: the first one wins
    y_ref, idx_ref = KP.max_pool2d_forward(x, k, s, p)
    gy = rng.standard_normal(y_ref.shape).astype(dtype)
    refs = (y_ref, idx_ref, KP.max_pool2d_backward(gy, idx_ref, shape, k, s, p),
            KP.avg_pool2d_forward(x, k, s, p), KP.avg_pool2d_backward(gy, shape, k, s, p))
    monkeypatch.setattr(KP, "_pool_kernel",
                        _emulated_builder(monkeypatch, KP._pool_kernel, signatures))
    monkeypatch.setattr(backend, "cupy", np, raising=False)
    monkeypatch.setattr(backend, "is_cupy_array", lambda a: True)
    y, idx = KP.max_pool2d_forward(x, k, s, p)
    got = (y, idx, KP.max_pool2d_backward(gy, idx, shape, k, s, p),
           KP.avg_pool2d_forward(x, k, s, p), KP.avg_pool2d_backward(gy, shape, k, s, p))
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for name, a, b in zip(("max fwd", "argmax", "max bwd", "avg fwd", "avg bwd"), got, refs):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)
