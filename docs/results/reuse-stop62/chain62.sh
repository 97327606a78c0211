#!/bin/bash
# Stop 62: after K0 trains and scores (k0.sh), time its pairs and triples alone (2 passes), run CI on a fresh
# clone, then train seed 1's standard model (the teacher at epoch 25 and the seed-1 pairing) alone on two threads.
D=/work/runs/s62; TEACHER=/work/runs/s61/std-e25.pt
source /work/main/docs/results/reuse-lib.sh
while pgrep -f k0.sh > /dev/null; do sleep 10; done
[ -f $D/K0-paired.txt ] && bench_reuse $D/K0.pt K0 20 2
rm -rf /tmp/fresh62; git clone -q /work/main /tmp/fresh62 && (cd /tmp/fresh62 && CI=true timeout 1500 bash .ci/run > $D/ci.txt 2>&1; echo "ci rc $? $(git rev-parse --short HEAD)" >> $D/launch.log); rm -rf /tmp/fresh62
( until grep -q '"epoch": 26' $D/std1.jsonl 2>/dev/null; do sleep 10; done
  cp $D/std1.pt $D/std1-e25.pt && log "std1-e25 kept" ) &
run_step "std1 done" $D/std1.out $M/mwt train --standard --width 0.25 --epochs 30 --seed 1 --save-every 5 --quiet --log $D/std1.jsonl -o $D/std1.pt
