#!/usr/bin/env bash
# The GPU checks, in parts that each fit one call of a time-limited GPU machine.
#
#   scripts/device_check.sh PART OUT_DIR [MNIST_DIR]
#
# PART:
#   tests     the GPU half of the test suite (`pytest -m gpu`), plus the whole suite's counts
#   steps     steps/s of every preset on MNIST-shaped data (200 steps each, after warm-up)
#   bench     benchmarks/run_all.sh for cuda (PyTorch twin when torch has CUDA)
#   quality-PRESET[,PRESET...]
#             minigan train PRESET --epochs EPOCHS (default 20) --eval-every 937 on MNIST from
#             MNIST_DIR, with samples, metrics and the final checkpoint's `minigan eval`
#
# Everything goes to OUT_DIR (logs, JSON lines, grids). Each command has a time limit below
# the device tool's 600 s per call. The machine has no network: MNIST_DIR must hold the four
# IDX .gz files (carry them in an ignored folder).
set -u
PART=${1:?usage: scripts/device_check.sh PART OUT_DIR [MNIST_DIR]}
OUT=${2:?usage: scripts/device_check.sh PART OUT_DIR [MNIST_DIR]}
MNIST=${3:-}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"

limit() {  # limit SECONDS CMD...: never fatal, the exit status goes to the log
    local s=$1; shift
    timeout "$s" "$@" || echo "! exit $? from: $*"
}

case "$PART" in
tests)
    "$PY" -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    limit 420 "$PY" -m pytest -q -p no:cacheprovider -m gpu -ra -x 2>&1 | tail -40 \
        | tee "$OUT/gpu_tests.txt"
    ;;
steps)
    for p in gan dcgan cgan dragan dcgan64; do
        limit 90 "$PY" - "$p" <<'EOF' 2>&1 | tee -a "$OUT/steps.txt"
import sys, time
import numpy as np
import minigan
from minigan import backend
from minigan.gan.models import build_models
from minigan.gan.trainer import TrainConfig, make_trainer
from minigan.nn.init import dcgan_init_

preset = sys.argv[1]
shape = (3, 64, 64) if preset == "dcgan64" else (1, 28, 28)
k = 10 if preset == "cgan" else 0
minigan.manual_seed(0)
G, D = build_models(preset, shape, k)
if preset.startswith("dcgan"):
    G.apply(dcgan_init_); D.apply(dcgan_init_)
G.to("cuda"); D.to("cuda")
cfg = TrainConfig(preset=preset, device="cuda").resolved()
tr = make_trainer(G, D, cfg, k)
xp = backend.get_array_module("cuda")
x = minigan.Tensor(xp.random.uniform(-1, 1, (64,) + shape).astype(np.float32))
y = xp.arange(64) % 10 if k else None
for _ in range(20):
    tr.step(x, y)
backend.synchronize("cuda")
t = time.perf_counter()
n = 200
for _ in range(n):
    tr.step(x, y)
backend.synchronize("cuda")
ms = (time.perf_counter() - t) / n * 1e3
print(f"{preset}: {ms:.2f} ms/step, {1e3 / ms:.0f} steps/s (batch 64, cuda)")
EOF
    done
    ;;
bench)
    limit 580 bash benchmarks/run_all.sh "$OUT/bench" cuda
    ;;
quality-*)
    [ -n "$MNIST" ] || { echo "quality needs MNIST_DIR"; exit 2; }
    IFS=, read -ra presets <<<"${PART#quality-}"
    for p in "${presets[@]}"; do
        limit "${QUALITY_LIMIT:-280}" minigan train "$p" --epochs "${EPOCHS:-20}" \
            --eval-every 937 --device cuda --data-dir "$MNIST" --out "$OUT/$p" --quiet \
            --checkpoint-every 4685 2>&1 | tail -5
        ck=$(ls "$OUT/$p"/checkpoints/ckpt_*.npz 2>/dev/null | tail -1)
        [ -n "$ck" ] && limit 120 minigan eval "$ck" --device cuda --data-dir "$MNIST" \
            | tee "$OUT/$p/eval.txt"
        rm -f "$OUT/$p"/checkpoints/ckpt_*.npz  # keep what comes back small
    done
    ;;
*)
    echo "unknown part $PART"; exit 2
    ;;
esac
