#!/bin/bash
# stop 53, at the end of the session: LW2 = P1's command at seed 2 plus --lr-warmup 2, a resumable checkpoint
# after every epoch, so a later session on this VM can resume it (mwt train --resume /work/runs/s53/LW2.pt)
# and score it against std2.pt (93.49%). Alone on two threads.
D=/work/runs/s53; M=/work/main/.venv/bin
echo "start LW2 at $(date -u)" >> $D/launch.log
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 2 --save-every 1 --quiet --cost-block 16 \
  --teacher /work/runs/s52/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --lr-warmup 2 --log $D/LW2.jsonl -o $D/LW2.pt > $D/LW2.out 2>&1
echo "LW2 ended rc $? at $(date -u)" >> $D/launch.log
