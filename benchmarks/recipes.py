"""Training recipes side by side, from their modularized checkpoints.

For each checkpoint (e.g. the paper's recipe, beta 3, the cost-aware recipe, trained by
benchmarks/training.py): test accuracy, mean module KRR and mean FLOPs kept (single-class
modules), cohesion, coupling, and per sub-task the union module's KRR, FLOPs kept, simulated
accuracy (dynamic gates), folded-gate accuracy (constant gates, PyTorch) and the folding error
(a statistic of the gates, reported in exports; it did not tell collapsing modules apart).
Re-modularizes each checkpoint first with --modularize.

    python -m benchmarks.recipes paper.pt beta3.pt cost.pt --modularize --out results/recipes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.cost import cost_model
from mwt.data import load_split, resolve_classes
from mwt.modularize import (
    folded_gate_values,
    folding_error,
    frozen_gates,
    kernel_frequency,
    krr,
    retain_only,
    retained_kernels,
)
from mwt.report import module_report
from mwt.evaluate import accuracy

SUBTASKS = "sneaker,bag;sandal,sneaker,ankle-boot;t-shirt,pullover,shirt;trouser"


def evaluate(path: Path, subtasks: list[str], modularize: bool) -> dict:
    ckpt = load_checkpoint(path)
    train = load_split(ckpt.source, "train", classes=ckpt.classes)
    test = load_split(ckpt.source, "test", classes=ckpt.classes)
    if modularize:
        ckpt.modularization = kernel_frequency(ckpt.build(), train, len(ckpt.classes), show_progress=False)
        save_checkpoint(ckpt, path)
    report = module_report(ckpt, test)
    model = ckpt.build()
    cost = cost_model(model, ckpt.spec.input_shape)
    mod = ckpt.require_modularization()
    row = {"checkpoint": str(path), "recipe": ckpt.training.get("config", {}).get("recipe"),
           "test_acc": report.test_acc, "mean_krr": report.mean_krr, "mean_flops_kept": report.mean_flops,
           "cohesion": report.cohesion, "coupling": report.coupling, "subtasks": []}
    for spec in subtasks:
        classes = resolve_classes(ckpt.classes, spec)
        kept = retained_kernels(mod, classes)
        full = accuracy(model, test, classes=classes)
        with retain_only(model, kept):
            dynamic = accuracy(model, test, classes=classes)
        with retain_only(model, kept), frozen_gates(model, folded_gate_values(mod, classes, kept)):
            folded = accuracy(model, test, classes=classes)
        row["subtasks"].append({
            "classes": [ckpt.classes[c] for c in classes], "krr": krr(kept),
            "flops_kept": cost.kept_fraction(kept, len(classes)),
            "full_acc": full, "dynamic_acc": dynamic, "folded_acc": folded,
            "folding_error": folding_error(mod, classes, kept),
        })
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--subtasks", default=SUBTASKS)
    p.add_argument("--modularize", action="store_true", help="re-modularize each checkpoint on its training set first")
    p.add_argument("--out", type=Path, default=Path("results/recipes"))
    args = p.parse_args(argv)
    rows = [evaluate(c, args.subtasks.split(";"), args.modularize) for c in args.checkpoints]
    print(f"{'checkpoint':<34} {'acc':>7} {'mean KRR':>9} {'FLOPs kept':>11} {'cohesion':>9} {'coupling':>9}")
    for r in rows:
        print(f"{r['checkpoint'][-34:]:<34} {100 * r['test_acc']:6.2f}% {100 * r['mean_krr']:8.2f}% "
              f"{100 * r['mean_flops_kept']:10.2f}% {r['cohesion']:9.3f} {r['coupling']:9.3f}")
        for s in r["subtasks"]:
            print(f"    {'/'.join(s['classes']):<30} KRR {100 * s['krr']:5.1f}%  FLOPs {100 * s['flops_kept']:5.1f}%  "
                  f"full {100 * s['full_acc']:6.2f}%  dynamic {100 * s['dynamic_acc']:6.2f}%  "
                  f"folded {100 * s['folded_acc']:6.2f}% (error {100 * s['folding_error']:.0f}%)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipes.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
