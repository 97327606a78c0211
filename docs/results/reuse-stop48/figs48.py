"""Stop 48: the reuse-matrix figures of each benchmark folder given (benchmarks.reuse's reuse.json), one row each:
pairs' FLOPs mean, drop median / worst, triples' worst, the pairs' batch-32 speedup median (range) and how many
of the 45 pairs ran at least 3x. Usage: python figs48.py DIR..."""
import json
import statistics
import sys
from pathlib import Path

print("| run | calls per turn | pairs' FLOPs mean | drop median / worst | triples worst | speedup median (range) | "
      "pairs at 3x | triples' speedup median |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for folder in sys.argv[1:]:
    report = json.loads((Path(folder) / "reuse.json").read_text())
    for name, summary in report["summary"].items():
        pairs, triples = summary["pairs"], summary["triples"]
        fast = sum(r["speedup"] >= 3 for r in report["results"][name]["pairs"])
        sp = pairs["speedup_b32"]
        print(f"| {name} | {report.get('calls_per_turn', 1)} | {pairs['flops_kept_pct']['mean']:.2f}% | "
              f"{pairs['gate_free_drop_pp']['median']:.2f} / {pairs['gate_free_drop_pp']['max']:.2f} | "
              f"{triples['gate_free_drop_pp']['max']:.2f} | {sp['median']:.2f}x ({sp['min']:.2f}-{sp['max']:.2f}) | "
              f"{fast} of {len(report['results'][name]['pairs'])} | {triples['speedup_b32']['median']:.2f}x |")
