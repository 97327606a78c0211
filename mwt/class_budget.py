"""Per-class FLOPs budgets and coupling weights that follow each class's difficulty
(`mwt train --budget-by-loss`, `--coupling-by-loss`).

With a FLOPs target, every sample may spend the same fraction of the network. Measured on the
reuse recipe (docs/results.md, stops 28 and 45), that splits the kernels evenly: every class's
module keeps 7.1-7.9% of the FLOPs, the hardest class (shirt) the least, while all of the whole
model's loss against the standard model is in the four upper-body garments. Here each class's
target is the run's target scaled by how hard the class is, as its running cross-entropy says:
hard classes may keep more kernels, easy ones are held to fewer. Measured on R14's command (stop
46): the modules came out as even as before, because coupling keeps every sample below the run's
target and so the per-class targets leave nothing to spend; off by default.

Coupling by loss acts where that measurement points: the coupling loss, which parts the classes'
kernels and so sizes their modules, weighs each pair of samples of two classes by the geometric
mean of the classes' factors, (loss / mean loss) ** -power within SCALE_RANGE, as a weighted mean
(the same total pressure, moved off the hard classes and onto the easy ones). Measured on R14's
command (stop 47): the hard classes did not keep larger modules and lost the most accuracy (whole
model 2.4-2.5 pp under the standard, against R14's 1.1); with power 0.5 the classes stopped parting
at all. Off by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mwt.core.errors import MwtError

# A class's target moves at most this far from the run's (a factor either way), so that neither a
# class the network has all but learned nor one it has not started on takes the budget to an extreme.
SCALE_RANGE = (0.5, 2.0)
# The running losses forget with this factor per step (about 100 steps, under one epoch of 60,000 images).
DECAY = 0.99


@dataclass(frozen=True)
class BudgetSettings:
    target: float  # the run's FLOPs target (mwt.losses.modular_loss)
    power: float  # a class's target is target * (its loss / the mean loss) ** power, clipped to SCALE_RANGE
    coupling_power: float = 0.0  # a class's coupling factor is (its loss / the mean loss) ** -coupling_power


class ClassBudget:
    """Running per-class cross-entropy and the per-sample FLOPs targets and per-class coupling
    factors it gives."""

    def __init__(self, num_classes: int, settings: BudgetSettings, device: torch.device) -> None:
        self.settings = settings
        self.num_classes = num_classes
        self.loss = torch.zeros(num_classes, dtype=torch.float64, device=device)
        self.seen = torch.zeros(num_classes, dtype=torch.bool, device=device)

    def _relative(self, power: float) -> torch.Tensor:
        """(each class's loss / the mean) ** power within SCALE_RANGE; 1 before any loss is seen."""
        if not bool(self.seen.any()):
            return torch.ones_like(self.loss)
        # a class not seen yet counts as average
        loss = torch.where(self.seen, self.loss, self.loss[self.seen].mean())
        relative = loss / loss.mean().clamp(min=1e-12)
        return relative.clamp(min=1e-12).pow(power).clamp(*SCALE_RANGE)

    def scales(self) -> torch.Tensor:
        """Each class's factor on the run's target: (num_classes,) float64 (1 before any loss is seen)."""
        return self._relative(self.settings.power)

    def coupling_factors(self) -> torch.Tensor:
        """Each class's weight in the coupling loss: (num_classes,) float32, the hard classes lowest."""
        return self._relative(-self.settings.coupling_power).float()

    def targets(self, labels: torch.Tensor) -> torch.Tensor:
        """Each row's FLOPs target, by its label: (rows,) float32, below 1."""
        return (self.settings.target * self.scales()).clamp(max=0.99)[labels].float()

    def update(self, per_row_loss: torch.Tensor, labels: torch.Tensor,
               reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Fold a batch's per-row cross-entropy into the running per-class losses; `reduce` (a
        `Dist`'s all_reduce_sum, the tensor itself when alone) sums the batch's class totals over
        processes first."""
        with torch.no_grad():
            sums = torch.zeros(2, self.num_classes, dtype=torch.float64, device=self.loss.device)
            sums[0].index_add_(0, labels, per_row_loss.detach().double())
            sums[1].index_add_(0, labels, torch.ones_like(labels, dtype=torch.float64))
            if reduce is not None:
                sums = reduce(sums)
            present = sums[1] > 0
            batch = sums[0] / sums[1].clamp(min=1)
            first = present & ~self.seen
            blended = DECAY * self.loss + (1 - DECAY) * batch
            self.loss = torch.where(first, batch, torch.where(present, blended, self.loss))
            self.seen |= present

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"loss": self.loss.cpu(), "seen": self.seen.cpu()}

    def load_state_dict(self, state: object) -> None:
        """Restore saved running losses; anything not of this run's shape is an error."""
        ok = (isinstance(state, dict) and all(isinstance(state.get(k), torch.Tensor) for k in ("loss", "seen"))
              and tuple(state["loss"].shape) == (self.num_classes,) and tuple(state["seen"].shape) == (self.num_classes,)
              and bool(torch.isfinite(state["loss"]).all()) and bool((state["loss"] >= 0).all()))
        if not ok:
            raise MwtError("the checkpoint's resume state has malformed per-class budget statistics")
        self.loss = state["loss"].to(self.loss.device, torch.float64)  # type: ignore[index]
        self.seen = state["seen"].to(self.seen.device, torch.bool)  # type: ignore[index]
