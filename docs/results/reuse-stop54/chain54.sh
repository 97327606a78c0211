#!/bin/bash
# stop 54, unattended, one step after another, each alone on two threads: does stop 53's --lr-warmup 2, which
# made seed 1 meet every goal of issue 16, hold at seeds 2 and 0?
# 1. wait for LW2 (seed 2, restarted at this stop's start: stop 53's start of it died with that session) and
#    score its accuracy against std2 (93.49%);
# 2. LW0: the same at seed 0, scored against std (93.41%);
# 3. time every pair and 20 triples of LW2 and LW0 in turns of 20, and LW (seed 1) once more, to see how much
#    its 3.52x moves between two timings of the same files.
D=/work/runs/s54
source "$(dirname "$0")/../reuse-lib.sh"
wait_for "LW2 ended rc" /work/runs/s53
score_accuracy /work/runs/s53/LW2.pt LW2 /work/runs/s52/std2.pt
[ -f $D/HOLD ] && { log "held before LW0"; exit 0; }
train_p1 LW0 0 --lr-warmup 2
score_accuracy $D/LW0.pt LW0 /work/runs/s52/std.pt
[ -f $D/HOLD2 ] && { log "held before the timings"; exit 0; }
bench_reuse /work/runs/s53/LW2.pt LW2 20
bench_reuse $D/LW0.pt LW0 20
bench_reuse /work/runs/s53/LW.pt LW-again 20
log "chain54 finished"
