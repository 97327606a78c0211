#!/bin/bash
# stop 51: P1 (stop 50, seed 0) timed again as G1 was, alone, right after G1's timings: the machine ran
# this session's epochs 10-25% slower than stop 50's, so G1's speedup is read beside P1's on the same day.
D=/work/runs/s51; PY=/work/main/.venv/bin/python
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^quiet work done" $D/launch.log; do sleep 5; done
cd /work/main
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse /work/runs/s50/P1.pt --names P1 --threads 2 --align 8 --threshold 0.95 \
  --pad-limit 0.05 --parallelism batch --calls-per-turn 20 --out $D/bench-P1-c20 > $D/bench-P1-c20.txt 2>&1
log "bench P1 c20 again (rc $?)"
