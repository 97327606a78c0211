#!/bin/bash
# stop 32: the FLOPs term as a budget (--flops-target 0.16 of the blocked FLOPs per sample), coupling 1 (P) and 2 (Q), side by side, one torch thread each
cd /work/runs/s32
M=/work/main/.venv/bin/mwt
OMP_NUM_THREADS=1 nohup $M train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 --teacher std-e25.pt --flops-target 0.16 -o P.pt > P.out 2>&1 &
OMP_NUM_THREADS=1 nohup $M train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 --teacher std-e25.pt --flops-target 0.16 --beta 2 -o Q.pt > Q.out 2>&1 &
echo "started P and Q at $(date)" >> launch.log
