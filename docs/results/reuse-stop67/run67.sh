#!/bin/bash
# Stop 67 (M12 again, the same VM as stop 66, whose seed-0 teacher and standard it copies into $D):
#  1. Kt, seed 0: Kw (stop 64's candidate) with the budget raised from 0.14 to 0.16 (--flops-target 0.16), 30
#     epochs on two threads, alone;
#  2. Kt scored and timed, its goals against M10's 93.63% (goals-Kt-unpaired.txt);
#  3. seed 0's standard resumed from its epoch-26 save to epoch 30, then Kt paired against it (goals-Kt.txt).
# Usage: nohup bash docs/results/reuse-stop67/run67.sh > /work/runs/s67/run67.log 2>&1 &
D=${D:-/work/runs/s67}
TEACHER=$D/std0-e25.pt
source "$(dirname "$0")/../reuse-lib.sh"

KT=("${KW[@]/0.14/0.16}")
train_run Kt 0 "${KT[@]}" || exit
[ -f "$D/Kt-thresholds.txt" ] || score_accuracy "$D/Kt.pt" Kt || exit
[ -f "$D/bench-Kt-c20-r2/reuse.json" ] || bench_reuse "$D/Kt.pt" Kt 20 2 || exit
"$PY" "$S/reuse-stop55/goals.py" "Kt=$D/bench-Kt-c20-r2:$D/Kt.jsonl@93.63" > "$D/goals-Kt-unpaired.txt"
train_standard 0 || exit
score_and_time Kt 0
