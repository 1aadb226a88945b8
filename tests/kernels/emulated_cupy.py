"""A CPU stand-in for CuPy, for running minigan's GPU code paths end to end without a GPU.

``install(monkeypatch)`` makes ``minigan.backend`` see this module as CuPy with one GPU. Device
arrays are then instances of :class:`ndarray`, a NumPy subclass kept apart from host arrays, and
every GPU kernel minigan generates runs on the CPU from its own CUDA source:

* ``ElementwiseKernel``: the operation is compiled by g++ inside a loop over the elements, with
  CuPy's binding rules (type placeholders from the arguments, broadcasting of the non-raw
  arguments, outputs allocated when not given, raw arguments indexed by C-order position).
* ``RawKernel``: the parameter list is read from the source and the kernel is called once per
  (block, thread). Each argument is handed over the way a CUDA launch does, as a pointer to the
  argument's own bytes (a Python int is 8 bytes and a float a double, as in CuPy), and a scalar
  whose size or kind differs from the declared parameter is refused instead of read wrongly.
  Kernels that call ``__syncthreads`` or warp shuffles run their block's threads as cooperative
  contexts (a stack each) that switch at every barrier, so shared memory and shuffles behave as
  on a GPU.
* NumPy functions, ufuncs and operators on device arrays run NumPy's code and give device arrays.

What a GPU would refuse is refused: a host NumPy array handed to a device op or kernel
(``TypeError``, as CuPy raises), and a kernel source g++ cannot compile. What is counted
(:data:`LOG`): every launch by kind and name, and every host synchronisation (``.get()``,
``float()``, ``.item()``, ``bool()``, ``asnumpy``, ``synchronize``), so tests can check the
number of kernels a training step launches and that it never waits on the device.

Stream capture (``Stream.begin_capture`` ... ``end_capture``, then ``Graph.launch``) behaves
as CUDA's: work issued to the capturing stream is recorded, not run. A recorded op that makes a
new array returns it filled with garbage (NaN, or 0xA5 bytes) until a replay writes it; a host
synchronisation, an upload or a cuBLAS call through CuPy's bindings during the capture raises, as
on a GPU; a replay runs the recorded ops again with the arguments they were recorded with (so a
Python number frozen into the graph stays frozen). The graph holds its arrays alive.

It says nothing about speed, and kernels run one thread at a time: races between threads that
write the same element without atomics are not found.
"""
from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import hashlib
import math
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import threading
import types

import numpy as np

__version__ = "14.emulated"

# What was launched, and every host synchronisation, since the last LOG.clear()


class _Log:
    def __init__(self):
        self.clear()

    def clear(self):
        self.launches = collections.Counter()  # (kind, name) -> count
        self.syncs = collections.Counter()  # what -> count
        self.uploads = 0

    def launch(self, kind: str, name: str) -> None:
        if not _CAP.replaying:  # a replay is one launch (kind "graph"), not its kernels
            self.launches[(kind, name)] += 1

    def sync(self, what: str) -> None:
        if _CAP.stream is not None:
            raise CUDARuntimeError(f"cudaErrorStreamCaptureUnsupported: {what} (a host "
                                   "synchronisation) while a stream is capturing")
        self.syncs[what] += 1

    def upload(self, what: str) -> None:
        if _capturing():
            raise CUDARuntimeError(f"cudaErrorStreamCaptureUnsupported: {what} (a copy from "
                                   "host memory) on a capturing stream")
        self.uploads += 1

    @property
    def n_launches(self) -> int:
        return sum(self.launches.values())

    def by_kind(self) -> dict:
        out = collections.Counter()
        for (kind, _), n in self.launches.items():
            out[kind] += n
        return dict(out)


class CUDARuntimeError(RuntimeError):
    pass


class _CaptureState:
    """The stream that is capturing (at most one) and the ops recorded so far."""

    def __init__(self):
        self.stream = None
        self.ops = None
        self.keep = None  # every device array made during the capture
        self.replaying = False


_CAP = _CaptureState()
_STREAMS = []  # the streams entered with ``with stream:``, innermost last
_USED = []  # the stream made current by ``stream.use()``, if any


def _current_stream():
    if _STREAMS:
        return _STREAMS[-1]
    return _USED[-1] if _USED else Stream.null


def _capturing() -> bool:
    """True when work issued now goes to the capturing stream (and so is recorded)."""
    return _CAP.stream is not None and _current_stream() is _CAP.stream


def _defer(op) -> bool:
    """Record ``op`` when capturing (True: the caller must not run it now)."""
    if _capturing():
        _CAP.ops.append(op)
        return True
    return False


def _poison(h) -> None:
    if h.dtype.kind in "fc":
        h.fill(np.nan)
    elif h.dtype.kind == "b":
        h.fill(True)
    elif h.size:
        h.view(np.uint8).fill(0xA5) if h.flags.c_contiguous else h.fill(-1)


def _made(res, recompute, *inputs):
    """``res``, a result just computed by an op that makes new arrays. When capturing, it is
    garbage until a replay runs ``recompute`` and writes the values into it; a result that is a
    view of an input needs nothing."""
    if not _capturing():
        return res
    outs = res if isinstance(res, tuple) else (res,)
    arrays = [_host(o) for o in outs if isinstance(o, np.ndarray)]
    ins = [_host(a) for a in _flat(inputs) if isinstance(a, np.ndarray)]
    if not arrays or any(np.may_share_memory(o, a) for o in arrays for a in ins):
        return res

    def replay():
        new = recompute()
        new = new if isinstance(new, tuple) else (new,)
        for o, v in zip(arrays, new):
            np.copyto(o, _host(v), casting="unsafe")
    for o in arrays:
        _poison(o)
    _CAP.ops.append(replay)
    return res


LOG = _Log()

# NumPy functions that launch nothing on a GPU (views, metadata, allocation without filling)
_NO_LAUNCH = frozenset({
    "reshape", "transpose", "swapaxes", "moveaxis", "broadcast_to", "broadcast_arrays",
    "expand_dims", "squeeze", "atleast_1d", "atleast_2d", "atleast_3d", "shape", "ndim", "size",
    "result_type", "can_cast", "may_share_memory", "shares_memory", "empty_like", "ravel",
    "split", "array_split", "iscomplexobj", "isrealobj", "diagonal",
})


# NumPy functions that write into an argument and return None
_IN_PLACE = frozenset({"copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"})
_JOINS = frozenset({"concatenate", "stack", "vstack", "hstack", "column_stack", "concat"})


