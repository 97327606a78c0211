#!/bin/bash
# Stop 56: three trainings side by side on one torch thread each: F1 (seed 1, stop 55's candidate,
# resumed; it ran epochs 1-14 on two threads), and two single-knob tries at lifting seed 2's whole model:
# D2 = F2 + --distill 2 (R16 diverged at distill 2 without the warm-up), M2 = F2 + --similarity 1000.
D=/work/runs/s56; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=1
log "resume F1"
run_step "F1 done" /work/runs/s55/F1-resume.out "$M/mwt" train --resume /work/runs/s55/F1.pt --quiet --log /work/runs/s55/F1.jsonl &
train_p1 D2 2 --lr-warmup 2 --flops-target 0.19 --distill 2 &
train_p1 M2 2 --lr-warmup 2 --flops-target 0.19 --similarity 1000 &
wait
