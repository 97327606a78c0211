"""Where a reuse run's loss turns non-finite: resume a copy of its last save and check, every step, each loss part
(forward) and every gradient (before the optimizer steps), printing the first non-finite one by name, with the
step's parts and the budget's pull over the last steps before it.

Usage: [ATTRIBUTE_AT=STEP] OMP_NUM_THREADS=1 python diverge.py RUN.pt   (the run's own thread count, so the resume
repeats it; ATTRIBUTE_AT: also print each part's largest gradients at that step of the resumed run)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import deque
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import mwt.train as train
from mwt.cli import app
from mwt.cli.entrypoint import run_app

ATTRIBUTE_AT = int(os.environ.get("ATTRIBUTE_AT", "0"))  # the step whose parts' gradients to trace
PARTS = ("total", "ce", "cohesion", "coupling", "flops", "subtask", "decisiveness", "distill", "similarity")
recent: deque[str] = deque(maxlen=8)
step = [0]
current: dict[str, object] = {}


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def checked_step_loss(run, x, y, idx, weights, epoch):  # type: ignore[no-untyped-def]
    """The original step loss, its parts checked and remembered."""
    parts, logits, gates, y2 = original_step_loss(run, x, y, idx, weights, epoch)
    step[0] += 1
    values = {p: getattr(parts, p) for p in PARTS if getattr(parts, p) is not None}
    pull = float(run.pull.factor) if run.pull is not None else float("nan")
    line = (f"epoch {epoch} step {step[0]} pull {pull:.4f} "
            + " ".join(f"{k} {float(v):.4g}" for k, v in values.items())
            + f" logits |max| {float(logits.detach().abs().max()):.4g}"
            + f" gates min/max {min(float(g.min()) for g in gates):.3g}/{max(float(g.max()) for g in gates):.3g}")
    recent.append(line)
    bad = [k for k, v in values.items() if not _finite(v)]
    if bad or not _finite(logits):
        print("\n".join(recent))
        print(f"FIRST NON-FINITE FORWARD at step {step[0]}: {bad or ['logits']}")
        sys.exit(3)
    current["run"] = run
    if step[0] == ATTRIBUTE_AT:
        attribute(run, values)
    return parts, logits, gates, y2


def attribute(run, values: dict[str, torch.Tensor]) -> None:  # type: ignore[no-untyped-def]
    """Each part's own gradient, by parameter: the largest few, so a spike is traced to its term and layer."""
    named = [(n, p) for n, p in run.model.named_parameters() if p.requires_grad]
    for part, value in values.items():
        if not value.requires_grad:
            continue
        grads = torch.autograd.grad(value, [p for _, p in named], retain_graph=True, allow_unused=True)
        top = sorted(((float(g.abs().max()), n) for (n, _), g in zip(named, grads) if g is not None), reverse=True)
        print(f"step {step[0]} d{part}: " + ", ".join(f"{n} {m:.3g}" for m, n in top[:4]))


def check_grads(optimizer, args, kwargs):  # type: ignore[no-untyped-def]
    """Before each optimizer step: every gradient finite, else name the parameters that are not."""
    model = current["run"].model  # type: ignore[attr-defined]
    bad = [(n, float(p.grad.abs().max())) for n, p in model.named_parameters()
           if p.grad is not None and not _finite(p.grad)]
    if bad:
        print("\n".join(recent))
        print(f"FIRST NON-FINITE GRADIENT at step {step[0]}: {len(bad)} parameters, first: "
              + ", ".join(n for n, _ in bad[:8]))
        sys.exit(3)
    big = max((float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None), default=0.0)
    recent[-1] += f" |grad|max {big:.4g}"


original_step_loss = train._step_loss
train._step_loss = checked_step_loss
register_optimizer_step_pre_hook(check_grads)

if __name__ == "__main__":
    work = Path(tempfile.mkdtemp())
    copy = work / "run.pt"
    shutil.copy(sys.argv[1], copy)
    code = run_app(app, ["train", "--resume", str(copy), "--quiet", "--log", str(work / "run.jsonl")])
    print("\n".join(recent))
    print(f"exit {code}")
