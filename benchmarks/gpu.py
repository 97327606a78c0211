"""GPU figures: training speed and module latency, for a machine with a CUDA GPU (run by gpu.sh).

1. Epoch time of full-width VGG16 and ResNet18 at 32x32, standard vs modular, AMP off and bf16,
   on CIFAR-10 when it is at hand (--data-dir), otherwise on synthetic images of that shape
   (speed does not depend on the pixels). The first epoch (cuDNN autotuning, warm-up) is not timed.
2. The paper's 108 minutes (VGG16, CIFAR-10, 200 epochs + modularization) against this GPU,
   estimated from the measured epoch and modularization times.
3. Module latency on onnxruntime's CUDA provider (FP32, and FP16 where exported) against the
   full model on the same GPU, batch 1/32/256.

    python -m benchmarks.gpu --out results/gpu            # needs torch with CUDA and onnxruntime-gpu
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from mwt.data import Split, load_split
from mwt.core.errors import MwtError
from mwt.modularize import kernel_frequency
from mwt.train import train
from mwt.train_config import TrainConfig


def cifar_or_synthetic(data_dir: Path | None, images: int) -> tuple[Split, Split, str]:
    try:
        return load_split("cifar10", "train", data_dir).subset(images), load_split("cifar10", "test", data_dir), "cifar10"
    except MwtError:
        g = torch.Generator().manual_seed(0)
        make = lambda n: Split((torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8),  # noqa: E731
                               torch.randint(0, 10, (n,), generator=g))
        return make(images), make(10_000), "synthetic 3x32x32"


def epoch_seconds(config: TrainConfig, train_data: Split, test_data: Split) -> tuple[float, object]:
    ckpt = train(config, train_data, test_data.subset(2000), show_progress=False)
    history = ckpt.training["history"]
    timed = history[1:] or history
    return sum(h["seconds"] for h in timed) / len(timed), ckpt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="vgg16,resnet18")
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=3, help="epochs per configuration (the first is not timed)")
    p.add_argument("--amp", default="off,bf16")
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("results/gpu"))
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA GPU on this machine", file=sys.stderr)
        return 2
    train_data, test_data, source = cifar_or_synthetic(args.data_dir, args.images)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    result: dict = {"device": device_name, "data": source, "images": len(train_data), "training": [], "latency": []}
    print(f"{device_name}; {source}, {len(train_data)} training images")
    print(f"{'model':<9} {'amp':<5} {'standard s':>10} {'modular s':>10} {'ratio':>6}")
    modular_vgg = None
    for model in args.models.split(","):
        for amp in args.amp.split(","):
            times = {}
            for modular in (False, True):
                config = TrainConfig(model=model, dataset="cifar10", width=1.0, modular=modular, epochs=args.epochs,
                                     device=args.device, amp=amp)
                times[modular], ckpt = epoch_seconds(config, train_data, test_data)
                if model == "vgg16" and modular and amp == args.amp.split(",")[-1]:
                    modular_vgg = ckpt
            row = {"model": model, "amp": amp, "standard_epoch_s": times[False], "modular_epoch_s": times[True],
                   "ratio": times[True] / times[False]}
            result["training"].append(row)
            print(f"{model:<9} {amp:<5} {times[False]:>10.2f} {times[True]:>10.2f} {row['ratio']:>5.2f}x", flush=True)
    if modular_vgg is not None:
        start = time.perf_counter()
        modular_vgg.modularization = kernel_frequency(modular_vgg.build(), train_data, 10, device=args.device,
                                                      show_progress=False)
        modularize_s = time.perf_counter() - start
        epoch = next(r["modular_epoch_s"] for r in reversed(result["training"]) if r["model"] == "vgg16")
        estimate = (200 * epoch * 50_000 / len(train_data) + modularize_s) / 60
        result["paper_estimate"] = {"modular_epoch_s": epoch, "modularize_s": modularize_s,
                                    "minutes_200_epochs_plus_modularization": estimate, "paper_minutes": 108}
        print(f"VGG16 CIFAR-10, 200 epochs + modularization: about {estimate:.0f} min on this GPU (paper: 108 min)")
        result["latency"] = module_latency(modular_vgg, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=2, default=str))
    return 0


def module_latency(ckpt: object, args: argparse.Namespace) -> list[dict]:
    """The cat/dog module against the full model on onnxruntime's CUDA provider."""
    from mwt.module_latency import latency_benchmark
    from exporter.compile import ModuleCompiler

    compiler = ModuleCompiler(ckpt, "gpu-benchmark")  # type: ignore[arg-type]
    result = latency_benchmark(Path("-"), "cat,dog", batches=(1, 32, 256), threads=0, compiler=compiler,
                               provider="cuda", min_seconds=2.0)
    print(result.table())
    return [r.__dict__ for r in result.rows]


if __name__ == "__main__":
    sys.exit(main())
