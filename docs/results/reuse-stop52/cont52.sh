#!/bin/bash
# stop 52: L held through epoch 12 with the budget binding, so the guard's response becomes "halve the learning
# rate, keep the FLOPs weight" (mwt/collapse.py LR_BACKOFF 0.5, BACKOFF 1.0: this run's code) and L is trained on
# to epoch 30 under the guard (--collapse-drop 0.08), alone on two threads: G3 = P1s1's command under the new guard
# (its first rewind is L's, from the end of epoch 7). Then it is scored (score52.sh).
D=/work/runs/s52; PY=/work/main/.venv/bin/python; B=/work/main/docs/results/reuse-stop52/branch52.py
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
cp $D/L.pt $D/G3-from.pt; cp $D/L.jsonl $D/G3.jsonl
log "starting G3 (L.pt, guard on)"
OMP_NUM_THREADS=2 $PY $B $D/G3-from.pt $D/G3.jsonl 30 collapse_drop=0.08 > $D/G3.out 2>&1
log "G3 done (rc $?)"
bash $D/score52.sh G3
