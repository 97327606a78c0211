#!/bin/bash
# For the stop after 66: finish what stop 66 started, from the saves it committed (saves/ here: seed 0's standard
# at its epoch-25 save, which is also the teacher, and Kr's last save) and its logs, copied into $D where missing.
# Then on two threads, one step at a time:
#  1. seed 0's standard resumed from its epoch-25 save to epoch 30 (the standard Kr pairs against);
#  2. Kr resumed to epoch 30 (its checkpoint names the teacher by its path, $D/std0-e25.pt: keep D as it is);
#  3. Kr scored against seed 0's standard, timed with the reuse trainings paused, and its goals written.
# Finished steps are skipped, so rerun it to go on.
# Usage: nohup bash docs/results/reuse-stop66/finish66.sh > /work/runs/s66/finish66.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
HERE="$(dirname "$0")"
mkdir -p "$D"
restore() { [ -f "$D/$2" ] || cp "$HERE/$1" "$D/$2"; }  # FROM (in this folder) TO (in $D)
restore saves/std0-e25.pt std0-e25.pt
restore saves/std0-e25.pt std0.pt
restore std0.jsonl std0.jsonl
restore saves/Kr.pt Kr.pt
restore Kr.jsonl Kr.jsonl
train_standard 0 || exit
train_run Kr 0 || exit
score_and_time Kr 0
