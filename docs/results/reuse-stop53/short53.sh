#!/bin/bash
# stop 53: a seed-1 start variant of P1s1's command, stopped (SIGINT: it saves itself resumable) after epoch N,
# so it compares with R2's epochs 1..N (the same command, replayed bit for bit) and, if it wins, resumes to 30.
# usage: short53.sh NAME N [extra mwt train options...]   (alone on two threads)
D=/work/runs/s53; M=/work/main/.venv/bin; T=/work/runs/s52/std-e25.pt
name=$1; n=$2; shift 2
cd $D
echo "start $name ($*) at $(date -u)" >> $D/launch.log
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed ${SEED:-1} --save-every 1 --quiet --cost-block 16 \
  --teacher $T --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  "$@" --log $D/$name.jsonl -o $D/$name.pt > $D/$name.out 2>&1 &
P=$!
while kill -0 $P 2>/dev/null; do
  sleep 5
  e=$(grep -c '"epoch"' $D/$name.jsonl 2>/dev/null); e=${e:-0}
  [ "$e" -ge "$n" ] && kill -INT $P && break
done
wait $P; echo "end $name rc $? at $(date -u)" >> $D/launch.log
