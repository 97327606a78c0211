#!/bin/bash
# Stop 63 (M10): after K1's training (started by next63.sh, whose own chain was stopped so the cores could go
# to this instead of K1's timing and seed 2's standard): K1's whole model paired against seed 1's standard
# (its modularization, per-class figures and timing are left to next64.sh), then
# K1w = K1's command + --gate-leak-warmup 4 at seed 1, the same run through epoch 7, a resumable save every epoch.
# It runs until the session's CI needs the cores (SIGTERM: it saves where it is) and is resumed later with
#   mwt train --resume /work/runs/s63/K1w.pt --quiet --log /work/runs/s63/K1w.jsonl
# Usage: nohup bash docs/results/reuse-stop63/chain63.sh K1_PID > /work/runs/s63/chain63.log 2>&1 &
D=/work/runs/s63
TEACHER=/work/runs/s61/std-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
K=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8)

while kill -0 "$1" 2>/dev/null; do sleep 10; done
log "K1 training ended"
run_step "K1 paired" $D/K1-paired.txt $PY $S/reuse-stop39/paired.py $D/std1.pt $D/K1.pt
train_p1 K1w 1 "${K[@]}" --gate-leak-warmup 4
