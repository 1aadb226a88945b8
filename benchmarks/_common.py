"""Helpers shared by the benchmark scripts: import paths, optional PyTorch, the environment
header, timing statistics and memory probes. Benchmarks only; minigan never imports this."""
from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):  # run as `python benchmarks/x.py` from anywhere
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np

import minigan
from minigan import backend


def load_torch(device: str):
    """torch, configured for a fair comparison, or (None, why) when it cannot run here.

    Threads: as many as minigan's CPU kernels use (``minigan.get_num_threads()``: the CPUs
    this process may use, at most 8, fewer where MINIGAN_NUM_THREADS, OMP_NUM_THREADS or
    OPENBLAS_NUM_THREADS say so). TF32: follows CUPY_TF32 (off unless it is 1),
    for matmul and cuDNN convolutions alike (cuDNN allows TF32 by default in PyTorch).
    """
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install of any kind
        return None, f"PyTorch is not installed ({exc.__class__.__name__}: {exc})"
    if device == "cuda" and not torch.cuda.is_available():
        return None, f"PyTorch {torch.__version__} has no CUDA device here"
    torch.set_num_threads(minigan.get_num_threads())
    tf32 = backend.tf32_enabled()
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = False  # PyTorch's default; eager as users run it
    return torch, None


def require_device(device: str, script: str) -> None:
    """Exit, naming the script, when ``--device cuda`` cannot run on this machine."""
    if device == "cuda" and not backend.cuda_available():
        raise SystemExit(f"{script}: --device cuda needs CuPy and a CUDA GPU, and this machine "
                         "has none")


def torch_or_note(device: str, wanted: bool, note: str):
    """PyTorch for the side-by-side comparison, or None: when it is not ``wanted``, or when it
    cannot run here, in which case ``note`` (formatted with ``why``) goes to stderr."""
    if not wanted:
        return None
    torch, why = load_torch(device)
    if torch is None:
        print(note.format(why=why), file=sys.stderr)
    return torch


def synchronize(device: str, torch=None) -> None:
    backend.synchronize(device)
    if torch is not None and device == "cuda":
        torch.cuda.synchronize()


def summarize_ms(samples_s) -> dict:
    """Median, p10, p90 and mean of per-step times given in seconds, in milliseconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {"median": float(np.median(a)), "p10": float(np.percentile(a, 10)),
            "p90": float(np.percentile(a, 90)), "mean": float(a.mean()), "n": int(a.size)}


def time_calls(fn, device: str, torch=None, warmup: int = 3, repeats: int = 20,
               min_sample_s: float = 0.002) -> list:
    """Seconds per call of ``fn()``: warm-up, then ``repeats`` samples, each a run of calls
    between two synchronisations. Short GPU ops run several calls per sample so that the
    synchronisation itself does not dominate (``min_sample_s`` per sample)."""
    for _ in range(warmup):
        fn()
    synchronize(device, torch)
    t0 = time.perf_counter()
    fn()
    synchronize(device, torch)
    once = time.perf_counter() - t0
    inner = max(1, min(1000, int(min_sample_s / max(once, 1e-7))))
    out = []
    for _ in range(repeats):
        synchronize(device, torch)
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        synchronize(device, torch)
        out.append((time.perf_counter() - t0) / inner)
    return out


def _proc_status_mb(field: str):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """The current resident set size (Linux /proc), else the high-water mark, in MiB."""
    now = _proc_status_mb("VmRSS")
    return max_rss_mb() if now is None else now


def rss_file_mb():
    """Resident file-backed pages (shared-library code and data), MiB, or None off Linux."""
    return _proc_status_mb("RssFile")


def max_rss_mb() -> float:
    """The process's RSS high-water mark in MiB.

    VmHWM where Linux has it: ru_maxrss survives execve, so a child forked from a big parent
    would report the parent's RSS at fork time as its own peak.
    """
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS, KiB else


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The vector extensions that decide which GEMM and convolution kernels oneDNN and OpenBLAS pick.
# A "model name" alone does not tell CPU generations apart on a VM ("AMD EPYC"), and the same VM
# name has landed on hosts with and without AVX-512, so a record keeps the family, model and ISA.
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")


def cpu_isa(cpuinfo: str | None = None) -> str | None:
    """'family F model M, avx2 fma ...' from /proc/cpuinfo's first processor (None elsewhere)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    first = cpuinfo.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    if not flags and "cpu family" not in fields:
        return None
    have = [f for f in _ISA_FLAGS if f in flags]
    return (f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, "
            f"{' '.join(have) or 'no AVX2'}")


