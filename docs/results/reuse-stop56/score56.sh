#!/bin/bash
# Stop 56: score each run as it ends. Accuracy steps run beside the other trainings; every timing runs
# with the trainings paused (SIGSTOP), so nothing shares the cores while it times. (`paused` and the
# seed-1 form of `score_accuracy`, written here at first, now live in reuse-lib.sh: the same steps.)
D=/work/runs/s56; source /work/main/docs/results/reuse-lib.sh
score_f1() {
  wait_for "F1 done"
  score_accuracy /work/runs/s55/F1.pt F1 && paused bench_reuse /work/runs/s55/F1.pt F1 20 3
}
score_seed2() {  # NAME
  wait_for "$1 done"
  score_accuracy "$D/$1.pt" "$1" /work/runs/s52/std2.pt && paused bench_reuse "$D/$1.pt" "$1" 20 3
}
score_f1
score_seed2 M2  # D2 was stopped at epoch 3 (resumable) to give F1 and M2 the cores
log "scoring done"
