"""Latency benchmark: a sub-task's modules against the full model, side by side on onnxruntime.

Compiles every configuration from one checkpoint (one torch export), measures them in
interleaved rounds on onnxruntime (same threads, same inputs), and reports each one's FLOPs, the
measured speedup over the *plain* full model (the same architecture and weights without gate
generators: what a user would otherwise deploy) and that speedup as a fraction of the FLOPs
ratio. The full modular model is a row of its own. Where the dataset is at hand, it also reports
each configuration's accuracy on the real test images of the chosen classes.

    mwt bench latency model.pt --classes sneaker,bag --out results/latency

prints the table and writes latency.json and latency.png.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from exporter.compile import ModuleCompiler
from exporter.precision import calibration_images, lower
from mwt.core.errors import MwtError
from mwt.data import AnySplit, load_named
from mwt.defaults import DEFAULT_ALIGN
from mwt.evaluate import subtask_accuracy
from mwt.selection import ModuleSelection
from runtime.composed import ComposedClassifier, Composition
from runtime.latency import compare_latency, side_by_side_settings
from mwt.core.metadata import GateMode, Precision
from runtime.module_file import ModuleFile, module_from_model
from runtime.session import Parallelism, providers_for

BASELINE = "plain full"
WHOLE_MODEL = "full modular"  # the one row that answers every class of the model


@dataclass
class Row:
    config: str
    batch: int
    median_ms: float
    p90_ms: float
    flops: int
    speedup: float  # over the plain full model
    flops_ratio: float  # plain full FLOPs / this config's
    efficiency: float  # speedup / flops_ratio


@dataclass
class LatencyResult:
    classes: list[str]
    threads: int
    provider: str
    parallelism: str = Parallelism.ops.value
    calls_per_turn: int = 1  # each configuration's calls in a row before the next one's (measure_side_by_side)
    rows: list[Row] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"classes: {', '.join(self.classes)}   onnxruntime {self.provider}, {self.threads} threads "
                 f"({self.parallelism} parallelism, {self.calls_per_turn} calls per turn); "
                 f"speedup over the {BASELINE} model (no gates)",
                 f"{'config':<24} {'batch':>5} {'median ms':>10} {'p90 ms':>8} {'MFLOPs':>8} {'speedup':>8} "
                 f"{'FLOPs ratio':>11} {'of limit':>8}"]
        for r in self.rows:
            lines.append(f"{r.config:<24} {r.batch:>5} {r.median_ms:>10.3f} {r.p90_ms:>8.3f} {r.flops / 1e6:>8.2f} "
                         f"{r.speedup:>7.2f}x {r.flops_ratio:>10.2f}x {100 * r.efficiency:>7.0f}%")
        if self.accuracy:
            lines.append("")
            lines.append(f"accuracy on the real test images of these classes ({BASELINE}: timed only, "
                         "it is the modular weights without their gates):")
            lines += [f"  {k:<24} {100 * v:6.2f}%" for k, v in self.accuracy.items()]
        return "\n".join(lines)


CALIBRATION_IMAGES = 512  # as `mwt export --precision int8` calibrates by default


def build_configs(compiler: ModuleCompiler, union: ModuleSelection, train: AnySplit | None = None
                  ) -> dict[str, list[ModuleFile]]:
    """Every configuration as the module files it runs (one file, or one per class for compositions).
    The INT8 row needs `train`, images of the classes to calibrate on; without them it is left out."""
    align = union.align

    def module(classes: tuple[int, ...], align: int, gates: GateMode = GateMode.dynamic) -> ModuleFile:
        selection = compiler.select(classes, threshold=union.threshold, align=align)
        return module_from_model(compiler.compile(selection, gates)[0])

    configs = {BASELINE: [module_from_model(compiler.plain_model)], WHOLE_MODEL: [module_from_model(compiler.full_model)]}
    fp32 = compiler.compile(union, GateMode.dynamic)[0]
    configs[f"union (align {align})"] = [module_from_model(fp32)]
    configs[f"union fp16 (align {align})"] = [module_from_model(lower(fp32, Precision.fp16))]
    if train is not None:
        calibration = calibration_images(train, CALIBRATION_IMAGES)
        configs[f"union int8 (align {align})"] = [module_from_model(lower(fp32, Precision.int8, calibration))]
    classes = union.indices
    if align != 1:
        configs["union (align 1)"] = [module(classes, 1)]
    configs[f"union folded (align {align})"] = [module(classes, align, GateMode.folded)]
    if len(classes) > 1:
        singles = [module((c,), align) for c in classes]
        configs["composed merged"] = singles
        configs["composed sessions"] = singles
    return configs


def check_extra(name: str, module: ModuleFile, classes: list[str], input_shape: tuple[int, ...]) -> None:
    """An extra module must answer the benchmark's classes, in order, from the same input."""
    if list(module.classes) != classes:
        raise MwtError(f"the module {name} answers {', '.join(module.classes)}, not {', '.join(classes)} "
                       "(give --classes in the module's order)", options=("classes",))
    if tuple(module.input.shape) != tuple(input_shape):
        raise MwtError(f"the module {name} takes inputs of shape {list(module.input.shape)}, the checkpoint "
                       f"{list(input_shape)}")


