"""Stop 61: the whole model's gap to its seed's standard against the run's epoch-30 figures, over the 30-epoch
candidate runs of stops 53-60 (their logs in docs/results/reuse-stop5*/ and reuse-stop60/; standards from
docs/results.md: seed 0 93.41%, seed 1 93.74%, seed 2 93.49%; M9). Pearson r over the runs.

    python docs/results/reuse-stop61/fit_vs_gap.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
STANDARD = {0: 93.41, 1: 93.74, 2: 93.49}
RUNS = {"LW": ("reuse-stop53/LW.jsonl", 1), "LW0": ("reuse-stop54/LW0.jsonl", 0), "LW2": ("reuse-stop54/LW2.jsonl", 2),
        "F0": ("reuse-stop55/F0.jsonl", 0), "F1": ("reuse-stop56/F1.jsonl", 1), "F2": ("reuse-stop55/F2.jsonl", 2),
        "M2": ("reuse-stop56/M2.jsonl", 2), "X2": ("reuse-stop58/X2.jsonl", 2), "X2s1": ("reuse-stop58/X2s1.jsonl", 1),
        "Yg": ("reuse-stop59/Yg.jsonl", 2), "Ya": ("reuse-stop59/Ya.jsonl", 2), "Z0": ("reuse-stop60/Z0.jsonl", 0),
        "Z2": ("reuse-stop60/Z2.jsonl", 2), "I1": ("reuse-stop57/I1.jsonl", 1), "I2": ("reuse-stop57/I2.jsonl", 2)}


def pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return cov / (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5


rows = []
print("run   seed  test %  gap pp  train %  FLOPs/sample %  coupling  CE     distill")
for name, (log, seed) in RUNS.items():
    epochs = {r["epoch"]: r for r in map(json.loads, (HERE / log).read_text().splitlines()) if "epoch" in r}
    r = epochs[30]
    gap = STANDARD[seed] - 100 * r["test_acc"]
    rows.append((gap, 100 * r["train_acc"], 100 * r["flops"], r["coupling"], r["ce"], r["distill"]))
    print(f"{name:5s} {seed}     {100 * r['test_acc']:.2f}   {gap:.2f}    {100 * r['train_acc']:.2f}    {100 * r['flops']:5.1f}"
          f"           {r['coupling']:.3f}     {r['ce']:.3f}  {r['distill']:.3f}")
gaps = [r[0] for r in rows]
for i, what in enumerate(("training accuracy", "FLOPs per sample", "coupling", "cross-entropy", "distillation term"), 1):
    print(f"r(gap, {what}) = {pearson(gaps, [r[i] for r in rows]):+.2f}")
