#!/bin/bash
# Stop 61: score Z0 (z0.sh's run) once its training has logged its end: accuracy paired against M10's seed-0
# standard, then every pair and 20 triples timed, nothing else running, in 2 passes (stop 60 used 3; the
# session's end was near).
D=/work/runs/s61; source /work/main/docs/results/reuse-lib.sh
wait_for "Z0 done" || exit
score_accuracy "$D/Z0.pt" Z0 "$D/std.pt" && log "Z0 scored" && bench_reuse "$D/Z0.pt" Z0 20 2
log "stop 61 scoring done"