def check_output_folder(out_dir: Path) -> None:
    """Fail before the work when results cannot be written to `out_dir`."""
    from mwt.core.atomic import check_writable

    if out_dir.exists() and not out_dir.is_dir():
        raise MwtError(f"cannot write results to {out_dir}: it exists and is not a folder")
    probe = out_dir if out_dir.exists() else next((p for p in out_dir.parents if p.exists()), Path("."))
    check_writable(probe / "latency.json")


def latency_benchmark(
    checkpoint: Path, class_spec: str, *, batches: tuple[int, ...] = (1, 32, 256), threads: int = 2,
    align: int = DEFAULT_ALIGN, min_seconds: float = 2.0, data_dir: Path | None = None,
    accuracy_samples: int | None = None, compiler: ModuleCompiler | None = None, provider: str = "cpu",
    extra: dict[str, ModuleFile] | None = None, parallelism: Parallelism = Parallelism.ops,
    calls_per_turn: int = 1,
) -> LatencyResult:
    """Measure every configuration at every batch size; see the module docstring. `extra` adds
    module files of the same classes (say, a fine-tuned module) as rows of their own."""
    compiler = compiler or ModuleCompiler.from_file(checkpoint)
    union = compiler.select(class_spec, align=align)
    if threads < 0 or any(b < 1 for b in batches) or calls_per_turn < 1:
        raise MwtError("threads must be >= 0, batch sizes and calls per turn >= 1")
    names = list(union.names)
    for name, module in (extra or {}).items():
        check_extra(name, module, names, compiler.ckpt.spec.input_shape)
    configs = build_configs(compiler, union, _images(compiler, names, "train", data_dir))
    configs.update({name: [module] for name, module in (extra or {}).items()})
    parallelism = Parallelism(parallelism)
    settings = side_by_side_settings(threads, providers_for(provider), parallelism)
    runners = {
        name: ComposedClassifier(modules, settings=settings,
                                 mode=Composition.sessions if name == "composed sessions" else Composition.merged)
        for name, modules in configs.items()
    }
    flops = {name: sum(m.flops for m in mods) for name, mods in configs.items()}
    used = next(iter(runners.values())).providers[0].removesuffix("ExecutionProvider")
    result = LatencyResult(classes=names, threads=threads, provider=used, parallelism=parallelism.value,
                           calls_per_turn=calls_per_turn)
    result.sizes = {name: sum(m.model.ByteSize() for m in mods) for name, mods in configs.items()}
    rows = compare_latency({name: r.logits for name, r in runners.items()}, compiler.ckpt.spec.input_shape, batches,
                           BASELINE, min_seconds=min_seconds, calls_per_turn=calls_per_turn)
    for r in rows:
        ratio = flops[BASELINE] / max(flops[r.config], 1)
        result.rows.append(Row(r.config, r.batch, r.median_ms, r.p90_ms, flops[r.config], r.speedup, ratio,
                               r.speedup / ratio))
    test = _images(compiler, names, "test", data_dir)
    if test is not None:
        test = test.subset(accuracy_samples)
        # The plain full model is timed only: built from modular weights without their gates, its
        # answers mean nothing. Sessions compute what the merged composition computes.
        result.accuracy = subtask_accuracy(
            {k: v.logits for k, v in runners.items() if k not in (BASELINE, "composed sessions")}, test, union.indices,
            whole_models={WHOLE_MODEL})
    return result


def _images(compiler: ModuleCompiler, names: list[str], split: str, data_dir: Path | None) -> AnySplit | None:
    """The images of the classes `names` in one split, labelled 0..k-1; None when not at hand."""
    try:
        return load_named(compiler.ckpt.source, split, names, data_dir)
    except MwtError:
        return None


def save_result(result: LatencyResult, out_dir: Path) -> tuple[Path, Path | None]:
    """Write latency.json and, if matplotlib is installed, latency.png (latency and speedup bars)."""
    from mwt.core.atomic import write_atomic, write_bytes_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "latency.json"
    write_bytes_atomic(json_path, json.dumps(asdict(result), indent=2).encode())
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return json_path, None
    batches = sorted({r.batch for r in result.rows})
    configs = list(dict.fromkeys(r.config for r in result.rows))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(configs)
    for i, config in enumerate(configs):
        rows = {r.batch: r for r in result.rows if r.config == config}
        xs = np.arange(len(batches)) + i * width
        axes[0].bar(xs, [rows[b].median_ms for b in batches], width, label=config)
        axes[1].bar(xs, [rows[b].speedup for b in batches], width, label=config)
    for ax, title in zip(axes, ("median latency (ms, log)", f"speedup over the {BASELINE} model")):
        ax.set_xticks(np.arange(len(batches)) + 0.4 - width / 2, [f"batch {b}" for b in batches])
        ax.set_title(title)
    axes[0].set_yscale("log")
    axes[1].axhline(1.0, color="gray", linewidth=0.8)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{', '.join(result.classes)} — onnxruntime {result.provider}, {result.threads} threads")
    fig.tight_layout()
    png_path = out_dir / "latency.png"
    write_atomic(png_path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return json_path, png_path

