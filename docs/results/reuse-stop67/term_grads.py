"""Stop 67: which loss term's gradient pulls the backbone against the task's, on a trained reuse run.

The run's own configuration and weights (a finished checkpoint), its loss built by mwt.train's own step
(`_step_loss`, the last epoch's weights); the route's and budget's running statistics warmed on WARM batches
first (forward only, no step). Then over BATCHES training batches: each term's gradient on the backbone's
weights (every parameter outside the mask generators) and on the generators', its norm, and its cosine with
cross-entropy's. One torch thread by default.
Usage: python term_grads.py RUN.pt [BATCHES] [WARM]"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from mwt.checkpoint import load_checkpoint
from mwt.data import batches_in_order, load_split
from mwt.data.builtin import dataset_info
from mwt.distributed import Dist
from mwt.models import gated_layers
from mwt.train import _EpochWeights, _setup, _step_loss
from mwt.train_config import TrainConfig

torch.set_num_threads(1)
path, n, warm = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12, int(sys.argv[3]) if len(sys.argv) > 3 else 20
ck = load_checkpoint(path)
config = TrainConfig.from_dict(ck.training["config"])
run, _ = _setup(config, dataset_info(config.dataset), ck, Dist(), fresh=True)
run.model.train()
weights = _EpochWeights.for_epoch(config, config.epochs)
train = load_split(ck.source, "train")
order = torch.randperm(len(train), generator=torch.Generator().manual_seed(67))
# the generators' weights as mwt.train freezes them in the settle epochs
in_gen = {id(p) for _, block in gated_layers(run.model) for p in block.gate.parameters()}
backbone = [p for p in run.model.parameters() if id(p) not in in_gen]
generators = [p for p in run.model.parameters() if id(p) in in_gen]
params = backbone + generators
split = sum(p.numel() for p in backbone)  # where the generators' part of a flat gradient starts


def flat(grads: tuple[torch.Tensor | None, ...], params: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


names = ["ce", "cohesion", "coupling", "budget", "decisiveness", "subtask", "distill", "similarity"]
norms = {k: [0.0, 0.0] for k in names}
cosines = {k: [0.0, 0.0] for k in names}
counted = 0
for step, (x, y) in enumerate(batches_in_order(train, order, config.batch_size)):
    idx = order[step * config.batch_size:(step + 1) * config.batch_size]
    if step < warm:
        with torch.no_grad():
            _step_loss(run, x, y, idx, weights, config.epochs)
        continue
    if step >= warm + n:
        break
    parts, *_ = _step_loss(run, x, y, idx, weights, config.epochs)
    zero = parts.ce * 0
    terms = {
        "ce": parts.ce,
        "cohesion": weights.alpha * parts.cohesion,
        "coupling": weights.beta * parts.coupling,
        "decisiveness": weights.delta * parts.decisiveness if parts.decisiveness is not None else zero,
        "subtask": parts.subtask if parts.subtask is not None else zero,
        "distill": config.distill * parts.distill if parts.distill is not None else zero,
        "similarity": config.similarity * parts.similarity if parts.similarity is not None else zero,
    }
    terms["budget"] = parts.total - sum(terms.values())  # the FLOPs term, as the step weighed it
    task = {}
    for k in names:  # one backward pass per term, split into the backbone's part and the generators'
        whole = flat(torch.autograd.grad(terms[k], params, retain_graph=True, allow_unused=True), params)
        for j, g in enumerate((whole[:split], whole[split:])):
            if k == "ce":
                task[j] = g
            norms[k][j] += g.norm().item()
            cosines[k][j] += torch.nn.functional.cosine_similarity(g, task[j], dim=0).item()
    counted += 1
print(f"{Path(path).name}: epoch-{config.epochs} weights, {counted} batches of {config.batch_size} "
      f"(after {warm} to warm the running statistics)")
print(f"{'term':14s} {'backbone |g|':>13s} {'cos with ce':>12s} {'generators |g|':>15s} {'cos with ce':>12s}")
for k in names:
    print(f"{k:14s} {norms[k][0] / counted:13.4f} {cosines[k][0] / counted:12.3f} "
          f"{norms[k][1] / counted:15.4f} {cosines[k][1] / counted:12.3f}")
