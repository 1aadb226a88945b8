"""Probe for a CUDA-graph training step (issue #9): can minigan's step be captured into one
CUDA graph and replayed, and how fast would a replay be next to PyTorch's eager step?

    python benchmarks/graph_probe.py --models gan,dragan,dcgan,dcgan64 --batch-size 64 \
        --steps 200 --torch --json --out "$OUT/graph_probe.jsonl"

A measurement to decide the design with, not a training mode: nothing in the package changes.
It needs a CUDA GPU with CuPy. Per model:

1. GEMM check. CuPy refuses cuBLAS while a stream is capturing (its ``setStream`` raises), so
   the probe calls cuBLAS itself through ``ctypes``, on a handle of its own with a workspace it
   owns (``CublasGemm``). One GEMM is captured, replayed and compared with ``cupy.matmul``.
2. Capture. Every GEMM of minigan's step is routed to that handle (``routed_gemms``): they
   all come through ``kernels.gemm.matmul``, whose GPU path the probe replaces. After eager
   warm-up steps on a non-blocking stream, one trainer step is captured on that stream, under
   a private memory pool that lives as long as the graph (the graph keeps the addresses of
   every temporary, which the default pool would otherwise hand to later eager code).
3. Replays against eager steps. Adam's bias corrections and step size, and the Philox offset
   of minigan's random numbers, are Python numbers passed to the kernels, which a graph would
   keep at the values of the step it captured. Inside ``graph_safe`` both are read from
   counters on the device instead. Two trainers start from the same weights and run the same
   steps, one eagerly and one as replays, both with these patches; replays 1, 2 and 10 are
   compared with eager steps (the largest weight difference; 0 when the replay reruns exactly
   the captured kernels, a growing one if some host value is still frozen in the graph).
4. Timing: blocks of ``--block`` replays between two synchronisations, interleaved with blocks
   of eager minigan steps (the product as it is, CuPy's cuBLAS) and, with ``--torch``, of the
   eager PyTorch twin, as ``train_step.py --pipelined`` times them.

Each stage reports its failure (the exception, with the op that raised) and the probe goes on
with the next model: a refusal inside the step is a finding too.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import statistics
import sys
import time
import traceback

import _common as C  # first: puts the repository root on sys.path for minigan
import numpy as np

import train_step as TS
from minigan import backend
from minigan import optim as MO
from minigan.kernels import optim as KO
from minigan.kernels import random as KR
from minigan.kernels import gemm as KG
from minigan.kernels.gemm import OP_N, OP_T, gemm_call, gemm_operand  # noqa: F401 (tests)

WORKSPACE_BYTES = 32 << 20  # NVIDIA's cuBLAS workspace size for Hopper and Blackwell


def _find_cublas() -> str:
    """The path of the libcublas that CuPy uses: from ``cuda.pathfinder`` (how CuPy 14 finds
    it), else the one mapped into this process (call before PyTorch loads its own copy)."""
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib
        return load_nvidia_dynamic_lib("cublas").abs_path
    except Exception:  # noqa: BLE001 - older CuPy, or no pathfinder: read the process's maps
        pass
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if line.strip() else ""
            if path.rsplit("/", 1)[-1].startswith("libcublas.so") and path not in found:
                found.append(path)
    if len(found) != 1:
        raise RuntimeError(f"expected one libcublas in this process, found {found or 'none'}")
    return found[0]


class CublasGemm:
    """C = A @ B for 2-D float32 / float64 CuPy arrays, through cuBLAS on a handle of our own,
    so that the call can be captured into a CUDA graph."""

    def __init__(self, cp):
        self.cp = cp
        a = cp.ones((4, 4), dtype=cp.float32)
        (a @ a).sum()  # makes CuPy load cuBLAS
        cp.cuda.Device().synchronize()
        self.lib_path = _find_cublas()
        lib = ctypes.CDLL(self.lib_path)
        vp, i32 = ctypes.c_void_p, ctypes.c_int
        lib.cublasCreate_v2.argtypes = [ctypes.POINTER(vp)]
        lib.cublasSetStream_v2.argtypes = [vp, vp]
        lib.cublasSetWorkspace_v2.argtypes = [vp, vp, ctypes.c_size_t]
        lib.cublasDestroy_v2.argtypes = [vp]
        self.fns = {}
        for dtype, name, ct in ((np.dtype(np.float32), "cublasSgemm_v2", ctypes.c_float),
                                (np.dtype(np.float64), "cublasDgemm_v2", ctypes.c_double)):
            f = getattr(lib, name)
            f.restype = i32
            f.argtypes = [vp, i32, i32, i32, i32, i32, ctypes.POINTER(ct), vp, i32, vp, i32,
                          ctypes.POINTER(ct), vp, i32]
            self.fns[dtype] = (f, ct(1.0), ct(0.0))
        for f in (lib.cublasCreate_v2, lib.cublasSetStream_v2, lib.cublasSetWorkspace_v2,
                  lib.cublasDestroy_v2):
            f.restype = i32
        self.lib = lib
        self.handle = vp()
        self._check(lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate_v2")
        self.workspace = cp.empty(WORKSPACE_BYTES, dtype=cp.uint8)  # 256-byte aligned
        self.stream_ptr = None

    @staticmethod
    def _check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"{what} returned cuBLAS status {status}")

    def _bind_stream(self) -> None:
        """Point the handle at the current stream. cublasSetStream resets the workspace to
        cuBLAS's own pool, so the workspace is set again after it."""
        ptr = self.cp.cuda.get_current_stream().ptr
        if ptr != self.stream_ptr:
            self._check(self.lib.cublasSetStream_v2(self.handle, ptr), "cublasSetStream_v2")
            self._check(self.lib.cublasSetWorkspace_v2(self.handle, self.workspace.data.ptr,
                                                       WORKSPACE_BYTES), "cublasSetWorkspace_v2")
            self.stream_ptr = ptr

    def _operand(self, x):
        lay = gemm_operand(x.shape, tuple(s // x.itemsize for s in x.strides))
        if lay is None or any(s % x.itemsize for s in x.strides):
            x = self.cp.ascontiguousarray(x)
            lay = gemm_operand(x.shape, tuple(s // x.itemsize for s in x.strides))
        return x, lay

    def matmul(self, a, b):
        cp = self.cp
        if a.ndim != 2 or b.ndim != 2:
            raise NotImplementedError(f"graph probe GEMM: only 2-D operands, got shapes "
                                      f"{a.shape} @ {b.shape}")
        if a.dtype != b.dtype or a.dtype not in self.fns:
            raise TypeError(f"graph probe GEMM: float32 or float64 operands of one dtype, got "
                            f"{a.dtype} @ {b.dtype}")
        (m, k), (k2, n) = a.shape, b.shape
        if k != k2:
            raise ValueError(f"graph probe GEMM: shapes {a.shape} @ {b.shape} do not match")
        c = cp.empty((m, n), dtype=a.dtype)
        if m == 0 or n == 0:
            return c
        if k == 0:
            c.fill(0)
            return c
        self._bind_stream()
        a, a_lay = self._operand(a)
        b, b_lay = self._operand(b)
        ta, tb, mm, nn, kk, lda, ldb, ldc = gemm_call(a_lay, b_lay, m, n, k)
        f, one, zero = self.fns[a.dtype]
        self._check(f(self.handle, ta, tb, mm, nn, kk, ctypes.byref(one), b.data.ptr, lda,
                      a.data.ptr, ldb, ctypes.byref(zero), c.data.ptr, ldc), "cublas gemm")
        return c

    def close(self) -> None:
        if self.handle:
            self.lib.cublasDestroy_v2(self.handle)
            self.handle = None


@contextlib.contextmanager
def routed_gemms(gemm: CublasGemm):
    """Every GEMM of minigan's CuPy path goes to ``gemm`` inside this block: the GPU path of
    ``kernels.gemm.matmul``, through which the conv kernels, Linear, the fused Linear and
    MatMul all call, and ``cupy.matmul`` itself for anything that would still call it."""
    cp = gemm.cp
    saved_cp, saved_gpu = cp.matmul, KG._gpu_matmul

    def routed(a, b, *args, **kwargs):
        if args or kwargs or a.ndim != 2 or b.ndim != 2:
            raise NotImplementedError(f"graph probe: matmul{a.shape, b.shape} with extra "
                                      f"arguments {args} {kwargs} or not 2-D")
        return gemm.matmul(a, b)

    cp.matmul = routed
    KG._gpu_matmul = routed
    try:
        yield
    finally:
        cp.matmul = saved_cp
        KG._gpu_matmul = saved_gpu


# Adam with its step count read on the device: the bias corrections and the step size are
# computed in the kernel from a (1,) float64 counter that one launch per optimizer step advances.
# Same arithmetic as minigan's kernel (kernels/optim.py), whose host computes them in double.
_ADAM_DEVICE_STEP_OP = """
    const double t = step[0];
    const T step_size = (T)(lr / (1.0 - pow(b1, t)));
    const T bc2_sqrt = (T)sqrt(1.0 - pow(b2, t));
    const T g = grad + (T)wd * param;
    exp_avg = (T)b1 * exp_avg + (T)(1.0 - b1) * g;
    exp_avg_sq = (T)b2 * exp_avg_sq + (T)(1.0 - b2) * g * g;
    param -= step_size * (exp_avg / (sqrt(exp_avg_sq) / bc2_sqrt + (T)eps));
"""


@contextlib.contextmanager
def graph_safe(cp, check_offsets: bool = True):
    """Inside this block, what a captured step would otherwise freeze is read on the device:

    * Adam's step count: one (1,) float64 counter per optimizer, advanced by a kernel;
    * the Philox offset of minigan's random numbers: one (1,) uint64 counter per seed, read
      by the stream kernels (``basep[0]``) and advanced by a kernel after each draw;
    * Python numbers made into arrays (``cupy.asarray(0.5)``) are filled in by a kernel
      (``cupy.full``): a guard, since a capture refuses host-to-device copies (CuPy 14.2
      fills 0-d arrays from scalars already, but older versions uploaded them).

    The host keeps its own counts too (Adam's ``state["step"]``, the Generator's ``offset``),
    so Python's state matches the device's after eager steps; outside a capture, the device
    offset is checked against the host's on every draw (``check_offsets``).
    """
    adam_kernel = backend.elementwise_kernel(
        "T grad, raw float64 step, float64 lr, float64 b1, float64 b2, float64 eps, "
        "float64 wd", "T param, T exp_avg, T exp_avg_sq", _ADAM_DEVICE_STEP_OP,
        "probe_adam_device_step")
    saved = (MO.Adam.step, KR._stream_kernel, KR._launch, cp.asarray)
    offsets = {}

    def adam_step(self):
        """minigan's Adam.step (its state, its host step count), with its update swapped for
        per-parameter kernels that read this optimizer's device counter, advanced once per step.
        (Every parameter of a GAN step has a gradient every step, so one counter serves all.)"""
        dev = self.__dict__.get("_probe_step")
        if dev is None:
            counts = [st["step"] for st in self.state.values()]
            dev = self._probe_step = cp.full((1,), float(counts[0] if counts else 0),
                                             dtype=cp.float64)
        dev += 1.0

        def kernel(params, grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps,
                   weight_decay=0.0, *, decoupled=False, maximize=False, foreach=True):
            if decoupled or maximize:
                raise NotImplementedError("the probe's Adam has no AdamW decay or maximize")
            for param, grad, exp_avg, exp_avg_sq in zip(params, grads, exp_avgs, exp_avg_sqs):
                adam_kernel(grad, dev, float(lr), float(beta1), float(beta2), float(eps),
                            float(weight_decay), param, exp_avg, exp_avg_sq)

        host_kernel, KO.adam_step_multi = KO.adam_step_multi, kernel
        try:
            saved[0](self)
        finally:
            KO.adam_step_multi = host_kernel

    def stream_kernel(out_params, extra_in, body, per_block, name):
        in_params = "raw uint64 basep, uint32 k0, uint32 k1, int64 n" + (
            ", " + extra_in if extra_in else "")
        op = ("const unsigned long long base = basep[0];"
              + KR._BLOCK_PROLOGUE.format(per_block=per_block) + body)
        return backend.elementwise_kernel(in_params, out_params, op, name + "_devoffset",
                                          KR._PHILOX_CUDA)

    def launch(kernel, seed, offset, n, per_block, out, *extra):
        k0, k1 = KR._split_seed(seed)
        nblocks = -(-n // per_block)
        dev = offsets.get(seed)
        if dev is None:
            dev = offsets[seed] = cp.full((1,), int(offset) & KR._MASK64, dtype=cp.uint64)
        elif check_offsets and not cp.cuda.get_current_stream().is_capturing():
            on_device = int(dev.get()[0])
            if on_device != int(offset) & KR._MASK64:
                raise RuntimeError(f"device Philox offset {on_device} != host offset {offset}")
        if nblocks:
            kernel(dev, np.uint32(k0), np.uint32(k1), np.int64(n), *extra, out, size=nblocks)
            dev += np.uint64(nblocks)
        return out

    def asarray(a, dtype=None, *args, **kwargs):
        if not args and not kwargs and isinstance(a, (bool, int, float, np.generic)):
            return cp.full((), a, dtype=np.asarray(a).dtype if dtype is None else dtype)
        return saved[3](a, dtype, *args, **kwargs)

    MO.Adam.step, KR._stream_kernel, KR._launch, cp.asarray = (adam_step, stream_kernel,
                                                               launch, asarray)
    try:
        yield offsets
    finally:
        MO.Adam.step, KR._stream_kernel, KR._launch, cp.asarray = saved


def check_gemm(gemm: CublasGemm) -> dict:
    """A captured and replayed GEMM against cupy.matmul, for each operand layout."""
    cp = gemm.cp
    rng = np.random.default_rng(0)
    out = {}
    s = cp.cuda.Stream(non_blocking=True)
    for name, (ta, tb) in {"nn": (False, False), "nt": (False, True), "tn": (True, False),
                           "tt": (True, True)}.items():
        a = cp.asarray(rng.standard_normal((37, 50) if not ta else (50, 37)), dtype=cp.float32)
        b = cp.asarray(rng.standard_normal((50, 29) if not tb else (29, 50)), dtype=cp.float32)
        a, b = (a.T if ta else a), (b.T if tb else b)
        ref = cp.matmul(a, b)
        cp.cuda.Device().synchronize()  # s does not wait for the legacy stream's uploads
        with s:
            gemm.matmul(a, b)  # warm-up on the capturing stream
            s.begin_capture()
            c = _captured(s, lambda: gemm.matmul(a, b))
            graph = s.end_capture()
            c.fill(0)
            graph.launch(stream=s)
            s.synchronize()
        out[name] = float(cp.abs(c - ref).max())
    return out


def _captured(stream, fn):
    """fn() while ``stream`` captures. When fn raises, the capture is ended (its graph thrown
    away) and fn's own exception goes on, not the one ending an invalidated capture gives."""
    try:
        return fn()
    except BaseException:
        with contextlib.suppress(Exception):
            stream.end_capture()
        raise


def _state_arrays(trainer) -> list:
    return [p.data for p in list(trainer.G.parameters()) + list(trainer.D.parameters())]


def _max_diff(cp, xs, ys) -> float:
    return max(float(cp.abs(x - y).max()) for x, y in zip(xs, ys))


class GraphRunner:
    """minigan's trainer step as one captured CUDA graph, replayed by ``step``."""

    name = "graph"

    def __init__(self, runner, gemm: CublasGemm, warmup: int):
        cp = gemm.cp
        self.cp, self.runner = cp, runner
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.pool = cp.cuda.MemoryPool()  # only the graph's blocks; kept as long as the graph
        if warmup < 1:  # state made in the first step (Adam's moments, the counters) must
            # exist before the capture, or every replay would recreate it from scratch
            raise ValueError(f"a captured step needs at least one eager warm-up step, got "
                             f"{warmup}")
        # the model's weights were uploaded on the legacy stream, which a non-blocking stream
        # does not wait for
        cp.cuda.Device().synchronize()
        with self.stream, cp.cuda.using_allocator(self.pool.malloc):
            self._capture(runner, gemm, warmup)
        self.pool_mb = self.pool.total_bytes() / 2**20

    def _capture(self, runner, gemm, warmup: int) -> None:
        # the device counters are kept as long as the graph that reads them
        with routed_gemms(gemm), graph_safe(self.cp) as self.device_offsets:
            for _ in range(warmup):
                runner.step()
            self.stream.synchronize()
            self.stream.begin_capture()
            _captured(self.stream, runner.step)
            self.graph = self.stream.end_capture()

    def step(self) -> None:
        self.graph.launch(stream=self.stream)

    def sync(self) -> None:
        self.stream.synchronize()

    def mem_track(self) -> None:
        pass


def probe_model(model: str, args, gemm: CublasGemm, torch) -> dict:
    cp = gemm.cp
    rec = {"model": model, "batch_size": args.batch_size, "device": "cuda"}
    batch = TS.synthetic_batch(args.batch_size, TS.DATA_SHAPES[model], args.seed)

    def runner():
        r = TS.MiniganRunner(model, "cuda")
        r.make_data(batch)
        r.build(args.seed)
        return r

    stage = "capture"
    try:
        ref = runner()  # eager, with the same GEMMs and counters: the captured trainer's twin
        graph = GraphRunner(runner(), gemm, args.warmup)
        rec["graph_pool_mb"] = graph.pool_mb
        stage = "first replay"
        with routed_gemms(gemm), graph_safe(cp):
            for _ in range(args.warmup + 1):
                ref.step()
        # the graph's GEMMs share the handle's workspace with ref's, and its stream does not
        # wait for the default one: ref must be done before a replay starts
        cp.cuda.Device().synchronize()
        graph.step()
        graph.sync()
        cp.cuda.Device().synchronize()
        rec["replay1_max_abs_diff"] = _max_diff(cp, _state_arrays(ref.trainer),
                                                _state_arrays(graph.runner.trainer))
        graph_done = 1
        stage = "later replays"
        for k in (2, 10):  # replays 2 and 10 against eager steps W+2 and W+10
            with routed_gemms(gemm), graph_safe(cp):
                while graph_done < k:  # never both at once: they share the workspace
                    ref.step()
                    cp.cuda.Device().synchronize()
                    graph.step()
                    graph.sync()
                    graph_done += 1
            rec[f"replay{k}_max_abs_diff"] = _max_diff(cp, _state_arrays(ref.trainer),
                                                       _state_arrays(graph.runner.trainer))
        stage = "timing"
        eager = runner()  # the product as it is: CuPy's own cuBLAS calls, default pool
        eager.name = "minigan"
        runners = [graph, eager]
        if torch is not None:
            t = TS.TorchRunner(model, "cuda", torch)
            t.make_data(batch)
            t.prepare(args.seed)
            t.build(args.seed)
            runners.append(t)
        for r in runners[1:]:
            r.mem_baseline()  # time_pipelined tracks memory after each block
            for _ in range(args.warmup):
                r.step()
            r.sync()
        times = TS.time_pipelined(runners, args.steps, args.block)
        for name, ts in times.items():
            rec[f"{name}_ms_median"] = statistics.median(ts) * 1e3
            rec[f"{name}_ms_p10"] = float(np.percentile(ts, 10)) * 1e3
            rec[f"{name}_ms_p90"] = float(np.percentile(ts, 90)) * 1e3
        # what one replay costs the host (enqueueing it) and the GPU (100 back to back)
        graph.sync()
        t0 = time.perf_counter()
        for _ in range(100):
            graph.step()
        t1 = time.perf_counter()
        graph.sync()
        rec["graph_launch_host_us"] = (t1 - t0) / 100 * 1e6
        rec["graph_replay_ms_back_to_back"] = (time.perf_counter() - t0) / 100 * 1e3
        if "torch_ms_median" in rec:
            rec["ratio_graph_torch"] = rec["graph_ms_median"] / rec["torch_ms_median"]
            rec["ratio_eager_torch"] = rec["minigan_ms_median"] / rec["torch_ms_median"]
        rec["ok"] = True
    except Exception as e:  # a refusal inside the step is a finding: report it and go on
        rec["ok"] = False
        rec["failed_at"] = stage
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc(limit=-6)
        with contextlib.suppress(Exception):  # a broken capture leaves the stream capturing
            cp.cuda.Device().synchronize()
    return rec


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="gan,dragan,dcgan,dcgan64")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="timed steps per runner")
    p.add_argument("--block", type=int, default=20, help="steps between two syncs")
    p.add_argument("--warmup", type=int, default=3, help="eager steps before the capture (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch", action="store_true", help="also time the PyTorch twin")
    p.add_argument("--json", action="store_true", help="one JSON line per model on stdout")
    p.add_argument("--out", help="also append the JSON lines to this file")
    return p.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    if not backend.cuda_available():
        sys.exit("graph_probe: needs CuPy and a CUDA GPU")
    cp = backend.cupy
    gemm = CublasGemm(cp)  # before PyTorch, which maps a libcublas of its own
    torch = C.torch_or_note("cuda", args.torch, "# no PyTorch comparison: {why}")
    env = C.environment("cuda", torch)
    C.print_header(env, file=sys.stderr)
    print(f"# cuBLAS through ctypes: {gemm.lib_path}", file=sys.stderr)
    records = []
    try:
        gemm_check = check_gemm(gemm)
        print(f"# captured GEMM vs cupy.matmul, max abs diff per layout: {gemm_check}",
              file=sys.stderr)
    except Exception as e:
        gemm_check = {"error": f"{type(e).__name__}: {e}"}
        print(f"# captured GEMM failed: {traceback.format_exc(limit=-4)}", file=sys.stderr)
    for model in args.models.split(","):
        rec = probe_model(model, args, gemm, torch)
        rec["gemm_check"] = gemm_check
        rec["env"] = env
        records.append(rec)
        line = json.dumps(rec)
        if args.json:
            print(line)
        else:
            keys = [k for k in rec if k.endswith("_ms_median") or k.startswith("ratio")
                    or k.endswith("diff") or k in ("ok", "failed_at", "error")]
            print(model, {k: rec[k] for k in keys})
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    gemm.close()
    return records


if __name__ == "__main__":
    main()
