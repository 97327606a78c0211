#!/bin/bash
# stop 47 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): R14's command (seed 0, teacher std-e25.pt of stop 43) with
# class-aware coupling (--coupling-by-loss P: each pair of classes weighs sqrt(f_a f_b) in the coupling loss,
# f = (running cross-entropy / mean) ** -P within 0.5-2x): C1 = power 1, C2 = power 0.5; one torch thread
# each, side by side. Then modularize both.
D=/work/runs/s47; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting C1 and C2"
( OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --coupling-by-loss 1 -o C1.pt > C1.out 2>&1
  rc=$?; log "C1 done (rc $rc)" ) &
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --coupling-by-loss 0.5 -o C2.pt > C2.out 2>&1
rc=$?; log "C2 done (rc $rc)"
wait
for R in C1 C2; do
  OMP_NUM_THREADS=2 $M/mwt modularize -q $R.pt > $R-modularize.txt 2>&1
  rc=$?; log "$R modularized (rc $rc)"
done
