#!/bin/bash
# Stop 56: score each run as it ends. Accuracy steps run beside the other trainings; every timing runs
# with the trainings paused (SIGSTOP), so nothing shares the cores while it times.
D=/work/runs/s56; source /work/main/docs/results/reuse-lib.sh
trainings() { pgrep -f "mwt train --recipe reuse" ; pgrep -f "mwt train --resume"; }
paused() { local p; p=$(trainings); log "pause ${p//$'\n'/ }"; kill -STOP $p 2>/dev/null; "$@"; local rc=$?; kill -CONT $p 2>/dev/null; log "resume ${p//$'\n'/ }"; return $rc; }
score_f1() {
  wait_for "F1 done"
  run_step "F1 modularized" "$D/F1-modularize.txt" "$M/mwt" modularize -q /work/runs/s55/F1.pt &&
    run_step "F1 thresholds" "$D/F1-thresholds.txt" "$PY" "$S/reuse-stop44/thresholds.py" /work/runs/s55/F1.pt 0.9 0.95 &&
    paused bench_reuse /work/runs/s55/F1.pt F1 20 3
}
score_seed2() {  # NAME
  wait_for "$1 done"
  score_accuracy "$D/$1.pt" "$1" /work/runs/s52/std2.pt && paused bench_reuse "$D/$1.pt" "$1" 20 3
}
score_f1
score_seed2 M2  # D2 was stopped at epoch 3 (resumable) to give F1 and M2 the cores
log "scoring done"
