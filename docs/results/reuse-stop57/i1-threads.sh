#!/bin/bash
# Stop 57: once I2 ends, I1 is stopped (SIGTERM saves a resumable checkpoint) and resumed alone on two threads.
# The resumed run logs "I1 done" as train_p1 would, for score57.sh.
D=/work/runs/s57; source /work/main/docs/results/reuse-lib.sh
wait_for "I2 done"
pkill -KILL -f "i1.sh"  # first, or its train_p1 would log "I1 done (rc 143)" for the stopped run
p=$(pgrep -f "mwt train --recipe reuse .* --seed 1 "); log "stop I1 ($p) to resume it on two threads"
kill -TERM $p; while kill -0 $p 2>/dev/null; do sleep 2; done
export OMP_NUM_THREADS=2
run_step "I1 done" "$D/I1-resume.out" "$M/mwt" train --resume "$D/I1.pt" --quiet --log "$D/I1.jsonl"
