#!/bin/bash
# Copy the resumable checkpoint of epoch 25 (the teacher) once epoch 26 has been logged (the next save is at 30).
until grep -q '"epoch": 26' /work/runs/s61/std.jsonl 2>/dev/null; do sleep 10; done
cp /work/runs/s61/std.pt /work/runs/s61/std-e25.pt && echo "std-e25 kept $(date -u)" >> /work/runs/s61/launch.log
