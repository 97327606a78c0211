#!/bin/bash
# For the stop after 66: finish what stop 66 started, from what it committed here (saves/: seed 0's standard at its
# epoch-25 save, which is also the teacher, and Kr's checkpoint; Kr's log and its timing, where stop 66 got to
# them), copied into $D where missing. Then on two threads, one step at a time (finished steps are skipped):
#  1. seed 0's standard resumed from its epoch-25 save to epoch 30 (the standard Kr pairs against);
#  2. Kr resumed to epoch 30 where stop 66 left it short (its checkpoint names the teacher by its path,
#     $D/std0-e25.pt: keep D as it is);
#  3. Kr paired against seed 0's standard (and timed, if stop 66 did not get to it), and its goals written.
# Usage: nohup bash docs/results/reuse-stop66/finish66.sh > /work/runs/s66/finish66.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
HERE="$(dirname "$0")"
mkdir -p "$D"
restore() { [ -e "$D/$2" ] || [ ! -e "$HERE/$1" ] || cp -r "$HERE/$1" "$D/$2"; }  # FROM (here) TO (in $D)
restore saves/std0-e25.pt std0-e25.pt
restore saves/std0-e25.pt std0.pt
restore std0.jsonl std0.jsonl
restore saves/Kr.pt Kr.pt
restore Kr.jsonl Kr.jsonl
restore bench-Kr-c20-r2 bench-Kr-c20-r2
train_standard 0 || exit
train_run Kr 0 || exit
score_and_time Kr 0
