#!/usr/bin/env bash
# fifth device call: the kernel table of both presets at batch 64 and 256 beside PyTorch, then a
# second round of the dcgan and dcgan64 step ratios at batch 64 (eager and graph)
set -u
export PYTHONUNBUFFERED=1
OUT=${1:?}
timeout 125 python3 benchmarks/kernels.py --device cuda --batch-sizes 64,256 --repeats 10 --torch \
    --json --out "$OUT/kernels_cuda.jsonl" >/dev/null 2>"$OUT/kernels_err.txt"
echo "kernels exit $?"
for m in dcgan dcgan64; do
    timeout 45 python3 benchmarks/train_step.py --model $m --batch-size 64 --device cuda --steps 40 \
        --warmup 5 --block 10 --torch --pipelined --no-memory --json --cuda-graph \
        --out "$OUT/train_step_round2.jsonl" >/dev/null 2>>"$OUT/kernels_err.txt"
    echo "$m exit $?"
done
python3 benchmarks/report.py "$OUT/train_step_round2.jsonl" "$OUT/kernels_cuda.jsonl" >"$OUT/report5.md" 2>&1
grep -A14 "^| device | model | batch | minigan ms" "$OUT/report5.md" | head -16
