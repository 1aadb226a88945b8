"""Matrix products of 2-D arrays, with one direct cuBLAS call on the GPU.

``matmul(a, b)`` is ``a @ b``. On the CPU it is NumPy's ``@``, split across minigan's CPU threads
for 2-D float arrays (``kernels.parallel.matmul``). On the GPU it calls cuBLAS's
``sgemm``/``dgemm`` through CuPy's own bindings (``backend.cublas()``), on CuPy's handle and
current stream, instead of ``cupy.matmul``: the same cuBLAS GEMM, without ``cupy.matmul``'s
general (broadcasting, batched) host code around it. In a host profile of dcgan's step on an
H200, ``cupy.matmul`` took 13% of the step's host time for its 30 calls, and GEMMs are the op a
step runs most (41 per gan step). (Not yet timed against ``cupy.matmul`` on a GPU:
``benchmarks/launch_cost.py`` has the row for it.)

Row-major operands go to column-major cuBLAS without copies: C = A @ B in row-major memory is
C^T = B^T @ A^T in column-major, and each operand is read as it is stored, row-major (a
contiguous matrix) or column-major (a transposed view such as ``w.T``), with op N or T
(``gemm_operand``). Other layouts are copied first. float16, TF32 (``CUPY_TF32=1``), empty
shapes and anything but 2-D float32/float64 operands of one dtype take ``cupy.matmul``.

Without the bindings the GPU path is ``cupy.matmul``. If they refuse the call's arguments (a
CuPy version with another signature), it falls back to ``cupy.matmul`` for the rest of the
process, with a warning.

Inside ``with capturable():`` (a CUDA-graph step, ``minigan.gan.graph``) GPU GEMMs go through
``backend.direct_cublas()`` instead: cuBLAS called through ``ctypes`` on a handle of minigan's
own, which a stream capture accepts (CuPy's bindings and ``cupy.matmul`` refuse during one).
There nothing falls back to ``cupy.matmul``: an operand it cannot take is an error.

``gemm_into(a, b, out)`` writes the product into a given C-contiguous array (a weight
gradient of the weight's own shape), or with ``accumulate=True`` adds it there with beta = 1
(a gradient into a ``.grad`` that nothing else can see: ``autograd``'s
``Function.accumulates``). It is GPU-only, for what ``can_accumulate`` accepts, by either
cuBLAS path; ``try_gemm_into`` is the same with one check, returning whether it ran.
"""
from __future__ import annotations

import contextlib
import functools
import warnings

import numpy as np

from .. import backend
from .elementwise import FLOAT_CTYPES, row_stride
from .parallel import matmul as _cpu_matmul

OP_N, OP_T = 0, 1  # cublasOperation_t
_INT_MAX = 2**31 - 1
# per dtype: the cuBLAS function, and host memory holding alpha = 1 and beta = 0 with its
# address (read once: NumPy's .ctypes costs microseconds per access)
_CONSTANTS = {}
for _dt, _name in ((np.float32, "sgemm"), (np.float64, "dgemm")):
    _arr = np.array([1.0, 0.0], dtype=_dt)
    _CONSTANTS[np.dtype(_dt)] = (_name, _arr, _arr.ctypes.data, _arr.itemsize)
del _dt, _name, _arr
_state = {"direct": True, "capturable": 0}


@contextlib.contextmanager
def capturable():
    """Inside the block, GPU GEMMs are calls that a CUDA graph can capture (see the module)."""
    _state["capturable"] += 1
    try:
        yield
    finally:
        _state["capturable"] -= 1


