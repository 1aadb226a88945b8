"""The one place that knows about CuPy.

Every other module asks this one for the array module (``get_array_module``), for device names,
for moving arrays and for random generators. Devices are named as in PyTorch: ``"cpu"`` (NumPy)
and ``"cuda"`` (CuPy). The device always follows the data; nothing here is a global switch.
"""
from __future__ import annotations

import functools
import os

import numpy as np

try:  # CuPy is optional: the CPU half of minigan never needs it.
    import cupy  # noqa: F401  (the only import of cupy in minigan)

    try:  # CuPy's own cuBLAS bindings, for GEMMs called directly (kernels.gemm)
        from cupy_backends.cuda.libs import cublas as _cublas
    except Exception:  # another CuPy layout: kernels.gemm then uses cupy.matmul
        _cublas = None
    _CUPY_ERROR: Exception | None = None
except Exception as exc:  # ImportError, or a broken CUDA install that fails at import
    _CUPY_ERROR = exc

    class _CupyStub:
        """Stands in for cupy so that ``isinstance(x, cupy.ndarray)`` is simply False."""

        class ndarray:  # noqa: N801 - mirrors cupy.ndarray
            pass

        def __getattr__(self, name):
            raise DeviceError(_install_hint())

    cupy = _CupyStub()
    _cublas = None

CUPY_IMPORTED = _CUPY_ERROR is None
DEVICES = ("cpu", "cuda")
# The exact array classes a Tensor wraps (for checks on the hot path, by identity of class)
ARRAY_CLASSES = (np.ndarray, cupy.ndarray) if CUPY_IMPORTED else (np.ndarray,)


class DeviceError(RuntimeError):
    """A device was asked for that is not available, or devices were mixed."""


class Device(str):
    """A device name as PyTorch's ``torch.device``: ``Device("cuda")``, ``Device("cuda:0")``,
    ``Device("cuda", 0)``, ``Device(0)`` (the GPU) or ``Device("cpu")``, with ``.type`` and
    ``.index``. It is the string "cpu" or "cuda" itself, so it compares equal to those names
    and goes wherever a device name goes. Making one checks the spelling only, not that a GPU
    is there (as in PyTorch): moving data to it does that. minigan drives one GPU, so an index
    other than 0 is refused. (Exported as ``minigan.device``.)"""

    __slots__ = ("index",)

    def __new__(cls, type, index=None):  # noqa: A002 - torch's parameter name
        if isinstance(type, Device) and index is None:
            return type
        if isinstance(type, (int, np.integer)) and not isinstance(type, (bool, np.bool_)):
            type, index = "cuda", int(type)
        if not isinstance(type, str):
            raise TypeError(f"device: expected a device name such as 'cpu' or 'cuda', got "
                            f"{type!r} ({builtins_type(type).__name__})")
        name = type
        if ":" in name:
            if index is not None:
                raise ValueError(f"device: {type!r} already names an index; pass either "
                                 "'cuda:0' or ('cuda', 0)")
            name, _, text = name.partition(":")
            if not text.isdigit():
                raise ValueError(f"device: invalid device string {type!r}; expected 'cpu', "
                                 "'cuda' or 'cuda:0'")
            index = int(text)
        if name not in DEVICES:
            raise ValueError(f"device: unknown device type {type!r}; minigan has 'cpu' and "
                             "'cuda'")
        if index is not None:
            if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"device: the index must be an int, got {index!r}")
            index = int(index)
            if index < 0:
                raise ValueError(f"device: the index must be >= 0, got {index}")
            if name == "cpu" and index != 0:
                raise ValueError(f"device: the CPU has index 0 only, got {index}")
            if name == "cuda" and index != 0:
                raise DeviceError(f"device 'cuda:{index}': minigan drives one GPU, use 'cuda' "
                                  "(or CUDA_VISIBLE_DEVICES to choose which)")
        self = super().__new__(cls, name)
        self.index = index
        return self

    @property
    def type(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __format__(self, spec: str) -> str:  # f"{x.device}" as str() gives it
        return format(str(self), spec)

    __hash__ = str.__hash__

    def __reduce__(self):
        return (Device, (self.type, self.index))


builtins_type = type
# What Tensor.device and Module.device give: a GPU tensor's device has index 0, as in PyTorch
CPU = Device("cpu")
CUDA = Device("cuda", 0)


def _install_hint() -> str:
    if _CUPY_ERROR is None and CUPY_IMPORTED:
        # CuPy is there: the GPU or its driver is what is missing
        return (f"device 'cuda' needs an NVIDIA GPU: CuPy {cupy.__version__} is installed but "
                f"sees no usable GPU ({_gpu_problem() or 'no device found'}). Check the driver "
                "with nvidia-smi, or run on the CPU with --device cpu.")
    why = f" (import failed: {_CUPY_ERROR})" if _CUPY_ERROR is not None else ""
    return (
        "device 'cuda' needs CuPy and an NVIDIA GPU" + why + ". Install the extra that matches "
        "your CUDA toolkit: pip install 'minigan[cuda12]' or pip install 'minigan[cuda13]'."
    )


@functools.lru_cache(maxsize=None)
def _gpu_problem() -> str:
    """Why CuPy sees no GPU ("" when it sees one): no device, or the runtime's error."""
    try:
        return "" if cupy.cuda.runtime.getDeviceCount() > 0 else "no device found"
    except Exception as exc:  # a missing or too old driver raises here
        return f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=None)
