#!/bin/bash
# stop 35: R.pt with the reuse recipe, quarter width, 30 epochs, seed 0, teacher = this machine's standard model at epoch 25; T torch threads (default 1)
cd /work/runs/s35
M=/work/main/.venv/bin/mwt
R=${1:-R5}; shift
OMP_NUM_THREADS=${T:-1} nohup $M train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 --teacher std-e25.pt "$@" -o $R.pt > $R.out 2>&1 &
echo "started $R ($*) T=${T:-1} at $(date -u)" >> launch.log