def gemm_operand(shape, strides):
    """How column-major cuBLAS reads a row-major 2-D operand X as the matrix X^T.

    ``shape`` is (rows, cols) and ``strides`` are in elements. Returns (op, ld) such that the
    column-major matrix stored at X's address with leading dimension ld, with op applied,
    is X^T; or None when X's layout is neither (a copy is needed first).

    * Row-major X (unit column stride): the memory holds X^T column-major, ld = row stride.
    * Column-major X (unit row stride, e.g. ``w.T`` of a contiguous w): the memory holds X
      column-major, ld = column stride, and op T gives X^T.
    A dimension of size 1 puts no constraint on its stride.
    """
    r, c = shape
    s0, s1 = strides
    if s0 < 0 or s1 < 0:
        return None
    if (s1 == 1 or c == 1) and (r == 1 or s0 >= max(c, 1)):
        return OP_N, max(s0 if r > 1 else c, 1)
    if (s0 == 1 or r == 1) and (c == 1 or s1 >= max(r, 1)):
        return OP_T, max(s1 if c > 1 else r, 1)
    return None


def gemm_call(a_layout, b_layout, m: int, n: int, k: int) -> tuple:
    """The column-major GEMM arguments for row-major C (m, n) = A (m, k) @ B (k, n).

    cuBLAS computes C^T (n, m) = B^T (n, k) @ A^T (k, m), which is C in row-major memory with
    ldc = n. Returns (transa, transb, M, N, K, lda, ldb, ldc) of that call, in which cuBLAS's
    "A" is our B and its "B" is our A.
    """
    op_b, ld_b = b_layout
    op_a, ld_a = a_layout
    return op_b, op_a, n, m, k, ld_b, ld_a, n


