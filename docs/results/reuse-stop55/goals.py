"""Issue 16's goals, met or missed and by how much, for runs scored by reuse-lib.sh.

Usage: python goals.py NAME=BENCH_FOLDER:PAIRED_TXT ...
BENCH_FOLDER holds benchmarks.reuse's reuse.json; PAIRED_TXT is reuse-stop39/paired.py's output (the whole
model's gap to its seed's standard model). One line per goal and run, so a stop's table is not typed by hand.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def verdict(value: float, limit: float, at_most: bool, unit: str) -> str:
    """'met' or 'missed by X' for a value against a goal's limit."""
    miss = value - limit if at_most else limit - value
    return "met" if miss <= 0 else f"missed by {miss:.2f}{unit}"


def whole_model_gap(paired_txt: Path) -> float:
    """The gap in pp that paired.py printed for the run (its last line)."""
    found = re.search(r"gap (-?[0-9.]+) pp", paired_txt.read_text().strip().splitlines()[-1])
    if not found:
        raise SystemExit(f"goals.py: no gap in {paired_txt}")
    return float(found.group(1))


def report(name: str, bench: Path, paired: Path) -> None:
    # The benchmark's own summary (drops of the exported files), so these verdicts are its printed figures.
    report_json = json.loads((bench / "reuse.json").read_text())
    run_name, run = next(iter(report_json["results"].items()))
    pairs, triples = (report_json["summary"][run_name][group] for group in ("pairs", "triples"))
    worst = max(run["pairs"], key=lambda p: p["full_acc"] - p["gate_free_onnx_acc"])
    rows = [
        ("whole model gap (pp)", whole_model_gap(paired), 1.0, True, " pp"),
        ("pairs FLOPs kept mean (%)", pairs["flops_kept_pct"]["mean"], 12.0, True, " pts"),
        ("pairs drop median (pp)", pairs["gate_free_drop_pp"]["median"], 0.5, True, " pp"),
        (f"pairs drop worst (pp, {'/'.join(worst['classes'])})", pairs["gate_free_drop_pp"]["max"], 2.0, True, " pp"),
        ("triples drop worst (pp)", triples["gate_free_drop_pp"]["max"], 3.0, True, " pp"),
        ("pairs speedup median (x)", pairs["speedup_b32"]["median"], 3.0, False, "x"),
    ]
    for label, value, limit, at_most, unit in rows:
        print(f"{name:6s} {label:42s} {value:7.2f}  goal {'<=' if at_most else '>='} {limit:<5} "
              f"{verdict(value, limit, at_most, unit)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for argument in sys.argv[1:]:
        name, _, paths = argument.partition("=")
        bench, _, paired = paths.partition(":")
        report(name, Path(bench), Path(paired))
