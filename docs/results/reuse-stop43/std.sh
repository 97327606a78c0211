#!/bin/bash
# stop 43 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): the standard model, seed 0, two threads, alone; epoch 25 is the teacher
cd /work/runs/s43
OMP_NUM_THREADS=2 /work/main/.venv/bin/mwt train --standard --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet -o std.pt > std.out 2>&1
echo "std done at $(date -u)" >> launch.log
