"""Forward and backward time of minigan's kernels at the shapes of the dcgan and dcgan64 presets,
beside PyTorch's equivalents on the same device (with --torch, when PyTorch is installed).

    python benchmarks/kernels.py --device cpu --batch-sizes 64,256 --torch [--json]

Ops: conv2d (every D layer), conv_transpose2d (every G layer), batch_norm (every BN layer),
leaky_relu (every D activation) and one Adam step over all of D's and G's parameters. minigan
is timed through its kernel functions (minigan.kernels.*) and PyTorch through F.* forward under
no_grad and torch.autograd.grad backward over a prebuilt graph.

Backward is what training needs: conv2d gives gx = conv_transpose2d(gy, W) and
gW = conv2d_grad_weight(x, gy); conv_transpose2d gives gx = conv2d(gy, W) and
gW = conv2d_grad_weight(gy, x); batch_norm gives gx, gW and gb; leaky_relu gives gx.

Each result is the median over repeats after warm-up (GPU synchronised), as milliseconds, as
GFLOP/s and as a share of a roofline measured in the same run: the rate of a square float32
GEMM (n = 1024) for convolutions, the bandwidth of a 64 MiB copy for the memory-bound ops.
FLOPs: conv forward 2*N*O*C*kh*kw*Ho*Wo (for a transposed conv, that of the conv it is the
adjoint of), backward twice that. The memory-bound ops count nominal FLOPs and the minimum bytes
each must move (see ``_ELEMENTWISE``).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _common as C  # first: puts the repository root on sys.path for minigan
import numpy as np

from minigan import backend
from minigan import random as mrandom
from minigan.autograd import Tensor, no_grad
from minigan.gan.models import build_models
from minigan.gan.trainer import PRESET_OPTIM
from minigan.kernels import batchnorm as KB
from minigan.kernels import conv as KC
from minigan.kernels import elementwise as KE
from minigan.kernels import optim as KO
from minigan.nn import layers
from minigan.nn.init import dcgan_init_

PRESETS = {"dcgan": (1, 28, 28), "dcgan64": (3, 64, 64)}
OPS = ("conv2d", "conv_transpose2d", "batch_norm", "leaky_relu", "adam")
SLOPE, BN_MOMENTUM, BN_EPS, ADAM_EPS = 0.2, 0.1, 1e-5, 1e-8
# Memory-bound ops: (nominal FLOPs, minimum float32 words moved) per element, forward/backward.
# batch norm forward reads x twice (statistics, then normalise) and writes y; backward reads
# gy and x for the statistics and again for gx, and writes gx. Adam reads p, g, m, v and
# writes p, m, v.
_ELEMENTWISE = {"batch_norm": ((6, 3), (9, 5)), "leaky_relu": ((1, 2), (1, 3)),
                "adam": ((12, 7), None)}


@dataclass
class Case:
    op: str
    preset: str
    layer: str
    batch: int | None
    shape: str
    flops: dict                      # direction -> FLOPs per call
    bytes: dict                      # direction -> bytes per call (memory-bound ops)
    minigan: Callable                # (xp) -> {direction: fn}
    torch: Callable                  # (torch, device) -> {direction: fn}
    bound: str = "gemm"              # the roofline it is compared with: "gemm" or "copy"
    extra: dict = field(default_factory=dict)


def layer_shapes(preset: str):
    """[(net, index, module, input shape at batch 1)] for every layer of the preset's G and D."""
    mrandom.manual_seed(0)
    G, D = build_models(preset, PRESETS[preset], 0, 100)
    out = []
    with no_grad():
        for tag, net, x in (("G", G.net, np.zeros((1, 100, 1, 1), np.float32)),
                            ("D", D.net, np.zeros((1,) + PRESETS[preset], np.float32))):
            t = Tensor(x)
            for i, m in enumerate(net):
                out.append((tag, i, m, t.shape))
                t = m(t)
    return out, G, D


def _rand(xp, shape, seed):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape)
                             .astype(np.float32), "cuda" if xp is not np else "cpu")


