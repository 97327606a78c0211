#!/bin/bash
# score40.sh NAME [reuse-benchmark options...] (stop 39's score39.sh, writing to /work/runs/s40): modularize /work/runs/s35/NAME.pt (once), print the pairs' FLOPs
# at each threshold and pad limit (selection only, no timing), then the reuse benchmark (align 8, 2 threads) with
# the given options into NAME-<tag>; run on a quiet machine
set -e
D=/work/runs/s35; S=/work/runs/s40; N=$1; shift; TAG=${TAG:-p10}; M=/work/main/.venv/bin
cd $D
[ -f $N.mod.done ] || { OMP_NUM_THREADS=2 $M/mwt modularize -q $N.pt > $N-modularize.txt 2>&1; touch $N.mod.done; }
cd /work/main
[ -f $S/$N-thr.txt ] || OMP_NUM_THREADS=2 $M/python /work/main/docs/results/reuse-stop38/thr.py $N > $S/$N-thr.txt 2>&1
[ $# -eq 0 ] && exit 0
OMP_NUM_THREADS=2 $M/python -m benchmarks.reuse $D/$N.pt --names $N --threads 2 --align 8 "$@" --out $S/$N-$TAG > $S/$N-$TAG.log 2>&1
