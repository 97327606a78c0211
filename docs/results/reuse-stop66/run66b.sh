#!/bin/bash
# Stop 66, step 2, replacing run66.sh before it acted: alone, seed 0's standard takes ~121 s an epoch on two threads
# here, so Kr fits in the stop after the standard's last five epochs. teacher66.sh's run goes on to epoch 30; then,
# on two threads, one at a time:
#  1. Kr, seed 0: Kw (stop 64's candidate) with the budget's pull easing five times faster under the target than it
#     grows above it (--budget-relax 5), 30 epochs;
#  2. Kr scored against seed 0's standard, timed with the reuse trainings paused, and its goals written.
# Usage: nohup bash docs/results/reuse-stop66/run66b.sh > /work/runs/s66/run66b.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"

until [ -f "$TEACHER" ] && finished "$D/std0.jsonl"; do sleep 10; done
train_run Kr 0 "${KW[@]}" --budget-relax 5 || exit
score_and_time Kr 0