@contextlib.contextmanager
def _cupy_index_errors():
    """CuPy raises ValueError where NumPy raises IndexError for index arrays that do not
    broadcast together (read or written through)."""
    try:
        yield
    except IndexError as e:
        if "broadcast" in str(e):
            raise ValueError(f"operands could not be broadcast together: {e}") from None
        raise


class ndarray(np.ndarray):
    """A device array: NumPy storage, CuPy's rules about mixing with host arrays."""

    __array_priority__ = 100.0

    def __array_finalize__(self, obj):
        if _CAP.stream is not None:  # a graph may hold raw pointers into it (a GEMM's)
            _CAP.keep.append(self)
        # Every device array here is a NumPy view of the host array that holds its storage.
        # The one that wraps a whole fresh host array stands for a CuPy array that owns its
        # memory (base None); a view of a device array is a view (base set), as in CuPy.
        self._owns = (type(obj) is np.ndarray and obj.base is None
                      and obj.shape == self.shape and obj.dtype == self.dtype)

    @property
    def base(self):
        """CuPy's ``base``: None for an array that owns its memory, else what it views."""
        return None if self._owns else np.ndarray.base.__get__(self)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs, ufunc.__name__)
        args = [_host(a) for a in inputs]
        if out is not None:
            _refuse_host(out, ufunc.__name__)
            kwargs["out"] = tuple(_host(o) for o in out)
        LOG.launch("ufunc", ufunc.__name__ if method == "__call__"
                   else f"{ufunc.__name__}.{method}")

        def run():
            with np.errstate(all="ignore") if _capturing() else contextlib.nullcontext():
                return getattr(ufunc, method)(*args, **kwargs)  # (garbage inputs in a capture)
        if out is not None or method == "at":  # in place
            if not _defer(run):
                run()
            if out is None:
                return None
            return out[0] if len(out) == 1 else out
        return _made(_wrap(run()), run, args)

    def __array_function__(self, func, types_, args, kwargs):
        name = func.__name__
        _refuse_host(args, name)
        _refuse_host(tuple(kwargs.values()), name)
        hargs = _host_tree(args)
        hkwargs = {k: _host_tree(v) for k, v in kwargs.items()}

        def run():
            return func(*hargs, **hkwargs)
        if name in _JOINS and args and isinstance(args[0], (list, tuple)) and len(args[0]) > 8:
            # CuPy joins more than 8 arrays in one kernel that reads a table of their device
            # pointers, which it copies from the host first (_concatenate_single_kernel)
            LOG.upload(f"{name} of {len(args[0])} arrays")
        if name in _IN_PLACE or kwargs.get("out") is not None:
            LOG.launch("function", name)
            if not _defer(run):
                run()
            return kwargs.get("out")
        res = run()
        if name == "ascontiguousarray":
            if _data_ptr(res) != _data_ptr(hargs[0]):
                LOG.launch("copy", "ascontiguousarray")
        elif name not in _NO_LAUNCH:
            LOG.launch("function", name)
        return _made(_wrap(res), run, hargs, list(hkwargs.values()))

    # methods that copy or fill (no ufunc or array-function hook reaches them)
    def copy(self, order="C"):
        LOG.launch("copy", "copy")
        h = np.asarray(self)
        return _made(h.copy(order).view(ndarray), lambda: h.copy(order), h)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        LOG.launch("copy", "astype")
        h = np.asarray(self)

        def run():
            return h.astype(dtype, order=order, casting=casting)
        return _made(run().view(ndarray), run, h)

    def fill(self, value):
        LOG.launch("fill", "fill")
        h = np.asarray(self)
        if not _defer(lambda: h.fill(value)):
            h.fill(value)

    def reshape(self, *shape, order="C"):
        h = np.asarray(self)
        res = h.reshape(*shape, order=order)
        if not np.may_share_memory(res, h):
            LOG.launch("copy", "reshape")
            return _made(res.view(ndarray), lambda: h.reshape(*shape, order=order), h)
        return res.view(ndarray)

    def ravel(self, order="C"):
        return self.reshape(-1, order=order)

    def flatten(self, order="C"):
        LOG.launch("copy", "flatten")
        h = np.asarray(self)
        return _made(h.flatten(order).view(ndarray), lambda: h.flatten(order), h)

    def __getitem__(self, key):
        h, k = np.asarray(self), _host_tree(key)
        if _capturing():  # index arrays may hold garbage now: the shape from zeros in their place
            probe = tuple(np.zeros_like(i) if isinstance(i, np.ndarray) and i.dtype.kind in "iu"
                          else i for i in (k if isinstance(k, tuple) else (k,)))
            res = h[probe if isinstance(k, tuple) else probe[0]]
        else:
            with _cupy_index_errors():
                res = h[k]
        if isinstance(res, np.generic):  # integers only: CuPy gives a 0-d view, NumPy a copy
            res = h[(k if isinstance(k, tuple) else (k,)) + (Ellipsis,)]
        if res.size and not np.may_share_memory(res, h):
            LOG.launch("gather", "getitem")
            return _made(res.view(ndarray), lambda: h[k], h, k)
        return res.view(ndarray)

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray) and not isinstance(value, ndarray):
            LOG.upload("setitem")  # CuPy copies a host value to the device first
        LOG.launch("copy", "setitem")
        h, k, v = np.asarray(self), _host_tree(key), _host(value)

        def run():
            with _cupy_index_errors():
                h[k] = v
        if not _defer(run):
            run()

    # CuPy's own
    def get(self, stream=None, order="C", out=None):
        LOG.sync("get")
        return np.array(np.asarray(self), order=order)

    def set(self, arr):
        LOG.upload("set")
        np.asarray(self)[...] = arr

    @property
    def device(self):
        return Device(0)

    @property
    def data(self):
        """The memory pointer, as CuPy's ``x.data.ptr`` (the address of x's first element)."""
        return _MemoryPointer(_data_ptr(self))

    # host reads: each one waits for the device
    def item(self, *args):
        LOG.sync("item")
        return np.asarray(self).item(*args)

    def tolist(self):
        LOG.sync("tolist")
        return np.asarray(self).tolist()

    def __float__(self):
        LOG.sync("float")
        return float(np.asarray(self))

    def __int__(self):
        LOG.sync("int")
        return int(np.asarray(self))

    def __index__(self):
        LOG.sync("index")
        return int(np.asarray(self))

    def __bool__(self):
        LOG.sync("bool")
        return bool(np.asarray(self))

    def __repr__(self):
        return "emulated_" + repr(np.asarray(self))

    def __reduce__(self):
        raise TypeError("an (emulated) CuPy array cannot be pickled here; use .get() first")


class _MemoryPointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


def have_cxx() -> bool:
    return shutil.which("g++") is not None


