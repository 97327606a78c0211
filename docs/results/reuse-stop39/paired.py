"""Stop 39: how far apart are two whole models on the same 10,000 test images, and how sure is that?
For each checkpoint: its per-image correctness (the whole model, gates as trained). Against the first
(the standard model): the accuracy gap, a paired bootstrap 95% interval of it (10,000 resamples of the
test images, seeded), the McNemar discordant counts, and the one-sided probability that the gap is
within 1.0 pp (the issue's goal). One torch thread; seconds per model.
Usage: python paired.py STD.pt MODULAR.pt...  (paths under /work/runs/s35 if bare names)"""
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from mwt.checkpoint import load_checkpoint
from mwt.data import batches_in_order, load_split


@torch.no_grad()
def correct(path: str) -> np.ndarray:
    ck = load_checkpoint(path)
    model = ck.build()
    test = load_split(ck.source, "test")
    hits = []
    for x, y in batches_in_order(test, torch.arange(len(test)), 500):
        logits, _ = model(x)
        hits.append((logits.argmax(1) == y).numpy())
    return np.concatenate(hits)


paths = [p if "/" in p else f"/work/runs/s35/{p}.pt" for p in sys.argv[1:]]
base = correct(paths[0])
print(f"{paths[0]}: {100 * base.mean():.2f}% on {len(base)} images "
      f"(binomial s.e. {100 * np.sqrt(base.mean() * (1 - base.mean()) / len(base)):.2f} pp)")
rng = np.random.default_rng(0)
idx = rng.integers(0, len(base), size=(10_000, len(base)))
for p in paths[1:]:
    c = correct(p)
    gap = base.mean() - c.mean()
    d = base.astype(np.int8) - c.astype(np.int8)
    boot = d[idx].mean(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    only_base, only_c = int(((base == 1) & (c == 0)).sum()), int(((base == 0) & (c == 1)).sum())
    print(f"{p}: {100 * c.mean():.2f}%  gap {100 * gap:.2f} pp, 95% interval [{100 * lo:.2f}, {100 * hi:.2f}] pp, "
          f"P(gap <= 1.0 pp) = {(boot <= 0.01).mean():.3f}; only the standard right on {only_base}, "
          f"only this one on {only_c}", flush=True)
