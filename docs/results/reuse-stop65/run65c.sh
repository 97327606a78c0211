#!/bin/bash
# Stop 65, after K0w diverged at epoch 16 (the loss not finite): run65b.sh's main process stopped, its second lane
# (seed 2's standard, then the rest of seed 0's) kept. K2w starts at once on one thread beside it, and is scored
# against seed 2's standard and timed (every training paused) once both have finished.
# Usage: nohup bash docs/results/reuse-stop65/run65c.sh > /work/runs/s65/run65c.log 2>&1 &
D=${D:-/work/runs/s65}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
KW=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8
    --gate-leak-warmup 4)

( export OMP_NUM_THREADS=1; train_run K2w 2 "${KW[@]}" ) || exit
until finished "$D/std2.jsonl"; do sleep 10; done
score_accuracy "$D/K2w.pt" K2w "$D/std2.pt" && log "K2w scored" || exit
paused bench_reuse "$D/K2w.pt" K2w 20 2 || exit
"$PY" "$S/reuse-stop55/goals.py" "K2w=$D/bench-K2w-c20-r2:$D/K2w-paired.txt" > "$D/goals-K2w.txt"