def _data_ptr(a) -> int:
    return a.__array_interface__["data"][0] if isinstance(a, np.ndarray) else -1


def _host(a):
    return a.view(np.ndarray) if isinstance(a, ndarray) else a


def _host_tree(a):
    if isinstance(a, ndarray):
        return a.view(np.ndarray)
    if isinstance(a, (list, tuple)):
        return type(a)(_host_tree(x) for x in a)
    return a


def _refuse_host(args, what) -> None:
    for a in args:
        if isinstance(a, (list, tuple)):
            _refuse_host(a, what)
        elif type(a) is np.ndarray:
            raise TypeError(f"Unsupported type {type(a)} in {what}: a host (NumPy) array mixed "
                            "with device arrays")


def _wrap(res):
    if isinstance(res, tuple):
        return tuple(_wrap(r) for r in res)
    if isinstance(res, list):
        return [_wrap(r) for r in res]
    if isinstance(res, np.generic):  # CuPy gives 0-d arrays, never scalars
        return np.asarray(res).view(ndarray)
    if type(res) is np.ndarray:
        return res.view(ndarray)
    return res


def _device(a) -> ndarray:
    return a if isinstance(a, ndarray) else np.asarray(a).view(ndarray)


# Module-level functions: NumPy's, on device arrays

_CREATE = {"empty": None, "zeros": "fill", "ones": "fill", "full": "fill",
           "zeros_like": "fill", "ones_like": "fill", "full_like": "fill", "arange": "fill",
           "linspace": "fill", "eye": "fill", "identity": "fill", "empty_like": None,
           "tri": "fill", "indices": "fill"}


def _creation(name, kind):
    func = getattr(np, name)

    def create(*args, **kwargs):
        _refuse_host(args, name)
        hargs = _host_tree(args)
        res = func(*hargs, **kwargs).view(ndarray)
        if kind:
            LOG.launch(kind, name)
            return _made(res, lambda: func(*hargs, **kwargs))
        return res
    create.__name__ = name
    return create


def asarray(a, dtype=None, order=None, *, blocking=False):
    if isinstance(a, ndarray):
        h = _host(a)
        res = np.asarray(h, dtype=dtype, order=order)
        if res is not h and _data_ptr(res) != _data_ptr(a):
            LOG.launch("copy", "asarray")
            return _made(res.view(ndarray), lambda: np.asarray(h, dtype=dtype, order=order), h)
        return res.view(ndarray)
    LOG.upload("asarray")  # host to device
    return np.array(a, dtype=dtype, order=order or "K", copy=True).view(ndarray)


def array(a, dtype=None, copy=True, order="K", ndmin=0, **kwargs):
    h = _host(a)

    def run():
        return np.array(h, dtype=dtype, copy=True, order=order, ndmin=ndmin)
    if isinstance(a, ndarray):
        LOG.launch("copy", "array")
        return _made(run().view(ndarray), run, h)
    LOG.upload("array")
    return run().view(ndarray)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}: ascontiguousarray of a host array")
    h = _host(a)
    res = np.ascontiguousarray(h, dtype=dtype)
    if _data_ptr(res) != _data_ptr(a) or res.dtype != a.dtype:
        LOG.launch("copy", "ascontiguousarray")
        return _made(res.view(ndarray), lambda: np.ascontiguousarray(h, dtype=dtype), h)
    return res.view(ndarray)


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    if isinstance(a, ndarray):
        LOG.sync("asnumpy")
        return np.array(_host(a), order=order)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return _module if any(isinstance(a, ndarray) for a in args) else np


# Kernels


_CTYPE_OF = {
    np.dtype(np.float16): "__half", np.dtype(np.float32): "float",
    np.dtype(np.float64): "double", np.dtype(np.int8): "signed char",
    np.dtype(np.uint8): "unsigned char", np.dtype(np.int16): "short",
    np.dtype(np.uint16): "unsigned short", np.dtype(np.int32): "int",
    np.dtype(np.uint32): "unsigned int", np.dtype(np.int64): "long long",
    np.dtype(np.uint64): "unsigned long long", np.dtype(np.bool_): "bool",
}
_DTYPE_NAMES = {"float16", "float32", "float64", "int8", "uint8", "int16", "uint16", "int32",
                "uint32", "int64", "uint64", "bool"}

_PRELUDE = r"""
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstddef>
#include <algorithm>
#include <memory>
#include <ucontext.h>
#include <vector>
using namespace std;
namespace mg_emu { struct dim3 { unsigned int x, y, z; }; }
static mg_emu::dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
template <class P> static inline P __ldg(const P* p) { return *p; }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __fdividef(float a, float b) { return a / b; }
// products with their own rounding: g++ in an ISO mode (-std=c++17) does not contract
// a*b + c into a fused multiply-add, so these are plain products
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
template <class A, class B> static inline auto min(A a, B b) { return a < b ? a : b; }
template <class A, class B> static inline auto max(A a, B b) { return a < b ? b : a; }
"""

