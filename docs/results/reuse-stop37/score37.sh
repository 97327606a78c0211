#!/bin/bash
# score37.sh NAME: modularize /work/runs/s35/NAME.pt, then the reuse benchmark at align 8, rounding every
# layer up (NAME-a8) and with --pad-limit 0.1 (NAME-p10); 2 threads, on a quiet machine
set -e
D=/work/runs/s35; N=$1; M=/work/main/.venv/bin
cd $D
[ -f $N.mod.done ] || { OMP_NUM_THREADS=2 $M/mwt modularize -q $N.pt > $N-modularize.txt 2>&1; touch $N.mod.done; }
cd /work/main
OMP_NUM_THREADS=2 $M/python -m benchmarks.reuse $D/$N.pt --names $N --threads 2 --align 8 --out $D/$N-a8 > $D/$N-a8.log 2>&1
OMP_NUM_THREADS=2 $M/python -m benchmarks.reuse $D/$N.pt --names $N --threads 2 --align 8 --pad-limit 0.1 --out $D/$N-p10 > $D/$N-p10.log 2>&1