def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return CUPY_IMPORTED and not _gpu_problem()


def normalize_device(device) -> str:
    """Turn ``None``/"cpu"/"cuda"/"cuda:0"/"gpu"/"auto", a `Device` or the GPU's index 0 into
    "cpu" or "cuda", checking availability."""
    if device is None:
        return "cpu"
    if isinstance(device, Device):
        name = device.type  # (its index was checked when it was made)
    elif isinstance(device, (int, np.integer)) and not isinstance(device, (bool, np.bool_)):
        name = str(Device(device))  # torch's .to(0): the GPU with that index
    else:
        name = str(device).lower()
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    if name in ("gpu",) or name.startswith("cuda"):
        if name not in ("gpu", "cuda", "cuda:0"):
            raise DeviceError(f"device {device!r}: minigan drives one GPU, use 'cuda'")
        if not cuda_available():
            raise DeviceError(_install_hint())
        return "cuda"
    if name == "cpu":
        return "cpu"
    raise DeviceError(f"unknown device {device!r}; expected 'cpu', 'cuda' or 'auto'")


def is_cupy_array(x) -> bool:
    return CUPY_IMPORTED and isinstance(x, cupy.ndarray)


def device_of(x) -> str:
    """The device an array lives on."""
    return "cuda" if is_cupy_array(x) else "cpu"


def xp_for(device: str):
    """The array module for a device name."""
    return cupy if normalize_device(device) == "cuda" else np


def get_array_module(*xs):
    """NumPy or CuPy, from the arrays given; raises if they live on different devices.

    A device name is refused: ``get_array_module("cuda")`` would otherwise answer NumPy and
    put the caller's data on the wrong device without a word. Use :func:`xp_for` for names.
    """
    devices = set()
    for x in xs:
        if x is None:
            continue
        if isinstance(x, str):
            raise TypeError(f"get_array_module takes arrays, got the device name {x!r}; "
                            "use backend.xp_for(device) for a device name")
        if hasattr(x, "shape"):
            devices.add(device_of(x))
    if len(devices) > 1:
        raise DeviceError("arrays on different devices: cpu and cuda; move them with .to(device)")
    return cupy if devices == {"cuda"} else np


def check_same_device(*xs, what: str = "operation") -> str:
    """Return the common device of the arrays, or raise an error that names both devices."""
    # every op checks its inputs here: one isinstance per array, no calls
    gpu_class = cupy.ndarray if CUPY_IMPORTED else None
    seen = None
    for x in xs:
        if gpu_class is not None and isinstance(x, gpu_class):
            d = "cuda"
        elif x is None or not hasattr(x, "shape"):
            continue
        else:
            d = "cpu"
        if seen is None:
            seen = d
        elif d != seen:
            raise DeviceError(
                f"{what}: expected all inputs on one device, got {seen} and {d}; "
                "move them with .to(device)"
            )
    return seen or "cpu"


def to_device(x, device: str):
    """Copy an array to a device (no copy when it is already there)."""
    device = normalize_device(device)
    if device == "cuda":
        return x if is_cupy_array(x) else cupy.asarray(x)
    return cupy.asnumpy(x) if is_cupy_array(x) else np.asarray(x)


def to_numpy(x) -> np.ndarray:
    return cupy.asnumpy(x) if is_cupy_array(x) else np.asarray(x)


@functools.cache
def cupyx_special():
    """``cupyx.scipy.special`` (erf, erfc, ...), imported on first use (by a string: the one
    literal import of CuPy in minigan stays the one at the top of this file)."""
    import importlib
    return importlib.import_module("cupyx.scipy.special")