# Cooperative threads for kernels with barriers: every thread of a block is a ucontext; a thread
# that reaches a barrier switches back to the scheduler, which resumes the others until all the
# barrier's threads have arrived.
_COOP = r"""
namespace mg_emu {
// A context switch: on x86-64 six callee-saved registers and the stack pointer (a few ns);
// elsewhere ucontext, whose swapcontext also saves the signal mask (a system call).
#if defined(__x86_64__) && !defined(MG_EMU_UCONTEXT)
struct Uc { void* sp; };
extern "C" void mg_emu_switch(void** save_sp, void* load_sp);
asm(".text\n.globl mg_emu_switch\n.hidden mg_emu_switch\n.type mg_emu_switch,@function\n"
    "mg_emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    ".size mg_emu_switch, .-mg_emu_switch\n");
static inline void uc_switch(Uc* from, Uc* to) { mg_emu_switch(&from->sp, to->sp); }
static inline void uc_make(Uc* c, char* stack, size_t size, void (*entry)()) {
    // the first switch pops six zero registers and returns into entry, with the stack aligned
    // as after a call
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void** sp = (void**)(top - 64);
    for (int k = 0; k < 6; ++k) sp[k] = nullptr;
    sp[6] = (void*)entry;
    sp[7] = nullptr;
    c->sp = sp;
}
#else
struct Uc { ucontext_t uc; };
static inline void uc_switch(Uc* from, Uc* to) { swapcontext(&from->uc, &to->uc); }
static inline void uc_make(Uc* c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack; c->uc.uc_stack.ss_size = size; c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
#endif
struct Ctx { Uc uc; std::unique_ptr<char[]> stack; unsigned int tx, ty, tz; int done;
             int wait; long long wait_gen; };
static Uc sched_uc;
static std::vector<Ctx> ctxs;
static int cur = -1, nthreads = 0;
static long long progress = 0;
static std::vector<int> bar_count;  // arrivals per barrier id (0: block, 1 + w: warp w)
static std::vector<long long> bar_gen;
static unsigned char shfl_buf[1024][8];
static inline int linear_tid() { return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x
                                        + threadIdx.x; }
static inline void wait_at(int id, int members) {
    const long long gen = bar_gen[id];
    ++progress;
    if (++bar_count[id] == members) { bar_count[id] = 0; ++bar_gen[id]; return; }
    while (bar_gen[id] == gen) {
        ctxs[cur].wait = id + 1;
        ctxs[cur].wait_gen = gen;
        uc_switch(&ctxs[cur].uc, &sched_uc);
    }
}
static inline int warp_members(int w) {
    const int rest = nthreads - 32 * w;
    return rest < 32 ? rest : 32;
}
}
static inline void __syncthreads() { mg_emu::wait_at(0, mg_emu::nthreads); }
static inline void __syncwarp(unsigned int = 0xffffffffu) {
    const int w = mg_emu::linear_tid() >> 5;
    mg_emu::wait_at(1 + w, mg_emu::warp_members(w));
}
template <class V> static inline V mg_emu_exchange(V v, int src) {
    const int t = mg_emu::linear_tid(), w = t >> 5;
    std::memcpy(mg_emu::shfl_buf[t], &v, sizeof(V));
    __syncwarp();
    V out;
    const int s = 32 * w + src;
    std::memcpy(&out, mg_emu::shfl_buf[s < mg_emu::nthreads ? s : t], sizeof(V));
    __syncwarp();
    return out;
}
template <class V> static inline V __shfl_xor_sync(unsigned int, V v, int m, int = 32) {
    return mg_emu_exchange(v, (mg_emu::linear_tid() & 31) ^ m);
}
template <class V> static inline V __shfl_down_sync(unsigned int, V v, unsigned int d, int = 32) {
    const int l = mg_emu::linear_tid() & 31;
    return mg_emu_exchange(v, l + (int)d < 32 ? l + (int)d : l);
}
template <class V> static inline V __shfl_up_sync(unsigned int, V v, unsigned int d, int = 32) {
    const int l = mg_emu::linear_tid() & 31;
    return mg_emu_exchange(v, l - (int)d >= 0 ? l - (int)d : l);
}
template <class V> static inline V __shfl_sync(unsigned int, V v, int src, int = 32) {
    return mg_emu_exchange(v, src & 31);
}
"""

_CACHE_DIR = pathlib.Path(os.environ.get(
    "MINIGAN_EMU_CACHE", pathlib.Path(tempfile.gettempdir()) / f"minigan_cuda_emu_{os.getuid()}"))
_compile_lock = threading.Lock()
# True: cooperative kernels switch threads with ucontext even on x86-64 (the portable path)
USE_UCONTEXT = False


def _compile(text: str, what: str) -> ctypes.CDLL:
    tag = hashlib.sha1(text.encode()).hexdigest()[:20]
    lib = _CACHE_DIR / f"emu_{tag}.so"
    with _compile_lock:
        if not lib.exists():
            _CACHE_DIR.mkdir(parents=True, exist_ok=True)
            src = _CACHE_DIR / f"emu_{tag}.{os.getpid()}.cpp"
            src.write_text(text)
            tmp = lib.with_suffix(f".{os.getpid()}.tmp")
            res = subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-w", "-o",
                                  str(tmp), str(src)],
                                 capture_output=True, text=True, timeout=300, check=False)
            src.unlink(missing_ok=True)
            if res.returncode:
                raise CompileException(f"{what}: g++ could not compile the emulated kernel:\n"
                                       f"{res.stderr[-4000:]}")
            os.replace(tmp, lib)
        return ctypes.CDLL(str(lib))


class CompileException(Exception):
    pass


def _scalar_bytes(v):
    """The bytes a CUDA launch would pass for a scalar argument, and its NumPy dtype."""
    if isinstance(v, np.generic):
        arr = np.array(v)
    elif isinstance(v, bool):
        arr = np.array(v, dtype=np.bool_)
    elif isinstance(v, int):
        arr = np.array(v, dtype=np.int64)
    elif isinstance(v, float):
        arr = np.array(v, dtype=np.float64)
    else:
        raise TypeError(f"Unsupported type {type(v)} as a kernel argument")
    return arr


_PARAM_TYPES = {
    "float": np.float32, "double": np.float64, "int": np.int32, "unsigned int": np.uint32,
    "unsigned": np.uint32, "long long": np.int64, "long long int": np.int64,
    "unsigned long long": np.uint64, "long": np.int64, "unsigned long": np.uint64,
    "bool": np.bool_, "char": np.int8, "signed char": np.int8, "unsigned char": np.uint8,
    "short": np.int16, "unsigned short": np.uint16, "size_t": np.uint64,
    "ptrdiff_t": np.int64, "int64_t": np.int64, "int32_t": np.int32, "uint32_t": np.uint32,
    "uint64_t": np.uint64,
}


def _parse_params(code: str, name: str):
    m = re.search(r"__global__\s+void\s+" + re.escape(name) + r"\s*\(", code)
    if m is None:
        raise CompileException(f"no kernel named {name!r} in the source")
    depth, i = 1, m.end()
    while depth:
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        i += 1
    plist = re.sub(r"//[^\n]*|/\*.*?\*/", " ", code[m.end():i - 1], flags=re.DOTALL)
    typedefs = {new: " ".join(old.split())
                for old, new in re.findall(r"typedef\s+([\w ]+?)\s+(\w+)\s*;", code)}
    params = []
    for p in (s.strip() for s in plist.split(",")):
        if not p:
            continue
        p = re.sub(r"\b(__restrict__|__restrict|const)\b", " ", p)
        p = " ".join(p.replace("*", " * ").split())
        decl, _, _pname = p.rpartition(" ")
        if "*" in decl:
            params.append(("ptr", decl.replace(" *", "*").strip()))
        else:
            decl = typedefs.get(decl, decl)
            if decl not in _PARAM_TYPES:
                raise CompileException(f"kernel {name}: unknown scalar parameter type {decl!r}")
            params.append(("scalar", decl))
    return params


