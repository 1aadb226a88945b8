"""kernels.gemm: ``a @ b`` on the CPU, one direct cuBLAS call on the GPU. The GPU path is run
through the emulated CuPy, whose cuBLAS reads the operands' raw memory column-major with the
leading dimensions given (and refuses invalid ones, as cuBLAS does), so the stride
bookkeeping is checked for every operand layout."""
import contextlib
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


def _operand_forms(cp, dtype, seed):
    """(A forms, B forms): every layout of an (M, K) and a (K, N) operand on the device, with
    one-row A and one-column B forms."""
    _DEVICE_BASE.clear()
    base = np.random.default_rng(seed).standard_normal(20000).astype(dtype)
    a_forms = _forms(base, 0, M, K, cp)
    a_forms.update({f"one row {k}": v for k, v in _forms(base, 300, 1, K, cp).items()})
    b_forms = _forms(base, 5000, K, N, cp)
    b_forms.update({f"one column {k}": v for k, v in _forms(base, 9000, K, 1, cp).items()})
    return a_forms, b_forms


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
    a_forms, b_forms = _operand_forms(cp, dtype, seed=1)
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
    monkeypatch.setattr(backend, "_TF32", [None])  # read again, as by a new process
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


# A libcublas of our own, on host memory, for the real backend.DirectCublas: its ctypes
# signatures, its alpha/beta by pointer, the handle's stream and workspace, and the column-major
# arguments that kernels.gemm computes all meet a C implementation of cuBLAS's documented
# contract (statuses and argument checks included). Written from the cuBLAS documentation, not
# from the emulator's GEMM, so that the two check each other.
_FAKE_CUBLAS = r"""
#include <cstddef>
#include <cstdint>
struct Handle { void* stream; void* ws; size_t ws_size; long gemms; };
static int next_status = 0;
extern "C" {
int fake_fail_next(int status) { next_status = status; return 0; }
int fake_state(void* h, void** stream, void** ws, size_t* ws_size, long* gemms) {
    Handle* x = (Handle*)h; *stream = x->stream; *ws = x->ws; *ws_size = x->ws_size;
    *gemms = x->gemms; return 0;
}
int cublasCreate_v2(void** h) {
    if (next_status) { int s = next_status; next_status = 0; return s; }
    *h = new Handle{nullptr, nullptr, 0, 0}; return 0;
}
int cublasDestroy_v2(void* h) { delete (Handle*)h; return 0; }
/* as cuBLAS documents: setting the stream resets the workspace to cuBLAS's own */
int cublasSetStream_v2(void* h, void* s) {
    Handle* x = (Handle*)h; x->stream = s; x->ws = nullptr; x->ws_size = 0; return 0;
}
int cublasSetWorkspace_v2(void* h, void* ws, size_t n) {
    Handle* x = (Handle*)h; x->ws = ws; x->ws_size = n; return 0;
}
}  /* extern "C" */
template <typename T>
static int gemm(void* h, int ta, int tb, int m, int n, int k, const T* alpha, const T* A,
                int lda, const T* B, int ldb, const T* beta, T* C, int ldc) {
    Handle* x = (Handle*)h;
    if (!x) return 1;                                  /* CUBLAS_STATUS_NOT_INITIALIZED */
    if (next_status) { int s = next_status; next_status = 0; return s; }
    if (ta < 0 || ta > 2 || tb < 0 || tb > 2 || m < 0 || n < 0 || k < 0) return 7;
    int ra = ta == 0 ? m : k, rb = tb == 0 ? k : n;
    if (lda < (ra > 1 ? ra : 1) || ldb < (rb > 1 ? rb : 1) || ldc < (m > 1 ? m : 1)) return 7;
    if (!x->ws || x->ws_size == 0) return 100;        /* not a cuBLAS status: no workspace */
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            long double s = 0;
            for (int p = 0; p < k; ++p) {
                T a = ta == 0 ? A[i + (size_t)p * lda] : A[p + (size_t)i * lda];
                T b = tb == 0 ? B[p + (size_t)j * ldb] : B[j + (size_t)p * ldb];
                s += (long double)a * b;
            }
            T prev = *beta == 0 ? T(0) : *beta * C[i + (size_t)j * ldc];
            C[i + (size_t)j * ldc] = (T)(*alpha * s) + prev;
        }
    x->gemms += 1;
    return 0;
}
extern "C" {
int cublasSgemm_v2(void* h, int ta, int tb, int m, int n, int k, const float* alpha,
                   const float* A, int lda, const float* B, int ldb, const float* beta,
                   float* C, int ldc) {
    return gemm<float>(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
int cublasDgemm_v2(void* h, int ta, int tb, int m, int n, int k, const double* alpha,
                   const double* A, int lda, const double* B, int ldb, const double* beta,
                   double* C, int ldc) {
    return gemm<double>(h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
}
"""
_REAL_DIRECT_CUBLAS = backend.DirectCublas  # the emulator replaces it; this test wants it


