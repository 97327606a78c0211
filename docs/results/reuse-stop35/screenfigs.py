"""Figures of the stop-35 screens: `python screenfigs.py S1 S2 S3 S4`, run beside their S.jsonl, S-modularize.txt and S-eval.json."""
import json
import statistics
import sys
from pathlib import Path

for name in sys.argv[1:]:
    log = [json.loads(line) for line in Path(f"{name}.jsonl").read_text().splitlines()[1:]]
    ev = json.loads(Path(f"{name}-eval.json").read_text())
    pairs, triples = ev["pairs"]["subtasks"], ev["triples"]["subtasks"]
    drops = [100 * p["gate_free_drop"] for p in pairs]
    fl = [100 * p["flops_kept"] for p in pairs]
    epochs = " ".join(f"{100 * h['test_acc']:.1f}" for h in log)
    mod = Path(f"{name}-modularize.txt").read_text().splitlines()
    union = next((line for line in mod if line.startswith("all classes")), "")
    coupling = next((line for line in mod if line.startswith("coupling")), "")
    print(f"{name}: whole {100 * log[-1]['test_acc']:.2f}% (epochs: {epochs}); "
          f"blocked FLOPs/sample {100 * log[-1]['flops']:.1f}%; pairs drop median {statistics.median(drops):.2f} "
          f"worst {max(drops):.2f} pp; FLOPs mean {statistics.mean(fl):.2f}% ({min(fl):.1f}-{max(fl):.1f}); "
          f"triples worst {max(100 * t['gate_free_drop'] for t in triples):.2f} pp; {union.split(None, 2)[-1] if union else ''}; {coupling}")
