#!/bin/bash
# stop 42 (M9): when R13 (R4's settings, one torch thread) ends: modularize it on two threads, the pairs' FLOPs per
# threshold and pad limit from the stored frequencies, the reuse benchmark at threshold 0.95 and pad limit 0.1
# (align 8, as stops 38-41), and the paired comparison with this machine's standard model; one job at a time
S=/work/runs/s42; M=/work/main/.venv/bin
cd $S
while pgrep -f "train --recipe reuse" > /dev/null; do sleep 10; done
echo "R13 done at $(date -u)" >> launch.log
OMP_NUM_THREADS=2 $M/mwt modularize -q R13.pt > R13-modularize.txt 2>&1
echo "R13 modularized at $(date -u)" >> launch.log
bash $S/score42.sh R13
echo "R13 thresholds at $(date -u)" >> launch.log
TAG=t95p10 bash $S/score42.sh R13 --threshold 0.95 --pad-limit 0.1
echo "R13 scored t95p10 at $(date -u)" >> launch.log
cd /work/main && OMP_NUM_THREADS=2 $M/python docs/results/reuse-stop39/paired.py $S/std.pt $S/R13.pt > $S/paired.txt 2>&1
echo "paired done at $(date -u)" >> $S/launch.log
