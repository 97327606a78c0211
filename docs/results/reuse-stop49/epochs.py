"""Epoch by epoch, runs side by side: test accuracy, train accuracy and blocked FLOPs per sample, read from
each run's JSON-lines log (mwt train --log). Usage: python epochs.py NAME=LOG.jsonl ..."""
import json
import sys

runs = dict(arg.split("=", 1) for arg in sys.argv[1:])
logs = {}
for name, path in runs.items():
    try:
        logs[name] = {r["epoch"]: r for r in map(json.loads, open(path)) if "epoch" in r}
    except OSError:
        logs[name] = {}
last = max((max(log, default=0) for log in logs.values()), default=0)
print("epoch " + "  ".join(f"{n:>22}" for n in runs))
for e in range(1, last + 1):
    cells = [f"{100*r['test_acc']:6.2f} {100*r['train_acc']:6.2f} {100*r['flops']:5.1f}" if (r := logs[n].get(e)) else ""
             for n in runs]
    print(f"{e:5d} " + "  ".join(f"{c:>22}" for c in cells))
