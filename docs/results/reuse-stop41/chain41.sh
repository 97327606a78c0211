#!/bin/bash
# stop 41 (M8), one job at a time on two threads: the standard model's epoch 25 becomes the teacher; when the
# standard run ends, R11 (R6's settings, seed 0) with a resumable checkpoint every epoch, its epochs 25 and 28
# kept; when R11 ends: modularize it, then R12 = R11's epoch 25 resumed with its last 5 epochs settled
# (--settle-epochs 5), modularize R12
D=/work/runs/s41; M=/work/main/.venv/bin; PY=$M/python
cd $D
epochs() { $PY -c "import sys; from mwt.checkpoint import load_checkpoint; print(len(load_checkpoint(sys.argv[1]).training['history']))" "$1" 2>/dev/null | tail -1; }
keep() {  # keep(RUN, EPOCH): copy RUN.pt to RUN-eEPOCH.pt when it holds EPOCH epochs
  local last=0
  until [ -f $1-e$2.pt ]; do
    sleep 10
    [ -f $1.pt ] || continue
    m=$(stat -c %Y $1.pt); [ "$m" = "$last" ] && continue; last=$m
    cp $1.pt /tmp/$1-probe.pt || continue
    n=$(epochs /tmp/$1-probe.pt)
    [ "$n" = "$2" ] && mv /tmp/$1-probe.pt $1-e$2.pt && echo "$1-e$2.pt at $(date -u)" >> launch.log
    [ -n "$n" ] && [ "$n" -gt "$2" ] 2>/dev/null && { echo "missed $1 epoch $2 (at $n)" >> launch.log; return; }
  done
}
keep std 25
while pgrep -f "train --standard" > /dev/null; do sleep 10; done
echo "std done at $(date -u); starting R11" >> launch.log
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 1 --quiet --cost-block 16 \
  --teacher std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 4 -o R11.pt > R11.out 2>&1 &
keep R11 25
keep R11 28
wait
echo "R11 done at $(date -u)" >> launch.log
OMP_NUM_THREADS=2 $M/mwt modularize -q R11.pt > R11-modularize.txt 2>&1
echo "R11 modularized at $(date -u)" >> launch.log
$PY fork.py R11-e25.pt R12.pt 5 >> launch.log
OMP_NUM_THREADS=2 $M/mwt train --resume R12.pt --quiet -o R12.pt > R12.out 2>&1
echo "R12 done at $(date -u)" >> launch.log
OMP_NUM_THREADS=2 $M/mwt modularize -q R12.pt > R12-modularize.txt 2>&1
echo "R12 modularized at $(date -u)" >> launch.log