def _torch_rand(torch, device, shape, seed, grad=False):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=torch.float32).to(device)
    return t.requires_grad_(grad)


def conv_case(preset, name, m, in_shape, n):
    x_shape = (n,) + tuple(in_shape[1:])
    k, s, p = m.kernel_size, m.stride, m.padding
    transposed = isinstance(m, layers.ConvTranspose2d)
    w_shape = tuple(m.weight.shape)
    if transposed:
        hw = KC.conv_transpose_output_size(x_shape[2:], k, s, p)
        y_shape = (n, w_shape[1]) + tuple(hw)
        # the adjoint conv maps y (n, Cout, Ho, Wo) to x (n, Cin, H, W)
        flops = 2 * n * w_shape[0] * w_shape[1] * k[0] * k[1] * x_shape[2] * x_shape[3]
    else:
        hw = KC.conv_output_size(x_shape[2:], k, s, p)
        y_shape = (n, w_shape[0]) + tuple(hw)
        flops = 2 * n * w_shape[0] * w_shape[1] * k[0] * k[1] * hw[0] * hw[1]

    def minigan(xp):
        x, w, gy = _rand(xp, x_shape, 1), _rand(xp, w_shape, 2), _rand(xp, y_shape, 3)
        if transposed:
            return {"fwd": lambda: KC.conv_transpose2d_forward(x, w, None, s, p),
                    "bwd": lambda: (KC.conv2d_forward(gy, w, None, s, p),
                                    KC.conv2d_grad_weight(gy, x, k, s, p))}
        op = KC.conv_transpose_output_padding(x_shape[2:], y_shape[2:], k, s, p)
        return {"fwd": lambda: KC.conv2d_forward(x, w, None, s, p),
                "bwd": lambda: (KC.conv_transpose2d_forward(gy, w, None, s, p, op),
                                KC.conv2d_grad_weight(x, gy, k, s, p))}

    def torch_fns(torch, device):
        F = torch.nn.functional
        x = _torch_rand(torch, device, x_shape, 1, True)
        w = _torch_rand(torch, device, w_shape, 2, True)
        gy = _torch_rand(torch, device, y_shape, 3)
        fn = F.conv_transpose2d if transposed else F.conv2d
        y = fn(x, w, None, s, p)

        def fwd():
            with torch.no_grad():
                return fn(x, w, None, s, p)

        return {"fwd": fwd,
                "bwd": lambda: torch.autograd.grad(y, (x, w), gy, retain_graph=True)}

    op = "conv_transpose2d" if transposed else "conv2d"
    shape = f"x{x_shape} w{w_shape} s{s[0]} p{p[0]}"
    return Case(op, preset, name, n, shape, {"fwd": flops, "bwd": 2 * flops}, {},
                minigan, torch_fns)


def batch_norm_case(preset, name, m, in_shape, n):
    x_shape = (n,) + tuple(in_shape[1:])
    c = x_shape[1]
    size = int(np.prod(x_shape))
    (ff, fw), (bf, bw) = _ELEMENTWISE["batch_norm"]

    def minigan(xp):
        x, gy = _rand(xp, x_shape, 1), _rand(xp, x_shape, 2)
        w, b = xp.ones(c, np.float32), xp.zeros(c, np.float32)
        rm, rv = xp.zeros(c, np.float32), xp.ones(c, np.float32)
        _, mean, invstd = KB.batch_norm_forward_train(x, w, b, rm, rv, BN_MOMENTUM, BN_EPS)
        return {"fwd": lambda: KB.batch_norm_forward_train(x, w, b, rm, rv, BN_MOMENTUM, BN_EPS),
                "bwd": lambda: KB.batch_norm_backward_train(gy, x, w, mean, invstd)}

    def torch_fns(torch, device):
        F = torch.nn.functional
        x = _torch_rand(torch, device, x_shape, 1, True)
        gy = _torch_rand(torch, device, x_shape, 2)
        w = torch.ones(c, device=device, requires_grad=True)
        b = torch.zeros(c, device=device, requires_grad=True)
        rm, rv = torch.zeros(c, device=device), torch.ones(c, device=device)
        y = F.batch_norm(x, rm, rv, w, b, True, BN_MOMENTUM, BN_EPS)

        def fwd():
            with torch.no_grad():
                return F.batch_norm(x, rm, rv, w, b, True, BN_MOMENTUM, BN_EPS)

        return {"fwd": fwd,
                "bwd": lambda: torch.autograd.grad(y, (x, w, b), gy, retain_graph=True)}

    return Case("batch_norm", preset, name, n, f"x{x_shape}", {"fwd": ff * size, "bwd": bf * size},
                {"fwd": 4 * fw * size, "bwd": 4 * bw * size}, minigan, torch_fns, "copy")


