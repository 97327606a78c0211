#!/bin/bash
# stop 47: once C1 and C2 are trained and modularized (chain47.sh), on the quiet machine, in turn: each run's
# pairs' FLOPs per threshold (no timing), per-class accuracy and module FLOPs beside stop 43's standard model,
# R14 and stop 46's K2, the paired comparison, then the reuse matrix on the files (benchmarks.reuse, R14's
# scoring: threshold 0.95, align 8, pad limit 0.05) with batch and ops parallelism.
D=/work/runs/s47; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^C2 modularized" $D/launch.log; do sleep 20; done
log "quiet work starting"
for R in C1 C2; do
  OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
done
$PY $S/reuse-stop46/perclass.py /work/runs/s43/std.pt /work/runs/s43/R14.pt /work/runs/s46/K2.pt $D/C1.pt $D/C2.pt \
  > $D/perclass.txt 2>&1; log "perclass (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s43/R14.pt $D/C1.pt $D/C2.pt \
  > $D/paired.txt 2>&1; log "paired (rc $?)"
for R in C1 C2; do
  for p in batch ops; do
    OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 \
      --pad-limit 0.05 --parallelism $p --out $D/bench-$R-$p > $D/bench-$R-$p.txt 2>&1; log "bench $R $p (rc $?)"
  done
done
log "quiet work done"
