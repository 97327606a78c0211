#!/bin/bash
# stop 52 (M9 again): this VM has none of the earlier runs. Retrain the teacher: the standard model, seed 0,
# stop 43's command (its epoch 25 is the reuse recipe's teacher; epoch 25's test accuracy against stop 43's
# 93.x tells whether this VM replays runs bit for bit). Then R2 = P1s1's command (seed 1) with a resumable
# checkpoint after every epoch, kept as R2-eN.pt (= N-1 epochs done), guard off, stopped after epoch 9 (its
# collapse in stops 50-51), so that guard responses can be tried from its end of epoch 7. All alone on two threads.
D=/work/runs/s52; M=/work/main/.venv/bin; PY=$M/python
cd $D
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
epochs() { $PY -c "import sys; from mwt.checkpoint import load_checkpoint; print(len(load_checkpoint(sys.argv[1]).training['history']))" "$1" 2>/dev/null | tail -1; }
log "starting std (seed 0)"
OMP_NUM_THREADS=2 $M/mwt train --standard --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --log $D/std.jsonl -o $D/std.pt > $D/std.out 2>&1 &
S=$!
last=0
until [ -f $D/std-e25.pt ]; do
  sleep 10
  [ -f $D/std.pt ] || continue
  m=$(stat -c %Y $D/std.pt); [ "$m" = "$last" ] && continue; last=$m
  cp $D/std.pt /tmp/std-probe.pt || continue
  n=$(epochs /tmp/std-probe.pt)
  [ "$n" = "25" ] && mv /tmp/std-probe.pt $D/std-e25.pt && log "std-e25.pt kept"
done
wait $S; log "std done (rc $?)"
log "starting R2 (P1s1's command, guard off)"
( while sleep 5; do n=$(wc -l < $D/R2.jsonl 2>/dev/null || echo 0); if [ -f $D/R2.pt ] && [ ! -f $D/R2-e$n.pt ] && [ "$n" -gt 0 ]; then sleep 3; cp $D/R2.pt $D/R2-e$n.pt; fi; [ -f $D/R2-e10.pt ] && pkill -f "log $D/R2.jsonl"; done ) &
W=$!
OMP_NUM_THREADS=2 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 1 --save-every 1 --quiet --cost-block 16 \
  --teacher $D/std-e25.pt --flops-target 0.17 --gamma-warmup 5 --beta 3 --budget-by-loss 0.5 --similarity 300 \
  --collapse-drop 0 --log $D/R2.jsonl -o $D/R2.pt > $D/R2.out 2>&1
log "R2 ended (rc $?)"; kill $W