def leaky_relu_case(preset, name, m, in_shape, n):
    x_shape = (n,) + tuple(in_shape[1:])
    size = int(np.prod(x_shape))
    (ff, fw), (bf, bw) = _ELEMENTWISE["leaky_relu"]

    def minigan(xp):
        x, gy = _rand(xp, x_shape, 1), _rand(xp, x_shape, 2)
        return {"fwd": lambda: KE.leaky_relu_forward(x, SLOPE),
                "bwd": lambda: KE.leaky_relu_backward(gy, x, SLOPE)}

    def torch_fns(torch, device):
        F = torch.nn.functional
        x = _torch_rand(torch, device, x_shape, 1, True)
        gy = _torch_rand(torch, device, x_shape, 2)
        y = F.leaky_relu(x, SLOPE)

        def fwd():
            with torch.no_grad():
                return F.leaky_relu(x, SLOPE)

        return {"fwd": fwd, "bwd": lambda: torch.autograd.grad(y, x, gy, retain_graph=True)}

    return Case("leaky_relu", preset, name, n, f"x{x_shape}", {"fwd": ff * size, "bwd": bf * size},
                {"fwd": 4 * fw * size, "bwd": 4 * bw * size}, minigan, torch_fns, "copy")


def adam_case(preset, G, D):
    shapes = [tuple(p.shape) for p in list(D.parameters()) + list(G.parameters())]
    size = sum(int(np.prod(s)) for s in shapes)
    lr, _, b1, b2 = PRESET_OPTIM[preset]
    flops, words = _ELEMENTWISE["adam"][0]

    def minigan(xp):
        params = [_rand(xp, s, i) * 0.02 for i, s in enumerate(shapes)]
        grads = [_rand(xp, s, 1000 + i) for i, s in enumerate(shapes)]
        ms = [xp.zeros_like(p) for p in params]
        vs = [xp.zeros_like(p) for p in params]
        count = [0]

        def step():
            count[0] += 1
            for p, g, m, v in zip(params, grads, ms, vs):
                KO.adam_step(p, g, m, v, count[0], lr, b1, b2, ADAM_EPS)

        return {"step": step}

    def torch_fns(torch, device):
        params = [_torch_rand(torch, device, s, i) * 0.02 for i, s in enumerate(shapes)]
        params = [p.detach().requires_grad_(True) for p in params]
        for i, p in enumerate(params):
            p.grad = _torch_rand(torch, device, p.shape, 1000 + i)
        opt = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=ADAM_EPS)
        return {"step": opt.step}

    return Case("adam", preset, "D+G", None, f"{len(shapes)} tensors, {size} values",
                {"step": flops * size}, {"step": 4 * words * size}, minigan, torch_fns, "copy",
                {"params": size})


def build_cases(presets, batches, ops):
    cases = []
    for preset in presets:
        shapes, G, D = layer_shapes(preset)
        if preset in ("dcgan", "dcgan64"):
            G.apply(dcgan_init_)
            D.apply(dcgan_init_)
        counters = {}
        for n in batches:
            for tag, i, m, in_shape in shapes:
                kind = type(m).__name__
                counters[(n, tag, kind)] = counters.get((n, tag, kind), 0) + 1
                name = f"{tag}.{kind}{counters[(n, tag, kind)]}"
                if isinstance(m, (layers.Conv2d, layers.ConvTranspose2d)):
                    case = conv_case(preset, name, m, in_shape, n)
                elif isinstance(m, layers.BatchNorm2d):
                    case = batch_norm_case(preset, name, m, in_shape, n)
                elif isinstance(m, layers.LeakyReLU):
                    case = leaky_relu_case(preset, name, m, in_shape, n)
                else:
                    continue
                if case.op in ops:
                    cases.append(case)
        if "adam" in ops:
            cases.append(adam_case(preset, G, D))
    return cases


