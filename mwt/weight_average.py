"""Averaging a run's weights over its last epochs (stochastic weight averaging, Izmailov et al. 2018, with
the schedule the run already has): the mean of the weights at the ends of the last N epochs, then
BatchNorm's running statistics estimated afresh for those weights over the training images.

The mask generators are averaged with the network, so the averaged model's gates are the averaged
generators' answers; modules are read off the averaged model by `mwt modularize` as from any other.
torch's `AveragedModel` keeps the running mean and `update_bn` re-estimates the statistics.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from mwt.core.errors import MwtError, first_line
from mwt.data import AnySplit, batches_in_order


class WeightAverage:
    """The running mean of a model's parameters at epoch ends (buffers are re-estimated, not averaged)."""

    def __init__(self, model: nn.Module) -> None:
        self._average = AveragedModel(model)

    @property
    def count(self) -> int:
        """How many epoch ends are in the mean."""
        return int(self._average.n_averaged.item())

    def add(self, model: nn.Module) -> None:
        """Fold the model's current parameters into the mean."""
        self._average.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        """What a resumable checkpoint keeps: the mean so far and its count (CPU tensors)."""
        return {k: v.detach().cpu().clone() for k, v in self._average.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a resumable checkpoint's mean; one that does not fit this network is an MwtError."""
        try:
            self._average.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            raise MwtError(f"the checkpoint's running weight average does not fit this network ({first_line(e)[:120]}); "
                           "resume from an untouched checkpoint or train afresh") from None

    def apply_to(self, model: nn.Module, train: AnySplit, batch_size: int, device: torch.device) -> None:
        """Load the mean into `model` and estimate its BatchNorm statistics over `train` (in order, no
        augmentation). Leaves `model` in eval mode."""
        averaged = self._average.module.state_dict()
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                parameter.copy_(averaged[name])
        batches = ((x.to(device), y) for x, y in batches_in_order(train, torch.arange(len(train)), batch_size))
        update_bn(batches, model, device=None)  # (the batches are on the device already)
        model.eval()
