"""Markdown tables for benchmarks/README.md from the JSON lines the benchmarks wrote.

    python benchmarks/report.py benchmarks/results/*.jsonl

Train-step records (train_step.py --json) become one row per (model, device, batch) with the
minigan/PyTorch ratios (runs with --narrow get rows of their own, with no target); kernel
records (kernels.py --json) a per-op summary; profiles (train_step.py --profile --json) their
per-category shares; launch_cost.py records the host cost per call.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# Targets of the performance issue: (device, model, batch) -> max minigan/torch step-time ratio
TARGETS = {("cpu", "gan", 64): 1.0, ("cpu", "dragan", 64): 1.0, ("cpu", "dcgan", 64): 1.2,
           ("cpu", "dcgan64", 64): 1.2, ("cuda", "gan", 64): 1.0, ("cuda", "dragan", 64): 1.0,
           ("cuda", "dcgan", 64): 1.0, ("cuda", "dcgan64", 64): 1.0,
           ("cuda", "dcgan64", 256): 1.3}


def read(paths):
    """(train steps, kernels, profiles, launch costs, failures, the last environment seen)."""
    steps, kernels, profiles, launches, failures, env = [], [], [], [], [], {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SystemExit(f"report.py: cannot read {path}: {exc.strerror or exc}") from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"report.py: {path}, line {number}: not a JSON record "
                                 f"({exc.msg})") from None
            env = r.get("env", env)
            if "shares_pct" in r:
                profiles.append(r)
            elif "case" in r:
                launches.append(r)
            elif "step_ms_median" in r:
                steps.append(r)
            elif "op" in r:
                kernels.append(r)
            elif "error" in r and "framework" in r:
                failures.append(r)
    return steps, kernels, profiles, launches, failures, env


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


_ORDER = {"gan": 0, "dragan": 1, "dcgan": 2, "dcgan64": 3}


def _compared(steps, field, need=None):
    """(key, minigan record, torch record, ratio of ``field``, target, verdict) per
    (device, model, batch), in table order; later runs of the same configuration win."""
    rows = {}
    for r in steps:
        if need is None or need in r:
            narrow = r.get("narrow") or 1
            model = r["model"] if narrow == 1 else f"{r['model']} (narrow {narrow})"
            rows.setdefault((r["device"], model, r["batch_size"]), {})[r["framework"]] = r
    for key in sorted(rows, key=lambda k: (k[0], k[2], _ORDER.get(k[1].split()[0], 9), k[1])):
        t = rows[key].get("torch")
        for fw, label in (("minigan", ""), ("minigan_graph", " (CUDA graph)")):
            m = rows[key].get(fw)
            if m is None and (fw != "minigan" or not t):
                continue  # (a torch-only row still shows, with minigan's cells empty)
            ratio = m[field] / t[field] if m and t else None
            target = TARGETS.get(key)  # a narrowed model's key is no preset's: no target
            verdict = ""
            if ratio is not None and target is not None:
                verdict = " ok" if ratio <= target else " MISS"
            yield (key[0], key[1] + label, key[2]), m, t, ratio, target, verdict


def step_table(steps):
    head = ("| device | model | batch | minigan ms (p10-p90) | torch ms (p10-p90) | ratio | "
            "paired ratio (IQR) | target | img/s minigan | img/s torch | peak MiB minigan | "
            "peak MiB torch |")
    out = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, m, t, ratio, target, verdict in _compared(steps, "step_ms_median"):

        def cell(r):
            if r is None:
                return "-"
            return f"{r['step_ms_median']:.2f} ({r['step_ms_p10']:.1f}-{r['step_ms_p90']:.1f})"

        paired = "-"
        if m and t and "ratio_paired_median" in m:
            paired = (f"{m['ratio_paired_median']:.2f} ({m['ratio_paired_p25']:.2f}-"
                      f"{m['ratio_paired_p75']:.2f})")
        out.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {cell(m)} | {cell(t)} | "
            f"{_fmt(ratio, '.2f')}{verdict} | {paired} | {'≤ ' + str(target) if target else '-'} | "
            f"{_fmt(m and m['img_per_s'], '.0f')} | {_fmt(t and t['img_per_s'], '.0f')} | "
            f"{_fmt(m and m.get('peak_mem_mb'), '.0f')} | "
            f"{_fmt(t and t.get('peak_mem_mb'), '.0f')} |")
    return "\n".join(out)


def pipelined_table(steps):
    """Throughput ratios (blocks of steps, one sync per block), where the records have them."""
    rows = list(_compared(steps, "pipelined_ms_median", need="pipelined_ms_median"))
    if not rows:
        return ""
    out = ["| device | model | batch | steps per sync | minigan ms (p10-p90) | "
           "torch ms (p10-p90) | ratio | target |", "|---|---|---:|---:|---:|---:|---:|---:|"]

    def cell(r):
        if r is None:
            return "-"
        return (f"{r['pipelined_ms_median']:.2f} ({r['pipelined_ms_p10']:.1f}-"
                f"{r['pipelined_ms_p90']:.1f})")

    for key, m, t, ratio, target, verdict in rows:
        block = (m or t)["pipelined_block"]
        out.append(f"| {key[0]} | {key[1]} | {key[2]} | {block} | {cell(m)} | {cell(t)} | "
                   f"{_fmt(ratio, '.2f')}{verdict} | {'≤ ' + str(target) if target else '-'} |")
    return "\n".join(out)


def trace_tables(steps):
    """GPU kernel traces (train_step.py --gpu-trace): kernels per step and GPU busy time."""
    recs = [r for r in steps if "gpu_trace" in r]
    if not recs:
        return ""
    out = ["| model | batch | framework | GPU activities/step | GPU busy ms/step | traced step ms "
           "| busy share | GEMM share of busy |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in recs:
        t = r["gpu_trace"]
        out.append(f"| {r['model']} | {r['batch_size']} | {r['framework']} | "
                   f"{t['kernels_per_step']:.0f} | {t['gpu_busy_ms_per_step']:.2f} | "
                   f"{t['traced_step_ms']:.2f} | {100 * t['gpu_busy_share']:.0f}% | "
                   f"{100 * t['gemm_share_of_busy']:.0f}% |")
    return "\n".join(out)


def kernel_table(kernels):
    """Per (device, preset, batch, op, direction): time summed over the preset's layers, its
    GFLOP/s, and the share of the run's roofline (GEMM rate for convolutions, copy bandwidth
    for the memory-bound ops)."""
    agg = {}
    for r in kernels:
        key = (r["device"], r["preset"], r["batch_size"] or 0, r["op"], r["direction"])
        fw = "torch" if r["framework"] == "torch" else "minigan"
        a = agg.setdefault(key, {}).setdefault(fw, {"ms": 0.0, "gflop": 0.0, "gb": 0.0})
        a["ms"] += r["ms_median"]
        a["gflop"] += r["gflop"]
        a["gb"] += r.get("gb_per_s", 0.0) * r["ms_median"] / 1e3
        a["roof"] = (r["copy_gb_per_s"], "BW") if "copy_gb_per_s" in r \
            else (r["gemm_gflop_per_s"], "GEMM")
    ops = ("conv2d", "conv_transpose2d", "batch_norm", "leaky_relu", "adam")
    head = ("| device | preset | batch | op | dir | minigan ms | GFLOP/s | % roof | torch ms | "
            "GFLOP/s | % roof | ratio |")
    out = [head, "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def cells(a):
        if a is None:
            return "- | - | -"
        sec = a["ms"] / 1e3
        peak, kind = a["roof"]
        rate = (a["gb"] if kind == "BW" else a["gflop"]) / sec
        return f"{a['ms']:.2f} | {a['gflop'] / sec:.1f} | {100 * rate / peak:.0f}% {kind}"

    for key in sorted(agg, key=lambda k: (k[0], k[1], k[2], ops.index(k[3]), k[4])):
        m, t = agg[key].get("minigan"), agg[key].get("torch")
        ratio = m["ms"] / t["ms"] if m and t else None
        out.append(f"| {key[0]} | {key[1]} | {key[2] or '-'} | {key[3]} | {key[4]} | "
                   f"{cells(m)} | {cells(t)} | {_fmt(ratio, '.2f')} |")
    return "\n".join(out)


def launch_table(launches):
    """launch_cost.py: host microseconds per call, minigan's array library against PyTorch."""
    out = [("| device | call | minigan host µs | total µs | PyTorch host µs | total µs | "
            "host ratio |"), "|---|---|---:|---:|---:|---:|---:|"]
    for r in launches:
        ratio = r.get("host_ratio_vs_torch")
        out.append(f"| {r['device']} | {r['case']} | {_fmt(r.get('minigan_host_us'))} | "
                   f"{_fmt(r.get('minigan_total_us'))} | {_fmt(r.get('torch_host_us'))} | "
                   f"{_fmt(r.get('torch_total_us'))} | {_fmt(ratio, '.2f')} |")
    return "\n".join(out)


