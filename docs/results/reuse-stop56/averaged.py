"""Stop 56: does averaging a run's last epochs' weights lift the whole model? (a post-hoc test of weight
averaging; it did not, so no training option was kept for it: docs/results.md, stop 56). Averages the
float tensors of the given checkpoints (the network, its mask generators and BatchNorm's running
statistics; integer buffers from the last one), optionally re-estimates BatchNorm's statistics over the
training images (`--bn`, the gates as the averaged generators set them), prints each input's and the
average's test accuracy, and writes the average as a checkpoint (not modularized) for `mwt modularize`
and the benchmarks.
Usage: python averaged.py OUT.pt CKPT... [--bn]   (one torch thread; a minute or two)"""
from __future__ import annotations

import sys

import torch

torch.set_num_threads(1)
from torch.optim.swa_utils import update_bn

from mwt.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mwt.data import batches_in_order, load_split
from mwt.evaluate import accuracy


def averaged_state(checkpoints: list[Checkpoint]) -> dict[str, torch.Tensor]:
    """The mean of the checkpoints' float tensors; other tensors from the last checkpoint."""
    states = [c.state_dict for c in checkpoints]
    return {k: (torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v.clone())
            for k, v in states[-1].items()}


def main(argv: list[str]) -> None:
    bn = "--bn" in argv
    names = [a for a in argv if a != "--bn"]
    if len(names) < 2:
        raise SystemExit(__doc__)
    out, *paths = names
    checkpoints = [load_checkpoint(p) for p in paths]  # each read once: scored, then averaged
    last = checkpoints[-1]
    test = load_split(last.source, "test")
    for p, c in zip(paths, checkpoints):
        print(f"{p}: {100 * accuracy(c.build(), test):.2f}%", flush=True)
    last.state_dict = averaged_state(checkpoints)
    last.modularization, last.resume = None, None
    last.training = {**last.training, "averaged_from": paths, "bn_reestimated": bn}
    model = last.build()
    if bn:
        train = load_split(last.source, "train")  # torch's update_bn (cumulative), batch 128
        update_bn(batches_in_order(train, torch.arange(len(train)), 128), model)
        model.eval()
        last.state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    print(f"average of {len(paths)}{' (BatchNorm re-estimated)' if bn else ''}: "
          f"{100 * accuracy(model, test):.2f}%", flush=True)
    save_checkpoint(last, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
