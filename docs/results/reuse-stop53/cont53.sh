#!/bin/bash
# stop 53: BW (beta warmed up) fixed seed 1's start and the whole model but parted the classes less (pairs 11.0%
# of the FLOPs). LW fixed the start with the learning rate warmed up instead, beta at 3 from the first step:
# resume it (stopped after epoch 2) to epoch 30 and score it as BW, alone on two threads.
D=/work/runs/s53; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
cd /work/main
until grep -q "bench BW c20" $D/launch.log; do sleep 5; done
log "resuming LW to 30"
OMP_NUM_THREADS=2 $M/mwt train --resume $D/LW.pt --quiet --log $D/LW.jsonl > $D/LW-resume.out 2>&1; log "LW done (rc $?)"
[ -f $D/HOLD2 ] && { log "held before LW's scoring"; exit 0; }
R=LW
OMP_NUM_THREADS=2 $M/mwt modularize -q $D/$R.pt > $D/$R-modularize.txt 2>&1; log "$R modularized (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
  --parallelism batch --calls-per-turn 20 --out $D/bench-$R-c20 > $D/bench-$R-c20.txt 2>&1; log "bench $R c20 (rc $?)"
