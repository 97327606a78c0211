#!/bin/bash
# stop 48: once W1 and W2 are trained and modularized (chain48.sh), on the quiet machine, in turn: each run's
# pairs' FLOPs per threshold (no timing), per-class accuracy beside stop 43's standard model, R14 and stop 46's
# K2, the paired comparison, then the reuse matrix on the files (benchmarks.reuse, R14's scoring: threshold
# 0.95, align 8, pad limit 0.05, batch parallelism) timed two ways: call by call (--calls-per-turn 1, as every
# stop before) and in turns of 20 calls (each model warm, as deployed); R14, R14s1 and K2 again the second way.
D=/work/runs/s48; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^W2 modularized" $D/launch.log; do sleep 20; done
log "quiet work starting"
for R in W1 W2; do
  OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
done
$PY $S/reuse-stop46/perclass.py /work/runs/s43/std.pt /work/runs/s43/R14.pt /work/runs/s46/K2.pt $D/W1.pt $D/W2.pt \
  > $D/perclass.txt 2>&1; log "perclass (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s43/R14.pt $D/W1.pt $D/W2.pt \
  > $D/paired.txt 2>&1; log "paired (rc $?)"
bench() {  # name, checkpoint, calls per turn
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $2 --names $1 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
    --parallelism batch --calls-per-turn $3 --out $D/bench-$1-c$3 > $D/bench-$1-c$3.txt 2>&1; log "bench $1 c$3 (rc $?)"
}
for R in W1 W2; do bench $R $D/$R.pt 1; done
for R in W1 W2; do bench $R $D/$R.pt 20; done
bench R14 /work/runs/s43/R14.pt 20
bench K2 /work/runs/s46/K2.pt 20
bench R14s1 /work/runs/s45/R14s1.pt 20
log "quiet work done"
