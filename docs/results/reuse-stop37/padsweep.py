"""Stop 37: the pad limit's trade-off, side by side. For every class pair of CKPT, the gate-free module
(folded gates, align 8) at each pad limit, FLOPs kept (the selection's kernels, as benchmarks.reuse reads
them) and batch-32 speedup over the plain model, all limits timed in one interleaved run per pair.
Usage: python padsweep.py CKPT OUT.json LIMIT... ('none': round every layer up)."""
import itertools, json, statistics, sys
import torch
torch.set_num_threads(2)
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from runtime.composed import ComposedClassifier
from runtime.latency import compare_latency, side_by_side_settings
from runtime.module_file import module_from_model
path, out, *limits = sys.argv[1:]
comp = ModuleCompiler.from_file(path)
settings = side_by_side_settings(2, ("CPUExecutionProvider",))
plain = ComposedClassifier([module_from_model(comp.plain_model)], settings=settings)
res = {lim: {"flops": [], "speedup": [], "unaligned": []} for lim in limits}
for task in itertools.combinations(range(len(comp.ckpt.classes)), 2):
    cands = {"plain": plain.logits}
    for lim in limits:
        sel = comp.select(list(task), align=8, pad_limit=None if lim == "none" else float(lim))
        module, _ = comp.compile(sel, GateMode.folded)
        cands[lim] = ComposedClassifier([module_from_model(module)], settings=settings).logits
        res[lim]["flops"].append(comp.cost.kept_fraction(sel.kept, 2))
        res[lim]["unaligned"].append(sorted(sel.unaligned))
    for row in compare_latency(cands, comp.ckpt.spec.input_shape, (32,), "plain", min_seconds=0.5):
        if row.config != "plain":
            res[row.config]["speedup"].append(row.speedup)
    print(task, {lim: (round(100 * res[lim]["flops"][-1], 2), round(res[lim]["speedup"][-1], 2)) for lim in limits}, flush=True)
print("limit  FLOPs mean %  speedup median (min-max)  at 3x or more")
for lim in limits:
    s = res[lim]["speedup"]
    print(f"{lim:6s} {100 * statistics.mean(res[lim]['flops']):6.2f}  {statistics.median(s):5.2f} ({min(s):.2f}-{max(s):.2f})  {sum(x >= 3 for x in s)}/{len(s)}")
json.dump(res, open(out, "w"), indent=1)