def _fake_cublas(monkeypatch):
    """The emulated GPU, with the real DirectCublas loading the C library above."""
    import ctypes
    cp = E.install(monkeypatch)
    lib = E._compile(_FAKE_CUBLAS, "fake libcublas")
    monkeypatch.setattr(backend, "DirectCublas", _REAL_DIRECT_CUBLAS)
    monkeypatch.setattr(backend, "_find_cublas", lambda: lib._name)
    vp = ctypes.c_void_p

    def state(handle):
        out = [vp(), vp(), ctypes.c_size_t(), ctypes.c_long()]
        lib.fake_state(handle, *map(ctypes.byref, out))
        return out[0].value, out[1].value, out[2].value, out[3].value
    return cp, lib, state


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_real_direct_cublas_calls_a_cublas_abi_right_for_every_operand_layout(
        monkeypatch, dtype):
    cp, lib, state = _fake_cublas(monkeypatch)
    a_forms, b_forms = _operand_forms(cp, dtype, seed=3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    stream = backend.new_stream()  # as a graphed step's: not the default stream (address 0)
    with stream, KG.capturable():
        for an, a in a_forms.items():
            for bn, b in b_forms.items():
                got = KG.matmul(a, b)
                want = np.asarray(a).astype(np.float64) @ np.asarray(b).astype(np.float64)
                assert got.shape == want.shape and got.dtype == dtype
                np.testing.assert_allclose(got.get(), want, rtol=tol, atol=tol,
                                           err_msg=f"{an} @ {bn}")
        direct = backend.direct_cublas()
    assert isinstance(direct, _REAL_DIRECT_CUBLAS) and direct.lib_path == lib._name
    bound, ws, ws_size, gemms = state(direct.handle)
    # the handle is bound to the stream it serves, and keeps its own workspace after that
    assert bound == stream.ptr != 0
    assert ws == direct.workspace.data.ptr and ws_size == direct.WORKSPACE_BYTES == 32 << 20
    assert gemms == len(a_forms) * len(b_forms) >= 80
    E.clear_kernel_caches()


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
def test_the_real_direct_cublas_reports_a_failed_status_by_name(monkeypatch):
    cp, lib, _ = _fake_cublas(monkeypatch)
    a = cp.ones((3, 4), dtype=np.float32)
    lib.fake_fail_next(3)  # CUBLAS_STATUS_ALLOC_FAILED, on cublasCreate
    with KG.capturable(), pytest.raises(backend.DeviceError,
                                        match=r"cublasCreate_v2 failed with cuBLAS status 3"):
        KG.matmul(a, a.T)
    assert backend._DIRECT_CUBLAS == {}  # nothing half-made is kept
    with KG.capturable():
        np.testing.assert_allclose(KG.matmul(a, a.T).get(), np.full((3, 3), 4.0))
        lib.fake_fail_next(13)  # CUBLAS_STATUS_EXECUTION_FAILED
        with pytest.raises(backend.DeviceError, match=r"cublas gemm failed with cuBLAS status 13"):
            KG.matmul(a, a.T)
    E.clear_kernel_caches()


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_into_writes_or_adds_into_its_output_for_every_operand_layout(monkeypatch, dtype):
    """``gemm_into`` with beta = 0 and with beta = 1 (``accumulate``), one GEMM each, through
    CuPy's bindings and, in a capturable block, the real DirectCublas over the C library."""
    cp, _, _ = _fake_cublas(monkeypatch)
    a_forms, b_forms = _operand_forms(cp, dtype, seed=4)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    stream = backend.new_stream()
    for capturable in (False, True):
        with stream, (KG.capturable() if capturable else contextlib.nullcontext()):
            for an, a in a_forms.items():
                for bn, b in b_forms.items():
                    want = np.asarray(a).astype(np.float64) @ np.asarray(b).astype(np.float64)
                    out = cp.full(want.shape, 0.5, dtype=dtype)
                    assert KG.can_accumulate(a, b, out)
                    E.LOG.clear()
                    KG.gemm_into(a, b, out)
                    KG.gemm_into(a, b, out, accumulate=True)
                    gemms = sum(v for (k, _), v in E.LOG.launches.items() if k == "gemm")
                    assert gemms == (0 if capturable else 2)  # (the C library is no launch)
                    np.testing.assert_allclose(out.get(), 2 * want, rtol=tol, atol=tol,
                                               err_msg=f"{an} @ {bn}, capturable={capturable}")
    a, b = a_forms[next(iter(a_forms))], b_forms[next(iter(b_forms))]
    good = cp.zeros((a.shape[0], b.shape[1]), dtype=dtype)
    for bad in (good.T.copy().T if good.shape[0] > 1 else good[:, :0], good[:, :-1],
                good.astype(np.float16), np.zeros(good.shape, dtype)):
        assert not KG.can_accumulate(a, b, bad)
        with pytest.raises(ValueError, match="cannot write"):
            KG.gemm_into(a, b, bad)
    E.clear_kernel_caches()


# ----------------------------------------------------------------------------- one output

def _one_output_case(cp, dtype, n, k, form, seed=0):
    """x (n, k) on the device in a given layout, w (1, k), b (1,), and their float64 copies."""
    rng = np.random.default_rng(seed)
    wide = rng.standard_normal((n, k + 3)).astype(dtype)
    x = {"contiguous": cp.asarray(wide[:, :k].copy()),
         "column slice": cp.asarray(wide)[:, 1:k + 1],  # rows read in place at their stride
         "transposed (copied)": cp.asarray(wide[:, :k].T.copy()).T,
         "every other column (copied)": cp.asarray(
             rng.standard_normal((n, 2 * k)).astype(dtype))[:, ::2]}[form]
    w = cp.asarray(rng.standard_normal((1, k)).astype(dtype))
    b = cp.asarray(rng.standard_normal(1).astype(dtype))
    return x, w, b


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_one_output_linear_is_one_kernel_each_way(monkeypatch, dtype):
    """y = x @ w.T + b with w of shape (1, K): one kernel forward (the sum rounded once, then
    + b in T), one for gw and gb backward, stored or added into given arrays, for every x
    layout and the edge sizes."""
    cp = E.install(monkeypatch)
    t = dtype(0).dtype.type
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for n, k in ((5, 7), (1, 1), (1, 40), (33, 1), (19, 300)):
        for form in ("contiguous", "column slice", "transposed (copied)",
                     "every other column (copied)"):
            x, w, b = _one_output_case(cp, dtype, n, k, form, seed=n * k)
            where = f"{form}, ({n}, {k})"
            assert KG.one_output_applies(x, w, b), where
            x64, w64, b64 = (np.asarray(a.get(), np.float64) for a in (x, w, b))
            # (a column stride matters only for k > 1, and a transposed single row has one)
            copied = k > 1 and (form.startswith("every") or (form.startswith("trans") and n > 1))
            E.LOG.clear()
            y = KG.linear_one_output(x, w, b)
            assert E.LOG.n_launches == 1 + copied, (where, E.LOG.launches)
            assert y.shape == (n, 1) and y.dtype == dtype
            np.testing.assert_allclose(y.get(), (x64 @ w64.T).astype(dtype) + b.get(),
                                       rtol=tol, atol=tol, err_msg=where)
            g = cp.asarray(np.random.default_rng(k).standard_normal((n, 2)).astype(dtype))[:, 1:]
            g64 = np.asarray(g.get(), np.float64)
            want_w, want_b = (g64.T @ x64).astype(dtype), g64.sum(0).astype(dtype)
            for need_w, need_b in ((True, True), (True, False), (False, True)):
                E.LOG.clear()
                gw, gb = KG.linear_one_output_grads(g, x, need_w, need_b)
                assert E.LOG.n_launches == 1 + copied, (where, E.LOG.launches)
                assert (gw is None) != need_w and (gb is None) != need_b
                if need_w:
                    assert gw.shape == (1, k) and gw.dtype == dtype
                    np.testing.assert_allclose(gw.get(), want_w, rtol=tol, atol=tol,
                                               err_msg=where)
                if need_b:
                    assert gb.shape == (1,) and gb.dtype == dtype
                    np.testing.assert_allclose(gb.get(), want_b, rtol=tol, atol=tol,
                                               err_msg=where)
                # with w: gx = g * w from the same kernel, the multiply's products exactly
                E.LOG.clear()
                gx, gw2, gb2 = KG.linear_one_output_grads(g, x, need_w, need_b, w=w)
                assert E.LOG.n_launches == 1 + copied, (where, E.LOG.launches)
                assert gx.shape == (n, k) and gx.dtype == dtype and gx.flags.c_contiguous
                np.testing.assert_array_equal(gx.get(), (g * w).get(), err_msg=where)
                for a, b_ in ((gw, gw2), (gb, gb2)):
                    assert (a is None) == (b_ is None)
                    if a is not None:
                        np.testing.assert_array_equal(a.get(), b_.get(), err_msg=where)
            with pytest.raises(ValueError, match=rf"gx comes with gw or gb, from a C-contiguous "
                                                 rf"\(1, {k}\) weight"):
                KG.linear_one_output_grads(g, x, False, False, w=w)
            with pytest.raises(ValueError, match="weight of"):
                KG.linear_one_output_grads(g, x, True, True, w=w.astype(np.float16))
            # added into .grad arrays: the sums rounded to T, then added in T
            into_w = cp.full((1, k), 0.25, dtype=dtype)
            into_b = cp.full(1, -1.5, dtype=dtype)
            gw, gb = KG.linear_one_output_grads(g, x, True, True, into_w, into_b)
            assert gw is into_w and gb is into_b
            np.testing.assert_allclose(into_w.get(), want_w + t(0.25), rtol=tol, atol=tol)
            np.testing.assert_allclose(into_b.get(), want_b + t(-1.5), rtol=tol, atol=tol)
            # an array it cannot add into (another dtype or shape) is left alone
            other = cp.zeros((1, k), dtype=np.float16)
            gw, _ = KG.linear_one_output_grads(g, x, True, False, other)
            assert gw is not other and not other.get().any()
    E.clear_kernel_caches()


@pytest.mark.skipif(not E.have_cxx(), reason="no g++ for the emulated GPU")
def test_the_one_output_kernels_leave_other_linears_to_the_gemm(monkeypatch):
    cp = E.install(monkeypatch)
    x, w, b = _one_output_case(cp, np.float32, 4, 6, "contiguous")
    assert KG.one_output_applies(x, w, b)
    big = cp.zeros((KG._ONE_OUTPUT_MAX_N + 1, 6), dtype=np.float32)
    wide = cp.zeros((4, KG._ONE_OUTPUT_MAX_K + 1), dtype=np.float32)
    for args in ((x, cp.concatenate([w, w]), cp.concatenate([b, b])),  # two outputs
                 (x, w, None), (x.astype(np.float64), w, b),  # no bias; mixed dtypes
                 (x.astype(np.float16), w.astype(np.float16), b.astype(np.float16)),
                 (x.get(), w, b), (x[:0], w, b), (big, w, b),
                 (wide, cp.zeros((1, wide.shape[1]), np.float32), b)):
        assert not KG.one_output_applies(*args)
    w_strided = cp.asarray(np.zeros((1, 12), np.float32))[:, ::2]
    assert not KG.one_output_applies(x, w_strided, b)
    E.clear_kernel_caches()


def test_tf32_setting_is_read_once_like_cupy_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setattr(backend, "_TF32", [None])
    monkeypatch.setenv("CUPY_TF32", "2")  # CuPy: any positive integer turns TF32 on
    assert backend.tf32_enabled() is True
    monkeypatch.setenv("CUPY_TF32", "0")
    assert backend.tf32_enabled() is True  # remembered: CuPy fixed its compute type already
    monkeypatch.setattr(backend, "_TF32", [None])
    assert backend.tf32_enabled() is False
    monkeypatch.delenv("CUPY_TF32")
    monkeypatch.setattr(backend, "_TF32", [None])
    assert backend.tf32_enabled() is False  # unset: off
    monkeypatch.setenv("CUPY_TF32", "yes")
    monkeypatch.setattr(backend, "_TF32", [None])
    with pytest.raises(ValueError, match=r"CUPY_TF32 must be an integer .*'yes'"):
        backend.tf32_enabled()
