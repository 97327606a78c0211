"""Threshold sweep on a modularized checkpoint: mean module KRR, and for a few sub-tasks the
union module's KRR and simulated accuracy, at each threshold. No retraining: modularization
stores frequencies, so any threshold is a view of the same model.

    python -m benchmarks.threshold results/training/modular.pt --out results/threshold.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model
from mwt.data import load_split, resolve_classes
from mwt.modularize import mean_module_krr
from mwt.report import subtask_report
from mwt.selection import ModuleSelection, retained_kernels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--thresholds", default="0.8,0.9,0.95,0.98")
    p.add_argument("--subtasks", default="sneaker,bag;t-shirt,pullover,shirt;trouser")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)
    mod = ckpt.require_modularization(args.checkpoint)
    test = load_split(ckpt.source, "test", classes=ckpt.classes)
    subtasks = [resolve_classes(ckpt.classes, s) for s in args.subtasks.split(";")]
    rows = []
    cost = cost_model(ckpt.build(), ckpt.spec.input_shape)
    for t in (float(v) for v in args.thresholds.split(",")):
        mean = mean_module_krr(mod, t)
        flops = sum(cost.kept_fraction(retained_kernels(mod, [c], t), 1) for c in range(len(ckpt.classes)))
        row = {"threshold": t, "mean_krr": mean, "mean_flops_kept": flops / len(ckpt.classes), "subtasks": []}
        for classes in subtasks:
            r = subtask_report(ckpt, ModuleSelection.of(ckpt, classes, threshold=t, align=1), test)
            row["subtasks"].append({"classes": r.classes, "krr": r.krr, "flops_kept": r.flops_kept,
                                    "module_acc": r.module_acc, "full_acc": r.full_acc})
        rows.append(row)
        cells = "  ".join(f"{'+'.join(s['classes'])}: KRR {100 * s['krr']:.1f}% FLOPs {100 * s['flops_kept']:.1f}% "
                          f"acc {100 * s['module_acc']:.2f}% (full {100 * s['full_acc']:.2f}%)" for s in row["subtasks"])
        print(f"threshold {t:<5} mean KRR {100 * mean:5.1f}% FLOPs {100 * row['mean_flops_kept']:5.1f}%   {cells}",
              flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
