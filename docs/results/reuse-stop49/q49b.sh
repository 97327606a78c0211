#!/bin/bash
# stop 49: S3's turns-of-20 timing again, alone: a 20-second one-thread evaluation (similarity-eval.txt) ran
# during q49.sh's first S3 c20 pass (kept as bench-S3-c20-shared); this pass is the one reported.
D=/work/runs/s49; PY=/work/main/.venv/bin/python
cd /work/main
until grep -q "^quiet work done" $D/launch.log; do sleep 10; done
mv $D/bench-S3-c20 $D/bench-S3-c20-shared; mv $D/bench-S3-c20.txt $D/bench-S3-c20-shared.txt
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/S3.pt --names S3 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
  --parallelism batch --calls-per-turn 20 --out $D/bench-S3-c20 > $D/bench-S3-c20.txt 2>&1
echo "bench S3 c20 again (rc $?) at $(date -u)" >> $D/launch.log
