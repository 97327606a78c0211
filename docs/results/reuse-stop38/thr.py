"""Stop 38: the pairs' mean FLOPs kept (the selection's kernels, as benchmarks.reuse reads them) at each
threshold and pad limit: align 1, align 8 rounding every stream, pad limits 0.1 and 0.05. No images, no timing.
Usage: python thr.py NAME... (checkpoints /work/runs/s35/NAME.pt, modularized; stop 40: or a path to a .pt).
Env THRESHOLDS (e.g. 0.95) limits the thresholds printed."""
import itertools, os, statistics, sys, torch
torch.set_num_threads(1)
from mwt.checkpoint import load_checkpoint
from mwt.cost import cost_model
from mwt.selection import ModuleSelection
for name in sys.argv[1:]:
    ck = load_checkpoint(name if name.endswith(".pt") else f"/work/runs/s35/{name}.pt")
    mod = ck.require_modularization()
    import numpy as np
    f = np.concatenate([mod.frequency[n].numpy().ravel() for n in mod.layers])
    print(name, "freq hist", np.histogram(f, bins=[0,0.01,0.1,0.5,0.8,0.9,0.95,0.98,0.99,1.0001])[0])
    cost = cost_model(ck.build(), ck.spec.input_shape)
    for thr in [float(t) for t in os.environ.get("THRESHOLDS", "0.9 0.95 0.98 0.99").split()]:
        row = []
        for pl in ("a1", None, 0.1, 0.05):
            fl = []
            for t in itertools.combinations(range(10), 2):
                s = ModuleSelection.of(ck, list(t), threshold=thr, align=1 if pl == "a1" else 8, cost=cost, pad_limit=None if pl in ("a1", None) else pl)
                fl.append(cost.kept_fraction(s.kept, 2))
            row.append(f"{pl}:{100*statistics.mean(fl):.2f}")
        print(name, thr, *row, flush=True)
