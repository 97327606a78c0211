#!/bin/bash
# Stop 65, replacing a first script once it had started seed 0's standard (that script, which had the same first
# step and then K0w on two threads, stopped; its training kept). This machine (M11) trains the standard model in ~50 s an epoch, so seed 2 fits in the stop too:
#  1. seed 0's standard to its epoch-25 save, kept as the teacher (std0-e25.pt), then stopped there (SIGTERM saves
#     it, resumable);
#  2. two lanes of one thread each, side by side: K0w | seed 2's standard, the rest of seed 0's, then K2w;
#  3. once K0w has finished: K2w stopped (it saves), then on two threads, alone: K0w scored against seed 0's standard
#     and timed, K2w resumed to epoch 30, scored against seed 2's standard and timed.
# Finished steps are skipped, so rerun it to go on.
# Usage: nohup bash docs/results/reuse-stop65/run65b.sh > /work/runs/s65/run65b.log 2>&1 &
D=${D:-/work/runs/s65}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
KW=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8
    --gate-leak-warmup 4)

if [ ! -f "$TEACHER" ]; then
  pgrep -f "mwt train --standard .*--seed 0 " > /dev/null || train_standard 0 &
  # The epoch-25 record is logged just before the periodic save: wait for both, keep the save, then stop the run.
  until has_epoch "$D/std0.jsonl" 25; do sleep 5; done
  sleep 20
  cp "$D/std0.pt" "$TEACHER.part" && mv "$TEACHER.part" "$TEACHER" && log "std0-e25 kept"
  pkill -TERM -f "mwt train --standard .*--seed 0 "
  while pgrep -f "mwt train --standard .*--seed 0 " > /dev/null; do sleep 2; done
  wait
fi

rm -f "$D/lane2.stop"
( export OMP_NUM_THREADS=1; train_run K0w 0 "${KW[@]}" ) &
lane1=$!
( export OMP_NUM_THREADS=1
  train_standard 2 && train_standard 0 && [ ! -e "$D/lane2.stop" ] && train_run K2w 2 "${KW[@]}" ) &
lane2=$!
wait $lane1
touch "$D/lane2.stop"; log "lane 1 done: K2w stopped if running"
pkill -TERM -f "mwt train.*K2w"
wait $lane2
train_standard 2 && train_standard 0 || exit
run_scored K0w 0 "${KW[@]}"
run_scored K2w 2 "${KW[@]}"
