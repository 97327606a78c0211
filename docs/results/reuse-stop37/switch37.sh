#!/bin/bash
# stop 37: at 1 torch thread each, R7 and R8 would end too late to be scored in this session (265 s per
# epoch). Stop both by SIGTERM (each saves a resumable checkpoint at its next step, and a resumed run
# repeats the original exactly), resume R7 alone on two threads (R8 is left for a later session), and
# score R7 when it ends.
D=/work/runs/s35; L=$D/launch.log; M=/work/main/.venv/bin/mwt
cd $D
for r in R7 R8; do
  pid=$(pgrep -f "mwt train .* -o $r.pt")
  kill -TERM $pid; while kill -0 $pid 2>/dev/null; do sleep 1; done
  echo "$r stopped by SIGTERM (saved where it was) at $(date -u)" >> $L
done
OMP_NUM_THREADS=2 $M train --resume R7.pt --quiet > R7c.out 2>&1
echo "R7 done at $(date -u) (resumed alone on 2 threads)" >> $L
bash /work/runs/s37/score37.sh R7 >> /work/runs/s37/chain37.out 2>&1
echo "R7 scored at $(date -u)" >> $L
