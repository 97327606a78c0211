#!/bin/bash
# stop 41 (M8): the standard model, seed 0, two threads, alone; save every 5 epochs so epoch 25 can be the teacher
cd /work/runs/s41
OMP_NUM_THREADS=2 /work/main/.venv/bin/mwt train --standard --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet -o std.pt > std.out 2>&1
echo "std done at $(date -u)" >> launch.log