def rooflines(device, torch, repeats):
    """GEMM GFLOP/s (square float32, n = 1024) and copy GB/s (64 MiB) per framework."""
    n, words = 1024, 2**24
    out = {}
    xp = backend.xp_for(device)
    a, b = _rand(xp, (n, n), 1), _rand(xp, (n, n), 2)
    c = xp.empty((n, n), np.float32)
    src, dst = _rand(xp, (words,), 3), xp.empty(words, np.float32)
    t_gemm = C.time_calls(lambda: xp.matmul(a, b, out=c), device, None, 2, repeats)
    t_copy = C.time_calls(lambda: xp.copyto(dst, src), device, None, 2, repeats)
    name = "numpy" if device == "cpu" else "cupy"
    out[name] = {"gemm_gflop_per_s": 2 * n**3 / np.median(t_gemm) / 1e9,
                 "copy_gb_per_s": 8 * words / np.median(t_copy) / 1e9}
    if torch is not None:
        ta, tb = _torch_rand(torch, device, (n, n), 1), _torch_rand(torch, device, (n, n), 2)
        tc = torch.empty((n, n), device=device)
        tsrc, tdst = _torch_rand(torch, device, (words,), 3), torch.empty(words, device=device)
        t_gemm = C.time_calls(lambda: torch.mm(ta, tb, out=tc), device, torch, 2, repeats)
        t_copy = C.time_calls(lambda: tdst.copy_(tsrc), device, torch, 2, repeats)
        out["torch"] = {"gemm_gflop_per_s": 2 * n**3 / np.median(t_gemm) / 1e9,
                        "copy_gb_per_s": 8 * words / np.median(t_copy) / 1e9}
    return out


def run_case(case, device, torch, args, roof):
    """Result records for one case: one per framework and direction."""
    frameworks = [("numpy" if device == "cpu" else "cupy", None)]
    if torch is not None:
        frameworks.append(("torch", torch))
    min_sample = 0.0 if device == "cpu" else 0.002
    records = []
    for fw, tmod in frameworks:
        fns = case.minigan(backend.xp_for(device)) if tmod is None else case.torch(tmod, device)
        for direction, fn in fns.items():
            t = C.time_calls(fn, device, tmod, args.warmup, args.repeats, min_sample)
            s = C.summarize_ms(t)
            sec = s["median"] / 1e3
            rec = {"op": case.op, "preset": case.preset, "layer": case.layer,
                   "batch_size": case.batch, "shape": case.shape, "direction": direction,
                   "framework": fw, "device": device, "ms_median": s["median"],
                   "ms_p10": s["p10"], "ms_p90": s["p90"], "repeats": s["n"],
                   "gflop": case.flops[direction] / 1e9,
                   "gflop_per_s": case.flops[direction] / sec / 1e9,
                   "gemm_gflop_per_s": roof[fw]["gemm_gflop_per_s"]}
            rec["gemm_share"] = rec["gflop_per_s"] / rec["gemm_gflop_per_s"]
            if direction in case.bytes:
                rec["gb_per_s"] = case.bytes[direction] / sec / 1e9
                rec["copy_gb_per_s"] = roof[fw]["copy_gb_per_s"]
                rec["bw_share"] = rec["gb_per_s"] / rec["copy_gb_per_s"]
            rec["roofline"] = case.bound
            rec.update(case.extra)
            records.append(rec)
        del fns
    if device == "cuda":
        backend.cupy.get_default_memory_pool().free_all_blocks()
        if torch is not None:
            torch.cuda.empty_cache()
    return records


