#!/bin/bash
# Stop 57: I2 = F2's command (P1 + --lr-warmup 2 --flops-target 0.19, seed 2) starting from the teacher's weights
# (--init-from the epoch-25 standard model, the teacher it already distills from), one thread beside D2.
D=/work/runs/s57; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=${THREADS:-1}
train_p1 I2 2 --lr-warmup 2 --flops-target 0.19 --init-from /work/runs/s52/std-e25.pt
