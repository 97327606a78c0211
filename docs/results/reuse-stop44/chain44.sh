#!/bin/bash
# stop 44 (M9 again: Intel Xeon KVM, AVX-512 VNNI + AMX): two single-knob changes from R14 (= R13 = R4's command),
# side by side on one torch thread each: R15 a wider budget (--flops-target 0.21), R16 the teacher's term doubled (--distill 2)
D=/work/runs/s44; M=/work/main/.venv/bin
cd $D
run() {  # run(NAME, EXTRA...): train, then modularize
  local n=$1; shift
  echo "starting $n at $(date -u)" >> launch.log
  OMP_NUM_THREADS=1 $M/mwt train --recipe reuse --width 0.25 --epochs 30 --seed 0 --save-every 5 --quiet --cost-block 16 \
    --teacher std-e25.pt --gamma-warmup 5 --beta 3 "$@" -o $n.pt > $n.out 2>&1
  echo "$n done at $(date -u) rc $?" >> launch.log
}
run R15 --flops-target 0.21 &
run R16 --flops-target 0.20 --distill 2 &
wait
