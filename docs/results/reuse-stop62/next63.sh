#!/bin/bash
# For the next stop on M10 (prepared in stop 62, not yet run): K at seeds 1 and 2, each paired against its own
# standard on this VM. Finishes seed 1's standard if the session ended it (its resumable save every 5 epochs),
# then K1 (scored and timed alone), then seed 2's standard and K2. Every step alone on two threads; about
# 4 h on 2 cores at stop 62's speed, so it spans sessions: rerun it and finished steps are skipped.
# Usage: nohup bash docs/results/reuse-stop62/next63.sh > /work/runs/s63/next63.log 2>&1 &
D=/work/runs/s63; mkdir -p $D
TEACHER=/work/runs/s61/std-e25.pt   # every reuse run's teacher: seed 0's standard at epoch 25
source "$(dirname "$0")/../reuse-lib.sh"
K=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8)

# SEED: seed SEED's standard model, from the copy stop 62 left in /work/runs/s62 where there is one
standard() {
  [ -f /work/runs/s62/std$1.pt ] && [ ! -f $D/std$1.pt ] && cp /work/runs/s62/std$1.pt $D/ && cp /work/runs/s62/std$1.jsonl $D/
  train_standard "$1"
}

# SEED: K at seed SEED, scored against its standard and timed (2 passes), resumed if a session ended it
reuse_k() {
  local s=$1
  if ! finished $D/K$s.jsonl; then
    if [ -f $D/K$s.pt ]; then
      run_step "K$s done" $D/K$s.out $M/mwt train --resume $D/K$s.pt --quiet --log $D/K$s.jsonl || return
    else
      train_p1 K$s $s "${K[@]}" || return
    fi
  fi
  [ -f $D/K$s-paired.txt ] || score_accuracy $D/K$s.pt K$s $D/std$s.pt || return
  [ -f $D/bench-K$s-c20-r2/reuse.json ] || bench_reuse $D/K$s.pt K$s 20 2 || return
  $PY $S/reuse-stop55/goals.py K$s=$D/bench-K$s-c20-r2:$D/K$s-paired.txt > $D/goals-K$s.txt
}

standard 1 && reuse_k 1 && standard 2 && reuse_k 2
