#!/bin/bash
# Stop 66, step 1: seed 0's standard model (30 epochs, a resumable save every 5), its epoch-25 save kept as the
# teacher ($D/std0-e25.pt) while the run goes on to epoch 30 (the standard that seed 0's runs pair against).
# Usage: nohup bash docs/results/reuse-stop66/teacher66.sh > /work/runs/s66/teacher66.log 2>&1 &
D=${D:-/work/runs/s66}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
train_standard 0 &
if [ ! -f "$TEACHER" ]; then
  # The epoch-25 record is logged just before the periodic save: wait for both, then keep the save.
  until has_epoch "$D/std0.jsonl" 25; do sleep 5; done
  sleep 20
  cp "$D/std0.pt" "$TEACHER.part" && mv "$TEACHER.part" "$TEACHER" && log "std0-e25 kept"
fi
wait
