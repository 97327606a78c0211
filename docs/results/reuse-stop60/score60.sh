#!/bin/bash
# Stop 60: score Z2 and Z0 (stop 59's one command, z.sh, resumed here), each paired against its seed's
# standard (seed 2: 93.49%, seed 0: 93.41%), one at a time as each ends (reuse-lib.sh's score_when_done: the
# accuracy steps beside the other training, every timing with the trainings paused).
D=/work/runs/s59; source /work/main/docs/results/reuse-lib.sh
score_when_done Z2 /work/runs/s52/std2.pt & score_when_done Z0 /work/runs/s52/std.pt & wait
log "stop 60 scoring done"
