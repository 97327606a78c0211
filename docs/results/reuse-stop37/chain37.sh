#!/bin/bash
# stop 37: R7 (pid $1) and R8 (pid $2) train side by side; the first to end is scored alone while the
# other is paused (SIGSTOP), then the other resumes and is scored when it ends
L=/work/runs/s35/launch.log
declare -A NAME=([$1]=R7 [$2]=R8)
left="$1 $2"
while [ -n "$left" ]; do
  for p in $left; do
    if ! kill -0 $p 2>/dev/null; then
      others=$(echo $left | tr ' ' '\n' | grep -v "^$p$" | tr '\n' ' ')
      echo "${NAME[$p]} done at $(date -u); pausing [$others] to score it" >> $L
      for o in $others; do kill -STOP $o; done
      bash /work/runs/s37/score37.sh ${NAME[$p]} >> /work/runs/s37/chain37.out 2>&1
      echo "${NAME[$p]} scored at $(date -u); resuming [$others]" >> $L
      for o in $others; do kill -CONT $o; done
      left=$others
    fi
  done
  left=$(echo $left | xargs)
  sleep 10
done
