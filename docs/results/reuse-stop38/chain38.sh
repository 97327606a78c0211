#!/bin/bash
# stop 38: when R9 ends, score it alone: modularize, the FLOPs table (thr.py), then the reuse benchmark at
# threshold 0.95 (chosen on R6, stop 36's run with the same coupling) with pad limit 0.1, then at 0.9 with 0.1
while kill -0 32140 2>/dev/null; do sleep 10; done
echo "R9 done at $(date -u)" >> /work/runs/s35/launch.log
TAG=t95p10 bash /work/runs/s38/score38.sh R9 --threshold 0.95 --pad-limit 0.1
echo "R9 scored (t95p10) at $(date -u)" >> /work/runs/s35/launch.log
TAG=t90p10 bash /work/runs/s38/score38.sh R9 --pad-limit 0.1
echo "R9 scored (t90p10) at $(date -u)" >> /work/runs/s35/launch.log
