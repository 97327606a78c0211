#!/bin/bash
# Stop 65: every run of earlier stops was lost with the machine (M11), so Kw's seed-0 run starts over:
# seed 0's standard model to its epoch-25 save (kept as the teacher, std0-e25.pt), stopped there with a resumable
# save (SIGTERM), then K0w (Kw at seed 0) with that teacher, then the standard's last five epochs, then K0w scored
# against it and timed. Every step alone on two threads; finished steps are skipped, so rerun it to go on.
# Usage: nohup bash docs/results/reuse-stop65/run65.sh > /work/runs/s65/run65.log 2>&1 &
D=${D:-/work/runs/s65}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"
KW=(--lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003 --gate-leak 0.1 --gate-leak-from 8
    --gate-leak-warmup 4)

has_epoch() { "$PY" -c "import json,sys; sys.exit(0 if any(json.loads(l).get('epoch')==int(sys.argv[2]) for l in open(sys.argv[1])) else 1)" "$1" "$2" 2>/dev/null; }

if [ ! -f "$TEACHER" ]; then
  train_standard 0 &
  # The epoch-25 record is logged just before the periodic save: wait for both, keep the save, then stop the run
  # (SIGTERM saves it, resumable, at the next step boundary).
  until has_epoch "$D/std0.jsonl" 25; do sleep 5; done
  sleep 20
  cp "$D/std0.pt" "$TEACHER.part" && mv "$TEACHER.part" "$TEACHER" && log "std0-e25 kept"
  pkill -TERM -f "mwt train --standard --width 0.25 --epochs 30 --seed 0"
  wait
fi
train_run K0w 0 "${KW[@]}" || exit
train_standard 0 || exit
run_scored K0w 0 "${KW[@]}"
