#!/bin/bash
# stop 50: scoring. Part "side" (beside a training, nothing timed, one thread): a run's pairs' FLOPs per
# threshold, per-class accuracy and the paired comparison. Part "quiet" (alone on the machine): the reuse
# matrix on the files as R14 was scored (threshold 0.95, align 8, pad limit 0.05, batch parallelism), in
# turns of 20 calls and call by call.
D=/work/runs/s50; M=/work/main/.venv/bin; PY=$M/python; S=/work/main/docs/results
cd /work/main
log() { echo "$1 at $(date -u)" >> $D/launch.log; }
part=$1; shift
if [ "$part" = side ]; then
  threads=${THREADS:-1}
  for R in "$@"; do
    OMP_NUM_THREADS=$threads $PY $S/reuse-stop44/thresholds.py $D/$R.pt 0.9 0.95 > $D/$R-thresholds.txt 2>&1; log "$R thresholds (rc $?)"
  done
  runs=$(for R in "$@"; do echo -n " $D/$R.pt"; done)
  OMP_NUM_THREADS=$threads $PY $S/reuse-stop46/perclass.py /work/runs/s43/std.pt /work/runs/s46/K2.pt /work/runs/s49/S3.pt $runs \
    > $D/perclass-$(echo "$@" | tr ' ' '-').txt 2>&1; log "perclass $@ (rc $?)"
  OMP_NUM_THREADS=$threads $PY $S/reuse-stop39/paired.py /work/runs/s43/std.pt /work/runs/s46/K2.pt /work/runs/s49/S3.pt $runs \
    > $D/paired-$(echo "$@" | tr ' ' '-').txt 2>&1; log "paired $@ (rc $?)"
else
  bench() {  # name, checkpoint, calls per turn
    OMP_NUM_THREADS=2 $PY -m benchmarks.reuse $2 --names $1 --threads 2 --align 8 --threshold 0.95 --pad-limit 0.05 \
      --parallelism batch --calls-per-turn $3 --out $D/bench-$1-c$3 > $D/bench-$1-c$3.txt 2>&1; log "bench $1 c$3 (rc $?)"
  }
  log "quiet work starting"
  for spec in "$@"; do  # NAME:CHECKPOINT:CALLS
    IFS=: read -r name ckpt calls <<< "$spec"; bench $name $ckpt $calls
  done
  log "quiet work done"
fi
# (used as: ./q50.sh quiet P1r:/work/runs/s50/P1.pt:20 , then the short run below)
