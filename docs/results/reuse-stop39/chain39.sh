#!/bin/bash
# stop 39: when R6s1 (R6's settings, seed 1) ends: modularize it; train the standard model at seed 1 alone
# (2 threads); then the paired comparison of the whole models; then R6s1's reuse benchmark (threshold 0.95, pad 0.1)
D=/work/runs/s35; S=/work/runs/s39; M=/work/main/.venv/bin
while pgrep -f "train .*-o R6s1.pt" >/dev/null; do sleep 10; done
echo "R6s1 done at $(date -u)" >> $D/launch.log
cd $D && OMP_NUM_THREADS=2 $M/mwt modularize -q R6s1.pt > R6s1-modularize.txt 2>&1 && touch R6s1.mod.done
echo "R6s1 modularized at $(date -u); starting std1" >> $D/launch.log
cd $D && OMP_NUM_THREADS=2 $M/mwt train --standard --width 0.25 --epochs 30 --seed 1 --quiet -o std1.pt > std1.out 2>&1
echo "std1 done at $(date -u)" >> $D/launch.log
cd /work/main && $M/python docs/results/reuse-stop39/paired.py std std1 R5 R6 R7 R9 R6s1 > $S/paired.txt 2>&1
echo "paired done at $(date -u)" >> $D/launch.log
TAG=t95p10 bash $S/score39.sh R6s1 --threshold 0.95 --pad-limit 0.1
echo "R6s1 scored (t95p10) at $(date -u)" >> $D/launch.log