def synchronize(device: str = "cuda") -> None:
    """Wait for queued GPU work; a no-op on the CPU."""
    if device == "cuda" and cuda_available():
        cupy.cuda.get_current_stream().synchronize()


# Compiled GPU kernels, built on first use and cached.

@functools.lru_cache(maxsize=None)
def elementwise_kernel(in_params: str, out_params: str, operation: str, name: str,
                       preamble: str = ""):
    return cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=preamble)


@functools.lru_cache(maxsize=None)
def reduction_kernel(in_params: str, out_params: str, map_expr: str, reduce_expr: str,
                     post_map_expr: str, identity: str, name: str):
    return cupy.ReductionKernel(in_params, out_params, map_expr, reduce_expr, post_map_expr,
                                identity, name)


@functools.lru_cache(maxsize=None)
def raw_kernel(code: str, name: str, options: tuple = ()):
    return cupy.RawKernel(code, name, options=options)


def cublas():
    """CuPy's cuBLAS bindings (``cupy_backends.cuda.libs.cublas``), or None without them."""
    return _cublas if CUPY_IMPORTED else None


def cublas_handle() -> int:
    """CuPy's cuBLAS handle for the current device (its calls then run on CuPy's current
    stream, which the bindings set before each call)."""
    return cupy.cuda.device.get_cublas_handle()


def scatter_add(target, indices, values) -> None:
    """``target[indices] += values`` with repeated indices accumulated, on either device."""
    if is_cupy_array(target):
        cupy.add.at(target, indices, values)
    else:
        np.add.at(target, indices, values)


_TF32 = [None]  # CUPY_TF32 as read on first use (None: not read yet)


def tf32_enabled() -> bool:
    """Whether float32 GEMMs may use TF32: ``CUPY_TF32`` set to a positive integer. Read on
    first use and remembered, as CuPy does (it fixes float32's compute type at its first
    matmul), so that minigan's choice and CuPy's agree; every GEMM asks."""
    on = _TF32[0]
    if on is None:
        raw = os.environ.get("CUPY_TF32", "0")
        try:
            on = int(raw) > 0
        except ValueError:
            raise ValueError(f"CUPY_TF32 must be an integer (0: off, 1: on), got {raw!r}") from None
        _TF32[0] = on
    return on


# CUDA graphs: what capturing a training step needs (minigan.gan.graph uses these).

