#!/usr/bin/env bash
# fourth device call: the GPU tests twice, split over 3 and then 6 workers, so that each test
# module's shared random stream is drawn in other orders than the calls before
set -u
OUT=${1:?}
for n in 3 6; do
    timeout 110 python3 -m pytest -q -p no:cacheprovider -m gpu -ra -n $n >"$OUT/gpu_tests_n$n.txt" 2>&1
    echo "-n $n: pytest exit $?"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/gpu_tests_n$n.txt" | tail -8
done
