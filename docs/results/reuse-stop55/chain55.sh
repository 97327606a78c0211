#!/bin/bash
# Stop 55: the learning-rate warm-up with a budget that binds less (0.19) at seeds 0 and 2, trained side by side
# on one torch thread each (2 cores), then each scored for accuracy. Timing runs later, alone.
D=/work/runs/s55; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=1
train_p1 F0 0 --lr-warmup 2 --flops-target 0.19 && score_accuracy $D/F0.pt F0 /work/runs/s52/std.pt &
sleep 2
train_p1 F2 2 --lr-warmup 2 --flops-target 0.19 && score_accuracy $D/F2.pt F2 /work/runs/s52/std2.pt &
wait
log "chain55 done"
