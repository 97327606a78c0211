#!/bin/bash
# stop 51: G2, P1's command fresh at seed 2 under the guard's default (--collapse-drop 0.08), the third seed,
# alone on two threads once the CI run is done; then modularize, thresholds and the paired figures against
# both standard models on disk (seed 0 std.pt, seed 1 std1.pt: no seed-2 standard was trained), then its
# pairs timed in turns of 20, if the session has time left.
D=/work/runs/s51; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^rc " $D/ci-63fd900.txt 2>/dev/null; do sleep 5; done
log "starting G2 (seed 2, fresh)"
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 2 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --log $D/G2.jsonl -o $D/G2.pt > $D/G2.out 2>&1
log "G2 done (rc $?)"
R=G2
OMP_NUM_THREADS=2 $M/mwt modularize -q $D/$R.pt > $D/$R-modularize.txt 2>&1; log "$R modularized (rc $?)"
cd /work/main
OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s45/std1.pt $D/$R.pt > $D/paired-$R.txt 2>&1; log "paired $R (rc $?)"
OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
  --parallelism batch --calls-per-turn 20 --out $D/bench-$R-c20 > $D/bench-$R-c20.txt 2>&1; log "bench $R c20 (rc $?)"
