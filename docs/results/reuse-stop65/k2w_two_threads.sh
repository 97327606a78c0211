#!/bin/bash
# Stop 65: once K0w had been timed and K2w ran alone on one thread, K2w moved to two: run65d.sh's K2w lane stopped,
# K2w stopped at its next step (SIGTERM saves it, resumable) and resumed on two threads. run65d.sh scores it.
D=${D:-/work/runs/s65}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
until grep -q "^resume " "$D/launch.log"; do sleep 5; done  # K0w's timing over, K2w continued
kill "$1"  # run65d.sh's K2w lane (its wait loop), so it does not resume K2w on one thread
pkill -TERM -f "mwt train.*K2w"
while pgrep -f "mwt train.*K2w" > /dev/null; do sleep 2; done
train_run K2w 2
