"""dcgan's odd 7x7 layers at batch 64 (channels-last inputs, as in a training step), timed in
one process, interleaved: im2col (the even-only gate of before 1cd890f), the Winograd module at
1cd890f, and the current one. From the repository root:

    git show 1cd890f:minigan/kernels/winograd.py > /tmp/wg_1cd890f.py
    python benchmarks/results/cpu_2026-12-04c/scripts/layers3.py ROUNDS /tmp/wg_1cd890f.py
"""
import importlib.util
import sys
import time

import numpy as np

from minigan.kernels import conv as KC
from minigan.kernels import winograd as NOW

spec = importlib.util.spec_from_file_location("minigan.kernels.wg_1cd890f", sys.argv[2])
OLD = importlib.util.module_from_spec(spec)
spec.loader.exec_module(OLD)


def channels_last(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


rng = np.random.default_rng(0)
N = 64
xd, wd = channels_last(randn(N, 64, 14, 14)), randn(128, 64, 4, 4)
gyd = channels_last(randn(N, 128, 7, 7))
gyg, xg = channels_last(randn(N, 128, 14, 14)), channels_last(randn(N, 256, 7, 7))
wg = randn(256, 128, 4, 4)
gate = KC._s2d_winograd


def even_gate(c, o, k, s, d, hw):
    return hw[0] % 2 == 0 and hw[1] % 2 == 0 and gate(c, o, k, s, d, hw)


variants = {"im2col": (NOW, even_gate), "1cd890f": (OLD, gate), "now": (NOW, gate)}
cases = {
    "D.conv2 fwd": lambda: KC.conv2d_forward(xd, wd, None, (2, 2), (1, 1), (1, 1)),
    "D.conv2 gw": lambda: KC.conv2d_grad_weight(xd, gyd, (4, 4), (2, 2), (1, 1), (1, 1)),
    "G.convT pair": lambda: KC.conv2d_forward_and_grad_weight(gyg, wg, xg, (2, 2), (1, 1),
                                                              (1, 1)),
}
res = {(c, v): [] for c in cases for v in variants}
names = list(variants)
for r in range(int(sys.argv[1])):
    for c, f in cases.items():
        for v in (names if r % 2 else names[::-1]):
            KC.winograd, KC._s2d_winograd = variants[v]
            t = time.perf_counter()
            f()
            res[c, v].append(time.perf_counter() - t)
KC.winograd, KC._s2d_winograd = NOW, gate
for c in cases:
    base = np.median(res[c, "im2col"][2:])
    print(f"{c:14s} " + "  ".join(f"{v} {np.median(res[c, v][2:]) * 1e3:6.2f}" for v in names)
          + "   ratios " + " ".join(f"{np.median(res[c, v][2:]) / base:.2f}" for v in names[1:]))
