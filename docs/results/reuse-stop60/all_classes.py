"""The data-free gate-free module of every class (what `mwt-export` keeps for all ten classes, at
constant gates, no generators) scored on the whole test set beside the dynamic whole model: can the
all-classes module stand in for the whole model? Threshold 0.95, align 8, pad limit 0.05, as the stops'
benchmarks select.

    python docs/results/reuse-stop60/all_classes.py NAME=CKPT ...
"""
import sys

from mwt.checkpoint import load_checkpoint
from mwt.data import load_split
from mwt.reuse_matrix import score_subtasks

for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    ckpt = load_checkpoint(path)
    test = load_split(ckpt.source, "test", None, False, classes=ckpt.classes)
    for threshold in (0.95, 0.5, 0.1):
        s, = score_subtasks(ckpt, [list(range(len(ckpt.classes)))], test, threshold=threshold, align=8, pad_limit=0.05)
        print(f"{name:<4} threshold {threshold:4.2f}  whole model {100 * s.full_acc:6.2f}%  dynamic all-classes module "
              f"{100 * s.dynamic_acc:6.2f}%  gate-free {100 * s.gate_free_acc:6.2f}%  FLOPs kept {100 * s.flops_kept:6.2f}%",
              flush=True)
