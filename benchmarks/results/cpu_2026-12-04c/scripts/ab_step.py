"""The dcgan step in one process, interleaved, with minigan's odd 4x4 stride-2 convs (dcgan's
7x7 outputs) on im2col, on Winograd, or on Winograd only where 4C*O/(4C+O) >= 128; beside the
PyTorch twin. Run from the repository root:

    python benchmarks/results/cpu_2026-12-04c/scripts/ab_step.py dcgan ROUNDS STEPS
"""
import statistics
import sys

sys.path.insert(0, "benchmarks")
import _common as C  # noqa: E402
import train_step as TS  # noqa: E402
from minigan.kernels import conv as KC  # noqa: E402

gate = KC._s2d_winograd


def even(c, o, k, s, d, hw):
    return hw[0] % 2 == 0 and hw[1] % 2 == 0 and gate(c, o, k, s, d, hw)


def wide(c, o, k, s, d, hw):
    return gate(c, o, k, s, d, hw) and (hw[0] % 2 == 0 and hw[1] % 2 == 0
                                        or 4 * c * o >= 128 * (4 * c + o))


class Variant:
    """A runner whose steps run with KC._s2d_winograd set to ``g``."""

    def __init__(self, runner, name, g):
        self.r, self.name, self.g = runner, name, g

    def step(self):
        KC._s2d_winograd = self.g
        try:
            self.r.step()
        finally:
            KC._s2d_winograd = gate

    def sync(self):
        self.r.sync()

    def mem_track(self):
        pass


def run(model, steps):
    batch = TS.synthetic_batch(64, TS.DATA_SHAPES[model], 0)
    runners = []
    for name, g in (("im2col-odd", even), ("wino-odd", gate), ("wino-wide-odd", wide)):
        r = TS.MiniganRunner(model, "cpu")
        r.make_data(batch)
        r.build(0)
        runners.append(Variant(r, name, g))
    torch, _ = C.load_torch("cpu")
    t = TS.TorchRunner(model, "cpu", torch)
    t.make_data(batch)
    t.prepare(0)
    t.build(0)
    runners.append(Variant(t, "torch", gate))
    times = TS.time_interleaved(runners, 3, steps, 5)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    for k, v in med.items():
        print(f"  {k:16s} {v:7.1f} ms  ratio {v / med['torch']:.3f}", flush=True)


if __name__ == "__main__":
    for _ in range(int(sys.argv[2])):
        run(sys.argv[1], int(sys.argv[3]))
