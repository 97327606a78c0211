#!/bin/bash
# Stop 59: score Yg (Y's state resumed at gamma 8) and Ya (resumed with --budget-adapt 0.003; reconfig.py), both
# seed 2 and paired against seed 2's standard, as each ends, one at a time (a flock),
# whichever ends first going first. Accuracy steps run beside the other training; every timing runs with the
# trainings paused (reuse-lib.sh's `paused`), so it shares no core.
D=/work/runs/s59; source /work/main/docs/results/reuse-lib.sh
score() {  # NAME [STD]
  wait_for "$1 done" || return
  ( flock 9
    score_accuracy "$D/$1.pt" "$1" ${2:+"$2"} && log "$1 scored" && paused bench_reuse "$D/$1.pt" "$1" 20 3
  ) 9> "$D/score.lock"
}
score Yg /work/runs/s52/std2.pt & score Ya /work/runs/s52/std2.pt & wait
log "scoring done"
