"""Stop 44: the pairs' and triples' mean FLOPs kept (the selection's kernels, as benchmarks.reuse reads them) per
threshold and pad limit, at align 8, rounding up. No images, no timing.
Usage: python thresholds.py CHECKPOINT.pt (modularized) [THRESHOLD ...]."""
import itertools, statistics, sys

import torch

from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model
from mwt.reuse_matrix import random_subtasks
from mwt.selection import ModuleSelection

torch.set_num_threads(1)
ck = load_checkpoint(sys.argv[1])
cost = cost_model(ck.build(), ck.spec.input_shape)
pairs = list(itertools.combinations(range(10), 2))
triples = random_subtasks(10, 3, 20, 0)
for threshold in [float(t) for t in sys.argv[2:]] or [0.9, 0.95, 0.98, 0.99, 1.0]:
    for align, pad in ((1, None), (8, 0.1), (8, 0.05), (8, 0.03), (8, 0.02)):
        row = []
        for name, tasks in (("pairs", pairs), ("triples", triples)):
            fl = [cost.kept_fraction(ModuleSelection.of(ck, list(t), threshold=threshold, align=align, cost=cost,
                                                        pad_limit=pad).kept, len(t)) for t in tasks]
            row.append(f"{name} {100 * statistics.mean(fl):.2f}% ({100 * min(fl):.2f}-{100 * max(fl):.2f})")
        print(f"threshold {threshold:.2f} align {align} pad {pad!s:5s}", *row, flush=True)
