#!/bin/bash
# stop 33: the FLOPs budget approached gently (--gamma-warmup) so it is spent, not overshot; one torch thread each, side by side (R1 started with two for epoch 1); R3, R4 (stop 34) one change each from R2
cd /work/runs/s33
M=/work/main/.venv/bin/mwt
R=${1:-R1}; shift
OMP_NUM_THREADS=${T:-1} nohup $M train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 --teacher std-e25.pt "$@" -o $R.pt > $R.out 2>&1 &
echo "started $R ($*) at $(date -u)" >> launch.log
