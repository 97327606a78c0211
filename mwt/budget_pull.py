"""A FLOPs budget that binds (`mwt train --budget-adapt RATE`).

With `--flops-target`, a sample pays gamma per FLOP above its target and nothing below it
(mwt.losses.modular_loss). Above the target that pull is the same whatever the target is, so a
lower target changes nothing unless the other losses let the run get down to it: measured on the
reuse recipe (docs/results.md, stop 59), a target of 0.14 left the samples at 21-22% of the FLOPs,
as 0.19 had (20-22%). Here the FLOPs weight is gamma times a factor that follows the constraint, as
a Lagrange multiplier does: each step it is multiplied by exp(rate * relative excess), the excess
being the batch's mean FLOPs fraction over its mean target, relative to that target. It grows while
the samples stay above their budget and shrinks back below it, never under 1 (the configured
gamma) nor over MAX_FACTOR. It starts adapting once `--gamma-warmup` has ramped the weight in.

Below the target it shrinks `relax` times faster (`--budget-relax`; 1: one rate both ways). Tried
because at one rate the factor eases slowly once the samples sit just under their budget: stop 65's
K0w (seed 0) still had 1.9 at epoch 30 and ended 1.21 pp under the standard. Measured at 5 (stop 66's
Kr, seed 0): the samples took the FLOPs back at once and sat at the budget's edge (13.1% of the FLOPs
per sample against 12.0% at one rate), the factor stayed up (1.66 at epoch 30) and the whole model
ended 1.11 pp under (one rate: 0.98). The factor's level is what the budget costs, not a lag.

The factor stays on the device (no host sync per step) and goes into resumable checkpoints and the
collapse guard's snapshots with the rest of the running state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mwt.core.errors import MwtError

MAX_FACTOR = 64.0  # the pull stops growing here: 64x the recipe's gamma already closes any gate it can


class BudgetPull:
    """The factor on the FLOPs weight that makes the budget bind."""

    def __init__(self, rate: float, device: torch.device, relax: float = 1.0) -> None:
        self.rate = rate
        self.relax = relax  # how many times faster the factor shrinks under the target than it grows above it
        self.factor = torch.ones((), dtype=torch.float64, device=device)

    def update(self, fraction: torch.Tensor, target: torch.Tensor | float, rows: int,
               reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Fold a batch in: `fraction` is its `rows` rows' mean FLOPs fraction, `target` their
        target (one number, or one per row); `reduce` (a `Dist`'s all_reduce_sum) sums over
        processes first, so every process keeps the same factor."""
        with torch.no_grad():
            # no rows (a batch all routed to sub-tasks): their mean is NaN, and they count for nothing
            fraction = fraction.detach().double().reshape(()) if rows else torch.zeros((), dtype=torch.float64,
                                                                                          device=fraction.device)
            mean_target = torch.as_tensor(target, dtype=torch.float64, device=fraction.device).mean()
            sums = torch.stack([fraction * rows, mean_target * rows,
                                torch.tensor(float(rows), dtype=torch.float64, device=fraction.device)])
            if reduce is not None:
                sums = reduce(sums)
            count = sums[2].clamp(min=1)
            mean_fraction, mean_target = sums[0] / count, sums[1] / count
            excess = (mean_fraction - mean_target) / mean_target.clamp(min=1e-6)
            # float64 throughout, and x1 above the target, so that relax 1 is exactly the one-rate factor
            ease = torch.where(excess < 0, torch.full_like(excess, self.relax), torch.ones_like(excess))
            step = torch.where(sums[2] > 0, self.rate * excess * ease, torch.zeros_like(excess))
            self.factor = (self.factor * torch.exp(step)).clamp(1.0, MAX_FACTOR)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"factor": self.factor.cpu()}

    def load_state_dict(self, state: object) -> None:
        """Restore a saved factor; anything but one finite number in [1, MAX_FACTOR] is an error."""
        factor = state.get("factor") if isinstance(state, dict) else None
        if not (isinstance(factor, torch.Tensor) and factor.numel() == 1 and bool(torch.isfinite(factor).all())
                and 1.0 <= float(factor) <= MAX_FACTOR):
            raise MwtError("the checkpoint's resume state has a malformed FLOPs budget factor")
        self.factor = factor.to(self.factor.device, torch.float64).reshape(())
