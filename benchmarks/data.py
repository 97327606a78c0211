"""Image-folder throughput: first decode, cached load, and training epochs in memory and streamed,
against the built-in Fashion-MNIST path at the same image size.

Writes 10,000 Fashion-MNIST test images as PNG files, one folder per class, into a temporary
folder, then measures on this machine: decoding them (all cores) in images/s, loading the
decode cache, and one training epoch (quarter-width VGG16 at 32x32) on the folder in memory,
streamed from the files, and on the same images through the built-in path (in turn, the fastest
of `--rounds` epochs of each).

    python -m benchmarks.data --out results/data
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from mwt.data import DataSource, load_dataset, load_split
from mwt.registry import DATASETS
from mwt.train import train
from mwt.train_config import TrainConfig


def write_folder(root: Path, count: int) -> None:
    test = load_split("fashion-mnist", "test").subset(count)
    classes = DATASETS["fashion-mnist"].classes
    for name in classes:
        (root / name).mkdir(parents=True)
    for i, (img, label) in enumerate(zip(test.images.numpy(), test.labels.numpy())):
        Image.fromarray(img[0]).save(root / classes[label] / f"{i:05d}.png")


def epoch_seconds(train_split, info, args) -> float:  # type: ignore[no-untyped-def]
    config = TrainConfig(model="vgg16", width=0.25, epochs=1, batch_size=128, device="cpu", dataset=info.name)
    ckpt = train(config, train_split, train_split.subset(512), show_progress=False, info=info)
    return ckpt.training["history"][0]["seconds"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=2, help="epochs per path, in turn (the fastest is kept)")
    p.add_argument("--out", type=Path, default=Path("results/data"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mwt-data-"))
    os.environ["MWT_CACHE"] = str(work / "cache")
    root = work / "fashion"
    write_folder(root, args.images)
    result: dict = {"images": args.images, "cores": os.cpu_count()}
    try:
        start = time.perf_counter()
        source = DataSource(str(root), image_size=(32, 32), channels=1, test_fraction=0.01, storage="memory")
        memory = load_dataset(source, show_progress=False)
        result["first_decode_s"] = time.perf_counter() - start
        result["decode_images_per_s"] = args.images / result["first_decode_s"]
        start = time.perf_counter()
        load_dataset(source, show_progress=False)
        result["cached_load_s"] = time.perf_counter() - start
        stream = load_dataset(DataSource(str(root), image_size=(32, 32), channels=1, test_fraction=0.01,
                                         storage="stream"), show_progress=False)
        builtin = load_split("fashion-mnist", "test").subset(args.images)
        info = DATASETS["fashion-mnist"]
        runs = {
            "built-in (28x28 padded to 32)": (builtin, info),
            "folder in memory (resized to 32)": (memory.train, memory.info),
            "folder streamed (resized to 32)": (stream.train, stream.info),
        }
        # Rounds in turn, the fastest of each kept: the first epoch of a process also warms torch
        # up, and a slow patch of the machine should not land on one path only.
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (split, split_info) in runs.items():
                seconds[name].append(epoch_seconds(split, split_info, args))
        result["epoch_s"] = {name: min(values) for name, values in seconds.items()}
        result["epoch_s_all"] = seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = result["epoch_s"]["built-in (28x28 padded to 32)"]
    print(f"{args.images} PNG images, {result['cores']} cores")
    print(f"first decode   {result['first_decode_s']:.2f} s = {result['decode_images_per_s']:.0f} images/s")
    print(f"cached load    {result['cached_load_s']:.2f} s")
    for name, seconds in result["epoch_s"].items():
        print(f"epoch          {seconds:6.1f} s  {seconds / base:5.2f}x  {name}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