def print_table(records, roof, file=None):
    file = file or sys.stdout
    for fw, r in roof.items():
        print(f"# {fw}: GEMM {r['gemm_gflop_per_s']:.1f} GFLOP/s (n=1024 float32), "
              f"copy {r['copy_gb_per_s']:.1f} GB/s", file=file)
    rows = {}
    for r in records:
        key = (r["preset"], r["batch_size"] or 0, r["op"], r["layer"], r["direction"])
        rows.setdefault(key, {"shape": r["shape"]})[r["framework"]] = r
    fws = [f for f in ("numpy", "cupy", "torch") if f in {r["framework"] for r in records}]
    mg = fws[0]
    head = "| preset | batch | op | layer | dir | shape |" + "".join(
        f" {f} ms | {f} GFLOP/s | {f} % roof |" for f in fws)
    if "torch" in fws:
        head += f" {mg}/torch |"
    print("\n" + head, file=file)
    print("|" + "---|" * (head.count("|") - 1), file=file)
    for key in sorted(rows, key=lambda k: (k[0], k[1], OPS.index(k[2]), k[3], k[4])):
        row = rows[key]
        line = (f"| {key[0]} | {key[1] or '-'} | {key[2]} | {key[3]} | {key[4]} | "
                f"{row['shape']} |")
        for f in fws:
            r = row.get(f)
            if r is None:
                line += " - | - | - |"
                continue
            share = r["bw_share"] if r["roofline"] == "copy" else r["gemm_share"]
            tag = "BW" if r["roofline"] == "copy" else "GEMM"
            line += f" {r['ms_median']:.3f} | {r['gflop_per_s']:.1f} | {100 * share:.0f}% {tag} |"
        if "torch" in fws and mg in row and "torch" in row:
            line += f" {row[mg]['ms_median'] / row['torch']['ms_median']:.2f} |"
        elif "torch" in fws:
            line += " - |"
        print(line, file=file)


def append_lines(path, lines) -> None:
    if path and lines:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write("\n".join(lines) + "\n")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--presets", default="dcgan,dcgan64")
    p.add_argument("--batch-sizes", default="64,256")
    p.add_argument("--ops", default=",".join(OPS))
    p.add_argument("--torch", action="store_true", help="also time PyTorch's equivalents")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json", action="store_true", help="JSON lines on stdout instead of a table")
    p.add_argument("--out", help="also append the JSON lines to this file")
    args = p.parse_args(argv)
    args.presets = [s for s in args.presets.split(",") if s]
    args.batch_sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    args.ops = [s for s in args.ops.split(",") if s]
    for name, got, allowed in (("preset", args.presets, PRESETS), ("op", args.ops, OPS)):
        bad = [g for g in got if g not in allowed]
        if bad:
            p.error(f"unknown {name} {bad}; choose from {', '.join(allowed)}")
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def main(argv=None) -> list:
    """Run the kernel benchmarks; returns the result records (also printed)."""
    args = parse_args(argv)
    device = args.device
    C.require_device(device, "kernels")
    torch = C.torch_or_note(device, args.torch, "--torch: {why}; timing minigan only")
    env = C.environment(device, torch)
    info = sys.stderr if args.json else sys.stdout
    C.print_header(env, info)
    roof = rooflines(device, torch, max(args.repeats, 5))
    lines = [json.dumps({"kind": "roofline", "device": device, "rooflines": roof, "env": env})]
    append_lines(args.out, lines)
    records = []
    for case in build_cases(args.presets, args.batch_sizes, args.ops):
        new = run_case(case, device, torch, args, roof)
        for r in new:
            r["tf32"] = env["tf32"]
        # written as it goes, so that a run cut short keeps what it measured
        append_lines(args.out, [json.dumps(r) for r in new])
        lines += [json.dumps(r) for r in new]
        records += new
        if not args.json:
            print(f"  {case.preset} {case.batch} {case.op} {case.layer} done", file=sys.stderr)
    if args.json:
        print("\n".join(lines))
    else:
        print_table(records, roof)
    return records


if __name__ == "__main__":
    main()
