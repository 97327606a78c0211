#!/bin/bash
# stop 51: G1's scoring once its training (left running when guard51.sh was stopped before G2, for time)
# ends, alone on the machine: modularize, thresholds, paired and per-class figures against seed 1's standard
# std1.pt and P1s1, then its pairs timed in turns of 20 (R14's scoring: threshold 0.95, align 8, pad limit
# 0.05, batch parallelism) and call by call.
D=/work/runs/s51; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
while pgrep -f "mwt train --resume $D/G1.pt" > /dev/null; do sleep 5; done
log "G1 done ($(tail -1 $D/G1.out))"
R=G1
OMP_NUM_THREADS=2 $M/mwt modularize -q $D/$R.pt > $D/$R-modularize.txt 2>&1; log "$R modularized (rc $?)"
cd /work/main
OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s45/std1.pt /work/runs/s50/P1s1.pt $D/$R.pt > $D/paired-$R.txt 2>&1; log "paired $R (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop46/perclass.py /work/runs/s45/std1.pt /work/runs/s50/P1s1.pt $D/$R.pt > $D/perclass-$R.txt 2>&1; log "perclass $R (rc $?)"
log "quiet work starting"
for c in 20 1; do
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
    --parallelism batch --calls-per-turn $c --out $D/bench-$R-c$c > $D/bench-$R-c$c.txt 2>&1; log "bench $R c$c (rc $?)"
done
log "quiet work done"
