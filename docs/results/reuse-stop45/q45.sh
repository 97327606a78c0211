#!/bin/bash
# stop 45: once both trainings are done and R14s1 is modularized (chain45.sh), on the quiet machine, in turn:
# the batch-parallelism / NCHWc check (profile4.py), R14's reuse matrix with --parallelism batch, then R14s1
# scored (FLOPs per threshold, the reuse matrix with both parallelisms) and the paired comparison with std1.
D=/work/runs/s45; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^R14s1 modularized" $D/launch.log; do sleep 20; done
log "quiet work starting"
OMP_NUM_THREADS=2 $PY $D/profile4.py /work/runs/s43/R14.pt 0,1:5,7:2,4 > $D/profile4-R14.txt 2>&1; log "profile4 (rc $?)"
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse /work/runs/s43/R14.pt --names R14 --threads 2 --align 8 --threshold 0.95 \
  --pad-limit 0.05 --parallelism batch --out $D/bench-R14-batch > $D/bench-R14-batch.txt 2>&1; log "bench R14 batch (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/R14s1.pt 0.9 0.95 > $D/R14s1-thresholds.txt 2>&1; log "R14s1 thresholds (rc $?)"
for p in ops batch; do
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/R14s1.pt --names R14s1 --threads 2 --align 8 --threshold 0.95 \
    --pad-limit 0.05 --parallelism $p --out $D/bench-R14s1-$p > $D/bench-R14s1-$p.txt 2>&1; log "bench R14s1 $p (rc $?)"
done
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt $D/std1.pt /work/runs/s43/R14.pt $D/R14s1.pt \
  > $D/paired.txt 2>&1; log "paired (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py $D/std1.pt $D/R14s1.pt > $D/paired-seed1.txt 2>&1; log "paired seed 1 (rc $?)"
log "quiet work done"
