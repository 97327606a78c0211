#!/bin/bash
# stop 49, its last hour: S4 = K2's command with --similarity 100 (below the 300 and 1000 that widened the
# modules), on both cores while nothing else runs, saved every epoch so that the next stop resumes it
# (mwt train --resume S4.pt) if this session ends first.
D=/work/runs/s49; M=/work/main/.venv/bin
cd $D
log() { echo "$1 at $(date -u)" >> launch.log; }
log "starting S4"
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 1 --quiet --cost-block 16 \
  --teacher /work/runs/s43/std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 100 \
  --log S4.jsonl -o S4.pt > S4.out 2>&1
rc=$?; log "S4 done (rc $rc)"
