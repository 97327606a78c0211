#!/bin/bash
# score.sh NAME THREADS: modularize NAME.pt, then the reuse benchmark (simulation, files, timing) at align 8
set -e
cd /work/runs/s29
N=$1; T=${2:-2}
M=/work/main/.venv/bin
[ -f $N.mod.done ] || { OMP_NUM_THREADS=$T $M/mwt modularize -q $N.pt > $N-modularize.txt 2>&1; touch $N.mod.done; }
cd /work/main
OMP_NUM_THREADS=$T $M/python -m benchmarks.reuse /work/runs/s29/$N.pt --names $N --threads $T --align 8 --out /work/runs/s29/$N-a8 > /work/runs/s29/$N-a8.log 2>&1
