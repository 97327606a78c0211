#!/bin/bash
# score42.sh NAME [reuse-benchmark options...] (stop 41's score41.sh for /work/runs/s42, ALIGN in the environment): the pairs' FLOPs at each
# threshold and pad limit from the stored frequencies (no timing), then the reuse benchmark (align $ALIGN, default 8; 2 threads)
# with the given options into NAME-<tag>; NAME.pt must be modularized; run on a quiet machine
set -e
S=/work/runs/s42; N=$1; shift; TAG=${TAG:-p10}; M=/work/main/.venv/bin
cd /work/main
[ -f $S/$N-thr.txt ] || OMP_NUM_THREADS=2 $M/python docs/results/reuse-stop38/thr.py $S/$N.pt > $S/$N-thr.txt 2>&1
[ $# -eq 0 ] && exit 0
OMP_NUM_THREADS=2 $M/python -m benchmarks.reuse $S/$N.pt --names $N --threads 2 --align ${ALIGN:-8} "$@" --out $S/$N-$TAG > $S/$N-$TAG.log 2>&1
