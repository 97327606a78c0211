#!/bin/bash
# stop 44: R16 (--distill 2) diverged in its epoch 2 (loss not finite); its place goes to R17, a budget of 0.22
D=/work/runs/s44; M=/work/main/.venv/bin
cd $D
echo "starting R17 at $(date -u)" >> launch.log
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher std-e25.pt --gamma-warmup 5 --beta 3 --flops-target 0.22 -o R17.pt > R17.out 2>&1
echo "R17 done at $(date -u) rc $?" >> launch.log
