"""Training benchmark: standard vs modular (MwT) on the same architecture, seed and epochs.

Prints and saves (JSON) test accuracy, accuracy loss, mean module KRR, cohesion, coupling and
wall time per epoch, plus the curve of accuracy and KRR against epochs. The two runs go side by
side (one process each, same thread count) so their epoch times are comparable on a noisy machine.

    python -m benchmarks.training --model vgg16 --width 0.25 --epochs 30 --out results/training
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

from mwt.checkpoint import save_checkpoint
from mwt.data import load_split
from mwt.modularize import kernel_frequency, mean_module_krr
from mwt.report import module_report
from mwt.train import train
from mwt.train_config import TrainConfig

CURVE_SAMPLES = 6000  # training images used for the per-epoch KRR estimate


def _run(config: TrainConfig, out_dir: Path, threads: int, curve_every: int) -> None:
    torch.set_num_threads(threads)
    train_data = load_split(config.dataset, "train")
    test_data = load_split(config.dataset, "test")
    tag = "modular" if config.modular else "standard"
    probe = train_data.subset(config.train_limit).sample(CURVE_SAMPLES, seed=1)

    def curve(epoch: int, model: torch.nn.Module) -> dict[str, float]:
        if not config.modular or (epoch % curve_every and epoch != config.epochs):
            return {}
        mod = kernel_frequency(model, probe, 10, show_progress=False)
        model.train()
        return {"mean_krr_estimate": mean_module_krr(mod)}

    start = time.perf_counter()
    ckpt = train(config, train_data, test_data, log_path=out_dir / f"{tag}.jsonl", show_progress=False, on_epoch_end=curve)
    result = {"tag": tag, "train_seconds": time.perf_counter() - start, "history": ckpt.training["history"]}
    if config.modular:
        ckpt.modularization = kernel_frequency(
            ckpt.build(), train_data.subset(config.train_limit), len(ckpt.classes), show_progress=False
        )
        rep = module_report(ckpt, test_data)
        result.update(mean_krr=rep.mean_krr, class_krr=rep.class_krr, mean_flops_kept=rep.mean_flops,
                      class_flops_kept=rep.class_flops, cohesion=rep.cohesion, coupling=rep.coupling)
    result["test_acc"] = ckpt.training["test_acc"]
    save_checkpoint(ckpt, out_dir / f"{tag}.pt")
    (out_dir / f"{tag}.json").write_text(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vgg16")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--recipe", default="paper", help="training recipe (mwt.registry.RECIPES)")
    p.add_argument("--beta", type=float, default=None, help="weight of the coupling loss (default: the recipe's)")
    p.add_argument("--gamma", type=float, default=None, help="weight of the expected-FLOPs loss (default: the recipe's)")
    p.add_argument("--beta-warmup", type=int, default=0)
    p.add_argument("--runs", default="standard,modular",
                   help="which runs to train; a run left out is read from --out if an earlier run wrote it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (the two runs go in parallel)")
    p.add_argument("--curve-every", type=int, default=5, help="estimate mean KRR every N epochs")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only (smoke runs)")
    p.add_argument("--out", type=Path, default=Path("results/training"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    configs = [
        TrainConfig.from_recipe(args.recipe, beta=args.beta, gamma=args.gamma, model=args.model, dataset=args.dataset,
                                width=args.width, modular=modular, epochs=args.epochs, beta_warmup=args.beta_warmup,
                                seed=args.seed, device="cpu", train_limit=args.limit)
        for modular in (False, True)
        if ("modular" if modular else "standard") in args.runs.split(",")
    ]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_run, args=(c, args.out, args.threads, args.curve_every)) for c in configs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    if any(proc.exitcode for proc in procs):
        print("a training run failed", file=sys.stderr)
        return 1
    if not (args.out / "standard.json").exists():
        print(f"no standard run in {args.out}; copy one there or include it in --runs", file=sys.stderr)
        return 1
    std = json.loads((args.out / "standard.json").read_text())
    mod = json.loads((args.out / "modular.json").read_text())
    t_std = sum(h["seconds"] for h in std["history"]) / len(std["history"])
    t_mod = sum(h["seconds"] for h in mod["history"]) / len(mod["history"])
    summary = {
        "model": args.model, "width": args.width, "dataset": args.dataset, "epochs": args.epochs, "seed": args.seed,
        "recipe": args.recipe, "alpha": configs[-1].alpha, "beta": configs[-1].beta, "gamma": configs[-1].gamma,
        "gate_first": configs[-1].gate_first, "beta_warmup": args.beta_warmup,
        "mean_flops_kept": mod.get("mean_flops_kept"),
        "standard_acc": std["test_acc"], "modular_acc": mod["test_acc"],
        "accuracy_loss_pp": 100 * (std["test_acc"] - mod["test_acc"]),
        "mean_krr": mod["mean_krr"], "cohesion": mod["cohesion"], "coupling": mod["coupling"],
        "epoch_seconds_standard": t_std, "epoch_seconds_modular": t_mod, "epoch_time_ratio": t_mod / t_std,
        "curve": [
            {"epoch": h["epoch"], "standard_acc": s["test_acc"], "modular_acc": h["test_acc"],
             "mean_krr_estimate": h.get("mean_krr_estimate")}
            for h, s in zip(mod["history"], std["history"])
        ],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"{args.model} x{args.width} on {args.dataset}, {args.epochs} epochs, seed {args.seed}, recipe {args.recipe} "
          f"(alpha {summary['alpha']}, beta {summary['beta']}, gamma {summary['gamma']})")
    print(f"{'epoch':>5} {'standard':>9} {'modular':>9} {'KRR est.':>9}")
    for row in summary["curve"]:
        k = row["mean_krr_estimate"]
        print(f"{row['epoch']:>5} {100 * row['standard_acc']:8.2f}% {100 * row['modular_acc']:8.2f}% "
              + (f"{100 * k:8.2f}%" if k is not None else f"{'':>9}"))
    print(f"standard accuracy {100 * std['test_acc']:.2f}%  modular {100 * mod['test_acc']:.2f}%  "
          f"loss {summary['accuracy_loss_pp']:.2f} pp")
    print(f"mean module KRR {100 * mod['mean_krr']:.2f}%  mean FLOPs kept {100 * mod['mean_flops_kept']:.2f}%  "
          f"cohesion {mod['cohesion']:.4f}  coupling {mod['coupling']:.4f}")
    print(f"epoch time: standard {t_std:.1f}s  modular {t_mod:.1f}s  ratio {t_mod / t_std:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
