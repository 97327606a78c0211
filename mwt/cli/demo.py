"""`mwt demo`: the whole path a user walks, on the embedded Fashion-MNIST, in a few minutes on 2 cores.

train -> modularize -> evaluate a sub-task -> export a two-class module and two single-class
modules -> compose them -> predict real test images -> fine-tune a gate-free module -> latency
table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from mwt.cli.options import DataDir, Quiet, choices, number
from mwt.core.errors import MwtError
from mwt.defaults import MAX_SEED
from mwt.registry import RECIPES

app = typer.Typer()
RecipeName = choices(RECIPES)


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("runs/demo")
    classes: tuple[str, str] = ("sneaker", "bag")
    model: str = "vgg16"
    width: float = 0.25
    recipe: str = "reuse"
    epochs: int = 3
    train_images: int = 18_000  # a sample of the 60,000: the demo shows the path, not the best model
    modularize_images: int = 6_000
    finetune_epochs: int = 2  # the reference fine-tunes for 10; 2 show the recovery in seconds
    bench_seconds: float = 1.0  # the least timing per latency point
    seed: int = 0
    data_dir: Path | None = None
    verbose: bool = True


def _step(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def run_demo(cfg: DemoConfig) -> None:
    """Run every step, writing its files under `cfg.out`, and print what each step measured."""
    from PIL import Image

    from mwt.module_latency import latency_benchmark, save_result
    from exporter.compile import ModuleCompiler
    from exporter.export import export_module_file
    from mwt.core.atomic import write_bytes_atomic
    from mwt.checkpoint import file_sha256, save_checkpoint
    from mwt.data import load_split
    from mwt.finetune import FinetuneConfig, finetune
    from mwt.modularize import kernel_frequency
    from mwt.report import module_report, subtask_report
    from mwt.selection import ModuleSelection
    from mwt.train import train
    from mwt.train_config import TrainConfig
    from runtime.composed import ComposedClassifier
    from mwt.core.images import load_inputs
    from runtime.merge import merge_modules
    from runtime.module_file import read_module

    start = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    train_data = load_split("fashion-mnist", "train", cfg.data_dir).sample(cfg.train_images, seed=cfg.seed)
    test_data = load_split("fashion-mnist", "test", cfg.data_dir)
    ckpt_path = cfg.out / "model.pt"

    _step(f"1. train a modular {cfg.model} (width {cfg.width}, {cfg.recipe} recipe) on {len(train_data)} "
          f"Fashion-MNIST images, {cfg.epochs} epochs")
    config = TrainConfig.from_recipe(cfg.recipe, model=cfg.model, width=cfg.width, epochs=cfg.epochs, seed=cfg.seed)
    ckpt = train(config, train_data, test_data, log_path=cfg.out / "train.jsonl", show_progress=cfg.verbose)
    if len(cfg.classes) != 2:
        raise MwtError("the demo composes exactly two classes")

    _step(f"2. modularize: per-class kernel frequencies over {cfg.modularize_images} training images")
    sample = train_data.sample(cfg.modularize_images, seed=cfg.seed + 1)
    ckpt.modularization = kernel_frequency(ckpt.build(), sample, len(ckpt.classes), show_progress=cfg.verbose)
    save_checkpoint(ckpt, ckpt_path)
    print(module_report(ckpt, test_data).table())

    _step(f"3. the sub-task {', '.join(cfg.classes)} in PyTorch")
    print(subtask_report(ckpt, ModuleSelection.of(ckpt, list(cfg.classes), align=1), test_data).table())

    _step("4. export a two-class module and two single-class modules (mwt-export), from the modularization alone")
    compiler = ModuleCompiler(ckpt, file_sha256(ckpt_path), ckpt_path)  # one torch export serves every module
    union = compiler.select(list(cfg.classes))  # reuse recipe: folded by default, gate-free, no images needed
    indices, names = union.indices, list(union.names)
    report = export_module_file(compiler, union, cfg.out / f"{names[0]}-{names[1]}.onnx")
    print(report.table())
    singles = []
    for index, name in zip(indices, names):
        path = cfg.out / f"{name}.onnx"
        r = export_module_file(compiler, compiler.select([index]), path)
        singles.append(path)
        print(f"{path.name:<24} KRR {100 * (r.krr or 1):5.1f}%  FLOPs kept {100 * r.flops_kept:5.1f}%  "
              f"{r.file_bytes / 1024:7.1f} KiB")

    _step("5. compose the single-class modules into one classifier (mwt compose)")
    composed_path = cfg.out / "composed.onnx"
    write_bytes_atomic(composed_path, merge_modules([read_module(p) for p in singles]).SerializeToString(deterministic=True))
    print(f"wrote {composed_path} ({composed_path.stat().st_size / 1024:.1f} KiB): classes {', '.join(names)}")

    _step("6. predict real test images (mwt predict)")
    images_dir = cfg.out / "images"
    images_dir.mkdir(exist_ok=True)
    shown = test_data.where(list(indices)).sample(8, seed=cfg.seed)
    for i, (img, label) in enumerate(zip(shown.images, shown.labels)):
        Image.fromarray(img[0].numpy()).save(images_dir / f"{i}-{ckpt.classes[int(label)]}.png")
    clf = ComposedClassifier.from_files([composed_path])
    batch, files = load_inputs([images_dir], clf.input_spec)
    result = clf.predict(batch)
    for file, label, probs in zip(files, result.labels, result.probabilities):
        print(f"  {file:<20} -> {label:<10} ({100 * probs.max():.1f}%)")

    _step(f"7. fine-tune a gate-free module of {', '.join(names)} (mwt finetune), {cfg.finetune_epochs} epochs")
    tuned, tuned_report = finetune(ckpt, union, FinetuneConfig(epochs=cfg.finetune_epochs, seed=cfg.seed),
                                   train_data, test_data, source_sha256=compiler.source_sha256,
                                   show_progress=cfg.verbose)
    tuned_path = cfg.out / f"{names[0]}-{names[1]}-finetuned.pt"
    save_checkpoint(tuned, tuned_path)
    print(tuned_report.table())
    tuned_compiler = ModuleCompiler(tuned, file_sha256(tuned_path), tuned_path)
    tuned_onnx = cfg.out / f"{names[0]}-{names[1]}-finetuned.onnx"
    export_module_file(tuned_compiler, tuned_compiler.select(list(range(len(names)))), tuned_onnx)
    print(f"wrote {tuned_path} and {tuned_onnx}")

    _step("8. latency and accuracy on all test images of these classes (mwt bench latency)")
    latency = latency_benchmark(ckpt_path, ",".join(names), batches=(1, 32), min_seconds=cfg.bench_seconds,
                                compiler=compiler,
                                data_dir=cfg.data_dir, extra={"fine-tuned": read_module(tuned_onnx)})
    save_result(latency, cfg.out)
    print(latency.table())
    print(f"\ndone in {time.perf_counter() - start:.0f} s; files in {cfg.out}/")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for every file the demo writes.")] = Path("runs/demo"),
    classes: Annotated[str, typer.Option(help="The two classes of the sub-task.")] = "sneaker,bag",
    epochs: Annotated[int, typer.Option(help="Training epochs.", min=1, max=1000)] = DemoConfig.epochs,
    train_images: Annotated[int, typer.Option(help="Training images (a seeded sample).", min=100)] = DemoConfig.train_images,
    width: Annotated[float, typer.Option(help="Width of the VGG16.", callback=number(0, 4, low_open=True))] = DemoConfig.width,
    recipe: Annotated[RecipeName, typer.Option(help="Training recipe.")] = RecipeName(DemoConfig.recipe),  # type: ignore[valid-type]
    seed: Annotated[int, typer.Option(help="Random seed.", min=0, max=MAX_SEED - 1)] = 0,  # the sample for modularizing takes seed + 1
    bench_seconds: Annotated[float, typer.Option(
        help="The least seconds of timing per configuration and batch in the latency table (more: steadier "
        "figures).", callback=number(0, 600, low_open=True))] = DemoConfig.bench_seconds,
    data_dir: DataDir = None,
    quiet: Quiet = False,
) -> None:
    """The whole path on Fashion-MNIST: train, modularize, export, compose, predict, and time it."""
    from mwt.data import dataset_info, resolve_classes

    parts = [c.strip() for c in classes.split(",") if c.strip()]
    if len(parts) != 2:
        raise MwtError(f"the demo takes exactly two classes, got {len(parts)}")
    resolve_classes(dataset_info("fashion-mnist").classes, parts)  # an unknown class fails now, not after training
    if out.exists() and not out.is_dir():
        raise MwtError(f"{out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a parent that is a file, no permission: one line, before any work
        raise MwtError(f"cannot create the output folder {out}: {e.strerror}") from None
    run_demo(DemoConfig(out=out, classes=(parts[0], parts[1]), epochs=epochs, train_images=train_images, width=width,
                        recipe=recipe.value, seed=seed, bench_seconds=bench_seconds, data_dir=data_dir,
                        verbose=not quiet))
