#!/bin/bash
# score.sh DIR NAME THREADS: modularize DIR/NAME.pt, then the reuse benchmark (simulation, files, timing) at align 8
set -e
D=$1; N=$2; T=${3:-2}
M=/work/main/.venv/bin
cd $D
[ -f $N.mod.done ] || { OMP_NUM_THREADS=$T $M/mwt modularize -q $N.pt > $N-modularize.txt 2>&1; touch $N.mod.done; }
cd /work/main
OMP_NUM_THREADS=$T $M/python -m benchmarks.reuse $D/$N.pt --names $N --threads $T --align 8 --out $D/$N-a8 > $D/$N-a8.log 2>&1
