#!/bin/bash
# Stop 59: the candidate's command (P1 + --lr-warmup 2) at seed 2 unless SEED says, with decisiveness DELTA under a
# tighter budget TARGET: NAME DELTA TARGET (Y: delta 2 at 0.14, H: delta 1.5 at 0.17). Stop 58's X2 (delta 2 at
# 0.19) met the whole-model goal but kept 16.4% of the FLOPs per pair; scaling its budget by 12/16.4 aims the
# pairs at 12%. One torch thread each, two side by side.
D=/work/runs/s59; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=${THREADS:-1}
train_p1 "$1" "${SEED:-2}" --lr-warmup 2 --flops-target "$3" --delta "$2"
