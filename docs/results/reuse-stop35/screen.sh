#!/bin/bash
# screen.sh NAME [train options]: 8 epochs on the first 18,000 images, reuse recipe, no teacher, one torch thread;
# then modularized on those 18,000 images and scored on every pair and 20 triples (simulation, align 8)
cd /work/runs/s35
M=/work/main/.venv/bin/mwt
N=$1; shift
export OMP_NUM_THREADS=1
$M train --recipe reuse --width 0.25 --epochs 8 --limit 18000 --seed 0 --quiet --cost-block 16 --gamma-warmup 2 "$@" -o $N.pt > $N.out 2>&1
$M modularize -q --limit 18000 $N.pt > $N-modularize.txt 2>&1
$M eval $N.pt --all-pairs --triples 20 --align 8 --json -q > $N-eval.json 2> $N-eval.err
echo "$N done at $(date -u)" >> launch.log
