#!/bin/bash
# stop 46: after q46.sh, on the quiet machine: the layout check (layout.py) on R14s1 and R14's pair modules.
D=/work/runs/s46; PY=/work/main/.venv/bin/python
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
until grep -q "^quiet work done" $D/launch.log; do sleep 15; done
OMP_NUM_THREADS=2 $PY $D/layout.py /work/runs/s45/R14s1.pt 0,1:5,7:2,4:3,8 > $D/layout-R14s1.txt 2>&1; log "layout R14s1 (rc $?)"
OMP_NUM_THREADS=2 $PY $D/layout.py /work/runs/s43/R14.pt 0,1:5,7:2,4 > $D/layout-R14.txt 2>&1; log "layout R14 (rc $?)"
