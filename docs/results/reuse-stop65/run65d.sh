#!/bin/bash
# Stop 65, once cohesion's gradient was bounded (mwt/losses.py GATE_NORM_FLOOR; K0w had diverged at epoch 16, step
# 282, diverge.py): run65c.sh's shell stopped, its K2w training kept; run65b.sh's second lane (the rest of seed 0's
# standard) kept. Two one-thread lanes: the standard's end, then K0w resumed from its epoch-15 save with the fix |
# K2w, resumed (with the fix) if it stops short. Each run, once finished, is scored against its seed's standard and
# timed with every training paused, one scorer at a time.
# Usage: nohup bash docs/results/reuse-stop65/run65d.sh > /work/runs/s65/run65d.log 2>&1 &
D=${D:-/work/runs/s65}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"

wait_exit() { while pgrep -f "$1" > /dev/null; do sleep 10; done; }

# NAME SEED: once NAME's log holds epoch 30 (and its seed's standard's), score and time it under the lock.
score_run() {
  until finished "$D/$1.jsonl" && finished "$D/std$2.jsonl"; do sleep 15; done
  ( flock 9
    score_accuracy "$D/$1.pt" "$1" "$D/std$2.pt" && log "$1 scored" && paused bench_reuse "$D/$1.pt" "$1" 20 2 &&
      "$PY" "$S/reuse-stop55/goals.py" "$1=$D/bench-$1-c20-r2:$D/$1-paired.txt" > "$D/goals-$1.txt"
  ) 9> "$D/score.lock"
}

( export OMP_NUM_THREADS=1; wait_exit "mwt train --resume $D/std0.pt"; train_standard 0 && train_run K0w 0 ) &
( export OMP_NUM_THREADS=1; wait_exit "mwt train.*K2w"; train_run K2w 2 ) &
score_run K0w 0 &
score_run K2w 2 &
wait
