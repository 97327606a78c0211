#!/bin/bash
# mwt eval --all-pairs --triples 20 on one checkpoint, before (e3976bc, one full-model pass per sub-task)
# and after (main) the one-pass change, side by side, one torch thread each
# (each side runs from /tmp, so its .json and .time files land there; they were moved here by hand)
cd /work/runs/s29
CK=$1
PY=/work/main/.venv/bin/python
( cd /tmp && /usr/bin/time -f "before %e s" env PYTHONPATH=/tmp/before OMP_NUM_THREADS=1 $PY -m mwt eval $CK --all-pairs --triples 20 --json -q > eval-before.json 2> eval-before.time ) &
( cd /tmp && /usr/bin/time -f "after %e s" env PYTHONPATH=/work/main OMP_NUM_THREADS=1 $PY -m mwt eval $CK --all-pairs --triples 20 --json -q > eval-after.json 2> eval-after.time ) &
wait
cat eval-before.time eval-after.time
