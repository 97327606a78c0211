#!/bin/bash
# stop 41: when chain41.sh has modularized R12: score R11 and R12 alone (threshold 0.95, pad limit 0.1, as stops 39-40),
# then the paired comparison of the whole models against this machine's standard model
S=/work/runs/s41; M=/work/main/.venv/bin
until grep -q "R12 modularized" $S/launch.log; do sleep 10; done
for r in R11 R12; do TAG=t95p10 bash $S/score41.sh $r --threshold 0.95 --pad-limit 0.1; echo "$r scored at $(date -u)" >> $S/launch.log; done
cd /work/main && OMP_NUM_THREADS=2 $M/python docs/results/reuse-stop39/paired.py $S/std.pt $S/R11.pt $S/R12.pt > $S/paired.txt 2>&1
echo "paired done at $(date -u)" >> $S/launch.log
