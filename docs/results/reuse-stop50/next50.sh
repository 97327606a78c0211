#!/bin/bash
# stop 50: once P1 is modularized, P2 (target 0.185) trains alone on two threads while P1's side scoring runs
# on one thread beside it.
D=/work/runs/s50; cd $D
until grep -q "^P1 modularized" launch.log; do sleep 15; done
nohup ./chain50.sh P2 0.185 > chain-P2.out 2>&1 &
./q50.sh side P1
