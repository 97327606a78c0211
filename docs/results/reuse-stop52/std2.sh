#!/bin/bash
# stop 52: once G3 is scored, the seed-2 standard model (stop 43's command at --seed 2), alone on two threads, so that
# stop 51's G2 (seed 2, 92.19%, the guard never fired: the same run under this stop's guard) meets its own standard.
D=/work/runs/s52; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "bench G3 c1" $D/launch.log; do sleep 5; done
log "starting std2 (seed 2)"
OMP_NUM_THREADS=2 $M/mwt train --standard --width 0.25 --epochs 30 --seed 2 --save-every 5 --quiet --log $D/std2.jsonl -o $D/std2.pt > $D/std2.out 2>&1
log "std2 done (rc $?)"
