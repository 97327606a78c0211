#!/bin/bash
# Stop 56: keep each run's resumable checkpoint after every epoch from 24 on (the runs overwrite one file),
# so the last epochs' weights can be averaged afterwards (a post-hoc test of weight averaging).
keep() {  # LOG CKPT PREFIX
  local n; n=$(grep -c '"test_acc"' "$1" 2>/dev/null || echo 0)
  [ "$n" -ge 24 ] && [ ! -e "$3-e$n.pt" ] && sleep 20 && cp "$2" "$3-e$n.pt.tmp" && mv "$3-e$n.pt.tmp" "$3-e$n.pt"
}
while pgrep -f "mwt train" > /dev/null; do
  keep /work/runs/s55/F1.jsonl /work/runs/s55/F1.pt /work/runs/s56/F1
  keep /work/runs/s56/D2.jsonl /work/runs/s56/D2.pt /work/runs/s56/D2
  keep /work/runs/s56/M2.jsonl /work/runs/s56/M2.pt /work/runs/s56/M2
  sleep 10
done
