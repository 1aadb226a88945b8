"""kernels.gemm: ``a @ b`` on the CPU, one direct cuBLAS call on the GPU. The GPU path is run
through the emulated CuPy, whose cuBLAS reads the operands' raw memory column-major with the
leading dimensions given (and refuses invalid ones, as cuBLAS does), so the stride
bookkeeping is checked for every operand layout."""
import warnings

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

from minigan import backend
from minigan.kernels import gemm as KG
from tests.kernels import emulated_cupy as E

M, K, N = 7, 5, 6


def _forms(base, off, r, c, xp):
    """(name, view) of a (r, c) matrix inside ``base`` in every layout a GEMM operand takes."""
    def view(shape, strides, start=off):
        return as_strided(base[start:], shape, tuple(s * base.itemsize for s in strides))
    out = {"contiguous": view((r, c), (c, 1)), "transposed": view((r, c), (1, r)),
           "row slice": view((r, c), (c + 3, 1)), "col-major ld": view((r, c), (1, r + 4)),
           "both strided (copied)": view((r, c), (2 * c, 2)),
           "reversed rows (copied)": view((r, c), (-c, 1), off + (r - 1) * c)}
    if r == 1:
        out["one row, odd stride"] = view((1, c), (999, 1))
    return {k: (xp.asarray(v) if xp is np else _device_view(v, base, xp)) for k, v in out.items()}


_DEVICE_BASE = {}


def _device_view(v, base, cp):
    """The same view (offset and strides) of a device copy of ``base``: the layout is kept."""
    dev = np.asarray(_DEVICE_BASE.setdefault(id(base), cp.asarray(base)))
    start = (v.__array_interface__["data"][0] - base.__array_interface__["data"][0]) \
        // base.itemsize
    return as_strided(dev[start:], v.shape, v.strides).view(E.ndarray)


def _copied(name):
    """Whether that operand form needs a copy. Vectors mostly do not, since the stride of a
    dimension of size 1 is not used: a strided row or column is read with its stride as the
    leading dimension, and a reversed row is one element per column. A reversed column does."""
    if name.startswith("one row"):
        return False
    if name.startswith("one column"):
        return "reversed" in name
    return "copied" in name


def test_matmul_on_the_cpu_is_numpys():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    np.testing.assert_array_equal(KG.matmul(a, b), a @ b)
    x = rng.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(KG.matmul(x, b), x @ b)  # batched: NumPy's broadcasting


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_matmul_is_one_cublas_call_for_every_operand_layout(monkeypatch, dtype):
    cp = E.install(monkeypatch)
    _DEVICE_BASE.clear()
    base = np.random.default_rng(1).standard_normal(20000).astype(dtype)
    a_forms = _forms(base, 0, M, K, cp)
    a_forms.update({f"one row {k}": v for k, v in _forms(base, 300, 1, K, cp).items()})
    b_forms = _forms(base, 5000, K, N, cp)
    b_forms.update({f"one column {k}": v for k, v in _forms(base, 9000, K, 1, cp).items()})
    checked = 0
    for an, a in a_forms.items():
        for bn, b in b_forms.items():
            E.LOG.clear()
            got = KG.matmul(a, b)
            assert E.LOG.launches[("gemm", "sgemm" if dtype == np.float32 else "dgemm")] == 1
            copies = E.LOG.by_kind().get("copy", 0)
            assert copies == _copied(an) + _copied(bn), (an, bn, E.LOG.launches)
            want = np.asarray(a) @ np.asarray(b)
            assert got.shape == want.shape and got.dtype == dtype
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got.get(), want, rtol=tol, atol=tol,
                                       err_msg=f"{an} @ {bn}")
            checked += 1
    assert checked >= 80
    E.clear_kernel_caches()


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
def test_gpu_matmul_leaves_other_cases_to_cupy_and_checks_shapes(monkeypatch):
    cp = E.install(monkeypatch)
    rng = np.random.default_rng(2)
    a = cp.asarray(rng.standard_normal((3, 0)).astype(np.float32))
    b = cp.asarray(rng.standard_normal((0, 4)).astype(np.float32))
    E.LOG.clear()
    np.testing.assert_array_equal(KG.matmul(a, b).get(), np.zeros((3, 4)))  # K = 0
    assert ("gemm", "sgemm") not in E.LOG.launches
    x = cp.asarray(rng.standard_normal((2, 3, 4)).astype(np.float32))
    w = cp.asarray(rng.standard_normal((4, 5)).astype(np.float32))
    np.testing.assert_allclose(KG.matmul(x, w).get(), x.get() @ w.get(), rtol=1e-6)  # batched
    h = cp.asarray(rng.standard_normal((3, 4)).astype(np.float16))
    assert KG.matmul(h, h.T).dtype == np.float16  # float16: cupy.matmul
    with pytest.raises(ValueError, match=r"shapes \(3, 4\) and \(5, 2\) do not match"):
        KG.matmul(cp.ones((3, 4), dtype=np.float32), cp.ones((5, 2), dtype=np.float32))
    monkeypatch.setenv("CUPY_TF32", "1")
    E.LOG.clear()
    KG.matmul(cp.ones((3, 4), dtype=np.float32), cp.ones((4, 2), dtype=np.float32))
    assert ("gemm", "sgemm") not in E.LOG.launches  # TF32: CuPy's own GEMM, as documented
    E.clear_kernel_caches()


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
def test_gpu_matmul_falls_back_to_cupy_once_the_bindings_refuse(monkeypatch):
    cp = E.install(monkeypatch)
    monkeypatch.setattr(KG, "_state", {"direct": True, "capturable": 0})

    def old_signature(*args):
        raise TypeError("sgemm() takes exactly 12 positional arguments (14 given)")
    monkeypatch.setattr(backend, "_cublas", type("B", (), {"sgemm": staticmethod(old_signature)}))
    a = cp.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    with pytest.warns(RuntimeWarning, match="calling cuBLAS directly failed .*cupy.matmul"):
        got = KG.matmul(a, a.T)
    np.testing.assert_allclose(got.get(), a.get() @ a.get().T)
    assert KG._state["direct"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        KG.matmul(a, a.T)
    E.clear_kernel_caches()
