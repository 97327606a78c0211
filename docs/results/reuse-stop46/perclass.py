"""Stop 46: per-class test accuracy of whole models (gates as trained) beside each class's module FLOPs
(from the modularization, threshold 0.9 as `mwt modularize` prints it). One torch thread; seconds per model.
Usage: python perclass.py CKPT.pt..."""
import sys

import numpy as np
import torch

torch.set_num_threads(1)
from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model
from mwt.data import batches_in_order, load_split
from mwt.selection import ModuleSelection

rows = {}
for path in sys.argv[1:]:
    ck = load_checkpoint(path)
    model = ck.build().eval()
    test = load_split(ck.source, "test")
    pred, true = [], []
    with torch.no_grad():
        for x, y in batches_in_order(test, torch.arange(len(test)), 500):
            out = model(x)
            pred.append((out[0] if isinstance(out, tuple) else out).argmax(1).numpy()); true.append(y.numpy())
    pred, true = np.concatenate(pred), np.concatenate(true)
    acc = [100 * (pred[true == c] == c).mean() for c in range(len(ck.classes))]
    flops = [float("nan")] * len(ck.classes)
    if ck.modularization is not None:
        cost = cost_model(ck.build(), ck.spec.input_shape)
        flops = [100 * cost.kept_fraction(ModuleSelection.of(ck, [c], threshold=0.9, align=1).kept, 1)
                 for c in range(len(ck.classes))]
    rows[path] = (ck.classes, acc, flops, 100 * (pred == true).mean())
names = next(iter(rows.values()))[0]
print("class".ljust(12) + "".join(f"{p.split('/')[-1][:-3]:>16}" for p in rows))
for c, name in enumerate(names):
    print(name.ljust(12) + "".join(f"{r[1][c]:8.1f}% {r[2][c]:5.2f}%".rjust(16) for r in rows.values()))
print("all".ljust(12) + "".join(f"{r[3]:8.2f}%".ljust(16).rjust(16) for r in rows.values()))
