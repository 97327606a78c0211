#!/bin/bash
# Stop 67, step 2: seed 2's standard model on this machine kind (M10/M12 train bit for bit alike), the reference
# any seed-2 run here is scored against; two threads, alone, once run67.sh has scored Kt and the CI run beside it
# has ended. Resumable from its save every 5 epochs: run again to go on.
# Usage: nohup bash docs/results/reuse-stop67/std2.sh > /work/runs/s67/std2.log 2>&1 &
D=${D:-/work/runs/s67}
source "$(dirname "$0")/../reuse-lib.sh"

until [ -f "$D/goals-Kt.txt" ]; do sleep 10; done
until grep -q "^rc " "$D/ci.txt" 2>/dev/null; do sleep 10; done
train_standard 2