class RawKernel:
    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False,
                 *, enable_cooperative_groups=False, jitify=False):
        self.code, self.name, self.options = code, name, tuple(options)
        self.params = _parse_params(code, name)
        self.cooperative = bool(re.search(r"__syncthreads|__shfl|__syncwarp", code))
        self._fn, self._built_ucontext = None, None

    def _build(self):
        if self._fn is not None and self._built_ucontext == USE_UCONTEXT:
            return self._fn
        self._built_ucontext = USE_UCONTEXT
        call = []
        for k, (kind, decl) in enumerate(self.params):
            if kind == "ptr":
                call.append(f"*({decl}*)a[{k}]")
            else:
                call.append(f"*({decl}*)a[{k}]")
        args = ", ".join(call)
        if self.cooperative:
            body = f"""
static void** mg_args;
static void mg_entry() {{
    {self.name}({", ".join(c.replace("a[", "mg_args[") for c in call)});
    mg_emu::ctxs[mg_emu::cur].done = 1;
    ++mg_emu::progress;
    mg_emu::uc_switch(&mg_emu::ctxs[mg_emu::cur].uc, &mg_emu::sched_uc);  // never resumed
    __builtin_unreachable();
}}
extern "C" int mg_launch(unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                         unsigned int by, unsigned int bz, void** a) {{
    using namespace mg_emu;
    gridDim = {{gx, gy, gz}}; blockDim = {{bx, by, bz}};
    nthreads = (int)(bx * by * bz);
    if (nthreads > 1024) return 1;
    mg_args = a;
    ctxs.clear(); ctxs.resize(nthreads);
    for (int t = 0; t < nthreads; ++t) ctxs[t].stack.reset(new char[1 << 16]);
    bar_count.assign(2 + nthreads / 32, 0); bar_gen.assign(2 + nthreads / 32, 0);
    for (unsigned int z = 0; z < gz; ++z) for (unsigned int y = 0; y < gy; ++y)
    for (unsigned int x = 0; x < gx; ++x) {{
        int t = 0;
        for (unsigned int tz = 0; tz < bz; ++tz) for (unsigned int ty = 0; ty < by; ++ty)
        for (unsigned int tx = 0; tx < bx; ++tx, ++t) {{
            Ctx& c = ctxs[t];
            c.tx = tx; c.ty = ty; c.tz = tz; c.done = 0; c.wait = 0;
            uc_make(&c.uc, c.stack.get(), 1 << 16, mg_entry);
        }}
        blockIdx = {{x, y, z}};
        for (bool again = true; again;) {{
            again = false;
            const long long before = progress;
            for (t = 0; t < nthreads; ++t) {{
                Ctx& c = ctxs[t];
                if (c.done) continue;
                again = true;
                // still held at a barrier that has not opened: no need to switch to it
                if (c.wait && bar_gen[c.wait - 1] == c.wait_gen) continue;
                cur = t; threadIdx = {{c.tx, c.ty, c.tz}};
                c.wait = 0;
                uc_switch(&sched_uc, &c.uc);
            }}
            if (again && progress == before) return 2;
        }}
    }}
    return 0;
}}
"""
            text = ("#define MG_EMU_UCONTEXT\n" if USE_UCONTEXT else "") + _PRELUDE + _COOP \
                + self.code + body
        else:
            body = f"""
extern "C" int mg_launch(unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                         unsigned int by, unsigned int bz, void** a) {{
    gridDim = {{gx, gy, gz}}; blockDim = {{bx, by, bz}};
    for (unsigned int z = 0; z < gz; ++z) for (unsigned int y = 0; y < gy; ++y)
    for (unsigned int x = 0; x < gx; ++x) {{
        blockIdx = {{x, y, z}};
        for (unsigned int tz = 0; tz < bz; ++tz) for (unsigned int ty = 0; ty < by; ++ty)
        for (unsigned int tx = 0; tx < bx; ++tx) {{
            threadIdx = {{tx, ty, tz}};
            {self.name}({args});
        }}
    }}
    return 0;
}}
"""
            text = _PRELUDE + self.code + body
        lib = _compile(text, f"RawKernel {self.name}")
        fn = lib.mg_launch
        fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.POINTER(ctypes.c_void_p)]
        fn.restype = ctypes.c_int
        self._lib, self._fn = lib, fn
        return fn

    def __call__(self, grid, block, args, *, shared_mem=0, enable_cooperative_groups=False):
        grid, block = _dim3(grid), _dim3(block)
        if len(args) != len(self.params):
            raise TypeError(f"kernel {self.name} takes {len(self.params)} arguments, "
                            f"{len(args)} given")
        if block[0] * block[1] * block[2] > 1024:
            raise ValueError(f"kernel {self.name}: {block} threads per block is over 1024")
        keep, slots = [], []
        for k, ((kind, decl), a) in enumerate(zip(self.params, args)):
            if kind == "ptr":
                if isinstance(a, np.ndarray) and not isinstance(a, ndarray):
                    raise TypeError(f"kernel {self.name}, argument {k}: a host NumPy array "
                                    "where a device pointer is expected")
                if not isinstance(a, ndarray):
                    raise TypeError(f"kernel {self.name}, argument {k}: expected a device "
                                    f"array for {decl}, got {type(a).__name__}")
                ptr = np.array(_data_ptr(a), dtype=np.uintp)
                keep.append(ptr)
                slots.append(ptr.ctypes.data)
            else:
                if isinstance(a, np.ndarray):
                    raise TypeError(f"kernel {self.name}, argument {k}: an array for the "
                                    f"scalar parameter {decl}")
                v = _scalar_bytes(a)
                want = np.dtype(_PARAM_TYPES[decl])
                if v.dtype.itemsize != want.itemsize or (v.dtype.kind == "f") != (want.kind == "f"):
                    raise TypeError(f"kernel {self.name}, argument {k}: parameter {decl} "
                                    f"({want.itemsize} bytes) given a {v.dtype} "
                                    f"({v.dtype.itemsize} bytes); the kernel would read it "
                                    "wrongly")
                keep.append(v)
                slots.append(v.ctypes.data)
        fn = self._build()
        arr = (ctypes.c_void_p * max(len(slots), 1))(*slots)
        LOG.launch("raw", self.name)
        arrays = [a for a in args if isinstance(a, ndarray)]  # a graph keeps them alive

        def run():
            assert keep is not None  # arr points into keep's buffers: the closure holds them
            rc = fn(*grid, *block, arr)
            if rc:
                raise RuntimeError(f"kernel {self.name}: emulated launch failed ({rc}: "
                                   + ("deadlock at a barrier" if rc == 2 else
                                      "too many threads") + f"; {len(arrays)} arrays)")
        if not _defer(run):
            run()

    @property
    def attributes(self):
        return {}


def _dim3(d):
    d = tuple(int(v) for v in (d if isinstance(d, (tuple, list)) else (d,)))
    return d + (1,) * (3 - len(d))


