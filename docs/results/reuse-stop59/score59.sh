#!/bin/bash
# Stop 59: score Yg (Y's state resumed at gamma 8) and Ya (resumed with --budget-adapt 0.003; reconfig.py), both
# seed 2 and paired against seed 2's standard, as each ends, one at a time (a flock),
# whichever ends first going first. Accuracy steps run beside the other training; every timing runs with the
# trainings paused (reuse-lib.sh's score_when_done), so it shares no core.
D=/work/runs/s59; source /work/main/docs/results/reuse-lib.sh
score_when_done Yg /work/runs/s52/std2.pt & score_when_done Ya /work/runs/s52/std2.pt & wait
log "scoring done"
