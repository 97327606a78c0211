"""Experiment: align 8 on some channel streams only. Per policy (a set of streams left at their exact
width, the rest rounded up to 8), the pairs' FLOPs kept and batch-32 speedup over the plain model,
all policies timed side by side per pair. Usage: mixalign.py CKPT NPAIRS [policy ...] (policy: comma list of stream indices, 'all', 'none')."""
import sys, itertools, json, numpy as np, torch
from types import MappingProxyType
torch.set_num_threads(2)
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from mwt.cost import cost_model
from mwt.selection import ModuleSelection, module_kernels, modularization_of
from runtime.composed import ComposedClassifier
from runtime.latency import compare_latency, side_by_side_settings
from runtime.module_file import module_from_model
import exporter.channels as ch
_orig = ch.kept_channels
EXEMPT: set = set()
def patched(spaces, live, needed, align=1, depthwise=frozenset(), grouped=None):
    a = _orig(spaces, live, needed, align, depthwise, grouped)
    if not EXEMPT:
        return a
    b = _orig(spaces, live, needed, 1, depthwise, grouped)
    sids = {spaces.space_of[f"/model/{l}/conv/Conv_output_0"] for l in EXEMPT}
    for sid in sids:
        a.kept[sid] = b.kept[sid]
    return a
ch.kept_channels = patched
path, npairs = sys.argv[1], int(sys.argv[2])
policies = sys.argv[3:] or ["none", "all"]
comp = ModuleCompiler.from_file(path)
ck = comp.ckpt
cm = cost_model(ck.build(), ck.spec.input_shape)
mod = modularization_of(ck, path)
streams = cm.streams
settings = side_by_side_settings(2, ("CPUExecutionProvider",))
plain = ComposedClassifier([module_from_model(comp.plain_model)], settings=settings)
pairs = list(itertools.combinations(range(10), 2))
rng = np.random.default_rng(0)
pick = [pairs[i] for i in sorted(rng.choice(len(pairs), npairs, replace=False))] if npairs < 45 else pairs
def exact_set(p):
    if p == "none": return set()
    if p == "all": return set(range(len(streams)))
    return {int(s) for s in p.split(",")}
res = {p: {"flops": [], "speedup": []} for p in policies}
for task in pick:
    k1 = module_kernels(mod, task, 0.9, 1, cm)
    k8 = module_kernels(mod, task, 0.9, 8, cm)
    cands = {"plain": plain.logits}
    for p in policies:
        ex = exact_set(p)
        kept = {}
        for i, members in enumerate(streams):
            for layer in members:
                kept[layer] = (k1 if i in ex else k8)[layer].copy()
        for layer in k8:
            kept.setdefault(layer, k8[layer].copy())
        for m in kept.values(): m.setflags(write=False)
        sel = ModuleSelection(tuple(task), tuple(ck.classes[c] for c in task), 0.9, 8, MappingProxyType(kept))
        EXEMPT.clear(); EXEMPT.update(l for i in ex for l in streams[i])
        module, _ = comp.compile(sel, GateMode.folded)
        EXEMPT.clear()
        r = ComposedClassifier([module_from_model(module)], settings=settings)
        cands[p] = r.logits
        res[p]["flops"].append(cm.kept_fraction(kept, 2))
    rows = compare_latency(cands, ck.spec.input_shape, (32,), "plain", min_seconds=1.0)
    for row in rows:
        if row.config != "plain": res[row.config]["speedup"].append(row.speedup)
    print(task, {p: (round(100*res[p]["flops"][-1], 2), round(res[p]["speedup"][-1], 2)) for p in policies}, flush=True)
print("policy  flops_mean  speedup_median  min")
for p in policies:
    print(f"{p:20s} {100*np.mean(res[p]['flops']):6.2f} {np.median(res[p]['speedup']):5.2f} {np.min(res[p]['speedup']):5.2f}")
json.dump(res, open(sys.argv[1].rsplit('/',1)[-1] + "-mix.json", "w"))
