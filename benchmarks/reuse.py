"""The reuse matrix benchmark: every class pair and 20 random triples, for several checkpoints side by side.

For each sub-task of each checkpoint (say, the paper, cost and reuse recipes' models):
- accuracy of the full model restricted to the sub-task, of its dynamic module, and of its
  data-free gate-free module (PyTorch simulation, `mwt.reuse_matrix`);
- the gate-free module compiled by the exporter from the modularization alone (folded gates,
  no images at hand) and run on onnxruntime over the same test images, so the figure is the
  deployed file's, not only the simulation's;
- FLOPs kept, also as a share of the module of all classes (`flops_of_all_classes_pct`: near 100,
  every sub-task keeps the kernels of the whole task, so the model was pruned, not modularized),
  and the batch-32 speedup of that module file over the plain full model (same
  architecture and weights, no generators), timed side by side in one process, in `--rounds`
  passes over all sub-tasks (a sub-task's figure is its passes' median; the summary adds how far
  the median over sub-tasks moved from pass to pass, the figure's own noise).

    python -m benchmarks.reuse paper.pt cost.pt reuse.pt --names paper,cost,reuse --out docs/results/reuse

Prints min/median/max per checkpoint and writes reuse.json and reuse.png (pairs x accuracy drop,
pairs x FLOPs kept) atomically: an interrupted run leaves neither half-written.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from exporter.compile import ModuleCompiler
from mwt.checkpoint import load_checkpoint
from mwt.core.atomic import write_atomic, write_bytes_atomic
from mwt.core.errors import MwtError
from mwt.core.metadata import GateMode
from mwt.data import Split, load_split
from mwt.defaults import (DEFAULT_ALIGN, DEFAULT_ROUNDING, DEFAULT_THRESHOLD, ROUNDINGS, check_align, check_pad_limit,
                          check_rounding, check_threshold)
from mwt.progress import progress
from mwt.reuse_matrix import all_pairs, random_subtasks, score_selections
from runtime.composed import ComposedClassifier
from runtime.latency import compare_latency, side_by_side_settings
from runtime.session import Parallelism, SessionSettings
from runtime.module_file import ModuleFile, module_from_model

BATCH = 32


def machine() -> str:
    """The processor this ran on (timings are only comparable on one machine, in one run)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def module_accuracy(runner: ComposedClassifier, test: Split, classes: list[int]) -> float:
    """Accuracy of a module file on its classes' test images (it answers their logits, in order)."""
    data = test.where(classes).materialize()
    x = data.images.numpy().astype(np.float32) / 255.0
    lookup = np.full(max(classes) + 1, -1)
    lookup[classes] = np.arange(len(classes))  # class index -> the module's output column
    column = lookup[data.labels.numpy()]
    logits = np.concatenate([runner.logits(x[i:i + 500]) for i in range(0, len(x), 500)])
    return float((logits.argmax(1) == column).mean())


def time_in_rounds(plain: ComposedClassifier, jobs: list[tuple[dict[str, object], ModuleFile]],
                   shape: tuple[int, ...], settings: SessionSettings, *, rounds: int, min_seconds: float,
                   calls_per_turn: int, desc: str) -> None:
    """Each job's module: its batch-32 speedup over the plain model, in `rounds` passes over all
    the jobs (each timing `min_seconds`): a slow patch of the machine that lasts seconds then lands
    on one pass of several modules, not on every timing of one. A job's row gets its passes'
    speedups in order (`speedups`) and their median (`speedup`). Each timing opens its own session
    and closes it after, so only one module's session is alive at a time."""
    speedups: list[list[float]] = [[] for _ in jobs]
    passes = [(n, module) for _ in range(rounds) for n, (_, module) in enumerate(jobs)]
    for n, module in progress(passes, total=len(passes), desc=desc):
        runner = ComposedClassifier([module], settings=settings)
        try:
            timing = compare_latency({"plain": plain.logits, "module": runner.logits}, shape, (BATCH,), "plain",
                                     min_seconds=min_seconds, calls_per_turn=calls_per_turn)
        finally:
            runner.close()
        speedups[n].append(next(r.speedup for r in timing if r.config == "module"))
    for (row, _), values in zip(jobs, speedups):
        row["speedups"] = values
        row["speedup"] = statistics.median(values)


