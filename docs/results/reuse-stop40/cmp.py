"""Stop 40: R6 (seed 0) and R10 epoch by epoch: test acc, train acc, FLOPs per sample, cohesion/coupling (loss terms)."""
import json
def rows(p):
    out = {}
    for l in open(p):
        r = json.loads(l)
        if "epoch" in r: out[r["epoch"]] = r
    return out
a, b = rows("/work/runs/s35/R6.jsonl"), rows("/work/runs/s35/R10.jsonl")
for e in sorted(b):
    x, y = a.get(e, {}), b[e]
    f = lambda r, k: f"{r[k]:.4f}" if k in r else "-"
    print(e, "R6", f(x, "test_acc"), f(x, "train_acc"), f(x, "flops"), "| R10", f(y, "test_acc"), f(y, "train_acc"), f(y, "flops"), f(y, "cohesion"), f(y, "coupling"), f"{y['seconds']:.0f}s")
