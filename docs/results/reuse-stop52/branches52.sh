#!/bin/bash
# stop 52: once R2 has stopped after epoch 9, branch from its end of epoch 7 (R2-e8.pt) with a guard response
# (branch52.py), to epoch 12 (stop 51's G1, the FLOPs weight halved, fell again at epoch 11), alone on two threads:
# L = the learning rate halved, the FLOPs weight kept; LG = both halved.
D=/work/runs/s52; PY=/work/main/.venv/bin/python; B=/work/main/docs/results/reuse-stop52/branch52.py
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "R2 ended" $D/launch.log; do sleep 5; done
br() { name=$1; shift; log "branch $name: $*"; OMP_NUM_THREADS=2 $PY $B "$@" > $D/$name.out 2>&1; log "branch $name done (rc $?)"; }
br L $D/R2-e8.pt $D/L.jsonl 12 lr=0.5 backoff=1
br LG $D/R2-e8.pt $D/LG.jsonl 12 lr=0.5 backoff=0.5
