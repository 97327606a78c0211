#!/bin/bash
# Stop 55's last step: seed 1 under the same command (warm-up, budget 0.19), started with ~50 min of the
# session left; it saves a resumable checkpoint every epoch, so the next stop resumes it
# (`mwt train --resume /work/runs/s55/F1.pt`) if this VM is kept.
D=/work/runs/s55; source /work/main/docs/results/reuse-lib.sh
train_p1 F1 1 --lr-warmup 2 --flops-target 0.19
