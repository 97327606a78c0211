"""Training throughput of 1 vs N processes (torchrun, gloo on CPU, NCCL on GPUs), side by side.

Each configuration trains the same model on the same images for --epochs epochs, started one
after the other; throughput is training samples per second over the epochs after the first.
The machine's cores are shared out evenly: N processes get cores/N threads each. On a 2-core
machine expect no gain from 2 processes (the same 2 cores, plus gradient all-reduce).

    python -m benchmarks.scaling --processes 1,2 --images 12000 --out results/scaling
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(processes: int, args: argparse.Namespace, work: Path) -> dict:
    out = work / f"p{processes}.pt"
    threads = max(1, (os.cpu_count() or 1) // processes)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "mwt", "train", "--model", args.model, "--width", str(args.width), "--epochs", str(args.epochs),
               "--limit", str(args.images), "--batch-size", str(args.batch_size), "--device", args.device,
               "--out", str(out), "-q"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if result.returncode:
        raise SystemExit(f"{processes} processes failed:\n{result.stderr[-3000:]}")
    log = [json.loads(line) for line in out.with_suffix(".jsonl").read_text().splitlines()]
    epochs = [r for r in log if "epoch" in r][1:] or [r for r in log if "epoch" in r]
    seconds = sum(r["seconds"] for r in epochs) / len(epochs)
    return {"processes": processes, "threads_each": threads, "epoch_seconds": seconds,
            "samples_per_second": args.images / seconds, "test_acc": epochs[-1]["test_acc"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--processes", default="1,2")
    p.add_argument("--model", default="vgg16")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--images", type=int, default=12_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("results/scaling"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mwt-scaling-"))
    rows = [run(int(n), args, work) for n in args.processes.split(",")]
    base = rows[0]["samples_per_second"]
    print(f"{args.model} x{args.width}, {args.images} images, batch {args.batch_size}, {os.cpu_count()} cores, "
          f"device {args.device}")
    print(f"{'processes':>9} {'threads':>7} {'epoch s':>8} {'samples/s':>10} {'vs 1':>6} {'test acc':>8}")
    for r in rows:
        r["speedup"] = r["samples_per_second"] / base
        print(f"{r['processes']:>9} {r['threads_each']:>7} {r['epoch_seconds']:>8.1f} {r['samples_per_second']:>10.0f} "
              f"{r['speedup']:>5.2f}x {100 * r['test_acc']:>7.2f}%")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "rows": rows},
                                                       indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
