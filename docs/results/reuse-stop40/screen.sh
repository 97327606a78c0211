#!/bin/bash
# stop 40: a short screen (10 epochs, first 18,000 training images), R6's settings; extra options after the name
cd /work/runs/s40
M=/work/main/.venv/bin/mwt
R=$1; shift
OMP_NUM_THREADS=${T:-2} $M train --recipe reuse --width 0.25 --epochs 10 --limit 18000 --seed ${SEED:-0} --quiet --cost-block 16 --teacher std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 4 "$@" -o $R.pt > $R.out 2>&1
echo "$R ($*) seed ${SEED:-0} T=${T:-2} ended rc $? at $(date -u)" >> launch.log
