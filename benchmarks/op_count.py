"""Count the ops one training step dispatches, in minigan and in its PyTorch twin.

    python benchmarks/op_count.py [--models gan,dragan,dcgan,dcgan64] [--steps 3] [--json]

On the GPU a batch-64 step is bound by the host: every op costs its Python (or C++) dispatch
and at least one kernel launch. The counts do not depend on the device, so they can be taken
on the CPU, where this script runs:

- minigan: autograd ``Function`` applications (forward ops, including the differentiable ops
  that backward formulas are built from) and ``backward`` calls, plus the optimizer's
  parameter updates and the GPU launches they take: one multi-tensor kernel per optimizer (per
  dtype, step count and 48 tensors) with ``foreach`` at its default, one per parameter with
  ``foreach=False``;
- PyTorch (if installed): every aten op that reaches the dispatcher during the forward and
  backward passes (``TorchDispatchMode``), with the view and metadata ops counted apart since
  they launch nothing. The optimizer steps are left out of PyTorch's count, because its CPU
  Adam is the for-loop form while on CUDA it uses multi-tensor (foreach) kernels;
- minigan's GPU launches per step, exactly, where g++ is installed: the step runs through the
  emulated CuPy of ``tests/kernels/emulated_cupy.py`` (``count_gpu_launches``).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys

import _common  # noqa: F401 - first: puts the repository root on sys.path for minigan

import minigan.autograd as ag
import minigan.kernels.optim as KO
import train_step as ts

VIEW_OPS = frozenset({"view", "_unsafe_view", "t", "transpose", "permute", "expand", "detach",
                      "alias", "as_strided", "unsqueeze", "squeeze", "reshape", "slice", "select",
                      "_reshape_alias", "numpy_T", "lift_fresh"})


def _function_classes():
    seen, todo = set(), [ag.Function]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def count_minigan(model: str, batch: int, steps: int) -> dict:
    runner = ts.MiniganRunner(model, "cpu")
    runner.make_data(ts.synthetic_batch(batch, ts.DATA_SHAPES[model], 0))
    runner.build(0)
    runner.step()  # warm-up: lazily built state is not counted
    fwd, bwd = collections.Counter(), collections.Counter()
    orig_call = ag.Function.__call__

    def counted_call(self, *inputs):
        fwd[type(self).__name__] += 1
        return orig_call(self, *inputs)

    running = set()  # functions inside a counted backward (a subclass's calls super's)

    def counted_backward(cls, f):
        def backward(self, *gys):
            if id(self) in running:
                return f(self, *gys)
            bwd[type(self).__name__] += 1
            running.add(id(self))
            try:
                return f(self, *gys)
            finally:
                running.discard(id(self))
        return backward

    opt = collections.Counter()
    orig_multi = KO.adam_step_multi

    def counted_multi(params, grads, exp_avgs, exp_avg_sqs, step, *args, foreach=True, **kw):
        opt["param_updates"] += len(params)
        if foreach:
            steps_ = [step] * len(params) if isinstance(step, int) else list(step)
            buckets, rest = KO.multi_tensor_plan(params, grads, exp_avgs, exp_avg_sqs, steps_)
            opt["gpu_launches"] += len(rest) + sum(-(-len(idx) // KO._MULTI_MAX_TENSORS)
                                                   for idx in buckets.values())
        else:
            opt["gpu_launches"] += len(params)
        return orig_multi(params, grads, exp_avgs, exp_avg_sqs, step, *args, foreach=foreach,
                          **kw)

    patched = {c: c.__dict__["backward"] for c in _function_classes() if "backward" in c.__dict__}
    ag.Function.__call__ = counted_call
    KO.adam_step_multi = counted_multi
    for cls, f in patched.items():
        cls.backward = counted_backward(cls, f)
    try:
        for _ in range(steps):
            runner.step()
    finally:
        ag.Function.__call__ = orig_call
        KO.adam_step_multi = orig_multi
        for cls, f in patched.items():
            cls.backward = f
    gpu = count_gpu_launches(model, steps)
    return {"framework": "minigan", "model": model, "batch_size": batch,
            **gpu,
            "forward_functions": sum(fwd.values()) / steps,
            "backward_calls": sum(bwd.values()) / steps,
            "optimizer_param_updates": opt["param_updates"] / steps,
            "optimizer_gpu_launches": opt["gpu_launches"] / steps,
            "top_forward": {k: v / steps for k, v in fwd.most_common(10)},
            "top_backward": {k: v / steps for k, v in bwd.most_common(8)}}


def count_gpu_launches(model: str, steps: int, batch: int = 4, narrow: int = 8) -> dict:
    """Every launch of minigan's GPU code paths per step, counted by running the step through
    the emulated CuPy (``tests/kernels/emulated_cupy.py``; needs g++): kernels, GEMMs,
    copies and fills, by kind, with the host synchronisations and host-to-device copies
    inside the step (both should be 0). Launch counts do not depend on the widths or the
    batch size, so the preset runs at 1/``narrow`` of its widths and batch ``batch``."""
    try:
        from tests.kernels import emulated_cupy as E
    except ImportError as e:  # an installed package without the tests folder
        return {"gpu_launches": None, "gpu_note": f"no emulator ({e})"}
    if not E.have_cxx():
        return {"gpu_launches": None, "gpu_note": "no g++ to emulate the GPU with"}
    with E.emulated():
        runner = ts.MiniganRunner(model, "cuda", narrow=narrow)
        runner.make_data(ts.synthetic_batch(batch, ts.DATA_SHAPES[model], 0))
        runner.build(0)
        runner.step()  # lazily built state is not counted
        E.LOG.clear()
        for _ in range(steps):
            runner.step()
        names = collections.Counter()
        for (kind, name), n in E.LOG.launches.items():
            names[f"{kind}:{name}"] += n
        return {"gpu_launches": E.LOG.n_launches / steps,
                "gpu_launches_by_kind": {k: v / steps for k, v in E.LOG.by_kind().items()},
                "gpu_top": {k: v / steps for k, v in names.most_common(12)},
                "gpu_host_syncs": sum(E.LOG.syncs.values()) / steps,
                "gpu_uploads": E.LOG.uploads / steps}


def count_torch(model: str, batch: int, steps: int, torch) -> dict:
    from torch.utils._python_dispatch import TorchDispatchMode

    runner = ts.TorchRunner(model, "cpu", torch)
    runner.make_data(ts.synthetic_batch(batch, ts.DATA_SHAPES[model], 0))
    runner.prepare(0)
    runner.build(0)
    runner.step()
    ops = collections.Counter()
    paused = [False]

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not paused[0]:
                ops[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    def pause_during(opt):
        step = opt.step

        def wrapped(*a, **k):
            paused[0] = True
            try:
                return step(*a, **k)
            finally:
                paused[0] = False
        opt.step = wrapped

    pause_during(runner.trainer.opt_G)
    pause_during(runner.trainer.opt_D)
    with Count():
        for _ in range(steps):
            runner.step()
    total = sum(ops.values()) / steps
    views = sum(v for k, v in ops.items() if k in VIEW_OPS) / steps
    return {"framework": "torch", "model": model, "batch_size": batch,
            "aten_ops": total, "view_ops": views, "compute_ops": total - views,
            "top": {k: v / steps for k, v in ops.most_common(10)}}


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="gan,dragan,dcgan,dcgan64")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="one JSON line per framework and model")
    args = ap.parse_args(argv)
    models = ts.models_arg(ap, args.models)
    if args.steps < 1 or args.batch_size < 1:
        ap.error(f"--steps and --batch-size must be at least 1, got {args.steps} and "
                 f"{args.batch_size}")
    try:
        import torch
    except ImportError as e:
        torch = None
        print(f"# PyTorch is not installed ({e}); counting minigan only", file=sys.stderr)
    records = []
    for m in models:
        records.append(count_minigan(m, args.batch_size, args.steps))
        if torch is not None:
            records.append(count_torch(m, args.batch_size, args.steps, torch))
    if args.json:
        for r in records:
            print(json.dumps(r))
        return records
    print("| model | minigan forward Functions | minigan backward calls | minigan Adam updates "
          "| their GPU launches | minigan GPU launches per step (emulated) "
          "| torch aten ops (fwd+bwd) | of them views |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        mg = next(r for r in records if r["model"] == m and r["framework"] == "minigan")
        th = next((r for r in records if r["model"] == m and r["framework"] == "torch"), None)
        tcells = (f"{th['aten_ops']:.0f} | {th['view_ops']:.0f}" if th else "- | -")
        print(f"| {m} | {mg['forward_functions']:.0f} | {mg['backward_calls']:.0f} | "
              f"{mg['optimizer_param_updates']:.0f} | {mg['optimizer_gpu_launches']:.0f} | "
              f"{_gpu_cell(mg)} | {tcells} |")
    for r in records:
        top = r.get("top_forward") or r.get("top")
        print(f"# {r['framework']} {r['model']} most frequent: "
              + ", ".join(f"{k} {v:g}" for k, v in top.items()))
        if r.get("gpu_top"):
            print(f"# minigan {r['model']} GPU launches by kind: "
                  + ", ".join(f"{k} {v:g}" for k, v in r["gpu_launches_by_kind"].items())
                  + f"; host syncs {r['gpu_host_syncs']:g}, uploads {r['gpu_uploads']:g}; "
                  "most frequent: " + ", ".join(f"{k} {v:g}" for k, v in r["gpu_top"].items()))
    return records


def _gpu_cell(r: dict) -> str:
    if r.get("gpu_launches") is None:
        return "- (" + r.get("gpu_note", "not counted") + ")"
    return f"{r['gpu_launches']:.0f}"


if __name__ == "__main__":
    main()
