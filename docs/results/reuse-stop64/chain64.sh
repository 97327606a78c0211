#!/bin/bash
# Stop 64: after K1w's timing (left running when next64.sh was stopped before K1's scoring), its goals; then CI on
# a fresh clone alone; then next65.sh (seed 2's standard, K2w, K0w).
D=/work/runs/s63
source /work/main/docs/results/reuse-lib.sh
while pgrep -f "benchmarks.reuse /work/runs/s63/K1w.pt" > /dev/null; do sleep 5; done
log "bench K1w-c20-r2 ended"
$PY $S/reuse-stop55/goals.py K1w=$D/bench-K1w-c20-r2:$D/K1w-paired.txt > $D/goals-K1w.txt
rm -rf /tmp/fresh64; git clone -q /work/main /tmp/fresh64 && (cd /tmp/fresh64 && CI=true timeout 1500 bash .ci/run > $D/ci.txt 2>&1; echo "ci rc $? $(git rev-parse --short HEAD)" >> $D/launch.log); rm -rf /tmp/fresh64
cd /work/main && nohup bash docs/results/reuse-stop64/next65.sh > $D/next65.log 2>&1 &