def _layout(x):
    """``gemm_operand`` of a 2-D array. The stride of a dimension of size 1 is never used, and
    may be anything (even negative: a one-row slice of a reversed array is C-contiguous)."""
    flags = x.flags
    if flags.c_contiguous:  # the common cases first: a matrix, or the transpose of one
        return OP_N, max(x.shape[1], 1)
    if flags.f_contiguous:
        return OP_T, max(x.shape[0], 1)
    item = x.dtype.itemsize
    (r, c), (s0, s1) = x.shape, x.strides
    s0 = max(c, 1) * item if r == 1 else s0
    s1 = item if c == 1 else s1
    if s0 % item or s1 % item:
        return None
    return gemm_operand((r, c), (s0 // item, s1 // item))


def _operands(a, b):
    """``(a, b, layout of a, layout of b)``, each operand copied to C order first if cuBLAS
    cannot read it as it is."""
    la, lb = _layout(a), _layout(b)
    if la is None:
        a = backend.cupy.ascontiguousarray(a)
        la = _layout(a)
    if lb is None:
        b = backend.cupy.ascontiguousarray(b)
        lb = _layout(b)
    return a, b, la, lb


def matmul(a, b):
    """``a @ b``; for 2-D GPU arrays, one cuBLAS GEMM called directly (see the module). Every
    GEMM of minigan's layers and conv kernels comes through here."""
    if not backend.is_cupy_array(a):
        if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == b.ndim == 2:
            return _cpu_matmul(a, b)  # split across minigan's CPU threads (kernels.parallel)
        return a @ b
    return _cublas_matmul(a, b)


_INTO_PLANS: dict = {}  # (shapes, strides, dtypes, classes of a, b, out) -> _into_plan's answer


def _into_plan(a, b, out):
    """What ``a @ b`` written into ``out`` by one GEMM needs, from the arrays' shapes, strides,
    dtypes and classes alone: False when that cannot be (not 2-D float32/float64 GPU arrays of
    one dtype, out not C-contiguous of the product's shape, empty or huge sizes); "copy" when
    an operand must be copied first for cuBLAS to read it; else the cuBLAS arguments
    ``(transa, transb, M, N, K, lda, ldb, ldc)`` of ``gemm_call``."""
    if not (backend.is_cupy_array(a) and backend.is_cupy_array(b)
            and backend.is_cupy_array(out)):
        return False
    if (a.ndim != 2 or b.ndim != 2 or not a.dtype == b.dtype == out.dtype
            or a.dtype not in _CONSTANTS or not out.flags.c_contiguous
            or out.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]):
        return False
    m, n, k = a.shape[0], b.shape[1], a.shape[1]
    if min(m, n, k) == 0 or max(m, n, k) > _INT_MAX:
        return False
    la, lb = _layout(a), _layout(b)
    if la is None or lb is None:
        return "copy"
    call = gemm_call(la, lb, m, n, k)
    return False if max(call[5], call[6]) > _INT_MAX else call


def _planned_into(a, b, out):
    """``_into_plan(a, b, out)``, remembered (every weight gradient of a step asks)."""
    try:
        key = (a.shape, a.strides, b.shape, b.strides, out.shape, out.strides, a.dtype,
               b.dtype, out.dtype, a.__class__, b.__class__, out.__class__)
    except AttributeError:  # not arrays
        return False
    plan = _INTO_PLANS.get(key)
    if plan is None:
        plan = _into_plan(a, b, out)
        if len(_INTO_PLANS) < 4096:
            _INTO_PLANS[key] = plan
    return plan


def _usable_into(a, b, out):
    """``_planned_into``'s plan when the GEMM can run now (no TF32, and a capture or the direct
    cuBLAS path in use), else False."""
    plan = _planned_into(a, b, out)
    if plan is False or backend.tf32_enabled():
        return False
    if _state["capturable"] or (_state["direct"] and getattr(
            backend.cublas(), _CONSTANTS[a.dtype][0], None) is not None):
        return plan
    return False


def can_accumulate(a, b, out) -> bool:
    """Whether ``gemm_into(a, b, out)`` is one GEMM writing
    into ``out``: 2-D float32/float64 GPU arrays of one dtype, out C-contiguous of the
    product's shape, non-empty sizes, no TF32, and the direct cuBLAS path in use."""
    return _usable_into(a, b, out) is not False


def gemm_into(a, b, out, accumulate: bool = False) -> None:
    """``out[...] = a @ b`` (``out += a @ b`` with ``accumulate``: beta = 1) as one GEMM that
    writes into ``out``, for arrays that ``can_accumulate`` accepts; anything else raises. A
    weight gradient computed into an array of the weight's own shape is then an array of its
    own, not a reshaped view of the GEMM's output."""
    if not try_gemm_into(a, b, out, accumulate):
        def desc(v):
            return (f"{getattr(v, 'dtype', '?')}{tuple(getattr(v, 'shape', ()))} on "
                    f"{backend.device_of(v)}")
        raise ValueError(f"gemm_into: cannot write {desc(a)} @ {desc(b)} into {desc(out)} with "
                         "one GEMM: it needs 2-D float32 or float64 GPU arrays of one dtype, "
                         "the output C-contiguous of the product's shape, and cuBLAS called "
                         "directly (no TF32)")


def try_gemm_into(a, b, out, accumulate: bool = False) -> bool:
    """``gemm_into`` where ``can_accumulate`` accepts the arrays, checked once: returns whether
    the GEMM ran (False: nothing was done, and the caller computes the product its own way).
    With ``accumulate`` this adds a gradient into a ``.grad`` array that nothing else can see
    (``autograd``'s ``Function.accumulates``) with no separate add."""
    plan = _usable_into(a, b, out)
    if plan is False:
        return False
    if plan == "copy":  # (rare: an operand cuBLAS cannot read as it is)
        m, k = a.shape
        n = b.shape[1]
        a, b, la, lb = _operands(a, b)
        plan = gemm_call(la, lb, m, n, k)
        if max(plan[5], plan[6]) > _INT_MAX:
            return False
    ta, tb, mm, nn, kk, lda, ldb, ldc = plan
    if _state["capturable"]:
        backend.direct_cublas().gemm(a.dtype, ta, tb, mm, nn, kk, b.data.ptr, lda, a.data.ptr,
                                     ldb, out.data.ptr, ldc, accumulate=accumulate)
        return True
    name, _, one, item = _CONSTANTS[a.dtype]
    try:  # alpha = 1 and beta = 1 or 0, from host memory
        getattr(backend.cublas(), name)(backend.cublas_handle(), ta, tb, mm, nn, kk, one,
                                        b.data.ptr, lda, a.data.ptr, ldb,
                                        one if accumulate else one + item, out.data.ptr, ldc)
    except TypeError as exc:  # bindings of another signature: refused before any launch
        _state["direct"] = False
        warnings.warn(f"minigan: calling cuBLAS directly failed ({type(exc).__name__}: {exc});"
                      " GEMMs go through cupy.matmul from now on", RuntimeWarning, stacklevel=2)
        if accumulate:
            out += backend.cupy.matmul(a, b)
        else:
            out[...] = backend.cupy.matmul(a, b)
    return True


def _quick_layout(x, r: int, c: int):
    """``_layout`` of a 2-D array for the two layouts every GEMM of a training step has (a
    C-contiguous matrix, or the transpose of one), without the general case's arithmetic;
    None for anything else."""
    flags = x.flags
    if flags.c_contiguous:
        return OP_N, c if c > 1 else 1
    if flags.f_contiguous:
        return OP_T, r if r > 1 else 1
    return None


_MATMUL_PLANS: dict = {}  # (shapes, strides, dtypes, classes) -> _matmul_plan's answer


def _matmul_plan(a, b):
    """The cuBLAS call for ``a @ b`` when both operands are 2-D GPU arrays of one float dtype
    that cuBLAS reads as they are (C-contiguous, or the transpose of a C-contiguous matrix)
    and the sizes are usual (non-empty, 32-bit): ``(name, out shape, transa, transb, N, M, K,
    ldb, lda, alpha, beta pointers)``, the arguments of ``C^T = B^T @ A^T`` in column-major
    (see ``gemm_call``). Else "cupy" (not 2-D float32/float64 GPU arrays of one dtype: CuPy's
    matmul) or "general" (``_cublas_matmul_general``: other layouts, sizes, shape errors). It
    depends on the shapes, strides, dtypes and array classes alone, so a layer's GEMMs ask
    once."""
    dt = a.dtype
    consts = _CONSTANTS.get(dt)
    if (consts is None or a.ndim != 2 or b.ndim != 2 or b.dtype != dt
            or not backend.is_cupy_array(a) or not backend.is_cupy_array(b)):
        return "cupy"
    (m, k), (k2, n) = a.shape, b.shape
    if not (0 < k == k2 and 0 < m <= _INT_MAX and 0 < n <= _INT_MAX and k <= _INT_MAX):
        return "general"
    la, lb = _quick_layout(a, m, k), _quick_layout(b, k, n)
    if la is None or lb is None:
        return "general"
    one = consts[2]
    return consts[0], (m, n), lb[0], la[0], n, m, k, lb[1], la[1], one, one + consts[3]


def _cublas_matmul(a, b):
    """The GPU path of ``matmul``: one cuBLAS call planned by ``_matmul_plan``, or the general
    path."""
    if _state["capturable"]:
        return _capturable_matmul(a, b)
    key = (a.shape, a.strides, b.shape, b.strides, a.dtype, b.dtype, a.__class__, b.__class__)
    plan = _MATMUL_PLANS.get(key)
    if plan is None:
        plan = _matmul_plan(a, b)
        if len(_MATMUL_PLANS) < 4096:
            _MATMUL_PLANS[key] = plan
    usable = _state["direct"] and not backend.tf32_enabled()
    if plan.__class__ is tuple and usable:  # (the usual case first)
        name, shape, ta, tb, n, m, k, ldb, lda, alpha, beta = plan
        fn = getattr(backend.cublas(), name, None)
        if fn is not None:
            out = backend.cupy.empty(shape, dtype=a.dtype)
            try:
                fn(backend.cublas_handle(), ta, tb, n, m, k, alpha, b.data.ptr, ldb, a.data.ptr,
                   lda, beta, out.data.ptr, n)
                return out
            except TypeError:
                pass  # the general path below reports and falls back
    elif plan == "cupy" or not usable:
        return backend.cupy.matmul(a, b)
    (m, k), (k2, n) = a.shape, b.shape
    return _cublas_matmul_general(a, b, m, k, k2, n)


def _cublas_matmul_general(a, b, m, k, k2, n):
    """``_cublas_matmul`` for every other case: shape errors, empty or huge sizes, operands
    to copy first, bindings that refuse."""
    if k != k2:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match "
                         f"({k} != {k2})")
    if min(m, n, k) == 0 or max(m, n, k) > _INT_MAX:
        return backend.cupy.matmul(a, b)
    cp = backend.cupy
    name, _, one, item = _CONSTANTS[a.dtype]
    fn = getattr(backend.cublas(), name, None)
    if fn is None:  # a CuPy without these bindings
        return cp.matmul(a, b)
    a, b, la, lb = _operands(a, b)
    if max(la[1], lb[1]) > _INT_MAX:
        return cp.matmul(a, b)
    out = cp.empty((m, n), dtype=a.dtype)
    ta, tb, mm, nn, kk, lda, ldb, ldc = gemm_call(la, lb, m, n, k)
    try:  # alpha and beta by host pointer (cuBLAS's default pointer mode)
        fn(backend.cublas_handle(), ta, tb, mm, nn, kk, one, b.data.ptr, lda, a.data.ptr, ldb,
           one + item, out.data.ptr, ldc)
    except TypeError as exc:  # bindings of another signature: refused before any launch
        _state["direct"] = False
        warnings.warn(f"minigan: calling cuBLAS directly failed ({type(exc).__name__}: {exc});"
                      " GEMMs go through cupy.matmul from now on", RuntimeWarning, stacklevel=2)
        return cp.matmul(a, b)
    return out


