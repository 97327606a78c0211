#!/bin/bash
# stop 44: score each run once it is done, beside the other's training (accuracy and FLOPs only, one thread):
# modularize on all 60,000 images, FLOPs per threshold and pad limit, the reuse matrix at t 0.95 / align 8 / pad 0.05.
# Timings (benchmarks.reuse) wait until nothing else runs.
D=/work/runs/s44; M=/work/main/.venv/bin; S=/work/main/docs/results
cd $D
score() {
  until grep -q "^$1 done" launch.log; do sleep 20; done
  echo "scoring $1 at $(date -u)" >> launch.log
  OMP_NUM_THREADS=1 $M/mwt modularize -q $1.pt > $1-modularize.txt 2>&1
  OMP_NUM_THREADS=1 $M/python $S/reuse-stop44/thresholds.py $1.pt 0.95 > $1-thresholds.txt 2>&1
  OMP_NUM_THREADS=1 $M/mwt eval $1.pt --all-pairs --triples 20 --threshold 0.95 --align 8 --pad-limit 0.05 -q \
    > $1-eval-t95p05.txt 2>&1
  echo "scored $1 at $(date -u)" >> launch.log
}
score R15
score R17
