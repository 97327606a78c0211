"""`mwt compose` and `mwt predict`: the runtime's commands (no torch needed)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer

from mwt.errors import MwtError

Mode = Annotated[str, typer.Option(
    help="'merged' (one graph), 'sessions' (one session per module, in turn) or 'sessions-parallel'.")]
Threads = Annotated[int, typer.Option(help="onnxruntime intra-op threads (0: one per core).")]


def compose(
    modules: Annotated[list[Path], typer.Argument(help="Module files from mwt-export (or composed files).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the composed ONNX file.")] = Path("composed.onnx"),
    allow_mixed_sources: Annotated[bool, typer.Option(
        "--allow-mixed-sources", help="Allow modules from different checkpoints (their logits are not on one scale).")] = False,
) -> None:
    """Compose modules into one classifier: one ONNX file with logits, probabilities and label outputs."""
    from mwt.atomic import write_bytes_atomic
    from runtime.composed import MixedSourcesWarning
    from runtime.merge import merge_modules
    from runtime.module_file import read_module

    parts = [read_module(p) for p in modules]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MixedSourcesWarning)
        from runtime.composed import check_compatible

        check_compatible(parts, allow_mixed_sources)
    for w in caught:
        typer.echo(f"warning: {w.message}", err=True)
    model = merge_modules(parts)
    write_bytes_atomic(out, model.SerializeToString(deterministic=True))
    for p in parts:
        typer.echo(f"{p.name:<32} {', '.join(p.classes)}")
    typer.echo(f"wrote {out}: {sum(len(p.classes) for p in parts)} classes")


def predict(
    model: Annotated[Path, typer.Argument(help="A module or composed file.")],
    inputs: Annotated[list[Path], typer.Argument(help="Images (PNG, JPEG, ...), folders of them, or .npy batches.")],
    mode: Mode = "merged",
    threads: Threads = 0,
    top: Annotated[int, typer.Option(help="Show this many most likely classes per image.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Classify images with a module or a composed classifier, converting them to its input spec."""
    from runtime.composed import ComposedClassifier
    from runtime.images import load_inputs
    from runtime.session import SessionSettings

    if top < 1:
        raise MwtError(f"--top must be at least 1, got {top}")
    clf = ComposedClassifier.from_files([model], mode=mode, settings=SessionSettings(intra_op_threads=threads))
    batch, names = load_inputs(inputs, clf.input_shape)
    result = clf.predict(batch)
    if as_json:
        typer.echo(json.dumps([
            {"input": n, "label": lab, "probabilities": dict(zip(result.classes, map(float, p)))}
            for n, lab, p in zip(names, result.labels, result.probabilities)
        ], indent=2))
        return
    width = max(len(n) for n in names)
    typer.echo(f"{'input':<{width}}  prediction")
    for name, probs in zip(names, result.probabilities):
        order = probs.argsort()[::-1][:top]
        typer.echo(f"{name:<{width}}  " + "  ".join(f"{result.classes[i]} {100 * probs[i]:.1f}%" for i in order))


def register(app: typer.Typer) -> None:
    """Attach the runtime's commands to the `mwt` app."""
    app.command("compose")(compose)
    app.command("predict")(predict)
