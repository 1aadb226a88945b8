"""Host cost per call of the small operations a batch-64 training step is made of, minigan's
array library (NumPy or CuPy, with minigan's own kernels where the step uses them) against
PyTorch on the same device.

    python benchmarks/launch_cost.py --device {cpu,cuda} [--calls 200] [--repeats 15] [--json]

On the GPU a batch-64 step is bound by the host: the kernels take microseconds, and what a
step costs is what the host spends to issue each one. This script measures that cost call by
call, on arrays small enough that the work itself is negligible (64 x 128 float32):

- ``host_us``: the time of a run of ``--calls`` calls, divided by their number, with no
  synchronisation inside the run: what the caller's thread spends per call;
- ``total_us``: the same run including the synchronisation after it (the GPU's queue drained);
  when it is close to ``host_us`` the host is the bottleneck.

A run of 200 calls stays well below the GPU's launch queue (about a thousand entries), so the
host is never held up by a full queue. Each figure is the median over ``--repeats`` runs,
after warm-up. The two frameworks' cases are interleaved run by run.

Where the step's GPU cost per op differs between the frameworks (at the last H200 run, 34 µs
per launch for minigan's gan step, 26 µs for PyTorch's), these rows say which calls carry it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import _common as C  # first: puts the repository root on sys.path for minigan
import numpy as np

from minigan import backend
from minigan import optim as moptim
from minigan.autograd import Tensor
from minigan.kernels import elementwise as KE
from minigan.kernels import gemm as KG

SHAPE = (64, 128)
# the parameter count of the gan preset's two optimizers together: 11 weights and 11 biases
MANY_SHAPES = [(128, 128), (128,)] * 11
ADAM_MANY = "Adam.step, 22 parameters"
RAW_SCALE = r"""
extern "C" __global__ void minigan_bench_scale(const float* x, float* y, const int n,
                                               const float s) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = s * x[i];
}
"""


def minigan_cases(device: str) -> dict:
    """name -> zero-argument callable, on minigan's array library for ``device``."""
    xp = backend.xp_for(device)
    rng = np.random.default_rng(0)

    def arr(*shape):
        return xp.asarray(rng.standard_normal(shape).astype(np.float32))

    a, b, c = arr(*SHAPE), arr(*SHAPE), arr(*SHAPE)
    w = arr(SHAPE[1], SHAPE[1])
    p = Tensor(arr(*SHAPE), requires_grad=True)
    p.grad = Tensor(arr(*SHAPE))
    opt = moptim.Adam([p], lr=1e-4, betas=(0.5, 0.999))
    many = [Tensor(arr(*s), requires_grad=True) for s in MANY_SHAPES]
    for q in many:
        q.grad = Tensor(arr(*q.shape))
    opt_many = moptim.Adam(many, lr=1e-4, betas=(0.5, 0.999))
    opt_loop = moptim.Adam(many, lr=1e-4, betas=(0.5, 0.999), foreach=False)
    x = Tensor(arr(*SHAPE))
    wt = Tensor(arr(*SHAPE), requires_grad=True)
    bt = Tensor(arr(SHAPE[1]), requires_grad=True)

    def autograd_chain():
        wt.grad = bt.grad = None
        (x * wt + bt).sum().backward()

    cases = {
        "add, into an array (out=)": lambda: xp.add(a, b, out=c),
        "add, new array": lambda: a + b,
        "leaky_relu forward (minigan kernel)": lambda: KE.leaky_relu_forward(a, 0.2),
        "sum over axis 0": lambda: a.sum(axis=0),
        "matmul (64x128 @ 128x128)": lambda: xp.matmul(a, w),
        "matmul, transposed operand": lambda: xp.matmul(a, w.T),
        # what minigan's layers call: on the GPU one cuBLAS sgemm through CuPy's bindings
        # (compare with the two rows above, cupy.matmul)
        "kernels.gemm.matmul (64x128 @ 128x128)": lambda: KG.matmul(a, w),
        "kernels.gemm.matmul, transposed operand": lambda: KG.matmul(a, w.T),
        "empty (allocation)": lambda: xp.empty(SHAPE, np.float32),
        "Adam.step, one parameter": opt.step,
        ADAM_MANY: opt_many.step,
        ADAM_MANY + ", foreach=False": opt_loop.step,
        "autograd: (x*w + b).sum().backward()": autograd_chain,
    }
    if device == "cuda":
        raw = backend.raw_kernel(RAW_SCALE, "minigan_bench_scale")
        n = np.int32(a.size)
        s = np.float32(0.5)
        blocks = (a.size + 127) // 128
        cases["RawKernel launch, 4 arguments"] = lambda: raw((blocks,), (128,), (a, c, n, s))
        # with its output allocated, as an ElementwiseKernel call does (compare with the
        # leaky_relu row: would minigan's elementwise ops launch cheaper as RawKernels?)
        cases["RawKernel launch into a new array"] = lambda: raw(
            (blocks,), (128,), (a, xp.empty_like(a), n, s))
    return cases


