#!/bin/bash
# stop 42: R4's settings (stop 34, M6: 92.77%) on one torch thread, as R4 ran, on this M6-kind machine
cd /work/runs/s42
M=/work/main/.venv/bin/mwt
R=${1:-R13}; shift
OMP_NUM_THREADS=${T:-1} nohup $M train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 --teacher std-e25.pt "$@" -o $R.pt > $R.out 2>&1 &
echo "started $R ($*) at $(date -u)" >> launch.log
