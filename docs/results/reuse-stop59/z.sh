#!/bin/bash
# Stop 59's lead as one command from the start: P1 + --lr-warmup 2 --delta 2 --flops-target 0.14
# --budget-adapt 0.003 (Ya's settings from its first epoch) at seed SEED, as Z<SEED>. Started in the stop's last
# half hour, one thread each, two side by side; resumable every epoch for the next session
# (`mwt train --resume /work/runs/s59/Z<SEED>.pt --quiet --log /work/runs/s59/Z<SEED>.jsonl`).
D=/work/runs/s59; source /work/main/docs/results/reuse-lib.sh
export OMP_NUM_THREADS=${THREADS:-1}
train_p1 "Z$1" "$1" --lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003
