"""Epoch by epoch: test accuracy, train accuracy and blocked FLOPs per sample of R14 (stop 43) beside W1, W2."""
import json
import sys

runs = {"R14": "/work/runs/s43/R14.jsonl", "W1": "/work/runs/s48/W1.jsonl", "W2": "/work/runs/s48/W2.jsonl"}
logs = {}
for name, path in runs.items():
    try:
        logs[name] = [r for r in map(json.loads, open(path)) if "epoch" in r]
    except OSError:
        logs[name] = []
print("epoch " + "  ".join(f"{n:>22}" for n in runs))
for e in range(1, 31):
    cells = []
    for n in runs:
        r = next((r for r in logs[n] if r["epoch"] == e), None)
        cells.append(f"{100*r['test_acc']:6.2f} {100*r['train_acc']:6.2f} {100*r['flops']:5.1f}" if r else " " * 20)
    if any(c.strip() for c in cells[1:]):
        print(f"{e:5d} " + "  ".join(f"{c:>22}" for c in cells))
