#!/bin/bash
cd /work/runs/s31
while pgrep -f "narrow.py unionA-x2" > /dev/null; do sleep 10; done
P="env OMP_NUM_THREADS=1 /work/main/.venv/bin/python /work/main/docs/results/reuse-stop31/narrow.py"
$P unionA-kd1 3,5,9,9,16,10,20,24,15,18,21,27,80 30 /work/runs/s29/std-e25.pt 1 > unionA-kd1.out 2>&1
$P unionA-x1.5 5,8,14,14,24,15,30,36,23,27,32,41,120 > unionA-x1.5.out 2>&1
