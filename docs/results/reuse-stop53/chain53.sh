#!/bin/bash
# stop 53, unattended, everything alone on two threads, one after another:
# 1. LW: P1s1's command with the learning rate warmed up over 2 epochs (beta from the start), to set
#    beside BW (beta warmed up over 5 epochs) and R2 (neither), 2 epochs;
# 2. BW resumed to epoch 30 (the seed-1 finalist), scored as stop 52 scored G3 (modularize, thresholds, pairs and
#    triples timed in turns of 20);
# 3. BW2: the same command at seed 2, 30 epochs from the start, scored the same way plus paired against std2.
D=/work/runs/s53; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
score() {
  R=$1
  OMP_NUM_THREADS=2 $M/mwt modularize -q $D/$R.pt > $D/$R-modularize.txt 2>&1; log "$R modularized (rc $?)"
  OMP_NUM_THREADS=2 $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
  OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $D/$R.pt --names $R --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
    --parallelism batch --calls-per-turn 20 --out $D/bench-$R-c20 > $D/bench-$R-c20.txt 2>&1; log "bench $R c20 (rc $?)"
}
cd /work/main
until grep -q "end BW " $D/launch.log; do sleep 5; done
$S/reuse-stop53/short53.sh LW 2 --lr-warmup 2
[ -f $D/HOLD ] && { log "held before BW's resume"; exit 0; }
log "resuming BW to 30"
OMP_NUM_THREADS=2 $M/mwt train --resume $D/BW.pt --quiet --log $D/BW.jsonl > $D/BW-resume.out 2>&1; log "BW done (rc $?)"
score BW
[ -f $D/HOLD ] && { log "held before BW2"; exit 0; }
log "starting BW2 (seed 2)"
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 2 --save-every 5 --quiet --cost-block 16 \
  --teacher /work/runs/s52/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --beta-warmup 5 --log $D/BW2.jsonl -o $D/BW2.pt > $D/BW2.out 2>&1; log "BW2 done (rc $?)"
OMP_NUM_THREADS=2 $PY $S/reuse-stop39/paired.py /work/runs/s52/std2.pt $D/BW2.pt > $D/paired-BW2.txt 2>&1
score BW2
