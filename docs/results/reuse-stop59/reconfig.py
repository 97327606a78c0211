"""Stop 59: a resumable checkpoint's training settings changed, written to a new file, so that
`mwt train --resume` continues the run from where it stopped under other settings (resuming refuses
changed settings, rightly: this is a research cut, recorded in the new file's `reconfigured`).
Read and written as mwt reads and writes checkpoints (no pickled code runs; the write is atomic).
Yg: gamma=8 (4 before); Ya: budget_adapt=0.003. Usage: python reconfig.py IN.pt OUT.pt KEY=VALUE..."""
import dataclasses
import sys

from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.train import TrainConfig

src, dst, pairs = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
ckpt = load_checkpoint(src)
config = ckpt.training["config"]
changes = {k: float(v) for k, v in pairs.items()}
for key, value in changes.items():
    if key not in {f.name for f in dataclasses.fields(TrainConfig)}:
        sys.exit(f"no training setting {key}")
    print(f"{src}: {key} {config.get(key, 'default')} -> {value}, epochs done {len(ckpt.training.get('history', []))}")
config.update(changes)
ckpt.training["reconfigured"] = {"from": src, **changes}
save_checkpoint(ckpt, dst)
