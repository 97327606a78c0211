"""Per architecture: FLOPs kept and batch-32 speedup of a two-class module against the plain full model.

For each architecture (registry names and `torchvision:<name>`), a checkpoint is either given
(`--checkpoint arch=path`, a trained and modularized one, whose full model and modules are also
scored on the classes' test images) or synthetic: random weights and random
kernel frequencies at which about `--retain` of each layer is in each class's module (the
networks are not trained, so only FLOPs and latency mean anything, never accuracy). The
two-class module (default sneaker, bag) is compiled with folded and dynamic gates and timed side
by side with the plain full model (the same network without mask generators, what a user would
otherwise deploy) on onnxruntime's CPU provider. With `--profile`, the time per op type of the
plain model and the folded module (onnxruntime's profiler) says what limits the speedup.

    python -m benchmarks.architectures --archs torchvision:mobilenet_v2 torchvision:resnet50 --width 0.5
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from exporter.compile import ModuleCompiler
from mwt.checkpoint import load_checkpoint
from mwt.core.metadata import GateMode
from runtime.latency import compare_latency, side_by_side_settings
from runtime.session import make_session
from tests.synthetic import random_checkpoint

DEFAULT_ARCHS = ("torchvision:mobilenet_v2", "torchvision:resnet50", "torchvision:mobilenet_v3_small",
                 "torchvision:efficientnet_b0", "torchvision:regnet_y_400mf", "torchvision:googlenet", "resnet18")


def op_times(model: bytes, x: np.ndarray, threads: int, runs: int = 20) -> dict[str, float]:
    """Milliseconds per call spent in each op type (onnxruntime's profiler, `runs` calls)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        for _ in range(runs):
            session.run(None, {"input": x})
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            totals[e["args"]["op_name"]] += e["dur"] / 1000 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def measure(arch: str, args: argparse.Namespace) -> dict:
    given = dict(c.split("=", 1) for c in args.checkpoint)
    if arch in given:
        ckpt = load_checkpoint(given[arch])
        config = ckpt.training.get("config", {})
        trained = {"test_acc": ckpt.training.get("test_acc"), "epochs": len(ckpt.training.get("history", [])),
                   "train_images": config.get("train_limit")}
        source = (f"trained: {config.get('recipe')} recipe, {trained['epochs']} epochs on "
                  f"{trained['train_images'] or 'all'} images")
    else:
        ckpt = random_checkpoint(arch, width=args.width, seed=args.seed, retain=args.retain, stem=args.stem
                                 if arch.startswith("torchvision:") else "default")
        source = f"synthetic (random weights, retain {args.retain})"
        trained = None
    compiler = ModuleCompiler(ckpt)
    selection = compiler.select(args.classes, align=args.align)
    modules = {gates.value: compiler.compile(selection, gates) for gates in GateMode}
    plain = compiler.plain_model.SerializeToString()
    settings = side_by_side_settings(args.threads, ("CPUExecutionProvider",))
    sessions = {"plain full": make_session(plain, settings)}
    sessions.update({f"{g} module": make_session(m.SerializeToString(), settings) for g, (m, _) in modules.items()})
    candidates = {name: (lambda x, s=s: s.run(None, {"input": x})) for name, s in sessions.items()}
    rows = compare_latency(candidates, ckpt.spec.input_shape, (args.batch,), "plain full", min_seconds=args.seconds)
    result = {
        "arch": arch, "width": ckpt.spec.width, "stem": ckpt.spec.stem, "input": list(ckpt.spec.input_shape),
        "checkpoint": source, "classes": list(selection.names), "plain_flops": compiler.plain_cost.flops,
        "latency": {r.config: {"median_ms": r.median_ms, "speedup": r.speedup} for r in rows},
    }
    for gates, (_, report) in modules.items():
        result[f"{gates}_flops"] = report.module.flops
        result[f"{gates}_flops_kept"] = report.module.flops / compiler.plain_cost.flops
    if trained is not None:  # a trained network: how its modules score on their classes' test images
        from mwt.data import load_named
        from mwt.evaluate import module_accuracy

        test = load_named(ckpt.source, "test", list(selection.names))
        scored = {"full model": compiler.full_model, **{f"{g} module": m for g, (m, _) in modules.items()}}
        result.update(trained)
        result["accuracy"] = module_accuracy(scored, test, list(selection.indices), threads=args.threads,
                                             whole_models={"full model"})
    if args.profile:
        x = np.random.default_rng(0).random((args.batch, *ckpt.spec.input_shape), dtype=np.float32)
        result["op_ms"] = {"plain full": op_times(plain, x, args.threads),
                           "folded module": op_times(modules["folded"][0].SerializeToString(), x, args.threads)}
    return result


def table(results: list[dict]) -> str:
    lines = ["| architecture | width | checkpoint | plain MFLOPs | folded: FLOPs kept | folded speedup (batch 32) | "
             "dynamic: FLOPs kept | dynamic speedup | accuracy: full / folded / dynamic |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lat = r["latency"]
        acc = r.get("accuracy")
        scores = (" / ".join(f"{100 * acc[k]:.2f}%" for k in ("full model", "folded module", "dynamic module"))
                  if acc else "- (not trained)")
        lines.append(f"| {r['arch']} | {r['width']:g} | {r['checkpoint']} | {r['plain_flops'] / 1e6:.1f} | "
                     f"{100 * r['folded_flops_kept']:.1f}% | {lat['folded module']['speedup']:.2f}x | "
                     f"{100 * r['dynamic_flops_kept']:.1f}% | {lat['dynamic module']['speedup']:.2f}x | {scores} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS))
    p.add_argument("--checkpoint", action="append", default=[], help="arch=path of a trained, modularized checkpoint")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--stem", default="cifar", help="the stem of torchvision networks (32x32 inputs: cifar)")
    p.add_argument("--retain", type=float, default=0.15, help="synthetic frequencies: share of each layer per class")
    p.add_argument("--classes", default="sneaker,bag")
    p.add_argument("--align", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true", help="time per op type (what limits the speedup)")
    p.add_argument("--out", type=Path, default=None, help="write architectures.json and architectures.md here")
    args = p.parse_args(argv)
    results = []
    for arch in args.archs:
        results.append(measure(arch, args))
        print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "architectures.json").write_text(json.dumps(results, indent=2))
        (args.out / "architectures.md").write_text(table(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
