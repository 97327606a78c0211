"""Modules against the full model: FLOPs kept, accuracy and latency, per sub-task and kind of module.

For each sub-task (default: sneaker/bag, sandal/sneaker/ankle-boot, t-shirt/pullover/shirt and
trouser alone) and each alignment, one row each: the plain full model (the same architecture and
weights without gate generators, what a user would otherwise deploy; its latency is the baseline),
the full modular model, the dynamic module, the folded module, and the fine-tuned gate-free
module (`mwt finetune`). Accuracy is on the sub-task's real test images (whole models: argmax over
the sub-task's logits); latency is onnxruntime on the CPU, measured side by side in one run at
batch 1, 32 and 256. Writes modules.json and modules.png (accuracy against speedup).

    python -m benchmarks.modules model.pt --out results/modules
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from exporter.compile import ModuleCompiler
from exporter.export import ExportSettings
from exporter.precision import calibration_images, lower
from mwt.evaluate import subtask_accuracy
from mwt.checkpoint import file_sha256, load_checkpoint
from mwt.data import load_named, load_split
from mwt.finetune import FinetuneConfig, finetune
from runtime.composed import ComposedClassifier
from runtime.latency import compare_latency, side_by_side_settings
from mwt.core.metadata import GateMode, Precision
from runtime.module_file import module_from_model

SUBTASKS = "sneaker,bag;sandal,sneaker,ankle-boot;t-shirt,pullover,shirt;trouser"


def subtask_rows(compiler: ModuleCompiler, classes: tuple[int, ...], aligns: list[int], args: argparse.Namespace,
                 train_data: object, test_data: object) -> list[dict]:
    ckpt = compiler.ckpt
    protos = {"plain full": compiler.plain_model, "full modular": compiler.full_model}
    extra: dict[str, dict] = {}
    t = args.threshold
    for align in aligns:
        selection = compiler.select(classes, threshold=t, align=align)
        protos[f"dynamic (align {align})"] = compiler.compile(selection)[0]
        folded, report = compiler.compile(selection, GateMode.folded)
        protos[f"folded (align {align})"] = folded
        extra[f"folded (align {align})"] = {"folding_error": report.folding_error}
        start = time.perf_counter()
        tuned, ft = finetune(ckpt, selection, FinetuneConfig(epochs=args.epochs, seed=args.seed, device="cpu"),
                             train_data, test_data,  # type: ignore[arg-type]
                             source_sha256=compiler.source_sha256, show_progress=False)
        name = f"fine-tuned (align {align})"
        extra[name] = {"finetune_seconds": time.perf_counter() - start, "folded_acc_before": ft.folded_acc}
        tuned_compiler = ModuleCompiler(tuned)
        protos[name] = tuned_compiler.compile(tuned_compiler.select(list(range(len(classes)))))[0]
        if args.int8:
            train = load_named(tuned.source, "train", list(tuned.classes))
            calibration = calibration_images(train, ExportSettings().calibration_images)
            protos[f"fine-tuned int8 (align {align})"] = lower(protos[name], Precision.int8, calibration)
    settings = side_by_side_settings(args.threads, ("CPUExecutionProvider",))
    runners = {name: ComposedClassifier([module_from_model(p)], settings=settings) for name, p in protos.items()}
    accuracy = subtask_accuracy({k: r.logits for k, r in runners.items() if k != "plain full"},
                                test_data.relabel(list(classes)), list(classes), whole_models={"full modular"})  # type: ignore[attr-defined]
    timings = compare_latency({k: r.logits for k, r in runners.items()}, ckpt.spec.input_shape, tuple(args.batches),
                              "plain full", min_seconds=args.seconds)
    plain = compiler.plain_cost.flops
    rows = []
    for name, proto in protos.items():
        flops = module_from_model(proto).flops
        row = {"subtask": [ckpt.classes[c] for c in classes], "config": name, "flops": flops,
               "flops_kept": flops / plain, "accuracy": accuracy.get(name), **extra.get(name, {})}
        for t in (t for t in timings if t.config == name):
            row[f"ms_b{t.batch}"] = t.median_ms
            row[f"speedup_b{t.batch}"] = t.speedup
        rows.append(row)
    return rows


def print_rows(rows: list[dict], batches: list[int]) -> None:
    head = f"{'config':<22} {'FLOPs kept':>10} {'accuracy':>9}" + "".join(f" {'x b' + str(b):>8}" for b in batches)
    print(head)
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
        print(f"{r['config']:<22} {100 * r['flops_kept']:9.1f}% {acc:>9}"
              + "".join(f" {r[f'speedup_b{b}']:7.2f}x" for b in batches), flush=True)


def plot(rows: list[dict], path: Path, batch: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    kinds = sorted({r["config"].split(" (")[0] for r in rows})
    markers = dict(zip(kinds, "os^Dv*"))
    for subtask in dict.fromkeys("/".join(r["subtask"]) for r in rows):
        sub = [r for r in rows if "/".join(r["subtask"]) == subtask and r["accuracy"] is not None]
        color = ax.scatter([], [], label=subtask).get_facecolor()[0]
        for r in sub:
            ax.scatter(r[f"speedup_b{batch}"], 100 * r["accuracy"], color=color,
                       marker=markers[r["config"].split(" (")[0]])
    for kind, marker in markers.items():
        ax.scatter([], [], color="gray", marker=marker, label=kind)
    ax.set_xscale("log")
    ax.set_xlabel(f"speedup over the plain full model, batch {batch} (log)")
    ax.set_ylabel("accuracy on the sub-task's test images (%)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--subtasks", default=SUBTASKS, help="';'-separated class lists")
    p.add_argument("--aligns", default="1,8")
    p.add_argument("--threshold", type=float, default=0.9, help="module threshold (kernel frequency)")
    p.add_argument("--int8", action="store_true", help="also time the fine-tuned modules quantized to INT8")
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", default="1,32,256")
    p.add_argument("--seconds", type=float, default=2.0, help="least measuring time per batch size")
    p.add_argument("--out", type=Path, default=Path("results/modules"))
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    compiler = ModuleCompiler(load_checkpoint(args.checkpoint), file_sha256(args.checkpoint))
    train_data = load_split(compiler.ckpt.source, "train", classes=compiler.ckpt.classes)
    test_data = load_split(compiler.ckpt.source, "test", classes=compiler.ckpt.classes)
    rows = []
    for spec in args.subtasks.split(";"):
        classes = compiler.select(spec).indices
        print(f"\n{spec}")
        sub = subtask_rows(compiler, classes, [int(a) for a in args.aligns.split(",")], args, train_data, test_data)
        print_rows(sub, args.batches)
        rows += sub
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "modules.json").write_text(json.dumps({"checkpoint": str(args.checkpoint), "threads": args.threads,
                                                        "threshold": args.threshold, "epochs": args.epochs,
                                                        "rows": rows}, indent=2, default=float))
    plot(rows, args.out / "modules.png", 32 if 32 in args.batches else args.batches[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
