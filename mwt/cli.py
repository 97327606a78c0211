"""The `mwt` command: train, modularize, evaluate, export, compose, predict and benchmark."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mwt.entrypoint import run_app
from mwt.errors import MwtError

app = typer.Typer(
    help="mwt: train modular CNNs (MwT), cut out per-class modules, and run them as compact ONNX files.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)

DataDir = Annotated[
    Optional[Path],
    typer.Option(help="Folder holding the dataset (default: $MWT_DATA, then the Debian Fashion-MNIST path)."),
]
Download = Annotated[bool, typer.Option(help="Download the dataset into --data-dir if it is missing.")]
Threshold = Annotated[float, typer.Option(help="A kernel joins a class's module when its frequency >= this.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _check_writable(path: Path) -> None:
    # Checked before long work starts, so a typo in --out does not cost a training run.
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise MwtError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise MwtError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise MwtError(f"cannot write {path}: folder {parent} is not writable")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the checkpoint.")] = Path("model.pt"),
    model: Annotated[str, typer.Option(help="Architecture: vgg16, vgg11, resnet18, simcnn, rescnn.")] = "vgg16",
    dataset: Annotated[str, typer.Option(help="fashion-mnist, cifar10 or svhn.")] = "fashion-mnist",
    width: Annotated[float, typer.Option(help="Channel-width multiplier (0.25 trains a quarter-width net).")] = 1.0,
    epochs: Annotated[int, typer.Option(help="Training epochs (the paper uses 200).")] = 200,
    standard: Annotated[bool, typer.Option("--standard", help="Train the standard baseline (no gates, no MwT losses).")] = False,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Initial SGD learning rate (cosine schedule).")] = 0.05,
    alpha: Annotated[float, typer.Option(help="Weight of the cohesion loss.")] = 0.5,
    beta: Annotated[float, typer.Option(help="Weight of the coupling loss.")] = 1.5,
    beta_warmup: Annotated[int, typer.Option(help="Ramp beta up from 0 over this many epochs (0: off).")] = 0,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same run on CPU.")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu, or a torch device name such as cuda:1.")] = "auto",
    limit: Annotated[Optional[int], typer.Option(help="Train on only the first N training images.")] = None,
    log: Annotated[Optional[Path], typer.Option(help="JSON-lines log of every epoch (default: OUT with .jsonl).")] = None,
    data_dir: DataDir = None,
    download: Download = False,
    quiet: Quiet = False,
) -> None:
    """Train a modular CNN (or the standard baseline) and save it as a checkpoint."""
    from mwt.checkpoint import save_checkpoint
    from mwt.data import load_split
    from mwt.train import TrainConfig
    from mwt.train import train as run_training

    config = TrainConfig(
        model=model, dataset=dataset, width=width, modular=not standard, epochs=epochs, batch_size=batch_size,
        lr=lr, alpha=alpha, beta=beta, beta_warmup=beta_warmup, seed=seed, device=device, train_limit=limit,
    )
    config.validate()
    if limit is not None and limit <= 0:
        raise MwtError(f"--limit must be positive, got {limit}")
    _check_writable(out)
    log = log or out.with_suffix(".jsonl")
    _check_writable(log)
    train_data = load_split(dataset, "train", data_dir, download)
    test_data = load_split(dataset, "test", data_dir, download)
    kind = "standard" if standard else "modular"
    print(f"training a {kind} {model} (width {width}) on {dataset}: {len(train_data.subset(limit))} images, {epochs} epochs")
    ckpt = run_training(config, train_data, test_data, log_path=log, show_progress=not quiet)
    save_checkpoint(ckpt, out)
    print(f"test accuracy {100 * ckpt.training['test_acc']:.2f}%; wrote {out} (epoch log {log})")


@app.command()
def modularize(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint from 'mwt train'.")],
    threshold: Threshold = 0.9,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first N training images.")] = None,
    data_dir: DataDir = None,
    download: Download = False,
    quiet: Quiet = False,
) -> None:
    """Record each class's kernel frequencies in the checkpoint, then report modules' KRR, cohesion and coupling."""
    from mwt.checkpoint import load_checkpoint, save_checkpoint
    from mwt.data import load_split
    from mwt.modularize import check_threshold, kernel_frequency
    from mwt.report import module_report

    check_threshold(threshold)
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.spec.modular:
        raise MwtError(f"{checkpoint} is a standard model (trained with --standard); it has no gates to modularize")
    _check_writable(checkpoint)
    train_data = load_split(ckpt.dataset, "train", data_dir, download).subset(limit)
    ckpt.modularization = kernel_frequency(ckpt.build(), train_data, len(ckpt.classes), show_progress=not quiet)
    save_checkpoint(ckpt, checkpoint)
    test_data = load_split(ckpt.dataset, "test", data_dir, download)
    print(module_report(ckpt, test_data, threshold).table())


@app.command("eval")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint.")],
    classes: Annotated[str, typer.Option(help="The sub-task's classes, by name or index: 'sneaker,bag'.")],
    threshold: Threshold = 0.9,
    data_dir: DataDir = None,
    download: Download = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Sub-task accuracy of the full model and of the union module (simulated in PyTorch), and its KRR."""
    from dataclasses import asdict

    from mwt.checkpoint import load_checkpoint
    from mwt.data import load_split, resolve_classes
    from mwt.modularize import check_threshold
    from mwt.report import subtask_report

    check_threshold(threshold)
    ckpt = load_checkpoint(checkpoint)
    indices = resolve_classes(ckpt.classes, classes)
    ckpt.require_modularization(checkpoint)
    test_data = load_split(ckpt.dataset, "test", data_dir, download)
    report = subtask_report(ckpt, indices, test_data, threshold)
    print(json.dumps(asdict(report), indent=2) if as_json else report.table())


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for every file the demo writes.")] = Path("runs/demo"),
    classes: Annotated[str, typer.Option(help="The two classes of the sub-task.")] = "sneaker,bag",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 3,
    width: Annotated[float, typer.Option(help="Width of the VGG16.")] = 0.25,
    beta: Annotated[float, typer.Option(help="Weight of the coupling loss (3: smaller modules in few epochs).")] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    data_dir: DataDir = None,
    quiet: Quiet = False,
) -> None:
    """The whole path on Fashion-MNIST: train, modularize, export, compose, predict, and time it."""
    from mwt.demo import DemoConfig, run_demo

    if epochs <= 0:
        raise MwtError(f"epochs must be a positive number, got {epochs}")
    parts = [c.strip() for c in classes.split(",") if c.strip()]
    if len(parts) != 2:
        raise MwtError(f"the demo takes exactly two classes, got {len(parts)}")
    if out.exists() and not out.is_dir():
        raise MwtError(f"{out} exists and is not a folder")
    run_demo(DemoConfig(out=out, classes=(parts[0], parts[1]), epochs=epochs, width=width, beta=beta, seed=seed,
                        data_dir=data_dir, show_progress=not quiet))


