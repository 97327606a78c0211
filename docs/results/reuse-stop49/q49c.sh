#!/bin/bash
# stop 49: once S4 is trained (chain49c.sh): modularize it, its pairs' FLOPs per threshold, the paired comparison
# and per-class accuracy beside K2, S1 and S3, then the reuse matrix on the files in turns of 20 (alone), and call
# by call if the session lasts.
D=/work/runs/s49; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^S4 done (rc 0)" $D/launch.log; do sleep 10; done
OMP_NUM_THREADS=2 $M/mwt modularize -q $D/S4.pt > $D/S4-modularize.txt 2>&1; log "S4 modularized (rc $?)"
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/S4.pt --names S4 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
  --parallelism batch --calls-per-turn 20 --out $D/bench-S4-c20 > $D/bench-S4-c20.txt 2>&1; log "bench S4 c20 (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s46/K2.pt $D/S3.pt $D/S4.pt \
  > $D/paired-S4.txt 2>&1; log "paired S4 (rc $?)"
$PY $S/reuse-stop46/perclass.py /work/runs/s43/std.pt /work/runs/s46/K2.pt $D/S1.pt $D/S3.pt $D/S4.pt \
  > $D/perclass-S4.txt 2>&1; log "perclass S4 (rc $?)"
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/S4.pt --names S4 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
  --parallelism batch --calls-per-turn 1 --out $D/bench-S4-c1 > $D/bench-S4-c1.txt 2>&1; log "bench S4 c1 (rc $?)"
