#!/bin/bash
# Stop 58: side by side, X2 and X2s1 ran at 200-230 s per epoch, too slow for both to end and be scored within
# the session. Both are stopped (SIGTERM saves a resumable checkpoint), X2 is resumed alone on two threads, and
# X2s1 after it. Each resumed run logs "NAME done" as train_p1 would, for score58.sh.
D=/work/runs/s58; source /work/main/docs/results/reuse-lib.sh
pkill -KILL -f "reuse-stop58/x.sh"  # first, or their train_p1 would log "done (rc 143)" for the stopped runs
p=$(pgrep -f "mwt train --recipe reuse .*X2"); log "stop X2 and X2s1 (${p//$'\n'/ }) to resume them one at a time on two threads"
kill -TERM $p; for q in $p; do while kill -0 "$q" 2>/dev/null; do sleep 2; done; done
export OMP_NUM_THREADS=2
for name in X2 X2s1; do
  run_step "$name done" "$D/$name-resume.out" "$M/mwt" train --resume "$D/$name.pt" --quiet --log "$D/$name.jsonl"
done
