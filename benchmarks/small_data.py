"""Do modules shrink on small data? Recipes side by side on an image folder of ~1,400 training images.

Builds an image folder from scikit-learn's handwritten digits (1,797 real 8x8 scans, shipped
inside the package: nothing downloads), one subfolder per digit, then trains each recipe for a
few epochs on it (80/20 split per class, images resized to 32x32 by mwt's own folder loader),
modularizes, and scores every class pair's data-free gate-free module (`mwt.reuse_matrix`).

    python -m benchmarks.small_data --epochs 8 --out docs/results/small-data.json

Prints, per recipe, the whole model's test accuracy and the pairs' FLOPs kept and accuracy drop
against the full model restricted to the pair; writes the JSON atomically.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mwt.checkpoint import Checkpoint
from mwt.core.atomic import write_bytes_atomic
from mwt.data import load_dataset
from mwt.modularize import kernel_frequency
from mwt.reuse_matrix import all_pairs, score_subtasks
from mwt.train import train
from mwt.train_config import TrainConfig


def digits_folder(root: Path) -> Path:
    """scikit-learn's digits as PNG files in root/digits/<digit>/<n>.png (grayscale, 0-255)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    folder = root / "digits"
    for n, (image, label) in enumerate(zip(data.images, data.target)):
        target = folder / str(label)
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * (255 / 16)).round().astype(np.uint8), mode="L").save(target / f"{n:04d}.png")
    return folder


def run_recipe(recipe: str, folder: Path, epochs: int, width: float, seed: int,
               batch_size: int = 128, gamma: float | None = None, gamma_warmup: int = 0,
               init_from: Path | None = None) -> dict[str, object]:
    config = TrainConfig.from_recipe(recipe, gamma=gamma, dataset=str(folder), width=width, epochs=epochs,
                                     image_size=32, seed=seed, storage="memory", batch_size=batch_size,
                                     gamma_warmup=gamma_warmup, init_from=str(init_from) if init_from else None)
    data = load_dataset(config.source(), None, False, show_progress=False)
    start = time.perf_counter()
    ckpt: Checkpoint = train(config, data.train, data.test, info=data.info, source=data.source, show_progress=False)
    seconds = time.perf_counter() - start
    ckpt.modularization = kernel_frequency(ckpt.build(), data.train, len(ckpt.classes), show_progress=False)
    scores = score_subtasks(ckpt, all_pairs(len(ckpt.classes)), data.test)
    flops = [100 * s.flops_kept for s in scores]
    drops = [100 * s.gate_free_drop for s in scores]
    return {
        "recipe": recipe, "train_images": len(data.train), "test_images": len(data.test), "epochs": epochs,
        "batch_size": batch_size, "gamma": config.gamma, "gamma_warmup": gamma_warmup, "seed": seed,
        "init_from": config.init_from,
        "train_seconds": seconds, "test_acc": ckpt.training["test_acc"],
        "pairs_flops_kept_pct": {"mean": statistics.fmean(flops), "median": statistics.median(flops),
                                 "min": min(flops), "max": max(flops)},
        "pairs_gate_free_drop_pp": {"median": statistics.median(drops), "max": max(drops)},
        "pairs": [s.to_dict() for s in scores],
    }


def epochs_count(text: str) -> int:
    """A whole number of epochs >= 0; anything else is argparse's one-line error."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got '{text}'")
    return int(text)


def seed_list(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; anything else is argparse's one-line error."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers separated by commas, got '{text}'") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError(f"seeds must be >= 0, got '{text}'")
    return seeds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default="paper,cost,reuse")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--seeds", "--seed", type=seed_list, default=[0],
                   help="comma-separated seeds: each recipe is trained once per seed")
    p.add_argument("--batch-size", type=int, default=128, help="training batch size (steps per epoch: images / this)")
    p.add_argument("--gamma", type=float, default=None, help="FLOPs weight (default: each recipe's)")
    p.add_argument("--gamma-warmup", type=epochs_count, default=0, metavar="EPOCHS",
                   help="epochs over which the FLOPs weight ramps up from 0")
    p.add_argument("--init-from", type=Path, default=None, metavar="CHECKPOINT",
                   help="start every run from these weights (e.g. a model trained on a bigger dataset: mwt train "
                   "--standard); the mask generators and the classifier's last layer, if its size differs, start fresh")
    p.add_argument("--out", type=Path, default=Path("small-data.json"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mwt-digits-") as tmp:
        folder = digits_folder(Path(tmp))
        results = [run_recipe(r, folder, args.epochs, args.width, seed, args.batch_size, args.gamma, args.gamma_warmup,
                              args.init_from)
                   for r in args.recipes.split(",") for seed in args.seeds]
    print(f"{'recipe':<8} {'seed':>4} {'images':>7} {'test acc':>9} {'pair FLOPs kept mean/median':>28} {'gate-free drop median/worst':>28}")
    for r in results:
        f, d = r["pairs_flops_kept_pct"], r["pairs_gate_free_drop_pp"]
        print(f"{r['recipe']:<8} {r['seed']:>4} {r['train_images']:>7} {100 * r['test_acc']:>8.2f}% "
              f"{f['mean']:>13.1f}% / {f['median']:>5.1f}% {d['median']:>18.2f} / {d['max']:>5.2f} pp")
    write_bytes_atomic(args.out, json.dumps({"dataset": "scikit-learn digits (8x8 scans resized to 32x32)",
                                             "results": results}, indent=1).encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
