#!/usr/bin/env bash
# third device call of the 24th session: the GPU tests after db30beb, then one MNIST epoch of
# dcgan on the GPU with --cuda-graph and eager, side by side in sequence
set -u
export PYTHONUNBUFFERED=1
OUT=${1:?}
git log --oneline -1 2>/dev/null
timeout 170 python3 -m pytest -q -p no:cacheprovider -m gpu -ra -n 8 >"$OUT/gpu_tests_full.txt" 2>&1
echo "pytest exit $?"; tail -12 "$OUT/gpu_tests_full.txt"
for mode in graph eager; do
    flag=""; [ $mode = graph ] && flag=--cuda-graph
    s=$(date +%s.%N)
    timeout 110 python3 -m minigan train dcgan --epochs 1 --data-dir .mnist --device cuda $flag \
        --eval-every 937 --out /tmp/run_$mode --overwrite >"$OUT/train_$mode.log" 2>&1
    rc=$?; e=$(date +%s.%N)
    echo "$mode: exit $rc, wall $(python3 -c "print(round($e - $s, 1))") s" | tee -a "$OUT/times.txt"
    cp /tmp/run_$mode/metrics.jsonl "$OUT/metrics_$mode.jsonl" 2>/dev/null
    tail -3 "$OUT/train_$mode.log"
    tail -1 /tmp/run_$mode/metrics.jsonl 2>/dev/null | cut -c1-400
done
