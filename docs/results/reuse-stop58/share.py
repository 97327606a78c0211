"""Each checkpoint's pairs' FLOPs kept as a share of the module of all classes (benchmarks/reuse.py's
flops_of_all_classes_pct), without the benchmark's accuracy and timing passes: threshold 0.95, align 8,
pad limit 0.05, as the stops' benchmarks select.

    python docs/results/reuse-stop58/share.py NAME=CKPT ...
"""
import statistics
import sys

from exporter.compile import ModuleCompiler
from mwt.reuse_matrix import all_pairs

for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    c = ModuleCompiler.from_file(path)
    k = len(c.ckpt.classes)

    def kept(classes: list[int]) -> float:
        return c.cost.kept_fraction(c.select(classes, threshold=0.95, align=8, pad_limit=0.05).kept, len(classes))

    every = kept(list(range(k)))
    shares = [100 * kept(list(p)) / every for p in all_pairs(k)]
    print(f"{name:<4} all classes {100 * every:6.2f}%  pairs' share of it: min {min(shares):6.2f}  "
          f"median {statistics.median(shares):6.2f}  max {max(shares):6.2f}")