class DirectCublas:
    """cuBLAS ``sgemm``/``dgemm`` called through ``ctypes`` on a handle and a workspace of
    minigan's own, so that a GEMM can be captured into a CUDA graph.

    CuPy's cuBLAS bindings set the current stream on CuPy's handle before every call, and that
    refuses while the stream is capturing; cuBLAS itself can be captured. Here each handle
    belongs to one stream, bound when it is made, outside any capture (``cublasSetStream``
    resets the workspace, so the workspace is set right after), and a call only launches. A
    handle and its workspace per stream: two streams never share a workspace, which a graph
    replayed on one of them would otherwise race on. alpha = 1 and beta = 0 (1 to accumulate)
    are host values (cuBLAS's default pointer mode), read when the call is made or captured.
    """

    WORKSPACE_BYTES = 32 << 20  # NVIDIA's recommended cuBLAS workspace for Hopper and Blackwell

    def __init__(self, stream):
        import ctypes
        self._ctypes = ctypes
        self.stream = stream
        self.lib_path = _find_cublas()
        lib = ctypes.CDLL(self.lib_path)
        vp, i32 = ctypes.c_void_p, ctypes.c_int
        for name, args in (("cublasCreate_v2", [ctypes.POINTER(vp)]),
                           ("cublasSetStream_v2", [vp, vp]),
                           ("cublasSetWorkspace_v2", [vp, vp, ctypes.c_size_t]),
                           ("cublasDestroy_v2", [vp])):
            f = getattr(lib, name)
            f.argtypes, f.restype = args, i32
        self._fns = {}
        for dtype, name, ct in ((np.float32, "cublasSgemm_v2", ctypes.c_float),
                                (np.float64, "cublasDgemm_v2", ctypes.c_double)):
            f = getattr(lib, name)
            f.argtypes = [vp, i32, i32, i32, i32, i32, ctypes.POINTER(ct), vp, i32, vp, i32,
                          ctypes.POINTER(ct), vp, i32]
            f.restype = i32
            self._fns[np.dtype(dtype)] = (f, ct(1.0), ct(0.0))
        self._lib = lib
        self.handle = vp()
        self._check(lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate_v2")
        self.workspace = cupy.empty(self.WORKSPACE_BYTES, dtype=np.uint8)
        self._check(lib.cublasSetStream_v2(self.handle, stream.ptr), "cublasSetStream_v2")
        self._check(lib.cublasSetWorkspace_v2(self.handle, self.workspace.data.ptr,
                                              self.WORKSPACE_BYTES), "cublasSetWorkspace_v2")

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status != 0:
            raise DeviceError(f"{what} failed with cuBLAS status {status}")

    def gemm(self, dtype, transa: int, transb: int, m: int, n: int, k: int, a_ptr: int,
             lda: int, b_ptr: int, ldb: int, c_ptr: int, ldc: int,
             accumulate: bool = False) -> None:
        """C = op(A) op(B), column-major, on this handle's stream (cuBLAS's argument order);
        with ``accumulate``, C += op(A) op(B) (beta = 1)."""
        f, one, zero = self._fns[np.dtype(dtype)]
        byref = self._ctypes.byref
        self._check(f(self.handle, transa, transb, m, n, k, byref(one), a_ptr, lda, b_ptr, ldb,
                      byref(one if accumulate else zero), c_ptr, ldc), "cublas gemm")


@functools.lru_cache(maxsize=None)
def _find_cublas() -> str:
    """The path of the libcublas CuPy uses: from ``cuda.pathfinder`` (how CuPy 14 finds it),
    else the one mapped into this process once CuPy has made its cuBLAS handle."""
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib
        path = load_nvidia_dynamic_lib("cublas").abs_path
    except Exception:  # noqa: BLE001 - an older CuPy, or no pathfinder: read the process's maps
        path = None
    if path:
        return path
    cupy.cuda.device.get_cublas_handle()  # makes CuPy load its libcublas
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if line.strip() else ""
            if os.path.basename(path).startswith("libcublas.so") and path not in found:
                found.append(path)
    ours = [p for p in found if "torch" not in p] or found
    if len(ours) != 1:
        raise DeviceError(f"cannot tell which libcublas CuPy uses: found {found or 'none'}")
    return ours[0]


_DIRECT_CUBLAS: dict = {}  # stream pointer -> (stream, its DirectCublas)


def direct_cublas() -> DirectCublas:
    """The current stream's :class:`DirectCublas`, made on the stream's first GEMM (which must
    come before any capture on it: a warm-up step)."""
    stream = current_stream()
    entry = _DIRECT_CUBLAS.get(stream.ptr)
    if entry is None:
        if is_capturing():
            raise DeviceError("a GEMM was captured on a stream with no cuBLAS handle of its own "
                              "yet; run the step once on that stream before capturing it")
        # the stream is kept with its handle, so that its address names no other stream later
        entry = _DIRECT_CUBLAS[stream.ptr] = (stream, DirectCublas(stream))
    return entry[1]


def new_stream():
    """A non-blocking CUDA stream (a capture needs one other than the default stream)."""
    return cupy.cuda.Stream(non_blocking=True)


def current_stream():
    return cupy.cuda.get_current_stream()


def is_capturing() -> bool:
    """True while the current CUDA stream is capturing a graph (False without CuPy)."""
    return CUPY_IMPORTED and cuda_available() and current_stream().is_capturing()


def stream_wait(stream, other) -> None:
    """Make ``stream`` wait for the work queued on ``other`` so far (an event; no host wait)."""
    if stream.ptr != other.ptr:
        stream.wait_event(other.record())


def gpu_name() -> str:
    """The GPU's name, as its driver reports it."""
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def default_pool_bytes() -> tuple[int, int]:
    """(bytes in use, bytes held) of CuPy's default memory pool, where GPU arrays live."""
    pool = cupy.get_default_memory_pool()
    return int(pool.used_bytes()), int(pool.total_bytes())


def free_cached_blocks() -> None:
    """Give the default memory pool's unused blocks back to the driver."""
    cupy.get_default_memory_pool().free_all_blocks()


def memory_pool():
    """A new, private CuPy memory pool (a graph's temporaries live in one of their own)."""
    return cupy.cuda.MemoryPool()


def allocating_from(pool):
    """Context: CuPy allocations come from ``pool`` inside the block."""
    return cupy.cuda.using_allocator(pool.malloc)