def blas_summary() -> str:
    """NumPy's BLAS: threadpoolctl's view when installed, else numpy.show_config's."""
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        infos = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, "
                 f"{i.get('threading_layer', '?')}, {i.get('architecture', '?')})"
                 for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return "; ".join(infos)
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')} (numpy.show_config)".strip()
    except (TypeError, KeyError):  # NumPy before 1.25 prints its config only
        buf = io.StringIO()
        with redirect_stdout(buf):
            np.show_config()
        lines = [ln.strip() for ln in buf.getvalue().splitlines() if "blas" in ln.lower()]
        return "; ".join(lines[:3]) or "unknown"


def _openblas_fn(names):
    """The first of ``names`` exported by an OpenBLAS that this process loaded (Linux), or
    None. NumPy's wheels rename the symbols (scipy_openblas_*, *64_), hence the list."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = {ln.split()[-1] for ln in f if "openblas" in ln.lower() and "/" in ln}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in names:
            fn = getattr(lib, sym, None)
            if fn is not None:
                return fn
    return None


def _openblas_names(base: str) -> tuple:
    return (f"openblas_{base}", f"openblas_{base}64_", f"scipy_openblas_{base}64_",
            f"scipy_openblas_{base}")


def numpy_blas_threads():
    """Threads of the OpenBLAS that NumPy loaded, asked through its own C API, or None."""
    fn = _openblas_fn(_openblas_names("get_num_threads"))
    return None if fn is None else int(fn())


def numpy_blas_core():
    """The kernel family NumPy's OpenBLAS chose for this CPU ("Haswell", "SkylakeX", "Zen"...),
    or None. OPENBLAS_CORETYPE overrides the choice, so two hosts with different vector units
    can run the same GEMM kernels in NumPy while PyTorch's oneDNN uses what each host has."""
    import ctypes

    fn = _openblas_fn(_openblas_names("get_corename"))
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    name = fn()
    return name.decode() if name else None


def gpu_summary() -> dict:
    if not backend.cuda_available():
        return {}
    cp = backend.cupy
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return {"gpu": name.decode() if isinstance(name, bytes) else str(name),
            "cupy": cp.__version__, "cuda_runtime": cp.cuda.runtime.runtimeGetVersion()}


def source_revision(root=ROOT):
    """The commit the benchmarked minigan comes from, ``git rev-parse --short=12 HEAD``, with
    ``+dirty`` when tracked code differs from it (anything but ``benchmarks/results/``, which
    the benchmarks themselves append to, and markdown); None outside a git checkout (a copy of
    the tree without ``.git``, or no git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        if git("rev-parse", "--show-toplevel") != str(Path(root).resolve()):
            return None  # root is not the top of a checkout: some enclosing repository's
        rev = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                    ":(exclude)benchmarks/results", ":(exclude)*.md")
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def environment(device: str, torch=None) -> dict:
    """Machine, library versions, thread counts and the TF32 setting, for headers and JSON."""
    env = {
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
                   f"{platform.machine()}",
        "cpu_isa": cpu_isa(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas_summary(),
        "numpy_blas_threads": numpy_blas_threads(),
        "minigan_threads": minigan.get_num_threads(),
        "numpy_blas_core": numpy_blas_core(),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "tf32": backend.tf32_enabled(),
        "minigan_commit": source_revision(),
    }
    try:
        env["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    if device == "cuda":
        env.update(gpu_summary())
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        if device == "cuda":
            env["torch_cudnn"] = torch.backends.cudnn.version()
    return env


def print_header(env: dict, file=None) -> None:
    file = file or sys.stdout
    for k, v in env.items():
        if v is not None:
            print(f"# {k}: {v}", file=file)
