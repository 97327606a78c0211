#!/bin/bash
# stop 51: once B1 has logged epoch 9, stop the branches (B2 is dropped, and B1 past epoch 9 is what the
# guarded run G1 replays), run B3 for its one epoch (9), then G1 (guard51.sh).
D=/work/runs/s51; PY=/work/main/.venv/bin/python
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q '"epoch": 9' $D/B1.jsonl 2>/dev/null; do sleep 5; done
pkill -f branches51.sh; sleep 1; pkill -f "branch51.py $D/R1-e8.pt"; log "B1 stopped after epoch 9; B2 dropped"
sleep 5
log "branch B3: R1-e9.pt gamma=2.0, epoch 9"
OMP_NUM_THREADS=2 $PY $D/branch51.py $D/R1-e9.pt $D/B3.jsonl 9 gamma=2.0 > $D/B3.out 2>&1; log "branch B3 done (rc $?)"
$D/guard51.sh G1
