#!/bin/bash
# copy the standard run's epoch-25 resumable checkpoint as the teacher; when the run ends, the two
# screens side by side (one thread each), then R5
cd /work/runs/s35
PY=/work/main/.venv/bin/python
last=0
until [ -f std-e25.pt ]; do
  sleep 20
  [ -f std.pt ] || continue
  m=$(stat -c %Y std.pt); [ "$m" = "$last" ] && continue; last=$m
  cp std.pt /tmp/std-probe.pt || continue
  n=$($PY -c "import torch,sys; print(len(torch.load(sys.argv[1], weights_only=False, map_location='cpu')['training']['history']))" /tmp/std-probe.pt 2>&1 | tail -1)
  echo "$(date -u) std.pt holds $n epochs" >> watch.log
  [ "$n" = "25" ] && mv /tmp/std-probe.pt std-e25.pt && echo "teacher std-e25.pt (epoch 25) at $(date -u)" >> launch.log
done
while pgrep -f "train --standard" > /dev/null; do sleep 15; done
echo "std done at $(date -u)" >> launch.log
bash screen.sh S1 --flops-target 0.17 --beta 3 &
bash screen.sh S2 --flops-target 0.17 --beta 3 --coupling-by-cost &
wait
bash launch.sh R5 --flops-target 0.17 --gamma-warmup 5 --beta 3
