#!/bin/bash
cd /work/main && OMP_NUM_THREADS=2 .venv/bin/mwt train --resume /work/runs/s55/F1.pt --quiet --log /work/runs/s55/F1.jsonl > /work/runs/s55/F1-resume.out 2>&1
echo "rc $?" >> /work/runs/s55/F1-resume.out
