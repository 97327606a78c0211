#!/bin/bash
# Stop 57: I1 = I2's command at seed 1 (the seed furthest from the line: F1 ended 1.37 pp under), one thread
# beside I2 (D2 stopped at epoch 18, resumable, to give it the core).
D=/work/runs/s57; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=${THREADS:-1}
train_p1 I1 1 --lr-warmup 2 --flops-target 0.19 --init-from /work/runs/s52/std-e25.pt
