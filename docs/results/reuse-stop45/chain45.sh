#!/bin/bash
# stop 45 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): seed 1 of both sides on M9, one torch thread each,
# side by side: std1 = the standard model at seed 1; R14s1 = R14's command at seed 1 (the teacher is
# seed 0's std-e25.pt, a fixed input, as stop 39's R6s1). Then modularize R14s1.
D=/work/runs/s45; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting std1 and R14s1"
( OMP_NUM_THREADS=1 $M/mwt train --standard --width 0.25 --epochs 30 --seed 1 --save-every 5 --quiet -o std1.pt > std1.out 2>&1
  rc=$?; log "std1 done (rc $rc)" ) &
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 1 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 -o R14s1.pt > R14s1.out 2>&1
rc=$?; log "R14s1 done (rc $rc)"
wait
OMP_NUM_THREADS=2 $M/mwt modularize -q R14s1.pt > R14s1-modularize.txt 2>&1
rc=$?; log "R14s1 modularized (rc $rc)"
