#!/bin/bash
# Stop 58: score X5 and X0 (seed 2, against seed 2's standard, paired) as each ends, one at a time (a flock),
# whichever ends first going first. Accuracy steps run beside the other training; every timing runs with
# the trainings paused (reuse-lib.sh's `paused`), so it shares no core.
D=/work/runs/s58; source /work/main/docs/results/reuse-lib.sh
score() {
  wait_for "$1 done" || return
  ( flock 9
    score_accuracy "$D/$1.pt" "$1" /work/runs/s52/std2.pt && log "$1 scored" && paused bench_reuse "$D/$1.pt" "$1" 20 3
  ) 9> "$D/score.lock"
}
score X5 & score X0 & wait
log "scoring done"