def _capturable_matmul(a, b):
    """``a @ b`` of 2-D float32/float64 GPU arrays through ``backend.direct_cublas()``."""
    if (a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype not in _CONSTANTS
            or not backend.is_cupy_array(b)):
        raise TypeError(f"matmul in a CUDA-graph step: needs 2-D float32 or float64 GPU arrays "
                        f"of one dtype, got {a.dtype}{tuple(a.shape)} @ "
                        f"{getattr(b, 'dtype', type(b).__name__)}{tuple(getattr(b, 'shape', ()))}")
    if backend.tf32_enabled():
        raise TypeError("matmul in a CUDA-graph step: TF32 (CUPY_TF32=1) is not supported; "
                        "unset CUPY_TF32")
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match "
                         f"({k} != {k2})")
    cp = backend.cupy
    if min(m, n, k) == 0:
        return cp.zeros((m, n), dtype=a.dtype)
    if max(m, n, k) > _INT_MAX:
        raise ValueError(f"matmul in a CUDA-graph step: shapes {tuple(a.shape)} @ "
                         f"{tuple(b.shape)} exceed cuBLAS's 32-bit sizes")
    a, b, la, lb = _operands(a, b)
    out = cp.empty((m, n), dtype=a.dtype)
    ta, tb, mm, nn, kk, lda, ldb, ldc = gemm_call(la, lb, m, n, k)
    backend.direct_cublas().gemm(a.dtype, ta, tb, mm, nn, kk, b.data.ptr, lda, a.data.ptr, ldb,
                                 out.data.ptr, ldc)
    return out


