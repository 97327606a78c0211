#!/bin/bash
# Stop 56: M2's pairs kept 12.33% of the FLOPs at pad limit 0.05 (thresholds.py); time them again at pad
# limit 0.03 (11.28% predicted), alone, once the first timing has ended.
D=/work/runs/s56; source /work/main/docs/results/reuse-lib.sh
wait_for "M2 scored"
run_step "bench M2-pad03" "$D/bench-M2-pad03.txt" "$PY" -m benchmarks.reuse "$D/M2.pt" --names M2 --threads 2 --align 8 \
  --threshold 0.95 --pad-limit 0.03 --parallelism batch --calls-per-turn 20 --rounds 3 --out "$D/bench-M2-pad03"
