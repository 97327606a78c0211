"""Stop 41: copy a resumable checkpoint with --settle-epochs N written into its stored config, so that
`mwt train --resume` continues the same run (same weights, optimizer, schedule, order) with its last N epochs settled.
Usage: python fork.py SRC.pt DST.pt N"""
import sys

import torch

src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = torch.load(src, weights_only=False, map_location="cpu")
assert raw["training"]["config"].get("settle_epochs", 0) == 0, "already settled"
raw["training"]["config"]["settle_epochs"] = n
torch.save(raw, dst)
print(f"{dst}: {src} at epoch {len(raw['training']['history'])} with settle_epochs {n}")
