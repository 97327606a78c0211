"""The main job on the embedded default: the whole path a user walks, in a few minutes on 2 cores.

train -> modularize -> evaluate a sub-task -> export a two-class module and two single-class
modules -> compose them -> predict real test images -> latency table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from mwt.errors import MwtError


@dataclass
class DemoConfig:
    out: Path = Path("runs/demo")
    classes: tuple[str, str] = ("sneaker", "bag")
    model: str = "vgg16"
    width: float = 0.25
    epochs: int = 3
    beta: float = 3.0  # lower KRR in few epochs than the paper's 1.5 (docs/results.md)
    seed: int = 0
    data_dir: Path | None = None
    show_progress: bool = True


def _step(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def run_demo(cfg: DemoConfig) -> None:
    """Run every step, writing its files under `cfg.out`, and print what each step measured."""
    from PIL import Image

    from exporter.benchmark import latency_benchmark, save_result
    from exporter.compile import export_module_file
    from mwt.atomic import write_bytes_atomic
    from mwt.checkpoint import save_checkpoint
    from mwt.data import load_split, resolve_classes
    from mwt.modularize import kernel_frequency
    from mwt.report import module_report, subtask_report
    from mwt.train import TrainConfig, train
    from runtime.composed import ComposedClassifier
    from runtime.images import load_inputs
    from runtime.merge import merge_modules
    from runtime.module_file import read_module

    start = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    train_data = load_split("fashion-mnist", "train", cfg.data_dir)
    test_data = load_split("fashion-mnist", "test", cfg.data_dir)
    ckpt_path = cfg.out / "model.pt"

    _step(f"1. train a modular {cfg.model} (width {cfg.width}) on Fashion-MNIST, {cfg.epochs} epochs, beta {cfg.beta}")
    config = TrainConfig(model=cfg.model, width=cfg.width, epochs=cfg.epochs, beta=cfg.beta, seed=cfg.seed)
    ckpt = train(config, train_data, test_data, log_path=cfg.out / "train.jsonl", show_progress=cfg.show_progress)
    indices = resolve_classes(ckpt.classes, list(cfg.classes))
    if len(indices) != 2:
        raise MwtError("the demo composes exactly two classes")

    _step("2. modularize: per-class kernel frequencies over the training set")
    ckpt.modularization = kernel_frequency(ckpt.build(), train_data, len(ckpt.classes), show_progress=cfg.show_progress)
    save_checkpoint(ckpt, ckpt_path)
    print(module_report(ckpt, test_data).table())

    _step(f"3. the sub-task {', '.join(cfg.classes)} in PyTorch")
    print(subtask_report(ckpt, indices, test_data).table())

    _step("4. export a two-class module and two single-class modules (mwt-export)")
    names = [ckpt.classes[i] for i in indices]
    union_path = cfg.out / f"{names[0]}-{names[1]}.onnx"
    report = export_module_file(ckpt_path, names, union_path)
    print(report.table())
    singles = []
    for name in names:
        path = cfg.out / f"{name}.onnx"
        r = export_module_file(ckpt_path, [name], path)
        singles.append(path)
        print(f"{path.name:<24} KRR {100 * r.krr:5.1f}%  {r.flops_ratio:5.1f}x fewer FLOPs  {r.file_bytes / 1024:7.1f} KiB")

    _step("5. compose the single-class modules into one classifier (mwt compose)")
    composed_path = cfg.out / "composed.onnx"
    write_bytes_atomic(composed_path, merge_modules([read_module(p) for p in singles]).SerializeToString(deterministic=True))
    print(f"wrote {composed_path} ({composed_path.stat().st_size / 1024:.1f} KiB): classes {', '.join(names)}")

    _step("6. predict real test images (mwt predict)")
    images_dir = cfg.out / "images"
    images_dir.mkdir(exist_ok=True)
    sample = test_data.where(indices).sample(8, seed=cfg.seed)
    for i, (img, label) in enumerate(zip(sample.images, sample.labels)):
        Image.fromarray(img[0].numpy()).save(images_dir / f"{i}-{ckpt.classes[int(label)]}.png")
    clf = ComposedClassifier.from_files([composed_path])
    batch, files = load_inputs([images_dir], clf.input_shape)
    result = clf.predict(batch)
    for file, label, probs in zip(files, result.labels, result.probabilities):
        print(f"  {file:<20} -> {label:<10} ({100 * probs.max():.1f}%)")

    _step("7. latency and accuracy on all test images of these classes (mwt bench latency)")
    latency = latency_benchmark(ckpt_path, ",".join(names), batches=(1, 32), min_seconds=1.5)
    save_result(latency, cfg.out)
    print(latency.table())
    print(f"\ndone in {time.perf_counter() - start:.0f} s; files in {cfg.out}/")
