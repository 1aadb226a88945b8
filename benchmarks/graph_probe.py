"""Checks and times minigan's CUDA-graph step (``minigan train --cuda-graph``,
``minigan/gan/graph.py``) on a GPU, next to the eager step and PyTorch's eager twin.

    python benchmarks/graph_probe.py --models gan,dragan,dcgan,dcgan64 --batch-size 64 \
        --steps 200 --torch --json --out "$OUT/graph_probe.jsonl"

It needs a CUDA GPU with CuPy (``tests/test_benchmarks_smoke.py`` runs it on the emulated GPU).

1. GEMM check: ``kernels.gemm.matmul`` inside ``capturable()`` (cuBLAS called directly on a
   handle of minigan's own, as a captured step's GEMMs are) is captured, replayed and compared
   with ``cupy.matmul`` for each operand layout.
2. Replays against eager steps: two trainers start from the same weights; one steps eagerly
   with the graph's settings (capturable Adam and generator, direct cuBLAS), the other through
   ``GraphedStep``. After the capture's step and after replays 2 and 10 the largest weight
   difference is reported; 0 (or rounding) when the replays rerun the step they captured with
   the right per-step numbers, a growing one if a number is frozen in the graph.
3. Timing: blocks of ``--block`` steps between two synchronisations, interleaved between the
   replayed step, the eager minigan step (the default, CuPy's cuBLAS) and, with ``--torch``,
   the eager PyTorch twin, as ``train_step.py --pipelined`` times them. Also the host time to
   enqueue one replayed step, and the time per step of 100 of them back to back.

A failure at any stage is reported with its traceback, and the probe goes on with the next
model: a refusal inside the capture is a finding too.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
import traceback

import _common as C  # first: puts the repository root on sys.path for minigan
import numpy as np

import train_step as TS
from minigan import backend
from minigan.gan.graph import DEFAULT_WARMUP, GraphedStep, capturable_step, make_capturable
from minigan.kernels import gemm


def check_gemm(cp) -> dict:
    """A captured and replayed GEMM against cupy.matmul, for each operand layout: the largest
    absolute difference."""
    rng = np.random.default_rng(0)
    out = {}
    s = backend.new_stream()
    for name, (ta, tb) in {"nn": (False, False), "nt": (False, True), "tn": (True, False),
                           "tt": (True, True)}.items():
        a = cp.asarray(rng.standard_normal((50, 37) if ta else (37, 50)), dtype=cp.float32)
        b = cp.asarray(rng.standard_normal((29, 50) if tb else (50, 29)), dtype=cp.float32)
        a, b = (a.T if ta else a), (b.T if tb else b)
        ref = cp.matmul(a, b)
        backend.stream_wait(s, backend.current_stream())
        with s, gemm.capturable():
            gemm.matmul(a, b)  # makes this stream's cuBLAS handle, outside the capture
            s.begin_capture()
            try:
                c = gemm.matmul(a, b)
            finally:
                graph = s.end_capture()
            c.fill(0)
            graph.launch(stream=s)
            s.synchronize()
        out[name] = float(cp.abs(c - ref).max())
    return out


def _weights(trainer) -> list:
    return [p.data for p in list(trainer.G.parameters()) + list(trainer.D.parameters())]


def _max_diff(cp, xs, ys) -> float:
    return max(float(cp.abs(x - y).max()) for x, y in zip(xs, ys))


class _EagerTwin(TS.MiniganRunner):
    """Eager steps with the graph's settings: the reference its replays must equal."""

    def build(self, seed: int) -> None:
        super().build(seed)
        make_capturable(self.trainer)

    def step(self) -> None:
        capturable_step(self.trainer, self.real)


class _GraphRunner(TS.MiniganRunner):
    """``GraphedStep``, built without train_step's warm-up (the probe counts its steps)."""

    name = "graph"

    def build(self, seed: int) -> None:
        super().build(seed)
        self.graphed = GraphedStep(self.trainer)

    def step(self) -> None:
        self.graphed(self.real)


