"""Issue 16's three seeds on one GPU in one call of the device tool (stop 61; not yet run on a GPU).

The standard models of seeds 0, 1 and 2 and a reuse command at the same seeds (--command: Z, stop 59's one
command, P1 + --lr-warmup 2 --delta 2 --flops-target 0.14 --budget-adapt 0.003; K, stop 62's, Z +
--gate-leak 0.1 --gate-leak-from 8; or Kw, stop 64's, K + --gate-leak-warmup 4, the default; teacher = seed 0's
standard at epoch 25), each in a process of its own, side by side on the one GPU: the standards first; each
reuse run starts as soon as the teacher's epoch-25 checkpoint is written. At DEADLINE seconds every run still
going is stopped with SIGTERM, which saves
a resumable checkpoint (`mwt train --resume` goes on from it, here or on the CPU). Each run's files are packed
into OUT/NAME.tar.gz (under the device tool's 16 MiB per file). Training only: modularizing, the reuse matrix
and the timings run on the CPU afterwards (reuse-lib.sh's score_accuracy and bench_reuse).

    python docs/results/reuse-stop61/gpu_runs.py OUT [--epochs 30] [--limit N] [--deadline 540] [--resume DIR]
        [--teacher-epoch 25] [--command Kw]

With --resume DIR (a folder of earlier NAME.tar.gz), unfinished runs go on from their resumable checkpoints and
finished ones are packed again unchanged.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

STANDARD = ["--standard", "--width", "0.25"]
# P1 (reuse-lib.sh train_p1) + stop 59's additions, the teacher filled in below; the last value of an option wins.
Z = ["--recipe", "reuse", "--width", "0.25", "--cost-block", "16", "--flops-target", "0.17", "--gamma-warmup", "5",
     "--beta", "3", "--budget-by-loss", "0.5", "--similarity", "300", "--lr-warmup", "2", "--delta", "2",
     "--flops-target", "0.14", "--budget-adapt", "0.003"]
# stop 62's candidate: Z with closed gates reopenable from epoch 8 (seed 0 on M10: gap 0.98 pp against Z's 1.14)
K = Z + ["--gate-leak", "0.1", "--gate-leak-from", "8"]
# stop 64's candidate: K with the leak ramped in over epochs 8-11 (seed 1 on M10: gap 0.78 pp against K's 1.55)
KW = K + ["--gate-leak-warmup", "4"]
COMMANDS = {"Z": Z, "K": K, "Kw": KW}
SEEDS = (0, 1, 2)


def mwt(*args: str) -> list[str]:
    return [sys.executable, "-m", "mwt", *args]


def start(name: str, options: list[str], seed: int, work: Path, epochs: int, limit: int | None,
          save_every: int) -> subprocess.Popen:
    ckpt, log = work / f"{name}.pt", work / f"{name}.jsonl"
    if ckpt.exists():  # a resumable checkpoint from an earlier call
        command = mwt("train", "--resume", str(ckpt), "--quiet", "--log", str(log))
    else:
        command = mwt("train", *options, "--epochs", str(epochs), "--seed", str(seed), "--save-every",
                      str(save_every), "--quiet", "--log", str(log), "-o", str(ckpt),
                      *(["--limit", str(limit)] if limit else []))
    out = open(work / f"{name}.out", "a")
    print(f"{time.strftime('%H:%M:%S')} start {name}: {' '.join(command[2:])}", flush=True)
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def finished(work: Path, name: str) -> bool:
    """Whether the run ended: its process said so, or its checkpoint is no longer resumable (a SIGTERM that
    came after its last save)."""
    if (work / f"{name}.done").exists():
        return True
    ckpt = work / f"{name}.pt"
    if ckpt.exists():
        from mwt.checkpoint import load_checkpoint

        if load_checkpoint(ckpt).resume is None:
            (work / f"{name}.done").touch()
            return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--deadline", type=float, default=540.0)
    parser.add_argument("--resume", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu16"))
    parser.add_argument("--teacher-epoch", type=int, default=25)
    parser.add_argument("--command", choices=sorted(COMMANDS), default="Kw",
                        help="the reuse command to run at each seed (its runs are named after it: Kw0, Kw1, Kw2)")
    args = parser.parse_args()
    begun = time.monotonic()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.resume is not None:
        for packed in sorted(args.resume.glob("*.tar.gz")):
            with tarfile.open(packed) as tar:
                tar.extractall(work, filter="data")
    epoch = args.teacher_epoch
    teacher = work / f"std0-e{epoch}.pt"
    running: dict[str, subprocess.Popen] = {}
    c = args.command
    waiting = {f"{c}{s}": s for s in SEEDS if not finished(work, f"{c}{s}")}
    for s in SEEDS:
        if not finished(work, f"std{s}"):
            running[f"std{s}"] = start(f"std{s}", STANDARD, s, work, args.epochs, args.limit, save_every=epoch)
    stopped = False
    while running or (waiting and not stopped):
        time.sleep(2)
        # the teacher: seed 0's resumable checkpoint of the teacher's epoch (its only periodic save), kept under its
        # own name before the run's end replaces std0.pt (an atomic rename: the link keeps the old file)
        log = work / "std0.jsonl"
        if not teacher.exists() and (work / "std0.pt").exists() and log.exists() and \
                f'"epoch": {epoch},' in log.read_text():
            os.link(work / "std0.pt", teacher)
            print(f"{time.strftime('%H:%M:%S')} teacher kept", flush=True)
        if teacher.exists() and not stopped:
            for name, s in list(waiting.items()):
                running[name] = start(name, COMMANDS[c] + ["--teacher", str(teacher)], s, work, args.epochs, args.limit,
                                      save_every=1)
                del waiting[name]
        for name, p in list(running.items()):
            if p.poll() is not None:
                print(f"{time.strftime('%H:%M:%S')} {name} ended rc {p.returncode}", flush=True)
                if p.returncode == 0:
                    (work / f"{name}.done").touch()
                del running[name]
        if not stopped and time.monotonic() - begun > args.deadline:
            stopped = True
            print(f"{time.strftime('%H:%M:%S')} deadline: stopping {', '.join(running)}", flush=True)
            for p in running.values():
                p.send_signal(signal.SIGTERM)
    for name in [f"std{s}" for s in SEEDS] + [f"{c}{s}" for s in SEEDS]:
        files = [f for f in sorted(work.glob(f"{name}*")) if f.is_file()]
        if files:
            with tarfile.open(args.out / f"{name}.tar.gz", "w:gz") as tar:
                for f in files:
                    tar.add(f, arcname=f.name)
    print(f"{time.strftime('%H:%M:%S')} packed into {args.out} after {time.monotonic() - begun:.0f} s", flush=True)


if __name__ == "__main__":
    main()
