"""Time one full GAN training step (D update + G update; DRAGAN adds its penalty) in minigan
and, with --torch, in a PyTorch twin of the same preset, side by side in one process.

    python benchmarks/train_step.py --model dcgan --batch-size 64 --device cpu --steps 30 \
        --torch --json

Each framework runs its warm-up steps, then the timed steps in interleaved blocks (minigan,
torch, torch, minigan, ...), every step timed on its own between synchronisations. Data is a
fixed synthetic batch in [-1, 1], resident on the device, so no data loading is timed.

Peak memory: on the CPU, the RSS high-water mark (VmHWM; ru_maxrss off Linux) of a fresh child
process per framework (``--only FRAMEWORK --mem-child``) minus its RSS after imports and data
creation, so that models, optimizer state and every temporary count. On the GPU, the growth of
each framework's caching allocator from the same point (CuPy's pool; PyTorch's reserved bytes,
with its allocated bytes reported too).

--profile runs minigan's steps under cProfile and prints where the time goes, per kernel/op.
cProfile sees the calling thread only: the blocks that minigan's CPU worker threads run
(``kernels.parallel``) are not in it, and the caller's wait for them is charged to the kernel
that waits, so the shares are of the step's wall time as the calling thread spends it.

--cuda-graph (GPU) adds a third framework, ``minigan_graph``: minigan's step captured once as a
CUDA graph and replayed (``minigan train --cuda-graph``, ``minigan/gan/graph.py``), timed in
the same interleaved blocks as the eager step and the PyTorch twin. Its eager warm-up steps
and the capture happen before the timed steps; its peak memory adds the graph's private pool.

--narrow K divides every hidden width of the preset by K (at least 2 channels or units; the
image and z stay as they are), so that both frameworks run the preset's very ops and step on
tiny arrays. On the CPU that makes the step cost what each framework spends per op on the host
(Python or C++ dispatch, autograd, small-array calls), which is what bounds a batch-64 step on
the GPU: a host-cost proxy that needs no GPU.
"""
from __future__ import annotations

import argparse
import cProfile
import inspect
import json
import pstats
import subprocess
import sys
import time
from pathlib import Path

import _common as C  # first: puts the repository root on sys.path for minigan
import numpy as np

import minigan
from minigan import backend
from minigan import nn as mnn
from minigan import random as mrandom
from minigan.autograd import Tensor
from minigan.gan.models import build_models
from minigan.gan.trainer import PRESET_OPTIM, TrainConfig, make_trainer
from minigan.nn.init import dcgan_init_

MODELS = ("gan", "dragan", "dcgan", "dcgan64")


def models_arg(ap, text: str) -> list:
    """The models of a comma-separated ``--models`` value; ``ap.error`` for an unknown or
    empty one."""
    models = [m for m in text.split(",") if m]
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        ap.error(f"unknown model(s) {', '.join(bad) or '(none given)'}; choose from "
                 f"{', '.join(MODELS)}")
    return models
DATA_SHAPES = {"gan": (1, 28, 28), "dragan": (1, 28, 28), "dcgan": (1, 28, 28),
               "dcgan64": (3, 64, 64)}
Z_DIM = 100
FRAMEWORKS = ("minigan", "minigan_graph", "torch")


def synthetic_batch(batch_size: int, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch_size,) + tuple(shape)).astype(np.float32)


def _narrowed(layer, cin: int, cout: int):
    """A fresh layer of ``layer``'s class and hyperparameters with cin inputs, cout outputs."""
    if isinstance(layer, mnn.Linear):
        return mnn.Linear(cin, cout, bias=layer.bias is not None)
    if isinstance(layer, mnn.ConvTranspose2d):
        return mnn.ConvTranspose2d(cin, cout, layer.kernel_size, stride=layer.stride,
                                   padding=layer.padding, output_padding=layer.output_padding,
                                   bias=layer.bias is not None, dilation=layer.dilation)
    return mnn.Conv2d(cin, cout, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                      dilation=layer.dilation, bias=layer.bias is not None)