def bench_checkpoint(path: Path, *, triples: int, seed: int, threads: int, min_seconds: float,
                     timed: int | None, align: int = DEFAULT_ALIGN, pad_limit: float | None = None,
                     threshold: float = DEFAULT_THRESHOLD, rounding: str = DEFAULT_ROUNDING,
                     parallelism: Parallelism = Parallelism.ops, calls_per_turn: int = 1, rounds: int = 1,
                     data_dir: Path | None = None) -> dict[str, object]:
    """Every figure of one checkpoint's reuse matrix (see the module docstring); the modules keep
    the kernels `threshold`, `align`, `pad_limit` and `rounding` select, as `mwt-export` would, and
    each timed one is timed in `rounds` passes (see `time_in_rounds`)."""
    ckpt = load_checkpoint(path)
    ckpt.require_modularization(path)
    test = load_split(ckpt.source, "test", data_dir, False, classes=ckpt.classes)
    k = len(ckpt.classes)
    subtasks = {"pairs": all_pairs(k), "triples": random_subtasks(k, 3, triples, seed)}
    compiler = ModuleCompiler.from_file(path)
    settings = side_by_side_settings(threads, ("CPUExecutionProvider",), parallelism)
    plain = ComposedClassifier([module_from_model(compiler.plain_model)], settings=settings)
    # The module of every class, kept as a sub-task's would be: a sub-task's share of it tells modules
    # (a pair keeps well under it) from one pruned network that every class shares (a pair keeps all of it).
    every = compiler.select(list(range(k)), threshold=threshold, align=align, pad_limit=pad_limit, rounding=rounding)
    out: dict[str, object] = {"checkpoint": str(path), "recipe": ckpt.training.get("config", {}).get("recipe"),
                              "test_acc": ckpt.training.get("test_acc"),
                              "all_classes_flops_kept": every.flops_kept(compiler.cost)}
    for group, tasks in subtasks.items():
        # Selected once: the same kernels are scored in PyTorch and compiled into the timed file.
        selections = [compiler.select(list(task), threshold=threshold, align=align, pad_limit=pad_limit,
                                      rounding=rounding) for task in tasks]
        scores = score_selections(ckpt, selections, test, cost=compiler.cost)
        rows, jobs = [], []
        for n, (task, selection, score) in enumerate(progress(list(zip(tasks, selections, scores)), total=len(tasks),
                                                              desc=f"{path.name} {group}")):
            compiled, _ = compiler.compile(selection, GateMode.folded)
            module = module_from_model(compiled)
            runner = ComposedClassifier([module], settings=settings)
            try:
                onnx_acc = module_accuracy(runner, test, list(task))
            finally:
                runner.close()  # its memory grew to the accuracy pass's batches; timing opens a fresh one
            row = {**score.to_dict(), "gate_free_onnx_acc": onnx_acc, "speedup": None, "speedups": [],
                   "classes": [ckpt.classes[c] for c in task]}
            rows.append(row)
            if timed is None or n < timed:
                jobs.append((row, module))
        time_in_rounds(plain, jobs, ckpt.spec.input_shape, settings, rounds=rounds, min_seconds=min_seconds,
                       calls_per_turn=calls_per_turn, desc=f"{path.name} {group} timed")
        out[group] = rows
        out[f"{group}_median_speedup_by_pass"] = median_speedup_by_pass(rows)
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "mean": statistics.fmean(values),
            "max": max(values)}


def median_speedup_by_pass(rows: list[dict[str, object]]) -> list[float]:
    """The median speedup over the timed sub-tasks in each pass, in the order the passes ran (empty
    when none was timed; reports written before `--rounds` have no passes)."""
    timed = [r["speedups"] for r in rows if r.get("speedups")]
    passes = min((len(s) for s in timed), default=0)  # type: ignore[arg-type]
    return [statistics.median(s[i] for s in timed) for i in range(passes)]  # type: ignore[index]


