"""Pad narrow feature maps to the alignment (zero filler channels): faster on AVX-512's 16-channel blocks?"""
import sys, json, collections, os, tempfile
import numpy as np, onnxruntime as ort
sys.path.insert(0, "/work/main")
import exporter.channels as ch
from exporter.compile import ModuleCompiler
from mwt.core.metadata import GateMode
from runtime.latency import measure_side_by_side

orig = ch.kept_channels
PAD = {"on": False}
def patched(spaces, live, needed, align=1, depthwise=frozenset(), grouped=None):
    if PAD["on"] and align > 1:
        feature_maps = {spaces.space_of[n] for n, t in spaces.tensors.items() if t.shape is not None and len(t.shape) == 4}
        depthwise = frozenset(set(depthwise) | feature_maps)  # the depthwise rule: narrow spaces keep `align`
    return orig(spaces, live, needed, align, depthwise, grouped)
ch.kept_channels = patched

ckpt, threads = sys.argv[1], int(sys.argv[2])
pairs = [tuple(p.split("/")) for p in sys.argv[3].split(",")]
comp = ModuleCompiler.from_file(ckpt)
def sess(model, threads=threads, prof=None):
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    o.add_session_config_entry("session.intra_op.allow_spinning", "0"); o.log_severity_level = 4
    if prof: o.enable_profiling = True; o.profile_file_prefix = prof
    return ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).random((32, 1, 28, 28), dtype=np.float32)
def widths(m): return [i.dims[0] for i in m.graph.initializer if len(i.dims) == 4]
def profile(model):
    d = tempfile.mkdtemp(); s = sess(model, prof=os.path.join(d, "p")); name = s.get_inputs()[0].name
    for _ in range(110): s.run(None, {name: x})
    ev = json.load(open(s.end_profiling())); by = collections.defaultdict(float)
    for e in ev:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"): by[e["args"]["op_name"]] += e["dur"]
    return {k: round(v / 110) for k, v in sorted(by.items(), key=lambda kv: -kv[1])}
for pair in pairs:
    cands, outs = {}, {}
    for align in (8, 16):
        for pad in (False, True):
            PAD["on"] = pad
            m, _ = comp.compile(comp.select(list(pair), align=align), GateMode.folded)
            tag = f"a{align}{'-pad' if pad else ''}"
            print(pair, tag, widths(m), flush=True)
            s = sess(m); name = s.get_inputs()[0].name
            outs[tag] = s.run(None, {name: x})[0]
            cands[tag] = (lambda s=s, name=name: s.run(None, {name: x}))
            if align == 16: print("  profile", tag, profile(m), flush=True)
    print("  max |diff| pad vs not:", float(np.abs(outs["a8"] - outs["a8-pad"]).max()), float(np.abs(outs["a16"] - outs["a16-pad"]).max()))
    s = sess(comp.plain_model); name = s.get_inputs()[0].name
    cands["plain"] = (lambda s=s, name=name: s.run(None, {name: x}))
    t = measure_side_by_side(cands, min_seconds=3.0, min_runs=40)
    base = t["plain"].median_ms
    print("-".join(pair), threads, "threads:", {k: (round(v.median_ms, 3), round(base / v.median_ms, 2)) for k, v in t.items()}, flush=True)
