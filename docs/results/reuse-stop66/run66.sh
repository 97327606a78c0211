#!/bin/bash
# Stop 66, step 2 (this machine, an AVX2 EPYC, trains the standard model in ~170 s an epoch on two threads, so a
# 30-epoch reuse run does not fit in the stop after its teacher):
#  1. once teacher66.sh has kept seed 0's epoch-25 save as the teacher, seed 0's standard is stopped there (SIGTERM
#     saves it, resumable: its last five epochs are left to a later stop);
#  2. Kr, seed 0, on two threads: Kw (stop 64's candidate) with the budget's pull easing five times faster under the
#     target than it grows above it (--budget-relax 5), trained until stopped (SIGTERM saves it, resumable).
# Usage: nohup bash docs/results/reuse-stop66/run66.sh > /work/runs/s66/run66.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
KW=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8
    --gate-leak-warmup 4)

until [ -f "$TEACHER" ]; do sleep 10; done
pkill -TERM -f "mwt train --standard .*--seed 0 "
while pgrep -f "mwt train --standard .*--seed 0 " > /dev/null; do sleep 2; done
log "std0 stopped after its epoch-25 save"
train_run Kr 0 "${KW[@]}" --budget-relax 5
