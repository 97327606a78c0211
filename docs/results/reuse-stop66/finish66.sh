#!/bin/bash
# For the stops after 66: seed 0's teacher and standard from what stop 66 kept here (saves/std0-e25.pt: the standard's
# epoch-25 save, the teacher of every reuse run, on M10 and M12 bit for bit; std0.jsonl: its log), copied into $D
# where missing; then, on two threads, the standard resumed to epoch 30 (the standard seed 0's runs pair against).
# Kr's own checkpoint was not kept (Kr did not help, stop 66): where $D/Kr.pt exists, Kr is then paired against it.
# Usage: nohup bash docs/results/reuse-stop66/finish66.sh > /work/runs/s66/finish66.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
HERE="$(dirname "$0")"
mkdir -p "$D"
restore() { [ -e "$D/$2" ] || cp -r "$HERE/$1" "$D/$2"; }  # FROM (here) TO (in $D)
restore saves/std0-e25.pt std0-e25.pt
restore saves/std0-e25.pt std0.pt
restore std0.jsonl std0.jsonl
train_standard 0 || exit
[ -f "$D/Kr.pt" ] && score_and_time Kr 0
