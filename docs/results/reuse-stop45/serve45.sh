#!/bin/bash
# stop 45: mwt serve with --parallelism ops vs batch, 2 onnxruntime threads, R14's sneaker/bag module
# (exported by the benchmark from the checkpoint), REST binary and gRPC, 1/8/32 clients; alone.
cd /work/main
for p in ops batch; do
  OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.serve /work/runs/s43/R14.pt --classes sneaker,bag --threads 2 \
    --parallelism $p --protocols rest-binary,grpc --seconds 8 --out /work/runs/s45/serve-$p > /work/runs/s45/serve-$p.txt 2>&1
  echo "serve $p rc $? at $(date -u)" >> /work/runs/s45/launch.log
done
