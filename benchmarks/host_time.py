"""minigan's own host time per GPU training step, measured without a GPU.

    python benchmarks/host_time.py [--models gan,dragan,dcgan,dcgan64] [--steps 20]
                                   [--batch-size 8] [--graph] [--profile N] [--json]

At batch 64 a GPU step is bound by the host: what the GPU runs takes 0.5-1.3 ms of a gan or
dcgan step (H200, benchmarks/README.md), the rest is Python and the launch paths. That host
time has two parts: minigan's own Python (autograd, nn, the kernels' argument checks and
layouts, launch arguments) and CuPy's per-call cost. This script measures the first part
alone, on the CPU, through the emulated CuPy of ``tests/kernels/emulated_cupy.py`` (needs
g++ for the warm-up steps):

- the preset's eager step (the very code a GPU step runs, ``train_step.MiniganRunner``) runs
  with the emulator's kernels, GEMMs, copies and fills dropped instead of executed (its
  ``_defer`` says each was taken care of). Arrays are still made, referenced and freed as in
  an eager step, so every branch minigan takes (in-place sums of owned gradients, workspace
  reuse) is the eager one; only the values are garbage, which no step reads on the host;
- every function and method of the emulator (the stand-in for CuPy) is timed, and that time
  is taken out; what is left is minigan's own host time per step. The garbage collector is
  off while a step is timed.

So the figure is neither CuPy's cost nor a GPU's, and it depends on this host's Python
speed; compare figures taken on one machine in one run (``--compare`` runs another checkout
interleaved with this one). With ``--graph`` it also times the host side of a replayed
CUDA-graph step (``--cuda-graph``): the replay itself is the emulator's and is taken out too.
Launches per step are the eager step's, as ``op_count.py`` counts them.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _common  # first: puts the repository root on sys.path for minigan
import numpy as np
import train_step as ts

_SKIP = frozenset({"emulated", "install", "_Patches", "clear_kernel_caches", "have_cxx"})


class _Clock:
    """Time spent inside the emulator's functions; nested calls count once."""

    def __init__(self):
        self.inside = 0.0
        self.depth = 0

    def wrap(self, f):
        def timed(*args, **kwargs):
            if self.depth:
                return f(*args, **kwargs)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                self.inside += time.perf_counter() - t0
                self.depth -= 1
        timed.__wrapped__ = f
        return timed


@contextlib.contextmanager
def timed_emulator(E, clock: _Clock):
    """Every function, method and property of the emulator module ``E`` timed by ``clock``,
    cuBLAS bindings included; restored on exit."""
    undo = []

    def put(owner, name, value):
        undo.append((owner, name, owner.__dict__[name] if isinstance(owner, type)
                     else getattr(owner, name)))
        setattr(owner, name, value)
    for name, obj in list(vars(E).items()):
        if name.startswith("__") or name in _SKIP:
            continue
        if inspect.isfunction(obj) and obj.__module__ == E.__name__:
            put(E, name, clock.wrap(obj))
            put(E._module, name, getattr(E, name))
        elif inspect.isclass(obj) and obj.__module__ == E.__name__:
            for attr, value in list(vars(obj).items()):
                if attr in ("__init_subclass__", "__class_getitem__", "__new__"):
                    continue
                if inspect.isfunction(value):
                    put(obj, attr, clock.wrap(value))
                elif isinstance(value, property):
                    put(obj, attr, property(value.fget and clock.wrap(value.fget),
                                            value.fset and clock.wrap(value.fset)))
    for name in ("sgemm", "dgemm"):
        put(E.cublas, name, clock.wrap(getattr(E.cublas, name)))
    try:
        yield
    finally:
        for owner, name, value in reversed(undo):
            setattr(owner, name, value)


@contextlib.contextmanager
def _installed(E):
    """``E.emulated()``, except that a patch whose attribute an older minigan's backend lacks
    (``--compare`` with an old checkout) is skipped instead of failing."""
    class Lenient(E._Patches):
        def setattr(self, obj, name, value):
            if hasattr(obj, name):
                super().setattr(obj, name, value)

    patches = Lenient()
    try:
        E.install(patches)
        yield
    finally:
        patches.undo()
        E.clear_kernel_caches()


def _own_times(step, E, clock, steps: int, null: bool) -> list:
    """Seconds of minigan's own host time per call of ``step()``: wall time minus the
    emulator's. ``null``: the step's kernels, GEMMs, copies and fills are dropped instead of
    run (``E._defer`` says every op was taken care of), so nothing executes; the Python on
    both sides of every launch runs as it does in an eager step, references and frees
    included."""
    out = []
    defer = E._defer
    for _ in range(steps):
        gc.collect()
        gc.disable()
        if null:
            E._defer = _drop
        try:
            clock.inside = 0.0
            t0 = time.perf_counter()
            try:
                with np.errstate(all="ignore"):  # the few ops that do run read garbage
                    step()
            finally:
                wall = time.perf_counter() - t0
                inside = clock.inside
        finally:
            E._defer = defer
            gc.enable()
        out.append(wall - inside)
    return out


