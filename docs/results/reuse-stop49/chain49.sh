#!/bin/bash
# stop 49 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): K2's command (R14's with --budget-by-loss 0.5; seed 0,
# teacher std-e25.pt of stop 43) with the teacher's similarity-preserving term on the penultimate features
# (--similarity W, new): S1 = 1000, S2 = 3000 (Tung & Mori's weight); one torch thread each, side by side.
# Then modularize both.
D=/work/runs/s49; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting S1 and S2"
( OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 1000 \
  --log S1.jsonl -o S1.pt > S1.out 2>&1
  rc=$?; log "S1 done (rc $rc)" ) &
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 3000 \
  --log S2.jsonl -o S2.pt > S2.out 2>&1
rc=$?; log "S2 done (rc $rc)"
wait
for R in S1 S2; do
  OMP_NUM_THREADS=2 $M/mwt modularize -q $R.pt > $R-modularize.txt 2>&1
  rc=$?; log "$R modularized (rc $rc)"
done
