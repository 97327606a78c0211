"""Per gated layer: the kernels each class keeps at threshold 0.9, their union and what all classes share.

Usage: python layers.py MODEL.pt (a modularized checkpoint).
"""

import sys

from mwt.checkpoint import load_checkpoint

mod = load_checkpoint(sys.argv[1]).modularization
for layer in mod.layers:
    kept = mod.frequency[layer] >= 0.9  # (classes, C)
    print(f"{layer:28s} C={kept.shape[1]:4d} per-class={kept.sum(1).tolist()} union={int(kept.any(0).sum())} "
          f"common={int(kept.all(0).sum())}")
