#!/bin/bash
# stop 46: once K1 and K2 are trained and modularized (chain46.sh), on the quiet machine, in turn: each run's
# pairs' FLOPs per threshold (no timing), the paired comparison with stop 43's standard model and R14, then
# the reuse matrix on the files (benchmarks.reuse, R14's scoring: threshold 0.95, align 8, pad limit 0.05)
# with batch and ops parallelism.
D=/work/runs/s46; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^K2 modularized" $D/launch.log; do sleep 20; done
log "quiet work starting"
for R in K1 K2; do
  OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
done
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s43/R14.pt $D/K1.pt $D/K2.pt \
  > $D/paired.txt 2>&1; log "paired (rc $?)"
for R in K1 K2; do
  for p in batch ops; do
    OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 \
      --pad-limit 0.05 --parallelism $p --out $D/bench-$R-$p > $D/bench-$R-$p.txt 2>&1; log "bench $R $p (rc $?)"
  done
done
log "quiet work done"
