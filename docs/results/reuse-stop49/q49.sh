#!/bin/bash
# stop 49: once S1 (chain49.sh) and S3 (chain49b.sh) are trained and modularized: S1's pairs' FLOPs per
# threshold while S3 still trains (no timing, one thread), then on the quiet machine, in turn: S3's, the
# per-class accuracy beside stop 43's standard model, R14 and stop 46's K2, the paired comparison, and the
# reuse matrix on the files (benchmarks.reuse, R14's scoring: threshold 0.95, align 8, pad limit 0.05, batch
# parallelism) timed call by call (--calls-per-turn 1) and in turns of 20 calls; K2 again in turns of 20.
D=/work/runs/s49; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^S1 modularized" $D/launch.log; do sleep 20; done
OMP_NUM_THREADS=1 $PY $S/reuse-stop44/thresholds.py $D/S1.pt 0.9 0.95 > $D/S1-thresholds.txt 2>&1; log "S1 thresholds (rc $?)"
until grep -q "^S3 modularized" $D/launch.log; do sleep 20; done
log "quiet work starting"
OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/S3.pt 0.9 0.95 > $D/S3-thresholds.txt 2>&1; log "S3 thresholds (rc $?)"
$PY $S/reuse-stop46/perclass.py /work/runs/s43/std.pt /work/runs/s43/R14.pt /work/runs/s46/K2.pt $D/S1.pt $D/S3.pt \
  > $D/perclass.txt 2>&1; log "perclass (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s46/K2.pt $D/S1.pt $D/S3.pt \
  > $D/paired.txt 2>&1; log "paired (rc $?)"
bench() {  # name, checkpoint, calls per turn
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $2 --names $1 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
    --parallelism batch --calls-per-turn $3 --out $D/bench-$1-c$3 > $D/bench-$1-c$3.txt 2>&1; log "bench $1 c$3 (rc $?)"
}
for R in S1 S3; do bench $R $D/$R.pt 20; done
for R in S1 S3; do bench $R $D/$R.pt 1; done
bench K2 /work/runs/s46/K2.pt 20
log "quiet work done"