def _parse_ew_params(s: str):
    out = []
    for p in (x.strip() for x in s.split(",")):
        if not p:
            continue
        parts = p.split()
        raw = parts[0] == "raw"
        if raw:
            parts = parts[1:]
        if len(parts) != 2:
            raise ValueError(f"bad parameter {p!r}")
        out.append((raw, parts[0], parts[1]))
    return out


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, loop_prep="",
                 after_loop="", options=()):
        self.in_params = _parse_ew_params(in_params)
        self.out_params = _parse_ew_params(out_params)
        self.operation, self.name, self.preamble = operation, name, preamble
        self.return_tuple = return_tuple
        self._libs = {}

    def _lib(self, ctypes_of: dict, params):
        key = (tuple(sorted(ctypes_of.items())), tuple(p[3] for p in params))
        if key in self._libs:
            return self._libs[key]
        lines = []
        for k, (raw, typ, pname, role) in enumerate(params):
            ct = ctypes_of.get(typ) or _CTYPE_OF[np.dtype(typ)]
            if raw:
                lines.append(f"mg_raw<{ct}> {pname}{{({ct}*)a[{k}], n_{pname}}};")
            elif role == "scalar":
                lines.append(f"const {ct} {pname} = *({ct}*)a[{k}];")
            elif role == "in":
                lines.append(f"const {ct} {pname} = (({ct}*)a[{k}])[i];")
            else:
                lines.append(f"{ct}& {pname} = (({ct}*)a[{k}])[i];")
        sizes = ", ".join(f"long long n_{p[2]}" for p in params if p[0])
        typedefs = "".join(f"typedef {ct} {ph};\n" for ph, ct in ctypes_of.items())
        raw_decls = [ln for ln in lines if ln.startswith("mg_raw")]
        elem_decls = [ln for ln in lines if not ln.startswith("mg_raw")]
        text = (_PRELUDE + r"""
template <class V> struct mg_raw {
    V* p; long long n;
    V& operator[](long long k) const { return p[k]; }
    long long size() const { return n; }
};
struct mg_ind { long long n; long long size() const { return n; } };
""" + typedefs + self.preamble + f"""
extern "C" void mg_ew(long long n, void** a{", " if sizes else ""}{sizes}) {{
    {" ".join(raw_decls)}
    const mg_ind _ind{{n}};
    for (long long i = 0; i < n; ++i) {{
        {" ".join(elem_decls)}
        {self.operation};
    }}
}}
""")
        lib = _compile(text, f"ElementwiseKernel {self.name}")
        self._libs[key] = lib
        return lib

    def __call__(self, *args, size=None, block_size=None, **kwargs):
        nin, nout = len(self.in_params), len(self.out_params)
        if len(args) not in (nin, nin + nout):
            raise TypeError(f"Wrong number of arguments for {self.name!r}: {nin} or "
                            f"{nin + nout} expected, {len(args)} given")
        outs_given = len(args) == nin + nout
        params = [(r, t, n, "in") for r, t, n in self.in_params] + \
                 [(r, t, n, "out") for r, t, n in self.out_params]
        values = list(args) + [None] * (0 if outs_given else nout)
        # bind the type placeholders from arrays first, then NumPy scalars
        bound = {}
        for (raw, typ, pname, _), v in zip(params, values):
            if typ in _DTYPE_NAMES or v is None:
                continue
            if isinstance(v, np.ndarray):
                if not isinstance(v, ndarray):
                    raise TypeError(f"{self.name}: argument {pname!r} is a host NumPy array; "
                                    "Unsupported type <class 'numpy.ndarray'>")
                if typ in bound and bound[typ] != v.dtype:
                    raise TypeError(f"{self.name}: type is mismatched: {pname!r} is {v.dtype}, "
                                    f"{typ} is already {bound[typ]}")
                bound[typ] = v.dtype
        for (raw, typ, pname, _), v in zip(params, values):
            if typ in _DTYPE_NAMES or v is None or typ in bound:
                continue
            if isinstance(v, np.generic):
                bound[typ] = v.dtype
            elif isinstance(v, (bool, int, float)):
                bound[typ] = np.result_type(v)
        if _capturing():  # allocate the outputs now, run with them at each replay
            for k, ((raw, typ, pname, role), v) in enumerate(zip(params, values)):
                if role == "out" and v is None and not raw:
                    dt = np.dtype(typ) if typ in _DTYPE_NAMES else bound.get(typ)
                    if dt is None:
                        raise TypeError(f"{self.name}: cannot decide the type of output "
                                        f"{pname!r}")
                    arrays = [a for (r, *_), a in zip(params, values)
                              if not r and isinstance(a, ndarray)]
                    shape = (np.broadcast_shapes(*[a.shape for a in arrays]) if arrays
                             else (int(size),))
                    values[k] = np.empty(shape, dtype=dt).view(ndarray)
                    _poison(_host(values[k]))
            LOG.launch("elementwise", self.name)
            full = list(values)
            _CAP.ops.append(lambda: self(*full, size=size))
            outs = values[nin:]
            return outs[0] if len(outs) == 1 and not self.return_tuple else tuple(outs)
        shapes = [v.shape for (raw, _, _, _), v in zip(params, values)
                  if not raw and isinstance(v, ndarray)]
        shape = np.broadcast_shapes(*shapes) if shapes else None
        if shape is None:
            if size is None:
                raise ValueError(f"{self.name}: loop size is undecided (no non-raw array "
                                 "argument and no size=)")
            shape = (int(size),)
        elif size is not None:
            raise ValueError(f"{self.name}: size= given with non-raw array arguments")
        n = int(np.prod(shape))
        slots, keep, writeback, sizes, outs, roles = [], [], [], [], [], []
        for (raw, typ, pname, role), v in zip(params, values):
            dt = np.dtype(typ) if typ in _DTYPE_NAMES else bound.get(typ)
            if role == "out" and v is None:
                if raw:
                    raise ValueError(f"{self.name}: raw output {pname!r} must be given")
                if dt is None:
                    raise TypeError(f"{self.name}: cannot decide the type of output {pname!r}")
                v = np.empty(shape, dtype=dt).view(ndarray)
            if role == "out":
                outs.append(v)
            if isinstance(v, ndarray):
                h = _host(v)
                if role == "out":
                    if h.dtype != dt:
                        raise TypeError(f"{self.name}: output {pname!r} is {h.dtype}, "
                                        f"expected {dt}")
                    if not raw and h.shape != shape:
                        raise ValueError(f"{self.name}: output {pname!r} has shape "
                                         f"{h.shape}, the loop's is {shape}")
                    c = h if h.flags.c_contiguous else np.ascontiguousarray(h)
                    if c is not h:
                        writeback.append((h, c))
                else:
                    h = h.astype(dt, copy=False)
                    c = np.ascontiguousarray(h if raw else np.broadcast_to(h, shape))
                if raw:
                    sizes.append(c.size)
                keep.append(c)
                slots.append(c.ctypes.data)
                roles.append(role)
            else:
                if isinstance(v, np.ndarray):
                    raise TypeError(f"{self.name}: argument {pname!r} is a host NumPy array; "
                                    "Unsupported type <class 'numpy.ndarray'>")
                s = np.array(v, dtype=dt)
                keep.append(s)
                slots.append(s.ctypes.data)
                roles.append("scalar")
        params = [(raw, typ, pname, role) for (raw, typ, pname, _), role in zip(params, roles)]
        ctypes_of = {ph: _CTYPE_OF[dt] for ph, dt in bound.items()}
        lib = self._lib(ctypes_of, params)
        fn = lib.mg_ew
        fn.restype = None
        arr = (ctypes.c_void_p * max(len(slots), 1))(*slots)
        fn(ctypes.c_longlong(n), arr, *[ctypes.c_longlong(s) for s in sizes])
        for h, c in writeback:
            h[...] = c.reshape(h.shape)
        LOG.launch("elementwise", self.name)
        if len(outs) == 1 and not self.return_tuple:
            return outs[0]
        return tuple(outs)


