#!/bin/bash
# plain narrow networks, one after another, one torch thread (the X run has the other core); stopped after unionA-x2 and replaced by narrow3.sh (garmentA never ran)
cd /work/runs/s31
P="env OMP_NUM_THREADS=1 /work/main/.venv/bin/python /work/main/docs/results/reuse-stop31/narrow.py"
$P unionA 3,5,9,9,16,10,20,24,15,18,21,27,80 > unionA.out 2>&1
$P unionA-x2 6,10,18,18,32,20,40,48,30,36,42,54,128 > unionA-x2.out 2>&1
$P garmentA 3,5,9,9,16,10,20,24,15,18,19,10,19 > garmentA.out 2>&1
