#!/bin/bash
# For the next stop on M10 (prepared in stop 64): K + --gate-leak-warmup 4 (stop 63's K1w command) at seeds 2 and
# 0, each scored against its own seed's standard and timed, after seed 2's standard (next64.sh, stopped in stop 64
# before it got there, must not be running).
# Every step alone on two threads; finished steps are skipped, so rerun it in a later session to go on.
# Usage: nohup bash docs/results/reuse-stop64/next65.sh > /work/runs/s63/next65.log 2>&1 &
D=/work/runs/s63
TEACHER=/work/runs/s61/std-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
KW=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8
    --gate-leak-warmup 4)

while pgrep -f reuse-stop63/next64.sh > /dev/null; do sleep 30; done
[ -e $D/std0.pt ] || ln -s /work/runs/s61/std.pt $D/std0.pt  # seed 0's standard (stop 61), K0's pairing
train_standard 2 || exit
run_scored K2w 2 "${KW[@]}" || exit
run_scored K0w 0 "${KW[@]}"
