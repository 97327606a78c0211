#!/bin/bash
# Stop 56: once F1 had finished and been timed, M2 (one torch thread beside F1 up to epoch ~15) was stopped
# (SIGTERM: a resumable checkpoint) and resumed alone on two threads, then scored and timed alone.
D=/work/runs/s56; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=2
run_step "M2 finished" "$D/M2-resume.out" "$M/mwt" train --resume "$D/M2.pt" --quiet --log "$D/M2.jsonl" || exit
score_accuracy "$D/M2.pt" M2 /work/runs/s52/std2.pt && bench_reuse "$D/M2.pt" M2 20 3
log "M2 scored"