# A Linear layer with one output (a discriminator's last layer), y = x @ w.T + b with w of
# shape (1, K): on the GPU a GEMM and a bias add would be two launches for a (N, 1) result, and
# its backward a GEMM for gw and a reduction for gb. Here each way is one kernel:
# - forward, a warp per row: the row's K products summed in double (exact products, one
#   rounding), rounded to T, then + b in T, as the add after a GEMM would round;
# - backward, gw[j] = sum_i g[i] * x[i, j] and gb = sum_i g[i] together, as the column sums of
#   the leaky/tanh backward kernels run (a block of 32 x 8 threads owns 32 columns, the 8
#   partial sums of a column are added in a fixed order, in double: deterministic); block 0
#   also sums g. With add, each is rounded to T and added into the .grad array in T. Where
#   gx = g * w is wanted too, the same pass writes it (one product per element, the values a
#   GEMM with an inner size of 1 gives); wanted alone, it is one elementwise multiply.
_ONE_OUTPUT_CUDA = r"""
extern "C" __global__ void minigan_linear1_fwd_TAG(
        const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
        T* __restrict__ y, const long long N, const long long K, const long long xrow) {
    const long long i = (long long)blockIdx.x * 8 + threadIdx.y;
    if (i >= N) return;  // a whole warp (threadIdx.y is the warp)
    const T* xi = x + i * xrow;
    double acc = 0.0;
    for (long long k = threadIdx.x; k < K; k += 32) acc += (double)xi[k] * (double)w[k];
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (threadIdx.x == 0) y[i] = (T)acc + b[0];
}

extern "C" __global__ void minigan_linear1_bwd_TAG(
        const T* __restrict__ g, const T* __restrict__ x, T* __restrict__ gw,
        T* __restrict__ gb, const long long N, const long long K, const long long xrow,
        const long long grow, const int flags, const T* __restrict__ w,
        T* __restrict__ gx) {
    // flags: 1 = write gw, 2 = write gb, 4 = add gw into gw (else store), 8 = add gb into gb,
    // 16 = write gx = g * w (N, K), C order, each product rounded to T (with gw: each (i, j)
    // is visited once, so gx costs no launch of its own)
    __shared__ double part[8][33];
    const long long j = (long long)blockIdx.x * 32 + threadIdx.x;
    double acc = 0.0, accb = 0.0;
    const bool sum_b = (flags & 2) && blockIdx.x == 0 && threadIdx.x == 0;
    const bool put_x = (flags & 16) && j < K;
    const T wj = put_x ? w[j] : (T)0;
    for (long long i = threadIdx.y; i < N; i += 8) {
        const T gt = g[i * grow];
        const double gi = (double)gt;
        if (j < K) acc += gi * (double)x[i * xrow + j];
        if (sum_b) accb += gi;
        if (put_x) gx[i * K + j] = gt * wj;
    }
    part[threadIdx.y][threadIdx.x] = acc;
    if (sum_b) part[threadIdx.y][32] = accb;
    __syncthreads();
    if (threadIdx.y != 0) return;
    if ((flags & 1) && j < K) {
        double t = 0.0;
        for (int r = 0; r < 8; ++r) t += part[r][threadIdx.x];
        gw[j] = flags & 4 ? (T)(gw[j] + (T)t) : (T)t;
    }
    if (sum_b) {
        double t = 0.0;
        for (int r = 0; r < 8; ++r) t += part[r][32];
        gb[0] = flags & 8 ? (T)(gb[0] + (T)t) : (T)t;
    }
}
"""
# Above these sizes cuBLAS's GEMMs keep the whole GPU busy where these kernels would not
# (the backward walks the N rows with 8 threads per column).
_ONE_OUTPUT_MAX_N = 1 << 13
_ONE_OUTPUT_MAX_K = 1 << 16


