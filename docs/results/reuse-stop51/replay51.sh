#!/bin/bash
# stop 51: P1s1 replayed (same command, seed 1) with a resumable checkpoint after every epoch, each kept as
# R1-eN.pt, to find where the class parting collapses and to try guards from the epoch before it.
D=/work/runs/s51; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
log "starting R1 (P1s1 replay)"
( while sleep 5; do n=$(wc -l < $D/R1.jsonl 2>/dev/null || echo 0); if [ -f $D/R1.pt ] && [ ! -f $D/R1-e$n.pt ] && [ "$n" -gt 0 ]; then sleep 3; cp $D/R1.pt $D/R1-e$n.pt; fi; done ) &
W=$!
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 1 --save-every 1 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --log $D/R1.jsonl -o $D/R1.pt > $D/R1.out 2>&1
log "R1 ended (rc $?)"; kill $W
