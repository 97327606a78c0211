#!/bin/bash
# Stop 61 (M10, AMD EPYC, AVX2): stop 59's one command (z.sh) at seed 0 on a second CPU, after seed 0's standard
# model here (std0.sh: the teacher at epoch 25, std-e25.pt, and the standard to pair against, std.pt); alone on
# two threads; then scored (reuse-lib.sh's score_when_done: accuracy, then every pair and 20 triples timed). The
# scorer below was stopped while Z0 trained and replaced by score61.sh (2 timing passes instead of 3, for time).
D=/work/runs/s61; source /work/main/docs/results/reuse-lib.sh
export TEACHER=$D/std-e25.pt
train_p1 Z0 0 --lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 &
score_when_done Z0 "$D/std.pt"
log "stop 61 scoring done"