@functools.lru_cache(maxsize=None)
def _one_output_kernel(which: str, dtype):
    ctype, tag = FLOAT_CTYPES[np.dtype(dtype)]
    code = f"typedef {ctype} T;\n" + _ONE_OUTPUT_CUDA.replace("TAG", tag)
    return backend.raw_kernel(code, f"minigan_linear1_{which}_{tag}")


def one_output_applies(x, w, b) -> bool:
    """Whether ``linear_one_output`` takes ``x @ w.T + b``: GPU float32/float64 arrays of one
    dtype, x (N, K) and w (1, K) with contiguous rows, b (1,), 1 <= N <= 8192, 1 <= K <= 65536."""
    if not (backend.is_cupy_array(x) and x.ndim == 2 and w.shape[0] == 1 and w.ndim == 2
            and b is not None and b.shape == (1,)):
        return False
    n, k = x.shape
    return (0 < n <= _ONE_OUTPUT_MAX_N and 0 < k <= _ONE_OUTPUT_MAX_K
            and x.dtype == w.dtype == b.dtype and x.dtype in _CONSTANTS
            and backend.is_cupy_array(w) and backend.is_cupy_array(b)
            and w.flags.c_contiguous)


def linear_one_output(x, w, b):
    """``x @ w.T + b`` as one kernel, for arrays that ``one_output_applies`` accepts: (N, 1)."""
    cp = backend.cupy
    row = row_stride(x)
    if row is None:
        x, row = cp.ascontiguousarray(x), x.shape[1]
    n, k = x.shape
    y = cp.empty((n, 1), dtype=x.dtype)
    _one_output_kernel("fwd", x.dtype)(((n + 7) // 8,), (32, 8),
                                       (x, w, b, y, np.int64(n), np.int64(k), np.int64(row)))
    return y


def linear_one_output_grads(g, x, need_w: bool, need_b: bool, into_w=None, into_b=None,
                            w=None):
    """``(gw, gb)`` of ``linear_one_output`` from its output gradient g (N, 1): gw = g.T @ x of
    shape (1, K) and gb = g summed, (1,), in one kernel (None for what is not needed). With
    ``into_w``/``into_b`` (C-contiguous arrays of those shapes and g's dtype: the .grad arrays
    the engine offers) the kernel adds into them, and they are returned in their place.

    ``w`` (1, K), C-contiguous, when gw or gb is needed: also gx = g * w (N, K), each product
    rounded as the multiply ufunc rounds it, from the same kernel; returns ``(gx, gw, gb)``."""
    cp = backend.cupy
    row = row_stride(x)
    if row is None:
        x, row = cp.ascontiguousarray(x), x.shape[1]
    n, k = x.shape
    dt = x.dtype

    def usable(a, shape):
        return (a is not None and backend.is_cupy_array(a) and a.shape == shape
                and a.dtype == dt and a.flags.c_contiguous)

    add_w, add_b = need_w and usable(into_w, (1, k)), need_b and usable(into_b, (1,))
    gw = (into_w if add_w else cp.empty((1, k), dtype=dt)) if need_w else None
    gb = (into_b if add_b else cp.empty(1, dtype=dt)) if need_b else None
    gx = None
    if w is not None:
        if not (need_w or need_b) or not usable(w, (1, k)):
            raise ValueError(f"linear_one_output_grads: gx comes with gw or gb, from a "
                             f"C-contiguous (1, {k}) weight of {dt}, got "
                             f"{getattr(w, 'dtype', type(w).__name__)}"
                             f"{tuple(getattr(w, 'shape', ()))}")
        gx = cp.empty((n, k), dtype=dt)
    if need_w or need_b:
        grow = g.strides[0] // dt.itemsize if g.shape[0] > 1 else 1
        flags = need_w | need_b << 1 | add_w << 2 | add_b << 3 | (gx is not None) << 4
        some = gw if need_w else gb
        _one_output_kernel("bwd", dt)(
            ((k + 31) // 32 if need_w or gx is not None else 1,), (32, 8),
            (g, x, some, gb if need_b else gw, np.int64(n), np.int64(k),
             np.int64(row), np.int64(grow), np.int32(flags), some if w is None else w,
             some if gx is None else gx))
    return (gw, gb) if w is None else (gx, gw, gb)