def summarize(result: dict[str, object]) -> dict[str, dict[str, dict[str, float]]]:
    """min/median/mean/max of each figure, per group (accuracy drops in percentage points)."""
    out = {}
    for group in ("pairs", "triples"):
        rows = result.get(group) or []
        if not rows:
            continue
        figures = {
            "gate_free_drop_pp": [100 * (r["full_acc"] - r["gate_free_onnx_acc"]) for r in rows],
            "dynamic_drop_pp": [100 * r["dynamic_drop"] for r in rows],
            "flops_kept_pct": [100 * r["flops_kept"] for r in rows],
        }
        every = result.get("all_classes_flops_kept")  # reports written before stop 58 lack it
        if every:
            figures["flops_of_all_classes_pct"] = [100 * r["flops_kept"] / every for r in rows]
        timed = [r for r in rows if r["speedup"] is not None]
        if timed:
            figures["speedup_b32"] = [r["speedup"] for r in timed]
            by_pass = median_speedup_by_pass(rows)
            if len(by_pass) > 1:  # how far the median over sub-tasks moves from one pass to the next
                figures["median_speedup_by_pass"] = by_pass
        out[group] = {name: spread(values) for name, values in figures.items()}
    return out


def table(name: str, summary: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{name}"]
    for group, figures in summary.items():
        lines.append(f"  {group:<8} {'':<26} {'min':>8} {'median':>8} {'mean':>8} {'max':>8}")
        for figure, s in figures.items():
            lines.append(f"  {'':<8} {figure:<26} " + " ".join(f"{s[k]:8.2f}" for k in ("min", "median", "mean", "max")))
    return "\n".join(lines)


def heatmap(results: dict[str, dict[str, object]], classes: list[str], path: Path) -> None:
    """pairs x accuracy drop and pairs x FLOPs kept, one row of panels per checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, axes = plt.subplots(len(results), 2, figsize=(11, 4.6 * len(results)), squeeze=False)
    for row, (name, result) in enumerate(results.items()):
        drop = np.full((k, k), np.nan)
        flops = np.full((k, k), np.nan)
        for r in result["pairs"]:  # type: ignore[union-attr]
            i, j = (classes.index(c) for c in r["classes"])
            drop[i, j] = drop[j, i] = 100 * (r["full_acc"] - r["gate_free_onnx_acc"])
            flops[i, j] = flops[j, i] = 100 * r["flops_kept"]
        for ax, values, title, cmap, top in ((axes[row][0], drop, "gate-free accuracy drop (pp)", "Reds", 10),
                                             (axes[row][1], flops, "FLOPs kept (% of plain)", "Blues", 50)):
            im = ax.imshow(values, cmap=cmap, vmin=0, vmax=top)
            ax.set_xticks(range(k), classes, rotation=60, fontsize=7)
            ax.set_yticks(range(k), classes, fontsize=7)
            for i in range(k):
                for j in range(k):
                    if not np.isnan(values[i, j]):
                        ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", fontsize=5.5)
            ax.set_title(f"{name}: {title}", fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="modularized checkpoints")
    p.add_argument("--names", help="comma-separated names of the checkpoints (default: file names)")
    p.add_argument("--out", type=Path, default=Path("reuse"), help="folder for reuse.json and reuse.png")
    p.add_argument("--triples", type=int, default=20, help="seeded random triples (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    p.add_argument("--parallelism", default=Parallelism.ops.value, choices=[m.value for m in Parallelism],
                   help="ops: one session splits each op across the threads (default); batch: one one-thread "
                   "session per thread, each on a slice of the batch (both the plain model and the modules)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="timing per sub-task and pass")
    p.add_argument("--rounds", type=int, default=1,
                   help="passes over all timed sub-tasks (default 1); a sub-task's speedup is the median of its "
                   "passes, and with more than one the summary adds median_speedup_by_pass: the spread of each "
                   "pass's median over sub-tasks, the speedup's own noise. The timing takes N times as long; an "
                   "odd N keeps each median one measured pass")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the checkpoints' dataset lies, for all of them (default: its built-in location)")
    p.add_argument("--calls-per-turn", type=int, default=1,
                   help="calls of the plain model, then of the module, in a row, in alternating turns (default 1: "
                   "call by call, each starting with the other's weights in the caches, as every stop before "
                   "48 timed; more: each warm, as deployed; 20 gave the pairs 4-10%% more speedup)")
    p.add_argument("--timed", type=int, default=None, help="time only the first N sub-tasks of each group")
    p.add_argument("--align", type=int, default=DEFAULT_ALIGN,
                   help=f"channel alignment of the modules (default {DEFAULT_ALIGN}, AVX2's block; 16, AVX-512's, "
                   "ran slower on an AVX-512 Xeon: narrow layers stay off the block either way)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"a kernel joins a class's module when its frequency >= this (default {DEFAULT_THRESHOLD})")
    p.add_argument("--pad-limit", type=float, default=None,
                   help="round a layer up to --align only if that adds at most this fraction to the module's "
                   "FLOPs (default: every layer)")
    p.add_argument("--rounding", default=DEFAULT_ROUNDING,
                   help=f"how each layer meets --align: {', '.join(ROUNDINGS)} (default {DEFAULT_ROUNDING}; "
                   "see mwt-export --help)")
    args = p.parse_args(argv)
    names = args.names.split(",") if args.names else [c.stem for c in args.checkpoints]
    if len(names) != len(args.checkpoints):
        print("error: --names must name every checkpoint", file=sys.stderr)
        return 2
    try:
        check_align(args.align)
        check_threshold(args.threshold)
        if args.pad_limit is not None:
            check_pad_limit(args.pad_limit)
        check_rounding(args.rounding)
        if args.calls_per_turn < 1:
            raise MwtError(f"--calls-per-turn must be at least 1, got {args.calls_per_turn}")
        if args.rounds < 1:
            raise MwtError(f"--rounds must be at least 1, got {args.rounds}")
        if args.timed is not None and args.timed < 0:
            raise MwtError(f"--timed must be at least 0, got {args.timed}")
        start = time.perf_counter()
        results = {n: bench_checkpoint(c, triples=args.triples, seed=args.seed, threads=args.threads,
                                       min_seconds=args.min_seconds, timed=args.timed, align=args.align,
                                       pad_limit=args.pad_limit, threshold=args.threshold, rounding=args.rounding,
                                       parallelism=Parallelism(args.parallelism),
                                       calls_per_turn=args.calls_per_turn, rounds=args.rounds,
                                       data_dir=args.data_dir)
                   for n, c in zip(names, args.checkpoints)}
        summaries = {n: summarize(r) for n, r in results.items()}
        report = {"machine": machine(), "threads": args.threads, "parallelism": args.parallelism, "batch": BATCH,
                  "calls_per_turn": args.calls_per_turn, "rounds": args.rounds, "align": args.align,
                  "threshold": args.threshold, "pad_limit": args.pad_limit,
                  "rounding": args.rounding, "seconds": time.perf_counter() - start,
                  "results": results, "summary": summaries}
        args.out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.out / "reuse.json", json.dumps(report, indent=1).encode())
        classes = load_checkpoint(args.checkpoints[0]).classes
        heatmap(results, classes, args.out / "reuse.png")
    except MwtError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limit = "" if args.pad_limit is None else f", pad limit {args.pad_limit}"
    limit += "" if args.rounding == DEFAULT_ROUNDING else f", rounded {args.rounding}"
    print(f"machine: {report['machine']}, onnxruntime {args.threads} threads ({args.parallelism} parallelism), "
          f"batch {BATCH}, {args.calls_per_turn} calls per turn, {args.rounds} pass(es), "
          f"threshold {args.threshold}, align {args.align}{limit}")
    for n, s in summaries.items():
        print(table(n, s))
    print(f"wrote {args.out / 'reuse.json'} and {args.out / 'reuse.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