bench_app = typer.Typer(help="Measured benchmarks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("latency")
def bench_latency(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint.")],
    classes: Annotated[str, typer.Option(help="The sub-task's classes.")],
    batch: Annotated[list[int], typer.Option(help="Batch sizes (repeat the option).")] = [1, 32, 256],  # noqa: B006
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads.")] = 2,
    align: Annotated[int, typer.Option(help="Channel alignment of the exported modules.")] = 8,
    seconds: Annotated[float, typer.Option(help="Minimum measuring time per batch size.")] = 2.0,
    out: Annotated[Path, typer.Option(help="Folder for latency.json and latency.png.")] = Path("results/latency"),
    data_dir: DataDir = None,
) -> None:
    """Latency of the full model, the union module and composed single-class modules, side by side."""
    from exporter.benchmark import latency_benchmark, save_result

    result = latency_benchmark(checkpoint, classes, batches=tuple(batch), threads=threads, align=align,
                               min_seconds=seconds, data_dir=data_dir)
    print(result.table())
    paths = save_result(result, out)
    print("wrote " + ", ".join(str(p) for p in paths if p))


def _register_optional_commands() -> None:
    # Commands of the other packages are attached here; their modules import heavy libraries lazily.
    from exporter.cli import export_command

    app.command("export", help=export_command.__doc__)(export_command)
    try:
        from runtime.cli import register as register_runtime
    except ImportError:  # runtime CLI not present
        return
    register_runtime(app)


_register_optional_commands()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    code = run_app(app, argv if argv is not None else sys.argv[1:], prog_name="mwt")
    if argv is None:
        sys.exit(code)
    return code
