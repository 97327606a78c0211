#!/bin/bash
# Stop 58: score X2 (seed 2, against seed 2's standard, paired) and X2s1 (seed 1: no standard checkpoint, so
# accuracy steps only, the gap read off its log against 93.74%) as each ends, one at a time (a flock),
# whichever ends first going first (X0 and X5 were stopped after epochs 9 and 10, behind F2). Accuracy steps run beside the other training; every timing runs with
# the trainings paused (reuse-lib.sh's `paused`), so it shares no core.
D=/work/runs/s58; source /work/main/docs/results/reuse-lib.sh
score_when_done X2 /work/runs/s52/std2.pt & score_when_done X2s1 & wait
log "scoring done"
