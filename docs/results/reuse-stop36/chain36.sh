#!/bin/bash
# stop 36: when R5 ends, pause R6 (SIGSTOP) so R5 is scored on a quiet machine, then resume R6; score R6 when it ends
cd /work/runs/s35
while kill -0 10190 2>/dev/null; do sleep 10; done
echo "R5 done at $(date -u); pausing R6 to score R5" >> launch.log
kill -STOP 10191
bash score.sh /work/runs/s35 R5 2
echo "R5 scored at $(date -u); resuming R6" >> launch.log
kill -CONT 10191
while kill -0 10191 2>/dev/null; do sleep 10; done
echo "R6 done at $(date -u)" >> launch.log
bash score.sh /work/runs/s35 R6 2
echo "R6 scored at $(date -u)" >> launch.log
