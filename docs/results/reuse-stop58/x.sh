#!/bin/bash
# Stop 58: the candidate's command (P1 + --lr-warmup 2 --flops-target 0.19, seed 2 unless SEED says) with a
# weaker decisiveness term, then a stronger one: NAME DELTA (X5: 0.5, X0: 0, X2: 2; X2s1: 2 at SEED=1).
# One torch thread each, two side by side.
D=/work/runs/s58; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=${THREADS:-1}
train_p1 "$1" "${SEED:-2}" --lr-warmup 2 --flops-target 0.19 --delta "$2"
