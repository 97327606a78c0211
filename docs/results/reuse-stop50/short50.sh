#!/bin/bash
# stop 50: stop 43's short reuse run (3 epochs on 18,000 images, the demo's setting) scored on this VM with the
# benchmark's defaults (threshold 0.9, align 8, no pad limit, ops parallelism, call by call), 2 threads.
D=/work/runs/s50; PY=/work/main/.venv/bin/python; cd /work/main
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse /work/runs/s43/short/short.pt --names short --threads 2 --out $D/bench-short \
  > $D/bench-short.txt 2>&1; echo "bench short (rc $?) at $(date -u)" >> $D/launch.log
