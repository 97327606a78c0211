#!/bin/bash
# the frontier at screen scale, on the core R5 leaves: uniform coupling at a smaller budget, cost-weighted coupling at a bigger one
cd /work/runs/s35
bash screen.sh S3 --flops-target 0.07 --beta 3
bash screen.sh S4 --flops-target 0.30 --beta 3 --coupling-by-cost
