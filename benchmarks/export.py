"""Exporter benchmark: export time, FLOPs, parameters, file size and onnxruntime CPU latency of
two-class modules against the full model, with and without channel alignment.

Models: VGG16 and ResNet18 at full width with random weights and random kernel frequencies
shaped like a trained model's (each class keeps about `--retain` of every layer), plus any
trained checkpoints given with --checkpoint. Latencies are measured side by side in one run
(interleaved rounds, median), 2 onnxruntime threads by default.

    python -m benchmarks.export --out results/export
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from exporter.compile import ModuleCompiler
from mwt.checkpoint import file_sha256, load_checkpoint
from tests.synthetic import random_checkpoint
from runtime.latency import compare_latency, side_by_side_settings
from mwt.core.metadata import GateMode
from runtime.session import make_session


def bench(name: str, compiler: ModuleCompiler, classes: tuple[int, ...], aligns: list[int], threads: int,
          batches: list[int], seconds: float) -> dict:
    settings = side_by_side_settings(threads, ("CPUExecutionProvider",))
    entries: dict[str, dict] = {}
    sessions = {}
    for key, proto in (("plain full", compiler.plain_model), ("full modular", compiler.full_model)):
        cost = compiler.plain_cost if key == "plain full" else compiler.full_cost
        entries[key] = {"flops": cost.flops, "params": cost.params, "bytes": proto.ByteSize()}
        sessions[key] = make_session(proto.SerializeToString(), settings)
    variants = [(a, GateMode.dynamic) for a in aligns] + [(max(aligns), GateMode.folded)]
    for align, gates in variants:
        t = time.perf_counter()
        proto, report = compiler.compile(compiler.select(classes, align=align), gates)
        seconds_export = time.perf_counter() - t
        key = f"align {align}" + (" folded" if gates is GateMode.folded else "")
        entries[key] = {"flops": report.module.flops, "params": report.module.params, "bytes": proto.ByteSize(),
                        "krr": report.krr, "export_seconds": seconds_export}
        sessions[key] = make_session(proto.SerializeToString(), settings)
    rows = compare_latency({k: (lambda x, s=s: s.run(["logits"], {"input": x})) for k, s in sessions.items()},
                           compiler.ckpt.spec.input_shape, tuple(batches), "plain full", min_seconds=seconds)
    for r in rows:
        e = entries[r.config]
        e[f"ms_b{r.batch}"] = r.median_ms
        e[f"speedup_b{r.batch}"] = r.speedup
        e["flops_ratio"] = entries["plain full"]["flops"] / e["flops"]
        e[f"of_limit_b{r.batch}"] = r.speedup / e["flops_ratio"]
    return {"model": name, "classes": [compiler.ckpt.classes[c] for c in classes], "entries": entries}


def print_result(result: dict, batches: list[int]) -> None:
    print(f"\n{result['model']}  classes {', '.join(result['classes'])}")
    head = f"{'config':<16} {'KRR':>6} {'MFLOPs':>8} {'FLOPs x':>8} {'params k':>9} {'KiB':>8} {'export s':>8}"
    for b in batches:
        head += f" {'ms b' + str(b):>9} {'speedup':>8} {'of limit':>8}"
    print(head)
    for key, e in result["entries"].items():
        line = (f"{key:<16} {100 * (e.get('krr') or 1):5.1f}% {e['flops'] / 1e6:8.1f} {e['flops_ratio']:7.1f}x "
                f"{e['params'] / 1e3:9.1f} {e['bytes'] / 1024:8.0f} {e.get('export_seconds', float('nan')):8.2f}")
        for b in batches:
            line += f" {e[f'ms_b{b}']:9.2f} {e[f'speedup_b{b}']:7.2f}x {100 * e[f'of_limit_b{b}']:7.0f}%"
        print(line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="vgg16,resnet18")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--retain", type=float, default=0.15, help="per-class, per-layer retention of the synthetic frequencies")
    p.add_argument("--checkpoint", type=Path, action="append", default=[], help="also benchmark a trained checkpoint")
    p.add_argument("--classes", default="7,8", help="the two-class sub-task (indices or names)")
    p.add_argument("--align", default="1,8,16")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", default="1,32")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=Path("results/export"))
    args = p.parse_args(argv)
    aligns = [int(a) for a in args.align.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    results = []
    jobs: list[tuple[str, ModuleCompiler]] = [
        (f"{m} x{args.width} synthetic {int(100 * args.retain)}%",
         ModuleCompiler(random_checkpoint(m, args.width, retain=args.retain)))
        for m in args.models.split(",") if m
    ] + [(str(c), ModuleCompiler(load_checkpoint(c), file_sha256(c))) for c in args.checkpoint]
    for name, compiler in jobs:
        result = bench(name, compiler, compiler.select(args.classes).indices, aligns, args.threads, batches, args.seconds)
        print_result(result, batches)
        results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "export.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
