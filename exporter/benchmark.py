"""Latency benchmark: full model vs union module vs composed single-class modules, side by side.

Compiles every configuration from one checkpoint, measures them in interleaved rounds on
onnxruntime (same threads, same inputs), and reports each one's FLOPs, the measured speedup over
the full model, and that speedup as a fraction of the FLOPs ratio. Where the dataset is at hand,
it also reports each configuration's accuracy on the real test images of the chosen classes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from onnxruntime import InferenceSession

from exporter.compile import ExportOptions, GateMode, compile_module, export_full_model
from mwt.checkpoint import Checkpoint, file_sha256, load_checkpoint
from mwt.data import load_split, resolve_classes
from mwt.errors import MwtError
from runtime.composed import ComposedClassifier
from runtime.latency import measure_side_by_side
from runtime.module_file import ModuleFile, module_from_model
from runtime.session import SessionSettings, make_session


@dataclass
class Row:
    config: str
    batch: int
    median_ms: float
    p90_ms: float
    flops: int
    speedup: float
    flops_ratio: float
    efficiency: float  # speedup / flops_ratio


@dataclass
class LatencyResult:
    classes: list[str]
    threads: int
    provider: str
    rows: list[Row] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"classes: {', '.join(self.classes)}   onnxruntime {self.provider}, {self.threads} threads",
                 f"{'config':<22} {'batch':>5} {'median ms':>10} {'p90 ms':>8} {'MFLOPs':>8} {'speedup':>8} "
                 f"{'FLOPs ratio':>11} {'of limit':>8}"]
        for r in self.rows:
            lines.append(f"{r.config:<22} {r.batch:>5} {r.median_ms:>10.3f} {r.p90_ms:>8.3f} {r.flops / 1e6:>8.2f} "
                         f"{r.speedup:>7.2f}x {r.flops_ratio:>10.2f}x {100 * r.efficiency:>7.0f}%")
        if self.accuracy:
            lines.append("")
            lines.append("accuracy on the real test images of these classes:")
            lines += [f"  {k:<22} {100 * v:6.2f}%" for k, v in self.accuracy.items()]
        return "\n".join(lines)


def build_configs(ckpt: Checkpoint, classes: list[int], sha: str, align: int = 8) -> dict[str, list[ModuleFile]]:
    """Every configuration as the module files it runs (one file, or one per class for compositions)."""

    def module(cls: list[int], **kw: object) -> ModuleFile:
        proto, _ = compile_module(ckpt, ExportOptions(tuple(cls), **kw), source_sha256=sha)  # type: ignore[arg-type]
        return module_from_model(proto)

    configs = {
        "full": [module_from_model(export_full_model(ckpt, sha))],
        f"union (align {align})": [module(classes, align=align)],
        "union (align 1)": [module(classes, align=1)],
        f"union folded (align {align})": [module(classes, align=align, gates=GateMode.folded)],
    }
    if len(classes) > 1:
        singles = [module([c], align=align) for c in classes]
        configs["composed merged"] = singles
        configs["composed sessions"] = singles
    return configs


def latency_benchmark(
    checkpoint: Path, class_spec: str, *, batches: tuple[int, ...] = (1, 32, 256), threads: int = 2,
    align: int = 8, min_seconds: float = 2.0, data_dir: Path | None = None, accuracy_samples: int | None = None,
) -> LatencyResult:
    """Measure every configuration at every batch size; see the module docstring."""
    ckpt = load_checkpoint(checkpoint)
    classes = resolve_classes(ckpt.classes, class_spec)
    ckpt.require_modularization(checkpoint)
    if threads < 0 or any(b < 1 for b in batches):
        raise MwtError("threads must be >= 0 and batch sizes >= 1")
    configs = build_configs(ckpt, classes, file_sha256(checkpoint), align)
    settings = SessionSettings(intra_op_threads=threads, providers=("CPUExecutionProvider",))
    runners: dict[str, ComposedClassifier] = {}
    for name, modules in configs.items():
        if name != "full":  # the full model runs as a plain session: no composition layer around it
            mode = "sessions" if name == "composed sessions" else "merged"
            runners[name] = ComposedClassifier(modules, mode=mode, settings=settings)
    full_session = make_session(configs["full"][0].model.SerializeToString(), settings)
    flops = {name: sum(m.flops for m in mods) for name, mods in configs.items()}
    result = LatencyResult(classes=[ckpt.classes[c] for c in classes], threads=threads, provider="CPU")
    result.sizes = {name: sum(m.model.ByteSize() for m in mods) for name, mods in configs.items()}
    shape = tuple(int(d) for d in configs["full"][0].input["shape"])
    rng = np.random.default_rng(0)
    for batch in batches:
        x = rng.random((batch, *shape), dtype=np.float32)
        calls: dict[str, Callable[[], object]] = {
            name: (lambda r=runner, x=x: r.logits(x)) for name, runner in runners.items()
        }
        calls["full"] = lambda x=x: full_session.run(["logits"], {"input": x})
        timings = measure_side_by_side(calls, min_seconds=min_seconds)
        base = timings["full"].median_ms
        for name in configs:
            t = timings[name]
            speedup = base / t.median_ms
            ratio = flops["full"] / max(flops[name], 1)
            result.rows.append(Row(name, batch, t.median_ms, t.p90_ms, flops[name], speedup, ratio, speedup / ratio))
    result.accuracy = _accuracy(ckpt, classes, runners, full_session, data_dir, accuracy_samples)
    return result


def _in_chunks(run: Callable[[np.ndarray], np.ndarray], x: np.ndarray, size: int = 500) -> np.ndarray:
    return np.concatenate([run(x[i:i + size]) for i in range(0, len(x), size)])


def _accuracy(ckpt: Checkpoint, classes: list[int], runners: dict[str, ComposedClassifier],
              full_session: InferenceSession, data_dir: Path | None, limit: int | None) -> dict[str, float]:
    try:
        test = load_split(ckpt.dataset, "test", data_dir).where(classes).subset(limit)
    except MwtError:
        return {}
    x = test.images.numpy().astype(np.float32) / 255.0
    target = np.array([classes.index(int(c)) for c in test.labels.numpy()])
    full_logits = _in_chunks(lambda b: full_session.run(["logits"], {"input": b})[0], x)
    out = {"full (these classes)": float((full_logits[:, classes].argmax(1) == target).mean())}
    for name, runner in runners.items():
        if name == "composed sessions":  # the same logits as "composed merged"
            continue
        out[name] = float((_in_chunks(runner.logits, x).argmax(1) == target).mean())
    return out


def save_result(result: LatencyResult, out_dir: Path) -> tuple[Path, Path | None]:
    """Write latency.json and, if matplotlib is installed, latency.png (latency and speedup bars)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "latency.json"
    json_path.write_text(json.dumps(asdict(result), indent=2))
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
    for ax, title in zip(axes, ("median latency (ms, log)", "speedup over the full model")):
        ax.set_xticks(np.arange(len(batches)) + 0.4 - width / 2, [f"batch {b}" for b in batches])
        ax.set_title(title)
    axes[0].set_yscale("log")
    axes[1].axhline(1.0, color="gray", linewidth=0.8)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(f"{', '.join(result.classes)} — onnxruntime {result.provider}, {result.threads} threads")
    fig.tight_layout()
    png_path = out_dir / "latency.png"
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return json_path, png_path


__all__ = ["LatencyResult", "latency_benchmark", "save_result"]
