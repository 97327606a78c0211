#!/bin/bash
# Stop 61: reopenable gates on short runs. Z's command (P1 + --delta 2 --flops-target 0.14 --budget-adapt) shortened
# to 8 epochs on 18,000 images (the pull's rate scaled to the shorter epochs, 0.01; ramps of 2 and 1 epochs), seed 0,
# teacher = seed 0's standard at epoch 25 (M10), with --gate-leak 0.5 and 0; each alone on two threads, then
# modularized and its reuse matrix simulated (every pair, 20 triples; threshold 0.95, align 8, pad limit 0.05).
D=/work/runs/s61; source /work/main/docs/results/reuse-lib.sh
wait_for "std done rc 0" || exit
for spec in "SL5:0.5" "S0:0"; do
  name=${spec%%:*} leak=${spec#*:}
  run_step "$name done" "$D/$name.out" "$M/mwt" train --recipe reuse --width 0.25 --epochs 8 --limit 18000 --seed 0 \
    --quiet --cost-block 16 --teacher "$D/std-e25.pt" --flops-target 0.14 --gamma-warmup 2 --beta 3 --budget-by-loss 0.5 \
    --similarity 300 --lr-warmup 1 --delta 2 --budget-adapt 0.01 --gate-leak "$leak" --log "$D/$name.jsonl" -o "$D/$name.pt" &&
  run_step "$name modularized" "$D/$name-modularize.txt" "$M/mwt" modularize -q --limit 18000 "$D/$name.pt" &&
  run_step "$name matrix" "$D/$name-matrix.txt" "$M/mwt" eval "$D/$name.pt" --all-pairs --triples 20 --threshold 0.95 \
    --align 8 --pad-limit 0.05
done
log "screens done"
