"""The reuse matrix: every sub-task's module scored against the full model, in PyTorch.

For each sub-task (every class pair, and seeded random triples) three accuracies on the
sub-task's test images, each with argmax over the sub-task's logits only:
- the full model, restricted to the classes;
- the dynamic module (unretained kernels zeroed, mask generators kept);
- the data-free gate-free module: the kernels the exporter keeps (with alignment), each at its
  classes' mean gate from the modularization and no generators, which is exactly the network
  `mwt-export --gates folded` writes, computed without a single training image;
and the FLOPs each module keeps, of the plain full model's.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from mwt.checkpoint import Checkpoint
from mwt.cost import CostModel, cost_model
from mwt.data import AnySplit, Split, batches_in_order
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_ROUNDING, DEFAULT_THRESHOLD
from mwt.modularize import folded_gate_values, frozen_gates, retain_only
from mwt.progress import progress
from mwt.selection import ModuleSelection


def all_pairs(num_classes: int) -> list[tuple[int, ...]]:
    """Every unordered pair of classes."""
    return list(itertools.combinations(range(num_classes), 2))


def random_subtasks(num_classes: int, size: int, count: int, seed: int = 0) -> list[tuple[int, ...]]:
    """`count` distinct seeded random sub-tasks of `size` classes (all of them if there are fewer)."""
    every = list(itertools.combinations(range(num_classes), size))
    return sorted(random.Random(seed).sample(every, min(count, len(every))))


@dataclass
class SubtaskScore:
    """One sub-task's figures (accuracies in [0, 1], FLOPs kept of the plain full model)."""

    classes: list[str]
    samples: int
    full_acc: float
    dynamic_acc: float
    gate_free_acc: float
    flops_kept: float  # of the kept kernels (the dynamic module adds its pruned generators' few)

    @property
    def gate_free_drop(self) -> float:
        """Accuracy points the data-free gate-free module loses against the full model (positive = worse)."""
        return self.full_acc - self.gate_free_acc

    @property
    def dynamic_drop(self) -> float:
        return self.full_acc - self.dynamic_acc

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "gate_free_drop": self.gate_free_drop, "dynamic_drop": self.dynamic_drop}


@dataclass
class Spread:
    """min / median / mean / max of one figure over the sub-tasks."""

    min: float
    median: float
    mean: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(min(values), statistics.median(values), statistics.fmean(values), max(values))


def _lookup(classes: list[int]) -> torch.Tensor:
    """Dataset label -> position among `classes` (-1 elsewhere)."""
    lookup = torch.full((max(classes) + 1,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return lookup


@torch.no_grad()
def _logits(model: nn.Module, data: AnySplit) -> torch.Tensor:
    return torch.cat([model(x)[0] for x, _ in batches_in_order(data, torch.arange(len(data)), 500)])


def _correct_of(logits: torch.Tensor, labels: torch.Tensor, classes: list[int]) -> int:
    """How many rows of `logits` (images of `classes` only) the argmax over `classes` gets right."""
    return int((logits[:, classes].argmax(1) == _lookup(classes)[labels]).sum())


def _correct(model: nn.Module, data: Split, classes: list[int]) -> int:
    return _correct_of(_logits(model, data), data.labels, classes)


def score_subtasks(
    ckpt: Checkpoint, subtasks: Iterable[Sequence[int]], test_data: AnySplit, *, threshold: float = DEFAULT_THRESHOLD,
    align: int = DEFAULT_ALIGN, pad_limit: float | None = None, rounding: str = DEFAULT_ROUNDING,
    show_progress: bool = False, cost: CostModel | None = None,
) -> list[SubtaskScore]:
    """Score each sub-task's modules on its classes' test images (see the module docstring);
    `align`, `pad_limit` and `rounding` select their kernels as `ModuleSelection.of` does; `cost`
    is the network's cost model where the caller probed it already."""
    if cost is None:
        cost = cost_model(ckpt.build(), ckpt.spec.input_shape)
    selections = [ModuleSelection.of(ckpt, list(classes), threshold=threshold, align=align, cost=cost,
                                     pad_limit=pad_limit, rounding=rounding) for classes in subtasks]
    return score_selections(ckpt, selections, test_data, cost=cost, show_progress=show_progress)


def score_selections(ckpt: Checkpoint, selections: Sequence[ModuleSelection], test_data: AnySplit, *,
                     cost: CostModel | None = None, show_progress: bool = False) -> list[SubtaskScore]:
    """Score modules already selected from `ckpt` (e.g. those a benchmark also compiles, so each
    module's kernels are worked out once) on their classes' test images; `cost` is the network's
    cost model where the caller probed it already (else probed here)."""
    mod = ckpt.require_modularization()
    model = ckpt.build().eval()
    if cost is None:
        cost = cost_model(model, ckpt.spec.input_shape)
    # The full model answers the same for every sub-task: one pass over the test images serves all.
    full_logits = _logits(model, test_data)
    scores = []
    for selection in progress(selections, total=len(selections), desc="sub-tasks", enable=show_progress):
        classes, kept = list(selection.indices), selection.kept
        data = test_data.where(classes).materialize()
        n = max(len(data), 1)
        rows = torch.isin(test_data.labels, torch.tensor(classes))
        full = _correct_of(full_logits[rows], test_data.labels[rows], classes) / n
        with retain_only(model, kept):
            dynamic = _correct(model, data, classes) / n
            with frozen_gates(model, folded_gate_values(mod, classes, kept)):
                gate_free = _correct(model, data, classes) / n
        scores.append(SubtaskScore(
            classes=[ckpt.classes[c] for c in classes], samples=len(data), full_acc=full, dynamic_acc=dynamic,
            gate_free_acc=gate_free, flops_kept=selection.flops_kept(cost),
        ))
    return scores


def summary(scores: Sequence[SubtaskScore], all_classes_flops: float | None = None) -> dict[str, Spread]:
    """The spread of each figure over the sub-tasks (accuracy drops in points of [0, 1]). Given the
    FLOPs kept by the module of every class (selected the same way), also each sub-task's FLOPs as a
    share of it: near 1 when the sub-tasks' modules are one pruned network that all classes share."""
    spreads = {
        "full_acc": Spread.of([s.full_acc for s in scores]),
        "gate_free_acc": Spread.of([s.gate_free_acc for s in scores]),
        "gate_free_drop": Spread.of([s.gate_free_drop for s in scores]),
        "dynamic_drop": Spread.of([s.dynamic_drop for s in scores]),
        "flops_kept": Spread.of([s.flops_kept for s in scores]),
    }
    if all_classes_flops:
        spreads["all_classes_share"] = Spread.of([s.flops_kept / all_classes_flops for s in scores])
    return spreads


def summary_table(scores: Sequence[SubtaskScore], title: str, all_classes_flops: float | None = None) -> str:
    """min / median / mean / max of the figures, as `mwt eval --all-pairs` prints them (see `summary`)."""
    rows = [f"{title}: {len(scores)} sub-tasks", f"{'':<36} {'min':>8} {'median':>8} {'mean':>8} {'max':>8}"]
    labels = {
        "full_acc": "full model accuracy", "gate_free_acc": "gate-free module accuracy",
        "gate_free_drop": "gate-free drop vs full (pp)", "dynamic_drop": "dynamic drop vs full (pp)",
        "flops_kept": "FLOPs kept (% of plain)", "all_classes_share": "FLOPs kept (% of all-classes module)",
    }
    for key, spread in summary(scores, all_classes_flops).items():
        rows.append(f"{labels[key]:<36} " + " ".join(f"{100 * v:8.2f}" for v in asdict(spread).values()))
    return "\n".join(rows)
