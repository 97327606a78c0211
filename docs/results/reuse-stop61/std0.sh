#!/bin/bash
# Stop 61: seed 0's standard model on M10 (the teacher at epoch 25 and the seed-0 standard), alone on two threads.
cd /work/runs/s61
export OMP_NUM_THREADS=2
/work/main/.venv/bin/mwt train --standard --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --log /work/runs/s61/std.jsonl -o /work/runs/s61/std.pt > /work/runs/s61/std.out 2>&1
echo "std done rc $? $(date -u)" >> /work/runs/s61/launch.log
