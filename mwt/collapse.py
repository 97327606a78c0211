"""The collapse guard: a run whose training accuracy falls sharply from one epoch to the next is
rewound to an earlier epoch and goes on at a lower learning rate (`mwt train --collapse-drop`).

Measured (docs/results.md, stops 47, 50 and 51): under a FLOPs budget that binds, a run can tip
within an epoch into a state where every class keeps the same few kernels (coupling cosine
0.77 -> 0.91) and the network, left with too little, fits the training images far worse; it never
recovers. Stop 50's P1s1 fell 17.2 pp of training accuracy in one epoch and ended 5.27 pp under
its standard model; stop 47's C2 fell 11.2 pp. Over the 15 healthy runs of stops 43-50 the largest
fall between consecutive epochs was 4.8 pp, so DEFAULT_DROP (8 pp) parts the two, and the guard
leaves every healthy run logged so far exactly as it was (a run is the same with or without it
until it fires).

The guard works on epoch figures the run has anyway (no extra pass over the data), keeps the
state of the last two healthy epochs in memory, and on a fall rewinds to the older one: the fall
shows in an epoch's average, but it may have begun at the end of the epoch before (P1s1's test
accuracy had already dropped to 53.5% at the end of epoch 8, before its epoch-9 average fell).
What the rewound run changes was measured from P1s1's own state at the end of epoch 7 (stops 51-52).
Stop 51 halved the FLOPs weight: the run held two epochs, fell again at epoch 11, and at a quarter
weight ended 1.86 pp under its standard model with its samples no longer held to their budget
(19.0% of the FLOPs spent against 17%). Halving the learning rate instead (0.044 -> 0.022) and
keeping the FLOPs weight, epochs 8-12 trained at 86.3-89.3% (stop 51's: 84.9-86.9%, then the
fall) with the budget binding; trained on to the end (stop 52's G3) it never fell again (largest
fall 0.4 pp) and ended 2.14 pp under its standard, its pairs at 9.12% of the FLOPs and 3.21x
faster than the plain model (stop 51's: 8.79%, 2.81x). So the fall looks like steps too large for
gates at the edge of closing (a ReLU(tanh) gate that closes gets no gradient to reopen) more than
like the budget itself: the guard cuts the step and leaves the budget the user set alone.

A loss that goes non-finite is answered the same way (a Divergence). Stop 65's K0w diverged at step
282 of epoch 16 (one all-but-closed gate vector's cosine gradient, 4.7e8): the run stopped with an
error and only a resume of its epoch-15 save, on mended code, took it on. Rewound two epochs at half
the learning rate, such a run goes on by itself; past MAX_REWINDS it still ends with the error.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, ClassVar

# A fall of training accuracy (a fraction) between consecutive epochs that counts as a collapse.
DEFAULT_DROP = 0.08
# ... and that is this many standard errors of the difference of two epochs' accuracies.
NOISE_Z = 4.0
# After a rewind the learning rate is multiplied by this (again at each further rewind); the cosine
# schedule goes on from there, so the cut lasts to the end of the run.
LR_BACKOFF = 0.5
# A run rewinds at most this many times; a fall after that is reported and the run goes on.
MAX_REWINDS = 3


@dataclass(frozen=True)
class Collapse:
    """A detected fall: at `epoch`, training accuracy `train_acc` against `before` the epoch before."""

    log_key: ClassVar[str] = "collapse"  # the epoch log's line for it
    epoch: int
    train_acc: float
    before: float
    coupling: float
    coupling_before: float

    def describe(self) -> str:
        return (f"epoch {self.epoch}'s training accuracy fell {100 * (self.before - self.train_acc):.1f} pp "
                f"({100 * self.before:.1f}% -> {100 * self.train_acc:.1f}%; coupling {self.coupling_before:.2f} -> "
                f"{self.coupling:.2f}), as when the classes' gates collapse onto the same kernels")


@dataclass(frozen=True)
class Divergence:
    """A loss that went non-finite in `epoch`, found `step` steps in (the check reads the sums every few steps)."""

    log_key: ClassVar[str] = "divergence"
    epoch: int
    step: int

    def describe(self) -> str:
        return f"epoch {self.epoch}'s loss was not finite by step {self.step} (the run diverged)"


def detect(previous: dict[str, float] | None, record: dict[str, float], drop: float,
           samples: int) -> Collapse | None:
    """The collapse `record` (an epoch's figures, over `samples` training images) shows against the
    epoch before, or None. It counts only in an epoch the FLOPs term was on (collapses come with a
    budget) and only past the noise of two epochs' averages (NOISE_Z standard errors), so that a run
    on a few hundred images, whose accuracy swings from epoch to epoch, is left alone."""
    if previous is None or drop <= 0 or not record.get("gamma"):
        return None
    before, after = previous.get("train_acc"), record.get("train_acc")
    if before is None or after is None or before - after < drop:
        return None
    p = (before + after) / 2
    if before - after < NOISE_Z * math.sqrt(2 * p * (1 - p) / max(samples, 1)):
        return None
    return Collapse(int(record.get("epoch", 0)), after, before, record.get("coupling", 0.0),
                    previous.get("coupling", 0.0))


@dataclass
class Snapshot:
    """A run's whole state at an epoch boundary, held in memory: `epoch` epochs done."""

    epoch: int
    state: dict[str, Any]  # whatever the trainer needs to restore (weights, optimizer, generators...)


class SnapshotRing:
    """The last `size` healthy epoch boundaries' states (deep copies, so training goes on freely)."""

    def __init__(self, size: int = 2) -> None:
        self._kept: deque[Snapshot] = deque(maxlen=size)

    def keep(self, epoch: int, state: dict[str, Any]) -> None:
        self._kept.append(Snapshot(epoch, copy.deepcopy(state)))

    def __len__(self) -> int:
        return len(self._kept)

    def oldest(self) -> Snapshot | None:
        """The snapshot to rewind to (a copy, so it can be restored again), or None when none is kept."""
        if not self._kept:
            return None
        return Snapshot(self._kept[0].epoch, copy.deepcopy(self._kept[0].state))

    def drop_after(self, epoch: int) -> None:
        """Forget the snapshots past `epoch` (a rewind's target): they belong to the abandoned path."""
        while self._kept and self._kept[-1].epoch > epoch:
            self._kept.pop()
