#!/bin/bash
# stop 48 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): R14's command (seed 0, teacher std-e25.pt of stop 43) with
# the SGD weight decay moved off MwT's 5e-4 either way (--weight-decay): W1 = 2.5e-4, W2 = 1e-3; one torch
# thread each, side by side. Then modularize both.
D=/work/runs/s48; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting W1 and W2"
( OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --weight-decay 2.5e-4 -o W1.pt > W1.out 2>&1
  rc=$?; log "W1 done (rc $rc)" ) &
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --weight-decay 1e-3 -o W2.pt > W2.out 2>&1
rc=$?; log "W2 done (rc $rc)"
wait
for R in W1 W2; do
  OMP_NUM_THREADS=2 $M/mwt modularize -q $R.pt > $R-modularize.txt 2>&1
  rc=$?; log "$R modularized (rc $rc)"
done
