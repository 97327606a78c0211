#!/bin/bash
# Stop 55, after chain55.sh (trainings and accuracy scoring): each run's pairs and triples timed alone in
# 3 passes, then issue 16's goals for both. (CI ran beside the trainings' epochs 3-5: ci.txt, kept as ci-1a70967.txt.)
D=/work/runs/s55; source /work/main/docs/results/reuse-lib.sh
wait_for "chain55 done"
bench_reuse $D/F0.pt F0 20 3
bench_reuse $D/F2.pt F2 20 3
$PY $S/reuse-stop55/goals.py F0=$D/bench-F0-c20-r3:$D/F0-paired.txt F2=$D/bench-F2-c20-r3:$D/F2-paired.txt > $D/goals.txt 2>&1
log "timings55 done"
