#!/bin/bash
# stop 50: P1's command at seed 1 (P1s1; the teacher stays seed 0's std-e25.pt, as R14s1's did), alone on two
# torch threads once the quiet timings are done; then modularize, the paired comparison with seed 1's standard
# model (stop 45's std1.pt, 93.74%) and its pairs timed in turns of 20, alone.
D=/work/runs/s50; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
until grep -q "^bench short" launch.log; do sleep 10; done
log "starting P1s1"
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 1 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --log P1s1.jsonl -o P1s1.pt > P1s1.out 2>&1
rc=$?; log "P1s1 done (rc $rc)"
OMP_NUM_THREADS=2 $M/mwt modularize -q P1s1.pt > P1s1-modularize.txt 2>&1; log "P1s1 modularized (rc $?)"
cd /work/main
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s45/std1.pt /work/runs/s45/R14s1.pt $D/P1s1.pt \
  > $D/paired-seed1.txt 2>&1; log "paired seed 1 (rc $?)"
$D/q50.sh quiet P1s1:$D/P1s1.pt:20
