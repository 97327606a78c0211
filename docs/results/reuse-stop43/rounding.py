"""Stop 43: the pairs' and triples' mean FLOPs kept (the selection's kernels, as benchmarks.reuse reads them) per
rounding (up, nearest, down), at align 8 and 16, threshold 0.95, with and without a pad limit; plus the
distribution of the mean gates of the kernels rounding down drops against those it keeps. No images, no timing.
Usage: python rounding.py CHECKPOINT.pt (modularized)."""
import itertools, statistics, sys

import numpy as np
import torch

from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model
from mwt.reuse_matrix import random_subtasks
from mwt.selection import ModuleSelection, pooled_statistic

torch.set_num_threads(1)
ck = load_checkpoint(sys.argv[1])
mod = ck.require_modularization()
cost = cost_model(ck.build(), ck.spec.input_shape)
pairs = list(itertools.combinations(range(10), 2))
triples = random_subtasks(10, 3, 20, 0)
for align in (1, 8, 16):
    for rounding in (("up",) if align == 1 else ("up", "nearest", "down")):
        for pad in ((None,) if align == 1 or rounding == "down" else (None, 0.1, 0.05)):
            row = []
            for name, tasks in (("pairs", pairs), ("triples", triples)):
                fl = [cost.kept_fraction(ModuleSelection.of(ck, list(t), threshold=0.95, align=align, cost=cost,
                                                            pad_limit=pad, rounding=rounding).kept, len(t))
                      for t in tasks]
                row.append(f"{name} {100 * statistics.mean(fl):.2f}% ({100 * min(fl):.2f}-{100 * max(fl):.2f})")
            print(f"align {align:2d} {rounding:7s} pad {pad!s:5s}", *row, flush=True)
# what rounding down drops: the pooled mean gates of dropped against kept kernels, over all pairs at align 8
dropped, kept_g = [], []
for t in pairs:
    exact = ModuleSelection.of(ck, list(t), threshold=0.95, align=1).kept
    down = ModuleSelection.of(ck, list(t), threshold=0.95, align=8, cost=cost, rounding="down").kept
    for layer in mod.layers:
        g = pooled_statistic(mod, "gate_mean", layer, list(t)).numpy()
        dropped += list(g[exact[layer] & ~down[layer]])
        kept_g += list(g[down[layer]])
q = lambda v: " ".join(f"{x:.3f}" for x in np.quantile(v, [0, 0.1, 0.5, 0.9, 1])) if v else "-"
print(f"mean gate of dropped kernels (n={len(dropped)}): {q(dropped)}")
print(f"mean gate of kept kernels (n={len(kept_g)}): {q(kept_g)}")
