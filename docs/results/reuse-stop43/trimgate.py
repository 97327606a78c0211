"""probe: trim a stream down only when its `extra` weakest kept kernels all have pooled mean gate < G, else up."""
import itertools, os, statistics, sys
import numpy as np, torch
torch.set_num_threads(1)
import mwt.selection as sel
from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model, union_of
from mwt.data import load_split
from mwt.reuse_matrix import score_subtasks, random_subtasks
G = float(os.environ.get("G", "0.3"))
orig = sel.aligned_kernels
def patched(mod, classes, threshold=0.9, align=1, cost=None, pad_limit=None, rounding="up"):
    if rounding != "gate":
        return orig(mod, classes, threshold, align, cost, pad_limit, rounding)
    retained = sel.retained_kernels(mod, classes, threshold)
    streams = cost.streams
    base = cost.kept_macs(retained, len(classes)) if pad_limit is not None else 0
    in_stream = {l for m in streams for l in m}
    groups = [list(m) for m in streams] + [[l] for l in mod.layers if l not in in_stream]
    out, unaligned = dict(retained), set()
    for members in groups:
        keep = union_of(members, retained); width = int(keep.sum()); extra = width % align; short = (-width) % align
        if short and width >= align:
            strength = sum(sel.pooled_statistic(mod, "gate_mean", l, classes) for l in members).numpy() / len(members)
            order = np.argsort(strength, kind="stable"); weakest = order[keep[order]][:extra]
            if strength[weakest].max() < G:
                keep = keep.copy(); keep[weakest] = False
            else:
                freq = sum(sel.pooled_statistic(mod, "frequency", l, classes) for l in members).numpy()
                o = np.argsort(-freq, kind="stable"); padded = keep.copy(); padded[o[~keep[o]][:short]] = True
                if pad_limit is not None and cost.kept_macs({**retained, **dict.fromkeys(members, padded)}, len(classes)) - base > pad_limit * base:
                    unaligned.update(members)
                else:
                    keep = padded
        for l in members: out[l] = keep.copy()
    return out, frozenset(unaligned)
sel.aligned_kernels = patched
sel.check_rounding = lambda r: r
ck = load_checkpoint(sys.argv[1])
test = load_split(ck.source, "test", None, False, classes=ck.classes)
pad = None if os.environ.get("PAD", "") == "" else float(os.environ["PAD"])
for name, tasks in (("pairs", list(itertools.combinations(range(10), 2))), ("triples", random_subtasks(10, 3, 20, 0))):
    s = score_subtasks(ck, tasks, test, threshold=0.95, align=8, pad_limit=pad, rounding="gate")
    d = [100 * (x.full_acc - x.gate_free_acc) for x in s]; f = [100 * x.flops_kept for x in s]
    print(f"G {G} pad {pad} {name}: drop median {statistics.median(d):.2f} worst {max(d):.2f}  FLOPs mean {statistics.mean(f):.2f}", flush=True)
