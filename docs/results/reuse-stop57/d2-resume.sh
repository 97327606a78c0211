#!/bin/bash
# Stop 57: D2 (stop 56's F2 + --distill 2, seed 2) resumed: from epoch 4 on one thread beside I2 (stopped after
# epoch 18 to give I1 the core), then again for the stop's last half hour alone with THREADS=2.
cd /work/main && OMP_NUM_THREADS=${THREADS:-1} .venv/bin/mwt train --resume /work/runs/s56/D2.pt --quiet --log /work/runs/s56/D2.jsonl >> /work/runs/s57/D2-resume.out 2>&1
echo "rc $?" >> /work/runs/s57/D2-resume.out
