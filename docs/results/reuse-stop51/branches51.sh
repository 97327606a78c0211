#!/bin/bash
# stop 51: once R1 has logged epoch 9 (its collapse), stop it and branch from the kept snapshots
# (R1-eN.pt holds epochs 1..N-1) with one setting changed, alone on two threads.
D=/work/runs/s51; PY=/work/main/.venv/bin/python
cd $D
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until [ -f $D/R1-e10.pt ]; do sleep 5; done
sleep 5; pkill -f "log $D/R1.jsonl"; log "R1 stopped after epoch 9"
sleep 5
br() { name=$1; shift; log "branch $name: $*"; OMP_NUM_THREADS=2 $PY $D/branch51.py "$@" > $D/$name.out 2>&1; log "branch $name done (rc $?)"; }
br B1 $D/R1-e8.pt $D/B1.jsonl 10 gamma=2.0
br B2 $D/R1-e8.pt $D/B2.jsonl 10 flops_target=0.2
br B3 $D/R1-e9.pt $D/B3.jsonl 10 gamma=2.0
