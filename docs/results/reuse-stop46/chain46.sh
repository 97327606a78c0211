#!/bin/bash
# stop 46 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): R14's command (seed 0, teacher std-e25.pt of stop 43) with
# per-class FLOPs budgets that follow each class's running cross-entropy (--budget-by-loss P):
# K1 = power 1, K2 = power 0.5; one torch thread each, side by side. Then modularize both.
D=/work/runs/s46; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting K1 and K2"
( OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --budget-by-loss 1 -o K1.pt > K1.out 2>&1
  rc=$?; log "K1 done (rc $rc)" ) &
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 -o K2.pt > K2.out 2>&1
rc=$?; log "K2 done (rc $rc)"
wait
for R in K1 K2; do
  OMP_NUM_THREADS=2 $M/mwt modularize -q $R.pt > $R-modularize.txt 2>&1
  rc=$?; log "$R modularized (rc $rc)"
done
