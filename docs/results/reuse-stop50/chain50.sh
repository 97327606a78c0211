#!/bin/bash
# stop 50 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): S3's command (K2's + --similarity 300) with a FLOPs
# budget that binds: S3 spent 16.2% of the blocked FLOPs per sample against its 0.20 target. P1 = target 0.17.
# Alone on two torch threads; then modularize.
D=/work/runs/s50; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
R=${1:-P1}; T=${2:-0.17}
log "starting $R (target $T)"
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target $T --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --log $R.jsonl -o $R.pt > $R.out 2>&1
rc=$?; log "$R done (rc $rc)"
OMP_NUM_THREADS=2 $M/mwt modularize -q $R.pt > $R-modularize.txt 2>&1
rc=$?; log "$R modularized (rc $rc)"
