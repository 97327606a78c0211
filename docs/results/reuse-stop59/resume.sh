#!/bin/bash
# Stop 59: continue a resumable checkpoint NAME.pt (its log NAME.jsonl) to its end, logging "NAME done";
# one torch thread unless THREADS says.
D=/work/runs/s59; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=${THREADS:-1}
log "resume $1 (threads $OMP_NUM_THREADS)"
run_step "$1 done" "$D/$1.out" "$M/mwt" train --resume "$D/$1.pt" --quiet --log "$D/$1.jsonl"