def probe_model(model: str, args, cp, torch) -> dict:
    rec = {"model": model, "batch_size": args.batch_size, "device": "cuda",
           "warmup": DEFAULT_WARMUP}
    batch = TS.synthetic_batch(args.batch_size, TS.DATA_SHAPES[model], args.seed)

    def made(runner):
        runner.make_data(batch)
        runner.build(args.seed)
        return runner

    stage = "capture"
    try:
        twin, graph = made(_EagerTwin(model, "cuda")), made(_GraphRunner(model, "cuda"))
        done = 0
        for k in (DEFAULT_WARMUP + 1, DEFAULT_WARMUP + 2, DEFAULT_WARMUP + 10):
            while done < k:  # the capture is in call DEFAULT_WARMUP + 1
                twin.step()
                graph.step()
                done += 1
            stage = "replays"
            backend.synchronize("cuda")
            rec[f"step{k}_max_abs_diff"] = _max_diff(cp, _weights(twin.trainer),
                                                     _weights(graph.trainer))
        rec["graph_pool_mb"] = graph.graphed.pool.total_bytes() / 2**20
        rec["host_counters_match"] = (twin.trainer.rng.state_dict()
                                      == graph.trainer.rng.state_dict())
        stage = "timing"
        eager = made(TS.MiniganRunner(model, "cuda"))  # the default eager step
        runners = [graph, eager]
        if torch is not None:
            t = TS.TorchRunner(model, "cuda", torch)
            t.make_data(batch)
            t.prepare(args.seed)
            t.build(args.seed)
            runners.append(t)
        for r in runners:
            r.mem_baseline()
            for _ in range(args.warmup):
                r.step()
            r.sync()
        times = TS.time_pipelined(runners, args.steps, args.block)
        for name, ts in times.items():
            rec[f"{name}_ms_median"] = statistics.median(ts) * 1e3
            rec[f"{name}_ms_p10"] = float(np.percentile(ts, 10)) * 1e3
            rec[f"{name}_ms_p90"] = float(np.percentile(ts, 90)) * 1e3
        graph.sync()
        t0 = time.perf_counter()
        for _ in range(args.back_to_back):
            graph.step()
        t1 = time.perf_counter()
        graph.sync()
        rec["graph_step_host_us"] = (t1 - t0) / args.back_to_back * 1e6
        rec["graph_step_ms_back_to_back"] = (time.perf_counter() - t0) / args.back_to_back * 1e3
        if "torch_ms_median" in rec:
            rec["ratio_graph_torch"] = rec["graph_ms_median"] / rec["torch_ms_median"]
            rec["ratio_eager_torch"] = rec["minigan_ms_median"] / rec["torch_ms_median"]
        rec["ok"] = True
    except Exception as e:  # a refusal inside the step is a finding: report it and go on
        rec["ok"] = False
        rec["failed_at"] = stage
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc(limit=-6)
        with contextlib.suppress(Exception):
            backend.synchronize("cuda")
    return rec


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="gan,dragan,dcgan,dcgan64")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="timed steps per runner")
    p.add_argument("--block", type=int, default=20, help="steps between two syncs")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per runner")
    p.add_argument("--back-to-back", type=int, default=100,
                   help="replays enqueued without a sync, for the host and GPU time of one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch", action="store_true", help="also time the PyTorch twin")
    p.add_argument("--json", action="store_true", help="one JSON line per model on stdout")
    p.add_argument("--out", help="also append the JSON lines to this file")
    args = p.parse_args(argv)
    bad = [m for m in args.models.split(",") if m not in TS.MODELS]
    if bad:
        p.error(f"--models: unknown {', '.join(bad)}; choose from {', '.join(TS.MODELS)}")
    if min(args.batch_size, args.steps, args.block, args.back_to_back) < 1 or args.warmup < 0:
        p.error("--batch-size, --steps, --block and --back-to-back must be >= 1, --warmup >= 0")
    return args


def main(argv=None) -> list:
    args = parse_args(argv)
    if not backend.cuda_available():
        sys.exit("graph_probe: needs CuPy and a CUDA GPU")
    cp = backend.cupy
    torch = C.torch_or_note("cuda", args.torch, "# no PyTorch comparison: {why}")
    env = C.environment("cuda", torch)
    C.print_header(env, file=sys.stderr)
    try:
        gemm_check = check_gemm(cp)
        print(f"# captured GEMM vs cupy.matmul, max abs diff per layout: {gemm_check}",
              file=sys.stderr)
    except Exception as e:
        gemm_check = {"error": f"{type(e).__name__}: {e}"}
        print(f"# captured GEMM failed: {traceback.format_exc(limit=-4)}", file=sys.stderr)
    records = []
    for model in args.models.split(","):
        rec = probe_model(model, args, cp, torch)
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
    return records


if __name__ == "__main__":
    main()
