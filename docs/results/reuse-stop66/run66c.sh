#!/bin/bash
# Stop 66, step 2, replacing run66b.sh before it acted. This machine trains seed 0's standard bit for bit as M10 did
# (its epochs 1-14 equal stop 61's std.jsonl to the last digit), where it ended at 93.63%, so Kr starts at the
# teacher and the standard's last five epochs come after (two threads each, one at a time):
#  1. once teacher66.sh has kept the epoch-25 save as the teacher, seed 0's standard is stopped (SIGTERM saves it);
#  2. Kr, seed 0: Kw (stop 64's candidate) with the budget's pull easing five times faster under the target than it
#     grows above it (--budget-relax 5), 30 epochs;
#  3. Kr scored and timed, its goals against M10's 93.63% (goals-Kr-unpaired.txt);
#  4. seed 0's standard resumed to epoch 30, then Kr paired against it (goals-Kr.txt).
# Usage: nohup bash docs/results/reuse-stop66/run66c.sh > /work/runs/s66/run66c.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"

until [ -f "$TEACHER" ]; do sleep 10; done
pkill -TERM -f "mwt train --standard .*--seed 0 "
while pgrep -f "mwt train --standard .*--seed 0 " > /dev/null; do sleep 2; done
log "std0 stopped after its epoch-25 save"
train_run Kr 0 "${KW[@]}" --budget-relax 5 || exit
[ -f "$D/Kr-thresholds.txt" ] || score_accuracy "$D/Kr.pt" Kr || exit
[ -f "$D/bench-Kr-c20-r2/reuse.json" ] || bench_reuse "$D/Kr.pt" Kr 20 2 || exit
"$PY" "$S/reuse-stop55/goals.py" "Kr=$D/bench-Kr-c20-r2:$D/Kr.jsonl@93.63" > "$D/goals-Kr-unpaired.txt"
train_standard 0 || exit
score_and_time Kr 0
