#!/bin/bash
# stop 40: the screen, one run at a time on two threads: wait for what runs, then each NAME:SEED:OPTIONS in turn
cd /work/runs/s40
while pgrep -f "mwt train" > /dev/null; do sleep 10; done
for job in "$@"; do
  IFS=: read -r name seed opts <<< "$job"
  echo "$name start (seed $seed, $opts) $(date -u)" >> launch.log
  SEED=$seed ./screen.sh "$name" $opts
done
