#!/bin/bash
# Stop 57: score I2 (against seed 2's standard, paired) and I1 (seed 1: no standard checkpoint, so accuracy
# steps only, the gap read off its log against 93.74%) as each ends. Accuracy steps run beside the other
# training; every timing runs with the trainings paused (reuse-lib.sh's `paused`), so it shares no core.
D=/work/runs/s57; source /work/main/docs/results/reuse-lib.sh
score_i2() {
  wait_for "I2 done" && score_accuracy "$D/I2.pt" I2 /work/runs/s52/std2.pt && log "I2 scored" &&
    paused bench_reuse "$D/I2.pt" I2 20 3
}
score_i1() { wait_for "I1 done" && score_accuracy "$D/I1.pt" I1 && paused bench_reuse "$D/I1.pt" I1 20 3; }
score_i2; score_i1
log "scoring done"