def narrow_net(net, k: int):
    """``net`` (an ``nn.Sequential``) with every hidden width divided by k, at least 2: the
    first layer keeps its inputs and the last its outputs; batch norms follow their layer."""
    layers = list(net)
    carriers = [i for i, m in enumerate(layers)
                if isinstance(m, (mnn.Linear, mnn.Conv2d, mnn.ConvTranspose2d))]
    width = None
    for i, m in enumerate(layers):
        if i in carriers:
            cin = m.in_features if isinstance(m, mnn.Linear) else m.in_channels
            cout = m.out_features if isinstance(m, mnn.Linear) else m.out_channels
            if i != carriers[-1]:
                cout = max(2, cout // k)
            layers[i] = _narrowed(m, cin if width is None else width, cout)
            width = cout
        elif isinstance(m, (mnn.BatchNorm1d, mnn.BatchNorm2d)):
            layers[i] = type(m)(width, eps=m.eps, momentum=m.momentum, affine=m.affine,
                                track_running_stats=m.track_running_stats)
    return mnn.Sequential(*layers)


def minigan_models(model: str, seed: int, narrow: int = 1):
    """The preset's (G, D) on the CPU, initialised as ``minigan train`` initialises them; with
    ``narrow`` > 1, every hidden width divided by it (``narrow_net``)."""
    mrandom.manual_seed(seed)
    G, D = build_models(model, DATA_SHAPES[model], 0, Z_DIM)
    if narrow > 1:
        G.net, D.net = narrow_net(G.net, narrow), narrow_net(D.net, narrow)
    if model in ("dcgan", "dcgan64"):
        G.apply(dcgan_init_)
        D.apply(dcgan_init_)
    return G, D


def train_config(model: str, batch_size: int, device: str, seed: int) -> TrainConfig:
    # One step is one D update and one G update for every model, at the paper's learning rates
    # (dcgan's tuned default of three G updates, PRESET_TUNED in the trainer, would make its
    # step incomparable with the others and with the earlier tables).
    return TrainConfig(preset=model, batch_size=batch_size, device=device, seed=seed,
                       z_dim=Z_DIM, n_gen=1, lr_g=PRESET_OPTIM[model][0]).resolved()


class MiniganRunner:
    """minigan's preset, initialised and trained exactly as ``minigan train`` does; with
    ``graph``, as ``minigan train --cuda-graph`` does."""

    name = "minigan"

    def __init__(self, model: str, device: str, narrow: int = 1, graph: bool = False):
        self.model, self.device, self.narrow, self.graph = model, device, narrow, graph
        if graph:
            self.name = "minigan_graph"

    def make_data(self, batch: np.ndarray) -> None:
        self.real = Tensor(backend.to_device(batch, self.device))
        backend.synchronize(self.device)

    def build(self, seed: int) -> None:
        G, D = minigan_models(self.model, seed, self.narrow)
        G.to(self.device)
        D.to(self.device)
        self.trainer = make_trainer(G, D, train_config(self.model, self.real.shape[0],
                                                       self.device, seed))
        self._step = self.trainer.step
        if self.graph:
            from minigan.gan.graph import DEFAULT_WARMUP, GraphedStep
            self._step = GraphedStep(self.trainer)
            for _ in range(DEFAULT_WARMUP + 1):  # the eager warm-up, then the capture
                self._step(self.real)
            self.sync()

    def prepare(self, seed: int) -> None:
        pass  # minigan's models are part of minigan's memory

    def step(self) -> None:
        self._step(self.real)

    def sync(self) -> None:
        backend.synchronize(self.device)

    # GPU memory: growth of CuPy's default pool, which keeps every block it has allocated
    def mem_baseline(self) -> None:
        if self.device == "cuda":
            pool = backend.cupy.get_default_memory_pool()
            pool.free_all_blocks()
            self._base, self._peak = pool.total_bytes(), 0

    def mem_track(self) -> None:
        if self.device == "cuda":
            total = backend.cupy.get_default_memory_pool().total_bytes()
            pool = getattr(self._step, "pool", None)  # a CUDA graph's private pool
            if pool is not None:
                total += pool.total_bytes()
            self._peak = max(self._peak, total - self._base)

    def mem_report(self) -> dict:
        return {"peak_mem_mb": self._peak / 2**20, "peak_mem_kind": "cupy pool total_bytes"}


class TorchRunner:
    """The PyTorch twin (benchmarks/torch_twins.py) of the same preset and step."""

    name = "torch"

    def __init__(self, model: str, device: str, torch, narrow: int = 1):
        self.model, self.device, self.torch, self.narrow = model, device, torch, narrow

    def make_data(self, batch: np.ndarray) -> None:
        self.real = self.torch.from_numpy(batch).to(self.device)
        self.sync()

    def prepare(self, seed: int) -> None:
        """minigan's model, whose twin ``build`` makes: built before the memory baseline, so
        that it does not count as PyTorch's."""
        self.reference = minigan_models(self.model, seed, self.narrow)

    def build(self, seed: int) -> None:
        """The twin of minigan's preset, with the very same starting weights."""
        import torch_twins

        self.torch.manual_seed(seed)
        G, D = self.reference
        del self.reference
        tG, tD = torch_twins.twin_of(G, D, self.device)
        rng = np.random.default_rng(seed + 1)
        z = rng.standard_normal((4, Z_DIM)).astype(np.float32)
        x = rng.uniform(-1, 1, (4,) + DATA_SHAPES[self.model]).astype(np.float32)
        self.twin_max_abs_diff = torch_twins.check_twin(G, D, tG, tD, z, x)
        if self.twin_max_abs_diff > 1e-3:
            raise RuntimeError(f"the PyTorch twin of {self.model} disagrees with minigan's "
                               f"model by {self.twin_max_abs_diff:.3g}")
        cfg = train_config(self.model, self.real.shape[0], self.device, seed)
        self.trainer = torch_twins.TorchTrainer(tG, tD, cfg,
                                                joint=torch_twins.twin_joint(cfg, D))

    def step(self) -> None:
        self.trainer.step(self.real)

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def mem_baseline(self) -> None:
        if self.device == "cuda":
            cuda = self.torch.cuda
            cuda.empty_cache()
            cuda.reset_peak_memory_stats()
            self._alloc0, self._res0 = cuda.memory_allocated(), cuda.memory_reserved()

    def mem_track(self) -> None:
        pass  # PyTorch tracks its own peaks

    def mem_report(self) -> dict:
        cuda = self.torch.cuda
        return {"peak_mem_mb": (cuda.max_memory_reserved() - self._res0) / 2**20,
                "peak_mem_kind": "torch max_memory_reserved",
                "peak_alloc_mb": (cuda.max_memory_allocated() - self._alloc0) / 2**20}


def make_runner(framework: str, model: str, device: str, torch=None, narrow: int = 1):
    if framework in ("minigan", "minigan_graph"):
        return MiniganRunner(model, device, narrow, graph=framework == "minigan_graph")
    return TorchRunner(model, device, torch, narrow)


def time_interleaved(runners, warmup: int, steps: int, block: int) -> dict:
    """Per-step times in seconds for each runner, in blocks of ``block`` steps whose order
    alternates between runners so that drifts in machine load hit both alike."""
    for r in runners:
        for _ in range(warmup):
            r.step()
        r.sync()
        r.mem_track()
    times = {r.name: [] for r in runners}
    order, done = list(runners), 0
    while done < steps:
        k = min(block, steps - done)
        for r in order:
            for _ in range(k):
                r.sync()
                t0 = time.perf_counter()
                r.step()
                r.sync()
                times[r.name].append(time.perf_counter() - t0)
                r.mem_track()
        order.reverse()
        done += k
    return times


def paired_block_ratios(times_a, times_b, block: int) -> list:
    """Ratios of the median step of each of ``time_interleaved``'s blocks for runner a to that
    of the same block for runner b: the two ran one right after the other, so a drift in
    machine load that spans the run moves both sides of a pair alike, where it moves the two
    overall medians by how it falls on each runner's blocks."""
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if len(times_a) != len(times_b):
        raise ValueError(f"the two runners timed {len(times_a)} and {len(times_b)} steps: "
                         "not the same blocks")
    return [float(np.median(times_a[i:i + block]) / np.median(times_b[i:i + block]))
            for i in range(0, len(times_a), block)]


def time_pipelined(runners, steps: int, block: int) -> dict:
    """Per-step times in seconds, each the wall time of ``block`` back-to-back steps between
    two synchronisations, divided by ``block``: the throughput a training loop sees, where the
    host queues the next step's kernels while the GPU still runs the last ones (neither
    framework syncs inside a step). Blocks alternate between runners as in
    ``time_interleaved``; ``steps`` steps per runner, at least 3 blocks. On the CPU, where
    nothing runs asynchronously, this equals the per-step timing up to noise."""
    times = {r.name: [] for r in runners}
    order = list(runners)
    for _ in range(max(3, -(-steps // block))):
        for r in order:
            r.sync()
            t0 = time.perf_counter()
            for _ in range(block):
                r.step()
            r.sync()
            times[r.name].append((time.perf_counter() - t0) / block)
            r.mem_track()
        order.reverse()
    return times


def _kernel_events(prof, device_type):
    """(name, microseconds) of every GPU activity (kernels, copies, memsets) in a trace."""
    return gpu_activities((e.name, e.time_range.elapsed_us()) for e in prof.events()
                          if e.device_type == device_type)


def gpu_activities(events):
    """The (name, microseconds) pairs that are GPU work. PyTorch also puts its user annotations
    on the GPU timeline ("Optimizer.step#Adam.step" spans the Adam kernels); counting them
    would count those kernels twice. No kernel name holds a "#", every annotation does."""
    return [(name, us) for name, us in events if "#" not in name]


def summarize_kernels(events, steps: int, wall_s: float, top: int = 15) -> dict:
    """Per-step kernel count and GPU busy time, with the kernels that take the most time.

    ``events`` holds (name, microseconds) pairs traced over ``steps`` steps that took
    ``wall_s`` seconds of wall time (one stream, so busy times add up)."""
    if steps < 1 or wall_s <= 0:
        raise ValueError(f"need steps >= 1 and wall_s > 0, got {steps} and {wall_s}")
    per_name = {}
    for name, us in events:
        n, t = per_name.get(name, (0, 0.0))
        per_name[name] = (n + 1, t + us)
    busy_us = sum(t for _, t in per_name.values())
    gemm_us = sum(t for name, (_, t) in per_name.items()
                  if any(k in name.lower() for k in ("gemm", "xmma", "cutlass", "sm90_", "cublas")))
    ranked = sorted(per_name.items(), key=lambda kv: -kv[1][1])
    wall_ms = wall_s / steps * 1e3
    busy_ms = busy_us / steps / 1e3
    return {
        "kernels_per_step": len(events) / steps,
        "gpu_busy_ms_per_step": busy_ms,
        "traced_step_ms": wall_ms,
        "gpu_busy_share": busy_ms / wall_ms,
        "gemm_share_of_busy": gemm_us / busy_us if busy_us else 0.0,
        "top_kernels": [{"kernel": name[:120], "per_step": n / steps,
                         "us_per_step": t / steps, "share_of_busy": t / busy_us}
                        for name, (n, t) in ranked[:top]],
    }


def gpu_trace(runners, steps: int, torch) -> dict:
    """Trace every GPU activity of ``steps`` steps per runner with PyTorch's profiler (CUPTI
    sees the kernels of every library in the process, CuPy's and cuBLAS's included)."""
    from torch.profiler import ProfilerActivity, profile

    cuda_type = torch.autograd.DeviceType.CUDA
    out = {}
    for r in runners:
        r.sync()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            for _ in range(steps):
                r.step()
            r.sync()
            wall = time.perf_counter() - t0
        events = _kernel_events(prof, cuda_type)
        if not events:
            raise RuntimeError("the profiler traced no GPU activity (CUPTI unavailable?)")
        out[r.name] = summarize_kernels(events, steps, wall)
    return out


def print_gpu_trace(model: str, batch: int, traces: dict) -> None:
    for name, t in traces.items():
        print(f"\n**{name} {model}, batch {batch}, GPU trace**: {t['kernels_per_step']:.0f} "
              f"GPU activities/step, GPU busy {t['gpu_busy_ms_per_step']:.2f} ms of a "
              f"{t['traced_step_ms']:.2f} ms traced step ({100 * t['gpu_busy_share']:.0f}%), "
              f"GEMM {100 * t['gemm_share_of_busy']:.0f}% of busy time")
        print("\n| kernel | per step | us/step | share of busy |\n|---|---:|---:|---:|")
        for k in t["top_kernels"]:
            print(f"| `{k['kernel'][:70]}` | {k['per_step']:.1f} | {k['us_per_step']:.1f} | "
                  f"{100 * k['share_of_busy']:.1f}% |")


def cpu_peak_memory(args, framework: str) -> dict:
    """Run this script in a fresh child process for one framework and read its RSS peak."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--model", args.model,
           "--batch-size", str(args.batch_size), "--device", "cpu", "--seed", str(args.seed),
           "--steps", str(min(args.steps, 3)), "--warmup", str(min(args.warmup, 2)),
           "--narrow", str(args.narrow), "--only", framework, "--mem-child"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"warning: memory probe for {framework} failed:\n{proc.stderr[-2000:]}",
              file=sys.stderr)
        return {"peak_mem_mb": None, "peak_mem_kind": "failed"}
    return json.loads(lines[-1])


def mem_child(args, torch) -> None:
    """The child side of ``cpu_peak_memory``: prints one JSON line and exits."""
    runner = make_runner(args.only, args.model, "cpu", torch, args.narrow)
    runner.make_data(synthetic_batch(args.batch_size, DATA_SHAPES[args.model], args.seed))
    runner.prepare(args.seed)
    base, file0 = C.rss_mb(), C.rss_file_mb()
    runner.build(args.seed)
    for _ in range(args.warmup + args.steps):
        runner.step()
    peak, file1 = C.max_rss_mb(), C.rss_file_mb()
    # file-backed pages are mostly library code touched for the first time (PyTorch maps
    # large kernels lazily); reported so that they can be told apart from data
    print(json.dumps({"peak_mem_mb": peak - base,
                      "peak_mem_kind": "RSS high-water (VmHWM) - baseline",
                      "rss_baseline_mb": base, "rss_peak_mb": peak,
                      "rss_file_growth_mb": None if file0 is None else file1 - file0}))


# Profiling: where minigan's CPU time goes, grouped per kernel/op

_CATEGORIES = (
    # (path inside minigan/, qualname test, category); a category of None makes the file's
    # functions foreign: their time goes to the kernel that called them (kernels.parallel's
    # thread hand-offs and waits, its split GEMMs)
    ("kernels/parallel.py", lambda q: True, None),
    ("kernels/conv.py", lambda q: "col2im" in q, "conv: col2im (scatter-add)"),
    ("kernels/conv.py", lambda q: "im2col" in q or "_pad" in q, "conv: im2col (gather copy)"),
    ("kernels/conv.py", lambda q: "subpixel" in q,
     "conv: sub-pixel transposed conv (window gather, phase writes)"),
    ("kernels/conv.py", lambda q: q.startswith(("_conv2d_forward", "_grad_weight",
                                                 "_conv_transpose", "conv_transpose2d_forward",
                                                 "_channels_last_weight", "_to_channels_last",
                                                 "_space_to_depth", "_weight_from_s2d",
                                                 "_conv2d_s2d_winograd")),
     "conv: layout copies (NCHW <-> GEMM operands)"),
    ("kernels/conv.py", lambda q: True, "conv: dispatch and checks"),
    # Winograd runs its whole pipeline (transforms and GEMMs) on each thread's block of images;
    # what the calling thread spends waiting for the worker's block is neither alone
    ("kernels/winograd.py", lambda q: q == "_blas_blocks",
     "conv: Winograd, waiting for the worker's block (its transforms and GEMMs)"),
    ("kernels/winograd.py", lambda q: True, "conv: Winograd transforms (input, weight, output)"),
    ("kernels/workspace.py", lambda q: True, "conv: dispatch and checks"),
    ("kernels/batchnorm.py", lambda q: True, "batch norm"),
    ("functional/norm.py", lambda q: True, "batch norm"),
    ("kernels/elementwise.py", lambda q: True, "elementwise (activations, BCE)"),
    ("functional/activation.py", lambda q: True, "elementwise (activations, BCE)"),
    ("functional/loss.py", lambda q: True, "elementwise (activations, BCE)"),
    ("kernels/optim.py", lambda q: True, "Adam"),
    ("optim/", lambda q: True, "Adam"),
    ("kernels/random.py", lambda q: True, "random numbers"),
    ("random.py", lambda q: True, "random numbers"),
    ("functional/basic.py", lambda q: q.split(".")[0] in ("MatMul", "Linear", "matmul", "linear"),
     "linear layers (GEMM)"),
    ("functional/basic.py", lambda q: True, "tensor arithmetic, reductions, reshapes"),
    ("gan/", lambda q: True, "trainer and losses (glue)"),
    ("", lambda q: True, "autograd + nn + dispatch overhead"),
)


_np_matmul = np.matmul
_OTHER = "other (outside minigan)"


def _blas_gemm(*args, **kwargs):
    """numpy.matmul behind a Python frame. NumPy's ufuncs are invisible to cProfile (their time
    is charged to the calling function), so while profiling ``numpy.matmul`` is this."""
    return _np_matmul(*args, **kwargs)


def _qualnames() -> dict:
    """(filename, first line) -> qualified name, for every minigan function and method."""
    out = {}
    for name, mod in list(sys.modules.items()):
        if not name.startswith("minigan") or mod is None:
            continue
        for obj in list(vars(mod).values()):
            members = [obj]
            if inspect.isclass(obj):
                members = [m.__func__ if isinstance(m, (staticmethod, classmethod)) else m
                           for m in vars(obj).values()]
                members = [m.fget if isinstance(m, property) else m for m in members]
            for f in members:
                if inspect.isfunction(f):  # not getattr: the CuPy stub raises on any attribute
                    codes = [f.__code__]
                    while codes:  # with the functions defined inside it (blocks run by
                        code = codes.pop()  # kernels.parallel, for one)
                        out[(code.co_filename, code.co_firstlineno)] = code.co_qualname
                        codes += [c for c in code.co_consts if inspect.iscode(c)]
    return out


def _own_category(func, pkg: str, qualnames: dict):
    filename, line, name = func
    if not filename.startswith(pkg):
        return None
    rel = filename[len(pkg):].lstrip("/\\").replace("\\", "/")
    qual = qualnames.get((filename, line), name)
    for path, test, cat in _CATEGORIES:
        if (rel == path or (path.endswith("/") and rel.startswith(path)) or path == "") \
                and test(qual):
            return cat
    return None


def _as_gemm(shares: dict) -> dict:
    """Categories of time spent in a GEMM: a conv kernel's is conv's GEMM, any other's (a
    Linear layer's, a matmul's, whatever op called it) the linear layers' GEMM."""
    out = {}
    for c, f in shares.items():
        if c != _OTHER:
            c = "conv: GEMM (BLAS matmul)" if c.startswith("conv") else "linear layers (GEMM)"
        out[c] = out.get(c, 0.0) + f
    return out


def categorize(stats: pstats.Stats) -> tuple:
    """Self time per category. Time inside NumPy's Python code, C builtins and other foreign
    functions (kernels.parallel's included) is charged to the minigan functions that called
    them, through chains of foreign callers, in proportion to each caller's share of the
    foreign function's cumulative time."""
    pkg = str(Path(minigan.__file__).resolve().parent)
    qualnames = _qualnames()
    raw = stats.stats
    memo = {}
    other = _OTHER
    # A block that kernels.parallel runs is called by its pool's run(), which every split
    # kernel shares; its time belongs to the function that made the block instead
    # (``matmul.<locals>.<lambda>`` to ``matmul``), whose callers are the kernels.
    funcs = {(f[0], qualnames.get((f[0], f[1]), f[2])): f for f in raw}
    parallel_py = str(Path(pkg, "kernels", "parallel.py"))

    def maker(func):
        qual = qualnames.get((func[0], func[1]), "")
        if func[0] != parallel_py or ".<locals>." not in qual:
            return None
        return funcs.get((func[0], qual.split(".<locals>.")[0]))

    def mix(func, depth=0):
        """{category: fraction} for a function's own time."""
        if func in memo:
            return memo[func]
        if func[0] == parallel_py and qualnames.get((func[0], func[1])) == "matmul":
            # the split GEMM: its hand-offs and its wait for the worker's block are GEMM time,
            # whichever kernel called it
            memo[func] = {other: 1.0}
            memo[func] = _as_gemm(mix_callers(func, depth))
            return memo[func]
        made_by = maker(func)
        if made_by is not None:
            memo[func] = {other: 1.0}
            memo[func] = mix(made_by, depth + 1)
            return memo[func]
        cat = _own_category(func, pkg, qualnames)
        if cat is not None:
            memo[func] = {cat: 1.0}
            return memo[func]
        memo[func] = {other: 1.0}  # guards recursion cycles
        memo[func] = mix_callers(func, depth)
        return memo[func]

    def mix_callers(func, depth):
        """{category: fraction} from func's callers, in proportion to their shares of its
        cumulative time."""
        callers = raw.get(func, (0, 0, 0, 0, {}))[4]
        total = sum(edge[3] for edge in callers.values())
        if not callers or depth >= 30 or total <= 0:
            return {other: 1.0}
        out = {}
        for caller, edge in callers.items():
            for c, f in mix(caller, depth + 1).items():
                out[c] = out.get(c, 0.0) + f * edge[3] / total
        return out

    per_cat, per_func = {}, []
    for func, (_cc, _nc, tt, _ct, callers) in raw.items():
        if func[2] in ("<method 'disable' of '_lsprof.Profiler' objects>",):
            continue
        gemm = func[2] == _blas_gemm.__name__ and func[0] == __file__
        shares = mix(func)
        if gemm:  # a GEMM called (through any foreign chain) by a conv kernel is conv's GEMM
            shares = _as_gemm(shares)
        for c, f in shares.items():
            per_cat[c] = per_cat.get(c, 0.0) + f * tt
        label = func[2]
        if gemm:
            label = "numpy.matmul (BLAS GEMM)"
        elif func[0].startswith(pkg):
            label = (func[0][len(pkg):].lstrip("/") + ":"
                     + qualnames.get((func[0], func[1]), func[2]))
        per_func.append((tt, label, max(shares, key=shares.get)))
    return per_cat, sorted(per_func, reverse=True)


def profile_minigan(args) -> dict:
    runner = MiniganRunner(args.model, args.device, args.narrow)
    runner.make_data(synthetic_batch(args.batch_size, DATA_SHAPES[args.model], args.seed))
    runner.build(args.seed)
    for _ in range(args.warmup):
        runner.step()
    runner.sync()
    plain = []
    for _ in range(max(1, args.steps // 2)):
        t0 = time.perf_counter()
        runner.step()
        runner.sync()
        plain.append(time.perf_counter() - t0)
    prof = cProfile.Profile()
    np.matmul = _blas_gemm  # only for the profiled steps
    try:
        t0 = time.perf_counter()
        prof.enable()
        for _ in range(args.steps):
            runner.step()
        runner.sync()
        prof.disable()
        wall = time.perf_counter() - t0
    finally:
        np.matmul = _np_matmul
    per_cat, per_func = categorize(pstats.Stats(prof))
    total = sum(per_cat.values()) or 1.0
    return {
        "framework": "minigan", "model": args.model, "device": args.device,
        "batch_size": args.batch_size, "steps": args.steps,
        "step_ms_unprofiled": C.summarize_ms(plain)["median"],
        "step_ms_profiled": wall / args.steps * 1e3,
        "shares_pct": {k: 100.0 * v / total
                       for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])},
        "top_functions": [{"function": label, "category": cat, "pct": 100.0 * tt / total,
                           "ms_per_step": tt / args.steps * 1e3}
                          for tt, label, cat in per_func[:args.profile_top]],
    }


def print_profile(p: dict) -> None:
    print(f"\nminigan {p['model']} batch {p['batch_size']} on {p['device']}: "
          f"{p['step_ms_unprofiled']:.1f} ms/step unprofiled, {p['step_ms_profiled']:.1f} "
          f"under cProfile")
    print("\n| where the time goes | share |\n|---|---:|")
    for k, v in p["shares_pct"].items():
        print(f"| {k} | {v:.1f}% |")
    print("\n| top functions (self time) | category | share | ms/step |\n|---|---|---:|---:|")
    for f in p["top_functions"]:
        print(f"| {f['function']} | {f['category']} | {f['pct']:.1f}% | "
              f"{f['ms_per_step']:.2f} |")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=MODELS, default="dcgan")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--steps", type=int, default=20, help="timed steps per framework")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per framework first")
    p.add_argument("--block", type=int, default=5, help="steps per interleaved block")
    p.add_argument("--torch", action="store_true", help="also time the PyTorch twin")
    p.add_argument("--only", choices=FRAMEWORKS, help="time one framework only")
    p.add_argument("--cuda-graph", action="store_true",
                   help="also time minigan's step as a replayed CUDA graph (GPU only)")
    p.add_argument("--json", action="store_true", help="one JSON line per framework on stdout")
    p.add_argument("--out", help="also append the JSON lines to this file")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    p.add_argument("--profile", action="store_true",
                   help="profile minigan's steps with cProfile (CPU) instead of timing")
    p.add_argument("--profile-top", type=int, default=20)
    p.add_argument("--pipelined", action="store_true",
                   help="also time blocks of --block steps with one sync per block (the "
                        "training-loop throughput; records get pipelined_ms_median)")
    p.add_argument("--gpu-trace", type=int, default=0, metavar="STEPS",
                   help="after timing, trace STEPS steps per framework with PyTorch's profiler "
                        "(CUDA only): kernels per step, GPU busy time, top kernels")
    p.add_argument("--narrow", type=int, default=1, metavar="K",
                   help="divide every hidden width by K (at least 2): the preset's ops on tiny "
                        "arrays, a proxy for the host cost per step (see above)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1 or args.warmup < 0 or args.block < 1:
        p.error("--steps, --batch-size and --block must be >= 1, --warmup >= 0")
    if args.mem_child and not args.only:
        p.error("--mem-child needs --only")
    if args.gpu_trace < 0:
        p.error("--gpu-trace must be >= 0")
    if args.narrow < 1:
        p.error(f"--narrow must be >= 1, got {args.narrow}")
    if args.gpu_trace and args.device != "cuda":
        p.error("--gpu-trace needs --device cuda (it traces GPU kernels)")
    if (args.cuda_graph or args.only == "minigan_graph") and args.device != "cuda":
        p.error("--cuda-graph needs --device cuda (a CUDA graph runs on the GPU)")
    return args


def main(argv=None) -> list:
    """Run the benchmark; returns the result records (also printed)."""
    args = parse_args(argv)
    device = args.device
    C.require_device(device, "train_step")
    want_torch = args.only == "torch" or (args.torch and args.only is None)
    torch = None
    if want_torch and not args.profile:
        torch, why = C.load_torch(device)
        if torch is None:
            msg = f"--torch: {why}; timing minigan only"
            if args.only == "torch":
                raise SystemExit(msg.replace("; timing minigan only", ""))
            print(msg, file=sys.stderr)
    if args.mem_child:
        mem_child(args, torch)
        return []

    env = C.environment(device, torch)
    info = sys.stderr if args.json else sys.stdout
    C.print_header(env, info)
    if args.profile:
        if device != "cpu":
            print("note: cProfile sees host time only; GPU kernels run asynchronously",
                  file=info)
        prof = profile_minigan(args)
        prof["env"] = env
        emit([prof], args, table=print_profile)
        return [prof]

    frameworks = [args.only] if args.only else (
        ["minigan"] + (["minigan_graph"] if args.cuda_graph else []) + (["torch"] if torch
                                                                         else []))
    runners = [make_runner(f, args.model, device, torch, args.narrow)
               for f in frameworks]
    batch = synthetic_batch(args.batch_size, DATA_SHAPES[args.model], args.seed)
    failed = []
    for r in list(runners):
        r.make_data(batch)
        r.prepare(args.seed)
        r.mem_baseline()
        try:
            r.build(args.seed)
        except Exception as exc:  # noqa: BLE001
            if r.name != "minigan_graph":
                raise
            # the graph step (warm-up and capture happen in build) failing is a finding: it
            # is reported, and the eager step and the twin are still timed
            runners.remove(r)
            failed.append({"framework": r.name, "model": args.model, "device": device,
                           "batch_size": args.batch_size,
                           "error": f"{type(exc).__name__}: {exc}"})
            print(f"minigan_graph failed to build ({failed[-1]['error']}); timing the others",
                  file=sys.stderr)
    times = time_interleaved(runners, args.warmup, args.steps, args.block)
    piped = time_pipelined(runners, args.steps, args.block) if args.pipelined else None
    traces = {}
    if args.gpu_trace:
        if torch is None:
            torch, why = C.load_torch(device)
            if torch is None:
                raise SystemExit(f"--gpu-trace needs PyTorch with CUDA: {why}")
        traces = gpu_trace(runners, args.gpu_trace, torch)

    records = []
    for r in runners:
        s = C.summarize_ms(times[r.name])
        rec = {"framework": r.name, "model": args.model, "device": device,
               "batch_size": args.batch_size, "narrow": args.narrow,
               "steps": s["n"], "warmup": args.warmup,
               "step_ms_median": s["median"], "step_ms_p10": s["p10"], "step_ms_p90": s["p90"],
               "step_ms_mean": s["mean"],
               "img_per_s": args.batch_size / (s["median"] / 1e3)}
        if piped is not None:
            ps = C.summarize_ms(piped[r.name])
            rec.update({"pipelined_block": args.block, "pipelined_blocks": ps["n"],
                        "pipelined_ms_median": ps["median"], "pipelined_ms_p10": ps["p10"],
                        "pipelined_ms_p90": ps["p90"]})
        if r.name in traces:
            rec["gpu_trace"] = dict(traces[r.name], steps=args.gpu_trace)
        if hasattr(r, "twin_max_abs_diff"):
            rec["twin_max_abs_diff"] = r.twin_max_abs_diff
        if args.no_memory:
            rec["peak_mem_mb"] = None
        elif device == "cpu":
            rec.update(cpu_peak_memory(args, r.name))
        else:
            rec.update(r.mem_report())
        records.append(rec)
    ref = next((rec for rec in records if rec["framework"] == "torch"), None)
    for rec in records:  # each minigan record against the twin timed in the same run
        if ref is None or rec is ref:
            continue
        rec["ratio_vs_torch"] = rec["step_ms_median"] / ref["step_ms_median"]
        pairs = paired_block_ratios(times[rec["framework"]], times["torch"], args.block)
        rec.update({"ratio_paired_median": float(np.median(pairs)),
                    "ratio_paired_p25": float(np.percentile(pairs, 25)),
                    "ratio_paired_p75": float(np.percentile(pairs, 75)),
                    "ratio_paired_blocks": len(pairs)})
        if piped is not None:
            rec["pipelined_ratio_vs_torch"] = (rec["pipelined_ms_median"]
                                               / ref["pipelined_ms_median"])
        m0, m1 = rec.get("peak_mem_mb"), ref.get("peak_mem_mb")
        if m0 is not None and m1 is not None and m1 > 0:
            rec["mem_ratio_vs_torch"] = m0 / m1
    if ref is not None and len(records) == 2:  # the torch record names its one ratio too
        for key in ("ratio_vs_torch", "ratio_paired_median", "ratio_paired_p25",
                    "ratio_paired_p75", "ratio_paired_blocks", "pipelined_ratio_vs_torch",
                    "mem_ratio_vs_torch"):
            if key in records[0]:
                ref[key] = records[0][key]
    for rec in records + failed:
        rec["env"] = env
    if failed and args.out:
        with open(args.out, "a") as f:
            f.write("".join(json.dumps(rec) + "\n" for rec in failed))
    emit(records, args)
    if traces:
        print_gpu_trace(args.model, args.batch_size, traces)
    return records


def emit(records, args, table=None) -> None:
    """JSON lines to --out and (with --json) to stdout; else a table on stdout."""
    lines = [json.dumps(rec) for rec in records]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")
    if args.json:
        print("\n".join(lines))
        return
    if table is not None:
        for rec in records:
            table(rec)
        return
    print("\n| framework | model | device | batch | median ms | p10 | p90 | img/s | peak MiB |"
          "\n|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in records:
        mem = "-" if r.get("peak_mem_mb") is None else f"{r['peak_mem_mb']:.0f}"
        print(f"| {r['framework']} | {r['model']} | {r['device']} | {r['batch_size']} | "
              f"{r['step_ms_median']:.2f} | {r['step_ms_p10']:.2f} | {r['step_ms_p90']:.2f} | "
              f"{r['img_per_s']:.0f} | {mem} |")
    if "ratio_vs_torch" in records[0]:
        extra = ""
        if "mem_ratio_vs_torch" in records[0]:
            extra = f", memory ratio {records[0]['mem_ratio_vs_torch']:.2f}"
        print(f"\nminigan/torch step-time ratio: {records[0]['ratio_vs_torch']:.2f}{extra}")
        print(f"paired by block: median {records[0]['ratio_paired_median']:.2f} (IQR "
              f"{records[0]['ratio_paired_p25']:.2f}-{records[0]['ratio_paired_p75']:.2f}, "
              f"{records[0]['ratio_paired_blocks']} blocks)")
        if "pipelined_ratio_vs_torch" in records[0]:
            print(f"pipelined ({records[0]['pipelined_block']} steps per sync): minigan "
                  f"{records[0]['pipelined_ms_median']:.2f} ms, torch "
                  f"{records[1]['pipelined_ms_median']:.2f} ms, ratio "
                  f"{records[0]['pipelined_ratio_vs_torch']:.2f}")


if __name__ == "__main__":
    main()
