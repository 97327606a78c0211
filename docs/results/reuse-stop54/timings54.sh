#!/bin/bash
# stop 54: chain54.sh was held before its timings (HOLD2) once benchmarks.reuse had --rounds: time LW2 and LW0
# instead in 3 passes over all their sub-tasks (turns of 20 calls), each alone on two threads, then LW (seed 1)
# the same way unless HOLD3, so that all three seeds' speedups come from one protocol in one session.
D=/work/runs/s54
source "$(dirname "$0")/../reuse-lib.sh"
wait_for "held before the timings"
bench_reuse /work/runs/s53/LW2.pt LW2 20 3
bench_reuse $D/LW0.pt LW0 20 3
[ -f $D/HOLD3 ] && { log "held before LW's timing"; exit 0; }
bench_reuse /work/runs/s53/LW.pt LW 20 3
log "timings54 finished"
