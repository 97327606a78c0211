"""Stop 59: a resumable checkpoint's FLOPs weight (gamma) changed, written to a new file, so that
`mwt train --resume` continues the run from where it stopped under a stronger pull (resuming refuses
changed settings, rightly: this is a research cut, recorded in the new file's config and note).
Usage: python regamma.py IN.pt OUT.pt GAMMA"""
import sys

import torch

src, dst, gamma = sys.argv[1], sys.argv[2], float(sys.argv[3])
state = torch.load(src, map_location="cpu", weights_only=False)
config = state["training"]["config"]
print(f"{src}: gamma {config['gamma']} -> {gamma}, epochs done {len(state['training'].get('history', []))}")
config["gamma"] = gamma
state["training"]["regamma"] = {"from": src, "gamma": gamma}
torch.save(state, dst)