def _drop(op) -> bool:
    return True


def _count_bytecode(step, E, clock, steps: int) -> tuple:
    """(bytecode instructions per step, Python calls per step, {function: instructions per
    step}) executed outside the emulator and this script, with the emulator's ops dropped: a
    deterministic measure of the Python a step runs (the same on every run, unlike a time on
    a shared machine)."""
    import collections

    skip = (E.__file__, __file__)
    per_code = collections.Counter()
    calls = [0]

    def local(frame, event, arg):
        if event == "opcode":
            per_code[frame.f_code] += 1
        return local

    def on_call(frame, event, arg):
        if clock.depth or frame.f_code.co_filename in skip:
            return None  # nothing inside the emulator is counted, nor what it calls
        calls[0] += 1
        frame.f_trace_opcodes = True
        return local
    defer, E._defer = E._defer, _drop
    try:
        with np.errstate(all="ignore"):
            for _ in range(steps):
                sys.settrace(on_call)
                try:
                    step()
                finally:
                    sys.settrace(None)
    finally:
        E._defer = defer
    by_function = collections.Counter()
    for code, n in per_code.items():
        file = code.co_filename
        where = (file.split(f"{os.sep}minigan{os.sep}")[-1]
                 if f"{os.sep}minigan{os.sep}" in file else os.path.basename(file))
        by_function[f"{where}:{code.co_firstlineno}:{code.co_qualname}"] += n / steps
    return sum(per_code.values()) / steps, calls[0] / steps, by_function


