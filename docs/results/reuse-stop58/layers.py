"""Per gated layer: the kernels the module of all classes keeps and the median pair's share of them,
at threshold 0.95, align 1 (no rounding, so the counts are the classes' own), for one checkpoint.

    python docs/results/reuse-stop58/layers.py CKPT
"""
import statistics
import sys

from exporter.compile import ModuleCompiler
from mwt.reuse_matrix import all_pairs

c = ModuleCompiler.from_file(sys.argv[1])
k = len(c.ckpt.classes)
every = c.select(list(range(k)), threshold=0.95, align=1).kept
pairs = [c.select(list(p), threshold=0.95, align=1).kept for p in all_pairs(k)]
print(f"{'layer':<28} {'kernels':>8} {'all classes':>12} {'pair median':>12} {'share':>7}")
for name, mask in every.items():
    n_all = int(mask.sum())
    med = statistics.median(int(p[name].sum()) for p in pairs)
    print(f"{name:<28} {mask.size:8d} {n_all:12d} {med:12.1f} {100 * med / max(n_all, 1):6.1f}%")