# cuBLAS (cupy_backends.cuda.libs.cublas): GEMMs on device pointers, column-major


class CUBLASError(RuntimeError):
    pass


def _column_major(ptr, rows, cols, ld, dtype):
    """The column-major (rows, cols) matrix with leading dimension ld stored at address ptr."""
    item = np.dtype(dtype).itemsize
    extent = (cols - 1) * ld + rows
    ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
    base = np.ctypeslib.as_array((ctype * extent).from_address(int(ptr)))
    return np.lib.stride_tricks.as_strided(base, shape=(rows, cols), strides=(item, ld * item))


def _gemm(dtype, name, capturable=False):
    """cuBLAS's ``?gemm`` on raw pointers; ``capturable``: called on a handle that needs no
    stream set during a capture (as cuBLAS called directly), else as CuPy's bindings."""
    def gemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        if transa not in (0, 1) or transb not in (0, 1):
            raise CUBLASError(f"{name}: CUBLAS_STATUS_INVALID_VALUE (trans {transa}, {transb})")
        ra, ca = (m, k) if transa == 0 else (k, m)
        rb, cb = (k, n) if transb == 0 else (n, k)
        if min(m, n, k) < 0 or lda < max(1, ra) or ldb < max(1, rb) or ldc < max(1, m):
            raise CUBLASError(f"{name}: CUBLAS_STATUS_INVALID_VALUE (m={m} n={n} k={k} "
                              f"lda={lda} ldb={ldb} ldc={ldc})")
        if _capturing() and not capturable:
            # cupy_backends' wrappers set the stream on the handle first, which refuses
            raise NotImplementedError("calling cuBLAS API during stream capture is currently "
                                      "unsupported")
        ctype = np.ctypeslib.as_ctypes_type(np.dtype(dtype))
        a_, b_ = ctype.from_address(int(alpha)).value, ctype.from_address(int(beta)).value

        def run():
            c = _column_major(C, m, n, ldc, dtype)
            if m and n:
                opa = _column_major(A, ra, ca, lda, dtype) if k else np.zeros((m, 0), dtype)
                opb = _column_major(B, rb, cb, ldb, dtype) if k else np.zeros((0, n), dtype)
                prod = (opa if transa == 0 else opa.T) @ (opb if transb == 0 else opb.T)
                c[...] = a_ * prod if b_ == 0 else a_ * prod + b_ * c  # beta 0: C is not read
        LOG.launch("gemm", name)
        if not _defer(run):
            run()
    gemm.__name__ = name
    return gemm


cublas = types.SimpleNamespace(sgemm=_gemm(np.float32, "sgemm"),
                               dgemm=_gemm(np.float64, "dgemm"), CUBLASError=CUBLASError)


class DirectCublas:
    """Stands in for ``minigan.backend.DirectCublas`` (cuBLAS through ctypes): GEMMs that can
    be captured, on a handle made for one stream outside any capture."""

    lib_path = "emulated"

    def __init__(self, stream):
        if _CAP.stream is not None:
            raise RuntimeError("DirectCublas: a cuBLAS handle made during a capture")
        self.stream = stream
        self._gemms = {np.dtype(np.float32): _gemm(np.float32, "sgemm_direct", True),
                       np.dtype(np.float64): _gemm(np.float64, "dgemm_direct", True)}
        self._consts = {dt: np.array([1.0, 0.0], dtype=dt) for dt in self._gemms}

    def gemm(self, dtype, transa, transb, m, n, k, a_ptr, lda, b_ptr, ldb, c_ptr, ldc,
             accumulate=False):
        if _current_stream() is not self.stream:
            raise RuntimeError("DirectCublas: a GEMM on another stream than the handle's")
        dtype = np.dtype(dtype)
        c = self._consts[dtype]
        self._gemms[dtype](1, transa, transb, m, n, k, c.ctypes.data, a_ptr, lda, b_ptr, ldb,
                           c.ctypes.data + (0 if accumulate else c.itemsize), c_ptr, ldc)


class ReductionKernel:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("the emulated CuPy has no ReductionKernel (minigan uses none)")


# cupy.cuda


class Device:
    def __init__(self, device=0):
        self.id = int(device)

    def synchronize(self):
        LOG.sync("device.synchronize")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Stream:
    """A stream: work runs at once (in issue order), except while this stream captures."""

    null = None

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = 0 if null else (ptr or id(self))
        self.non_blocking = non_blocking

    def synchronize(self):
        LOG.sync("stream.synchronize")

    def use(self):
        _USED[:] = [self]
        return self

    def __enter__(self):
        _STREAMS.append(self)
        return self

    def __exit__(self, *exc):
        _STREAMS.pop()
        return False

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        pass  # work runs in issue order here

    def begin_capture(self, mode=None):
        if self.ptr == 0:
            raise RuntimeError("cannot capture on the default (null) stream")
        if _CAP.stream is not None:
            raise CUDARuntimeError("cudaErrorIllegalState: a stream is already capturing")
        _CAP.stream, _CAP.ops, _CAP.keep = self, [], []

    def end_capture(self):
        if _CAP.stream is not self:
            raise CUDARuntimeError("cudaErrorIllegalState: this stream is not capturing")
        graph = Graph(_CAP.ops, _CAP.keep)
        _CAP.stream = _CAP.ops = _CAP.keep = None
        return graph

    def is_capturing(self):
        return _CAP.stream is self


