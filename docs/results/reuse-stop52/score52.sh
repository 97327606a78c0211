#!/bin/bash
# stop 52: score a finished run R (argument) as stops 50-51 did (R14's scoring: threshold 0.95, align 8, pad limit
# 0.05, batch parallelism), alone: modularize, thresholds, then its pairs and triples timed in turns of 20 and
# call by call. (No seed-1 standard checkpoint on this VM: stop 45's std1.pt, 93.74%, is the comparison.)
R=$1; D=/work/runs/s52; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
cd /work/main
OMP_NUM_THREADS=2 $M/mwt modularize -q $D/$R.pt > $D/$R-modularize.txt 2>&1; log "$R modularized (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
for c in 20 1; do
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
    --parallelism batch --calls-per-turn $c --out $D/bench-$R-c$c > $D/bench-$R-c$c.txt 2>&1; log "bench $R c$c (rc $?)"
done
