"""Stop 41: copy a resumable checkpoint with --settle-epochs N written into its stored config, so that
`mwt train --resume` continues the same run (same weights, optimizer, schedule, order) with its last N epochs settled.
Read with mwt's own loader (weights only, no pickled code runs; the structure checked) and written atomically.
Usage: python fork.py SRC.pt DST.pt N"""
import dataclasses
import sys

from mwt.checkpoint import load_checkpoint, save_checkpoint

src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ck = load_checkpoint(src)
config = ck.training["config"]
assert ck.resume is not None, f"{src} is a finished run, not a resumable checkpoint"
assert config.get("settle_epochs", 0) == 0, "already settled"
save_checkpoint(dataclasses.replace(ck, training={**ck.training, "config": {**config, "settle_epochs": n}}), dst)
print(f"{dst}: {src} at epoch {len(ck.training['history'])} with settle_epochs {n}")
