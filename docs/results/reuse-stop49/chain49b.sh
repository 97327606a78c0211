#!/bin/bash
# stop 49: S2 (--similarity 3000) was stopped after 2 epochs (train accuracy 30% against K2's 79%);
# in its place S3 = K2's command with --similarity 300, one torch thread, beside S1. Then modularize it.
D=/work/runs/s49; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting S3"
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --log S3.jsonl -o S3.pt > S3.out 2>&1
rc=$?; log "S3 done (rc $rc)"
OMP_NUM_THREADS=2 $M/mwt modularize -q S3.pt > S3-modularize.txt 2>&1
rc=$?; log "S3 modularized (rc $rc)"
