#!/bin/bash
# stop 40: after R10 is scored, the paired comparison on the same 10,000 test images (against the standard model, and against R6)
until grep -q "R10 scored" /work/runs/s40/launch.log; do sleep 15; done
cd /work/main
P=docs/results/reuse-stop39/paired.py
{ .venv/bin/python $P std R6 R10; .venv/bin/python $P R6 R10; } > /work/runs/s40/paired.txt 2>&1
echo "paired done $(date -u)" >> /work/runs/s40/launch.log
