#!/bin/bash
# (As it ran: killed at 03:40 once G1 was training, before G2, for time; G1 trained on and score51.sh scored it.)
# stop 51: P1s1's command under the collapse guard (mwt train's default --collapse-drop 0.08), seed 1, alone
# on two torch threads. It resumes R1-e8.pt (R1, P1s1's replay, after epoch 7; R1 matched P1s1 epoch by epoch):
# a fresh guarded run is the same run to there, since the guard changes nothing until it fires. Then G2, the
# same command fresh at seed 2 (two threads), with G1's untimed scoring beside it on one thread (modularize,
# thresholds, paired and per-class figures against seed 1's standard std1.pt and P1s1); then G2's; then both
# runs' pairs timed alone in turns of 20 (R14's scoring: threshold 0.95, align 8, pad limit 0.05, batch).
D=/work/runs/s51; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
cd $D
until [ -f $D/go ]; do sleep 5; done  # the guard code checked first
cp $D/R1-e8.pt $D/G1.pt
head -8 $D/R1.jsonl > $D/G1.jsonl  # the header and epochs 1-7 it resumes after
log "starting G1 (resuming R1-e8.pt)"
OMP_NUM_THREADS=2 $M/mwt train --resume $D/G1.pt --quiet --log $D/G1.jsonl > $D/G1.out 2>&1
log "G1 done (rc $?)"
side() {  # run, standard model, the run it is compared with; one thread, untimed
  R=$1; STD=$2; OTHER=$3
  OMP_NUM_THREADS=1 $M/mwt modularize -q $D/$R.pt > $D/$R-modularize.txt 2>&1; log "$R modularized (rc $?)"
  cd /work/main
  OMP_NUM_THREADS=1 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
  OMP_NUM_THREADS=1 $PY $S/reuse-stop39/paired.py $STD $OTHER $D/$R.pt > $D/paired-$R.txt 2>&1; log "paired $R (rc $?)"
  OMP_NUM_THREADS=1 $PY $S/reuse-stop46/perclass.py $STD $OTHER $D/$R.pt > $D/perclass-$R.txt 2>&1; log "perclass $R (rc $?)"
  cd $D
}
side G1 /work/runs/s45/std1.pt /work/runs/s50/P1s1.pt &
S1=$!
log "starting G2 (seed 2, fresh)"
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 2 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --log $D/G2.jsonl -o $D/G2.pt > $D/G2.out 2>&1
log "G2 done (rc $?)"
wait $S1
side G2 /work/runs/s43/std.pt /work/runs/s45/std1.pt
bench() {
  cd /work/main
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$1.pt --names $1 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
    --parallelism batch --calls-per-turn 20 --out $D/bench-$1-c20 > $D/bench-$1-c20.txt 2>&1; log "bench $1 c20 (rc $?)"
  cd $D
}
log "quiet work starting"
bench G1; bench G2
log "quiet work done"