def emulator():
    """This checkout's emulated CuPy, loaded from its file (so that ``--compare`` measures
    another checkout's minigan with the same emulator)."""
    import importlib.util

    path = _common.ROOT / "tests" / "kernels" / "emulated_cupy.py"
    loaded = sys.modules.get("tests.kernels.emulated_cupy")
    if loaded is not None and Path(loaded.__file__).resolve() == path.resolve():
        return loaded  # the one the tests use: one emulator per process
    name = "host_time_emulated_cupy"
    if name not in sys.modules:
        if not path.is_file():
            raise SystemExit(f"host_time.py needs {path} (the emulated CuPy)")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def measure(model: str, steps: int, batch: int, graph: bool, profile: int) -> dict:
    E = emulator()
    clock = _Clock()
    rec = {"framework": "minigan", "model": model, "batch_size": batch, "steps": steps,
           "what": "minigan's own host ms per eager GPU step (emulated CuPy, kernels dropped)"}
    with _installed(E), timed_emulator(E, clock):
        runner = ts.MiniganRunner(model, "cuda")
        runner.make_data(ts.synthetic_batch(batch, ts.DATA_SHAPES[model], 0))
        runner.build(0)
        for _ in range(2):  # run for real: Adam's state, kernel caches, the seed
            runner.step()
        E.LOG.clear()
        own = _own_times(runner.step, E, clock, steps, null=True)
        rec["launches"] = E.LOG.n_launches / steps
        rec["host_syncs"] = sum(E.LOG.syncs.values()) / steps
        rec.update({f"own_ms_{k}": v for k, v in _common.summarize_ms(own).items()
                    if k != "n"})
        rec["own_ms_min"] = float(min(own) * 1e3)
        rec["own_us_per_launch"] = 1e3 * rec["own_ms_median"] / max(rec["launches"], 1)
        rec["bytecodes"], rec["python_calls"], per_function = _count_bytecode(
            runner.step, E, clock, 2)
        if profile:
            rec["profile"] = [{"bytecodes": n, "where": w}
                              for w, n in per_function.most_common(profile)]
        if graph:
            g = ts.MiniganRunner(model, "cuda", graph=True)
            g.make_data(ts.synthetic_batch(batch, ts.DATA_SHAPES[model], 0))
            g.build(0)  # warm-up steps and the capture
            own = _own_times(g.step, E, clock, max(3, steps // 4), null=False)
            rec["graph_own_ms_median"] = float(np.median(own) * 1e3)
    return rec


def _other_checkout(path: str, argv: list) -> list:
    """This script's records for the checkout at ``path`` (its own minigan, run as a
    subprocess with this script and this emulator)."""
    root = os.path.abspath(path)
    env = dict(os.environ, PYTHONPATH=root)
    # _common puts this checkout's root on sys.path; the other root goes before it
    code = ("import sys; sys.path.insert(0, {bench!r}); import _common; "
            "sys.path.insert(0, {root!r}); [sys.modules.pop(m) for m in list(sys.modules) "
            "if m == 'minigan' or m.startswith('minigan.')]; import host_time; "
            "host_time.main({argv!r})")
    cmd = [sys.executable, "-c", code.format(root=root, bench=str(_common.HERE),
                                             argv=argv + ["--json"])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"host_time.py: the run for {path} failed:\n{out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="gan,dragan,dcgan,dcgan64")
    ap.add_argument("--batch-size", type=int, default=8,
                    help="host time does not depend on it; small keeps the warm-up short")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model")
    ap.add_argument("--graph", action="store_true",
                    help="also the host time of a replayed CUDA-graph step")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also the N functions that run the most bytecode per step")
    ap.add_argument("--compare", metavar="CHECKOUT",
                    help="another checkout of minigan, measured in rounds alternating with "
                         "this one")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of --compare")
    ap.add_argument("--json", action="store_true", help="one JSON line per model")
    args = ap.parse_args(argv)
    models = ts.models_arg(ap, args.models)
    if args.steps < 2 or args.batch_size < 1 or args.rounds < 1:
        ap.error(f"--steps must be at least 2 and --batch-size and --rounds at least 1, got "
                 f"{args.steps}, {args.batch_size} and {args.rounds}")
    if args.compare and not os.path.isfile(os.path.join(args.compare, "minigan",
                                                         "__init__.py")):
        ap.error(f"--compare {args.compare}: no minigan package there")
    if not emulator().have_cxx():
        raise SystemExit("host_time.py needs g++: the warm-up steps run the kernels on the CPU")
    if args.compare:
        return _compare(args, models)
    records = [measure(m, args.steps, args.batch_size, args.graph, args.profile)
               for m in models]
    if args.json:
        for r in records:
            print(json.dumps(r), flush=True)
        return records
    _table(records)
    return records


def _table(records: list) -> None:
    print("| model | launches per step | minigan host ms per step, median (p10-p90) "
          "| µs per launch | Python bytecodes (calls) per step | replayed graph step, host ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in records:
        g = r.get("graph_own_ms_median")
        print(f"| {r['model']} | {r['launches']:.0f} | {r['own_ms_median']:.2f} "
              f"({r['own_ms_p10']:.2f}-{r['own_ms_p90']:.2f}) | {r['own_us_per_launch']:.0f} "
              f"| {r['bytecodes']:.0f} ({r['python_calls']:.0f}) "
              f"| {'-' if g is None else f'{g:.3f}'} |")
        for p in r.get("profile", []):
            print(f"#   {p['bytecodes']:8.0f}  {p['where']}")


def _compare(args, models: list) -> list:
    """Rounds of (this checkout, the other); per model the median over rounds of each round's
    median and p10 (the p10 is the steadier on a shared machine)."""
    argv = ["--models", ",".join(models), "--steps", str(args.steps),
            "--batch-size", str(args.batch_size)]
    here, there = [], []
    for _ in range(args.rounds):
        here += [measure(m, args.steps, args.batch_size, False, 0) for m in models]
        there += _other_checkout(args.compare, argv)
    out = []
    print(f"| model | launches here / there | bytecodes here / there | host ms here, median "
          f"(p10) | host ms {args.compare}, median (p10) | ratio of medians | ratio of p10s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    def pooled(recs, m, key):
        return float(np.median([r[key] for r in recs if r["model"] == m]))
    for m in models:
        a, b = pooled(here, m, "own_ms_median"), pooled(there, m, "own_ms_median")
        a10, b10 = pooled(here, m, "own_ms_p10"), pooled(there, m, "own_ms_p10")
        la, ca = next((r["launches"], r["bytecodes"]) for r in here if r["model"] == m)
        lb, cb = next((r["launches"], r.get("bytecodes", 0)) for r in there if r["model"] == m)
        print(f"| {m} | {la:.0f} / {lb:.0f} | {ca:.0f} / {cb:.0f} | {a:.2f} ({a10:.2f}) | "
              f"{b:.2f} ({b10:.2f}) | {a / b:.2f} | {a10 / b10:.2f} |")
        out.append({"model": m, "own_ms_here": a, "own_ms_there": b, "ratio": a / b,
                    "bytecodes_here": ca, "bytecodes_there": cb,
                    "own_ms_p10_here": a10, "own_ms_p10_there": b10, "ratio_p10": a10 / b10,
                    "launches_here": la, "launches_there": lb, "rounds": args.rounds})
    if args.json:
        for r in out:
            print(json.dumps(r))
    return out


if __name__ == "__main__":
    main()
