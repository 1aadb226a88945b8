#!/usr/bin/env bash
# Run every benchmark for one device and write JSON lines, logs and a markdown report.
#
#   benchmarks/run_all.sh OUT_DIR [cuda|cpu]        (default: cuda)
#
# Writes OUT_DIR/{env.txt, train_step_DEV.jsonl, kernels_DEV.jsonl, profile_DEV.jsonl,
# log_DEV.txt, report_DEV.md}. PyTorch is optional: without it (or without a CUDA build of it)
# only minigan is timed and log_DEV.txt says why. Each command has its own time limit, and a
# failure does not stop the others. TF32 stays off unless CUPY_TF32=1 is set by the caller.
set -u
OUT=${1:?usage: benchmarks/run_all.sh OUT_DIR [cuda|cpu]}
DEV=${2:-cuda}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
LOG="$OUT/log_$DEV.txt"

run() {  # run LIMIT_S ARGS...: one benchmark command, stdout to the log, never fatal
    local limit=$1; shift
    echo "+ $*" >>"$LOG"
    timeout "$limit" "$PY" "$@" >>"$LOG" 2>&1 || echo "! exit $? from: $*" >>"$LOG"
}

{
    date -u; uname -a; uptime
    command -v nvidia-smi >/dev/null && nvidia-smi
    "$PY" -c "import sys, numpy; print('python', sys.version.split()[0], 'numpy', numpy.__version__)"
    "$PY" -c "import cupy; print('cupy', cupy.__version__)" 2>&1 | tail -1
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tail -1
    echo "CUPY_TF32=${CUPY_TF32:-unset}"
} >"$OUT/env.txt" 2>&1

STEPS="$OUT/train_step_$DEV.jsonl"
if [ "$DEV" = cuda ]; then
    # limits add up to < 600 s (the device tool's per-call limit); most important first
    for model in gan dragan dcgan dcgan64; do
        run 75 benchmarks/train_step.py --model $model --batch-size 64 --device cuda \
            --steps 60 --warmup 5 --block 10 --torch --cuda-graph --json --out "$STEPS"
    done
    run 75 benchmarks/train_step.py --model dcgan64 --batch-size 256 --device cuda \
        --steps 40 --warmup 5 --block 10 --torch --cuda-graph --json --out "$STEPS"
    run 120 benchmarks/kernels.py --device cuda --batch-sizes 64,256 --repeats 10 --torch \
        --json --out "$OUT/kernels_cuda.jsonl"
    run 45 benchmarks/train_step.py --model dcgan --batch-size 256 --device cuda \
        --steps 40 --warmup 5 --block 10 --torch --json --out "$STEPS"
    run 30 benchmarks/train_step.py --model dcgan64 --batch-size 64 --device cuda --steps 10 \
        --profile --json --out "$OUT/profile_cuda.jsonl"
else
    for model in gan dragan; do
        run 900 benchmarks/train_step.py --model $model --batch-size 64 --device cpu \
            --steps 60 --warmup 5 --block 5 --torch --json --out "$STEPS"
    done
    run 900 benchmarks/train_step.py --model dcgan --batch-size 64 --device cpu \
        --steps 30 --warmup 3 --block 5 --torch --json --out "$STEPS"
    run 1800 benchmarks/train_step.py --model dcgan64 --batch-size 64 --device cpu \
        --steps 8 --warmup 2 --block 2 --torch --json --out "$STEPS"
    run 3600 benchmarks/kernels.py --device cpu --batch-sizes 64,256 --repeats 5 --warmup 1 \
        --torch --json --out "$OUT/kernels_cpu.jsonl"
    for model in gan dragan dcgan; do
        run 900 benchmarks/train_step.py --model $model --batch-size 64 --device cpu \
            --steps 10 --profile --json --out "$OUT/profile_cpu.jsonl"
    done
    run 900 benchmarks/train_step.py --model dcgan64 --batch-size 64 --device cpu --steps 3 \
        --warmup 1 --profile --json --out "$OUT/profile_cpu.jsonl"
fi
"$PY" benchmarks/report.py "$OUT"/*_"$DEV".jsonl >"$OUT/report_$DEV.md" 2>>"$LOG"
cat "$OUT/report_$DEV.md"
