#!/bin/bash
D=/work/runs/s62; TEACHER=/work/runs/s61/std-e25.pt
source /work/main/docs/results/reuse-lib.sh
train_p1 K0 0 --lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8 || exit
score_accuracy $D/K0.pt K0 /work/runs/s61/std.pt
