#!/bin/bash
# stop 40: when R10 ends, score it alone (modularize, pairs' FLOPs per threshold, the reuse benchmark at threshold 0.95, pad limit 0.1)
while pgrep -f "mwt train" > /dev/null; do sleep 15; done
echo "R10 ended $(date -u)" >> /work/runs/s40/launch.log
TAG=t95p10 bash /work/runs/s40/score40.sh R10 --threshold 0.95 --pad-limit 0.1
echo "R10 scored rc $? $(date -u)" >> /work/runs/s40/launch.log
