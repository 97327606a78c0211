"""Issue 16's goals, met or missed and by how much, for runs scored by reuse-lib.sh.

Usage: python goals.py NAME=BENCH_FOLDER:GAP ...
BENCH_FOLDER holds benchmarks.reuse's reuse.json. GAP is either reuse-stop39/paired.py's output (the whole
model's gap to its seed's standard model, paired on the test images), or LOG.jsonl@STANDARD_PCT where no
standard checkpoint is at hand: the run's last logged test accuracy against that standard's figure
(added in stop 56). One line per goal and run, so a stop's table is not typed by hand.
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


def unpaired_gap(log: Path, standard_pct: float) -> float:
    """The standard's accuracy (%) minus the run's last logged test accuracy, in pp."""
    accuracies = [r["test_acc"] for r in map(json.loads, log.read_text().splitlines()) if "test_acc" in r]
    if not accuracies:
        raise SystemExit(f"goals.py: no test accuracy in {log}")
    return standard_pct - 100 * accuracies[-1]


def gap_from(spec: str) -> tuple[float, bool]:
    """The whole model's gap from GAP (see the usage), and whether it is paired."""
    log, at, standard = spec.rpartition("@")
    return (unpaired_gap(Path(log), float(standard)), False) if at else (whole_model_gap(Path(spec)), True)


def report(name: str, bench: Path, gap: str) -> None:
    # The benchmark's own summary (drops of the exported files), so these verdicts are its printed figures.
    report_json = json.loads((bench / "reuse.json").read_text())
    run_name, run = next(iter(report_json["results"].items()))
    pairs, triples = (report_json["summary"][run_name][group] for group in ("pairs", "triples"))
    worst = max(run["pairs"], key=lambda p: p["full_acc"] - p["gate_free_onnx_acc"])
    whole_gap, paired = gap_from(gap)
    rows = [
        (f"whole model gap (pp{'' if paired else ', unpaired'})", whole_gap, 1.0, True, " pp"),
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
        bench, _, gap = paths.partition(":")
        report(name, Path(bench), gap)