def profile_tables(profiles):
    out = []
    for p in profiles:
        out.append(f"**{p['model']}, batch {p['batch_size']}, {p['device']}**: "
                   f"{p['step_ms_unprofiled']:.1f} ms/step unprofiled, "
                   f"{p['step_ms_profiled']:.1f} ms under cProfile\n")
        out.append("| where the time goes | share |\n|---|---:|")
        out += [f"| {k} | {v:.1f}% |" for k, v in p["shares_pct"].items() if v >= 0.05]
        out.append("")
    return "\n".join(out)


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(
        description="Markdown tables from the JSON lines of train_step.py, kernels.py and "
                    "launch_cost.py (other lines are skipped).")
    ap.add_argument("paths", nargs="*", metavar="FILE",
                    help="JSON-lines files (default: benchmarks/results/*.jsonl)")
    paths = ap.parse_args(argv).paths or sorted(
        str(p) for p in (Path(__file__).parent / "results").glob("*.jsonl"))
    steps, kernels, profiles, launches, failures, env = read(paths)
    parts = []
    if env:
        parts.append("\n".join(f"- {k}: {v}" for k, v in env.items() if v is not None))
    if steps:
        parts.append(step_table(steps))
        parts += [t for t in (pipelined_table(steps), trace_tables(steps)) if t]
    if kernels:
        parts.append(kernel_table(kernels))
    if profiles:
        parts.append(profile_tables(profiles))
    if launches:
        parts.append(launch_table(launches))
    if failures:
        parts.append("\n".join(f"- FAILED: {r['framework']} {r.get('model', '')} "
                                f"{r.get('device', '')} batch {r.get('batch_size', '-')}: "
                                f"{r['error']}" for r in failures))
    text = "\n\n".join(parts)
    print(text)
    return text


if __name__ == "__main__":
    main()