def torch_cases(torch, device: str) -> dict:
    """The same operations in PyTorch (a case missing here, such as the RawKernel launch, is
    timed for minigan alone)."""
    dev = torch.device(device)
    g = torch.Generator().manual_seed(0)

    def arr(*shape):
        return torch.randn(*shape, generator=g).to(dev)

    a, b, c = arr(*SHAPE), arr(*SHAPE), arr(*SHAPE)
    w = arr(SHAPE[1], SHAPE[1])
    p = torch.nn.Parameter(arr(*SHAPE))
    p.grad = arr(*SHAPE)
    # the optimizer PyTorch picks for this device by default (foreach on CUDA)
    opt = torch.optim.Adam([p], lr=1e-4, betas=(0.5, 0.999))
    many = [torch.nn.Parameter(arr(*s)) for s in MANY_SHAPES]
    for q in many:
        q.grad = arr(*q.shape)
    opt_many = torch.optim.Adam(many, lr=1e-4, betas=(0.5, 0.999))
    opt_loop = torch.optim.Adam(many, lr=1e-4, betas=(0.5, 0.999), foreach=False)
    x = arr(*SHAPE)
    wt = arr(*SHAPE).requires_grad_(True)
    bt = arr(SHAPE[1]).requires_grad_(True)
    F = torch.nn.functional

    def autograd_chain():
        wt.grad = bt.grad = None
        (x * wt + bt).sum().backward()

    return {
        "add, into an array (out=)": lambda: torch.add(a, b, out=c),
        "add, new array": lambda: a + b,
        "leaky_relu forward (minigan kernel)": lambda: F.leaky_relu(a, 0.2),
        "sum over axis 0": lambda: a.sum(0),
        "matmul (64x128 @ 128x128)": lambda: torch.mm(a, w),
        "matmul, transposed operand": lambda: torch.mm(a, w.t()),
        "kernels.gemm.matmul (64x128 @ 128x128)": lambda: torch.mm(a, w),
        "kernels.gemm.matmul, transposed operand": lambda: torch.mm(a, w.t()),
        "empty (allocation)": lambda: torch.empty(SHAPE, device=dev),
        "Adam.step, one parameter": opt.step,
        ADAM_MANY: opt_many.step,
        ADAM_MANY + ", foreach=False": opt_loop.step,
        "autograd: (x*w + b).sum().backward()": autograd_chain,
    }


def time_run(fn, calls: int, sync) -> tuple:
    """(host seconds per call, total seconds per call) of one run of ``calls`` calls."""
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    sync()
    t2 = time.perf_counter()
    return (t1 - t0) / calls, (t2 - t0) / calls


def measure(cases: dict, calls: int, repeats: int, warmup: int) -> dict:
    """name -> {framework: (host_us, total_us) medians}; cases is {framework: {name: (fn,
    sync)}}, and the frameworks' runs alternate so that both see the same machine."""
    names = list(next(iter(cases.values())))
    out = {}
    for name in names:
        entries = [(fw, *cs[name]) for fw, cs in cases.items() if name in cs]
        for _, fn, sync in entries:
            for _ in range(warmup):
                fn()
            sync()
        samples = {fw: [] for fw, _, _ in entries}
        for r in range(repeats):
            order = entries if r % 2 == 0 else entries[::-1]
            for fw, fn, sync in order:
                samples[fw].append(time_run(fn, calls, sync))
        out[name] = {fw: (statistics.median(h for h, _ in s) * 1e6,
                          statistics.median(t for _, t in s) * 1e6)
                     for fw, s in samples.items()}
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--calls", type=int, default=200, help="calls per timed run")
    p.add_argument("--repeats", type=int, default=15, help="timed runs per case")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls per case first")
    p.add_argument("--no-torch", action="store_true", help="time minigan's side only")
    p.add_argument("--json", action="store_true", help="one JSON line per case on stdout")
    p.add_argument("--out", help="also append the JSON lines to this file")
    args = p.parse_args(argv)
    if args.calls < 1 or args.repeats < 1 or args.warmup < 0:
        p.error("--calls and --repeats must be >= 1, --warmup >= 0")
    return args


def main(argv=None) -> list:
    args = parse_args(argv)
    device = args.device
    C.require_device(device, "launch_cost")
    torch = C.torch_or_note(device, not args.no_torch, "# no PyTorch comparison: {why}")
    env = C.environment(device, torch)
    C.print_header(env, file=sys.stderr if args.json else sys.stdout)
    lib = "cupy" if device == "cuda" else "numpy"

    def ours_sync():
        backend.synchronize(device)

    cases = {lib: {n: (f, ours_sync) for n, f in minigan_cases(device).items()}}
    if torch is not None:
        def torch_sync():
            if device == "cuda":
                torch.cuda.synchronize()
        cases["torch"] = {n: (f, torch_sync) for n, f in torch_cases(torch, device).items()}
    results = measure(cases, args.calls, args.repeats, args.warmup)
    records = []
    for name, per_fw in results.items():
        rec = {"case": name, "device": device, "calls": args.calls, "repeats": args.repeats,
               "shape": list(SHAPE)}
        for fw, (host_us, total_us) in per_fw.items():
            key = "minigan" if fw == lib else fw
            rec[f"{key}_host_us"] = host_us
            rec[f"{key}_total_us"] = total_us
        if "torch_host_us" in rec:
            rec["host_ratio_vs_torch"] = rec["minigan_host_us"] / rec["torch_host_us"]
        rec["env"] = env
        records.append(rec)
    lines = [json.dumps(r) for r in records]
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")
    if args.json:
        print("\n".join(lines))
    else:
        print_table(records, lib)
    return records


def print_table(records, lib: str) -> None:
    print(f"\n| call (arrays {SHAPE[0]}x{SHAPE[1]} float32) | minigan ({lib}) host µs | "
          "total µs | PyTorch host µs | total µs | host ratio |\n|---|---:|---:|---:|---:|---:|")

    def f(v):
        return "–" if v is None else f"{v:.1f}"

    for r in records:
        ratio = r.get("host_ratio_vs_torch")
        print(f"| {r['case']} | {f(r['minigan_host_us'])} | {f(r['minigan_total_us'])} | "
              f"{f(r.get('torch_host_us'))} | {f(r.get('torch_total_us'))} | "
              f"{'–' if ratio is None else f'{ratio:.2f}'} |")


if __name__ == "__main__":
    main()
