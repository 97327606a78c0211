"""Two runs' logs side by side, epoch by epoch: test / train accuracy, FLOPs per sample, the budget's pull.

Usage: python epochs.py NAME=LOG.jsonl NAME=LOG.jsonl ...
"""

from __future__ import annotations

import json
import sys


def epochs(path: str) -> dict[int, dict[str, float]]:
    """The per-epoch records of a `mwt train --log` file, by epoch (a resumed run's later record wins)."""
    rows: dict[int, dict[str, float]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "epoch" in record:
                rows[int(record["epoch"])] = record
    return rows


def main(args: list[str]) -> None:
    runs = [(name, epochs(path)) for name, path in (a.split("=", 1) for a in args)]
    print("epoch | " + " | ".join(f"{n}: test / train / FLOPs / pull" for n, _ in runs))
    for e in sorted(set().union(*(r.keys() for _, r in runs))):
        cells = []
        for _, r in runs:
            d = r.get(e)
            cells.append("-" if d is None else
                         f"{100 * d['test_acc']:.2f} / {100 * d['train_acc']:.2f} / {100 * d['flops']:.1f} / "
                         f"{d.get('budget_pull', 0):.2f}")
        print(f"{e} | " + " | ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1:])
