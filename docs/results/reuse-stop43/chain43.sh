#!/bin/bash
# stop 43 (M9: Intel Xeon KVM, AVX-512 VNNI + AMX): the standard model's epoch 25 becomes the teacher; then R14 =
# R13's (= stop 34's R4's) command exactly, on one torch thread, so one core stays free for light work
D=/work/runs/s43; M=/work/main/.venv/bin; PY=$M/python
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
echo "starting R14 at $(date -u)" >> launch.log
OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
  --teacher std-e25.pt --flops-target 0.20 --gamma-warmup 5 --beta 3 -o R14.pt > R14.out 2>&1
echo "R14 done at $(date -u)" >> launch.log
OMP_NUM_THREADS=2 $M/mwt modularize -q R14.pt > R14-modularize.txt 2>&1
echo "R14 modularized at $(date -u)" >> launch.log
