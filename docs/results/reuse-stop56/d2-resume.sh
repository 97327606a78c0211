#!/bin/bash
# Stop 56's last half hour: D2 resumed alone on two threads (a resumable checkpoint every epoch), for the
# next stop on this VM to finish (`mwt train --resume /work/runs/s56/D2.pt --log /work/runs/s56/D2.jsonl`).
cd /work/main && OMP_NUM_THREADS=2 .venv/bin/mwt train --resume /work/runs/s56/D2.pt --quiet --log /work/runs/s56/D2.jsonl > /work/runs/s56/D2-resume.out 2>&1
echo "rc $?" >> /work/runs/s56/D2-resume.out
