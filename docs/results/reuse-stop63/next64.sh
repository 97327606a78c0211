#!/bin/bash
# For the next stop on M10 (prepared in stop 63): finish K1w (K1's command + --gate-leak-warmup 4, seed 1,
# resumable save every epoch) and score it against seed 1's standard and time it; then time K1 (its accuracy
# was scored in stop 63); then seed 2's standard. Each step alone on two threads; finished steps are skipped,
# so rerun it in a later session to go on.
# Usage: nohup bash docs/results/reuse-stop63/next64.sh > /work/runs/s63/next64.log 2>&1 &
D=/work/runs/s63
TEACHER=/work/runs/s61/std-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
K=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8)

# run_scored (reuse-lib.sh): a reuse run trained or resumed to epoch 30, scored against its seed's standard, timed
run_scored K1w 1 "${K[@]}" --gate-leak-warmup 4
run_scored K1 1 "${K[@]}"
train_standard 2