Stream.null = Stream(null=True)


class Graph:
    """A captured sequence of ops; ``launch`` runs them all again, counted as one launch."""

    def __init__(self, ops, keep=()):
        self._ops, self._keep = ops, keep

    def __len__(self):
        return len(self._ops)

    def upload(self, stream=None):
        pass

    def launch(self, stream=None):
        if _CAP.stream is not None:
            raise CUDARuntimeError("the emulation does not launch a graph during a capture")
        LOG.launch("graph", "graph")
        _CAP.replaying = True
        try:
            for op in self._ops:
                op()
        finally:
            _CAP.replaying = False


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.done = True

    def record(self, stream=None):
        pass

    def synchronize(self):
        LOG.sync("event.synchronize")


class _MemoryPool:
    def malloc(self, nbytes):
        return _MemoryPointer(0)

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


_pool = _MemoryPool()

cuda = types.SimpleNamespace(
    Device=Device, Stream=Stream, Event=Event,
    device=types.SimpleNamespace(get_cublas_handle=lambda: 1),
    get_current_stream=lambda: _current_stream(),
    using_allocator=lambda allocator=None: contextlib.nullcontext(),
    graph=types.SimpleNamespace(Graph=Graph),
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, deviceSynchronize=lambda: LOG.sync(
        "deviceSynchronize"), runtimeGetVersion=lambda: 13000,
        getDeviceProperties=lambda device=0: {"name": b"emulated GPU (CPU)",
                                              "totalGlobalMem": 0}),
    MemoryPool=_MemoryPool,
)


def get_default_memory_pool():
    return _pool


def get_default_pinned_memory_pool():
    return _pool


def _special_function(name, scalar_fn):
    """``cupyx.scipy.special.<name>``: an elementwise launch on a device array, with the
    values of ``scalar_fn`` (Python's ``math``), in the dtype of CuPy 14's loops ('e->d',
    'f->f', 'd->d': the first that the input casts to safely)."""
    vec = np.vectorize(scalar_fn, otypes=[np.float64])

    def apply(x):
        if not isinstance(x, ndarray):
            raise TypeError(f"Unsupported type {type(x)}: emulated cupyx.scipy.special.{name} "
                            "takes a device array")
        h = _host(x)
        dtype = next(out for into, out in (("e", "d"), ("f", "f"), ("d", "d"))
                     if np.can_cast(h.dtype, into))
        LOG.launch("ufunc", name)

        def run():
            return vec(h).astype(dtype)
        return _made(_wrap(run()), run, h)
    apply.__name__ = name
    return apply


# The package ``cupyx.scipy.special`` with the functions minigan asks for (``install`` puts it
# in sys.modules, where minigan's backend imports it)
_cupyx = types.ModuleType("cupyx")
_cupyx.scipy = types.ModuleType("cupyx.scipy")
_cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
_cupyx.scipy.special.erf = _special_function("erf", math.erf)
_cupyx.scipy.special.erfc = _special_function("erfc", math.erfc)


class _Module(types.ModuleType):
    """Anything not defined here is NumPy's, on device arrays."""

    def __getattr__(self, name):
        if name in _CREATE:
            f = _creation(name, _CREATE[name])
            setattr(self, name, f)
            return f
        attr = getattr(np, name)
        if isinstance(attr, (np.ufunc, type)) or not callable(attr):
            return attr  # ufuncs dispatch through ndarray.__array_ufunc__; dtypes and constants

        def device_function(*args, **kwargs):
            if not any(isinstance(a, ndarray) for a in _flat(args)):
                raise TypeError(f"emulated cupy.{name}: no device array among the arguments "
                                "(a host array would be refused by CuPy)")
            return attr(*args, **kwargs)
        device_function.__name__ = name
        setattr(self, name, device_function)
        return device_function


def _flat(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a)
        else:
            yield a


_module = _Module(__name__)
_module.__dict__.update({k: v for k, v in globals().items() if not k.startswith("__")
                         or k == "__version__"})


def install(monkeypatch) -> types.ModuleType:
    """Make minigan's backend use the emulated CuPy, with one GPU; returns the module.

    ``monkeypatch`` undoes the patches. Call :func:`clear_kernel_caches` after the undo as well
    (the ``emulated_cuda`` fixture does), so that no emulated kernel outlives the test."""
    from minigan import autograd, backend
    clear_kernel_caches()
    monkeypatch.setattr(backend, "cupy", _module)
    monkeypatch.setattr(backend, "CUPY_IMPORTED", True)
    monkeypatch.setattr(backend, "_CUPY_ERROR", None)
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    monkeypatch.setattr(backend, "_gpu_problem", lambda: "")
    monkeypatch.setattr(backend, "_cublas", cublas)
    monkeypatch.setattr(backend, "DirectCublas", DirectCublas)
    monkeypatch.setattr(backend, "_DIRECT_CUBLAS", {})
    classes = (np.ndarray, ndarray)
    monkeypatch.setattr(backend, "ARRAY_CLASSES", classes)
    monkeypatch.setattr(autograd, "_ARRAY_CLASSES", classes)
    import sys
    for mod in (_cupyx, _cupyx.scipy, _cupyx.scipy.special):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)
    LOG.clear()
    return _module


def clear_kernel_caches() -> None:
    """Drop every ``functools`` cache in minigan's modules: kernels built through one CuPy
    (real or emulated) must never reach the other."""
    import sys
    for name, mod in list(sys.modules.items()):
        if name == "minigan" or name.startswith("minigan."):
            for v in list(vars(mod).values()):
                if isinstance(v, functools._lru_cache_wrapper):
                    v.cache_clear()


class _Patches:
    """The part of pytest's ``monkeypatch`` that :func:`install` uses, for use outside tests."""

    def __init__(self):
        self._undo = []

    def setattr(self, obj, name, value):
        old = getattr(obj, name)
        self._undo.append(lambda: setattr(obj, name, old))
        setattr(obj, name, value)

    def setitem(self, mapping, key, value):
        if key in mapping:
            old = mapping[key]
            self._undo.append(lambda: mapping.__setitem__(key, old))
        else:
            self._undo.append(lambda: mapping.pop(key, None))
        mapping[key] = value

    def undo(self):
        while self._undo:
            self._undo.pop()()


@contextlib.contextmanager
def emulated():
    """``with emulated() as cupy:`` minigan sees the emulated GPU inside the block only."""
    patches = _Patches()
    try:
        yield install(patches)
    finally:
        patches.undo()
        clear_kernel_caches()
