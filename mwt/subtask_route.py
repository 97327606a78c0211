"""Training through the static gates of sampled sub-tasks: the `reuse` recipe's extra path.

A module is exported without its mask generators: each kept kernel gets a constant gate (its
classes' mean gate) and every other kernel is gone. Nothing in MwT's losses trains the network
to work that way, so such modules collapse (docs/results.md). Here, in every step, a share of
the batch is routed the way an exported module will route it: each routed sample draws a
sub-task (its own class plus one or two others), and every gated layer applies, instead of
the sample's own generator output, that sub-task's static gate: the union of its classes'
kernels (running frequency >= threshold, as `mwt modularize` reads them off) at their running
mean gate values. Those samples are scored by cross-entropy over the sub-task's classes only,
as the module will score them. The rest of the batch trains as MwT does (dynamic gates, full
cross-entropy, cohesion, coupling, cost), and only those samples update the running statistics.

Modules remain kernel sets read off the trained model after training: the route only decides
what the network learns to work with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mwt.distributed import Dist
from mwt.core.errors import MwtError
from mwt.models import gated_layers
from mwt.modularize import class_kernels


@dataclass(frozen=True)
class RouteSettings:
    """How the sub-task route samples and keeps its statistics."""

    share: float  # of each batch routed through static sub-task gates, in [0, 1)
    sizes: tuple[int, ...] = (2, 3)  # sub-task sizes drawn uniformly (own class + size-1 others)
    threshold: float = 0.9  # a kernel joins a class's set at running frequency >= threshold
    momentum: float = 0.05  # weight of a step's batch in the running statistics

    @classmethod
    def for_task(cls, share: float, num_classes: int) -> RouteSettings:
        """The default settings with only the sub-task sizes a task of `num_classes` classes holds
        (a 2-class task routes through its one 2-class sub-task)."""
        return cls(share, tuple(s for s in cls.sizes if s <= num_classes))

    def check(self, num_classes: int) -> None:
        if not 0 <= self.share < 1:
            raise MwtError(f"the reuse share must be in [0, 1), got {self.share}", options=("reuse",))
        if not self.sizes or any(not 1 <= s <= num_classes for s in self.sizes):
            raise MwtError(f"sub-task sizes must be in 1..{num_classes}, got {list(self.sizes)}")


@dataclass
class RoutePlan:
    """One batch's routing: which rows take static gates, and each routed row's sub-task."""

    routed: torch.Tensor  # (B,) bool
    members: torch.Tensor  # (R, K) bool: the classes of each routed row's sub-task


class SubtaskRoute:
    """Running per-class gate statistics and the static sub-task gates built from them."""

    def __init__(self, model: nn.Module, num_classes: int, settings: RouteSettings, device: torch.device) -> None:
        settings.check(num_classes)
        self.settings = settings
        self.num_classes = num_classes
        self.layers = [n for n, _ in gated_layers(model)]
        widths = [b.out_channels for _, b in gated_layers(model)]
        # Running frequency of gate > 0 and running mean gate, per layer: (K, C). None until seen.
        self.frequency = [torch.ones(num_classes, c, device=device) for c in widths]
        self.mean = [torch.ones(num_classes, c, device=device) for c in widths]
        self.seen = torch.zeros(num_classes, dtype=torch.bool, device=device)

    def plan(self, labels: torch.Tensor, generator: torch.Generator, dist: Dist = Dist()) -> RoutePlan:
        """Pick the routed rows and their sub-tasks (drawn from `generator`, so runs repeat; under
        torchrun every process routes as many rows, `dist` agreeing on the fewest)."""
        b, k = labels.shape[0], self.num_classes
        draw = torch.rand(b, generator=generator)
        routed = (draw < self.settings.share).to(labels.device)
        # Until a class has been seen with dynamic gates its statistics mean nothing.
        routed &= self.seen[labels]
        # At least one dynamic row: MwT's losses over no rows are NaN (a batch of one row, routed).
        if bool(routed.all()):
            routed[-1] = False
        if dist.active:
            # Which classes a process holds is its own, so are its routable rows: every process keeps the
            # fewest, as the losses' gathers need equal row counts and `generator` must draw alike everywhere.
            fewest = dist.all_reduce_min(routed.sum())
            routed &= torch.cumsum(routed.long(), 0) <= fewest
        r = int(routed.sum())
        own = labels[routed]
        sizes = torch.tensor(self.settings.sizes)[torch.randint(len(self.settings.sizes), (r,), generator=generator)]
        # Other classes: a random order of all classes per row, own class pushed last, first size-1 taken.
        scores = torch.rand(r, k, generator=generator).to(labels.device)
        scores[torch.arange(r, device=labels.device), own] = 2.0
        rank = scores.argsort(1).argsort(1)  # (R, K): position of each class in the row's order
        members = rank < (sizes.to(labels.device) - 1)[:, None]
        members[torch.arange(r, device=labels.device), own] = True
        return RoutePlan(routed, members)

    def static_gates(self, members: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the (R, C) static gates of each routed row's sub-task: the union of its
        classes' kernel sets, at the classes' mean running gate, 0 elsewhere."""
        weights = members.float() / members.float().sum(1, keepdim=True)  # (R, K)
        gates = []
        for freq, mean in zip(self.frequency, self.mean):
            keep = class_kernels(freq, self.settings.threshold).float()  # (K, C)
            union = (members.float() @ keep) > 0
            gates.append((weights @ mean) * union)
        return gates

    @contextlib.contextmanager
    def routing(self, model: nn.Module, plan: RoutePlan) -> Iterator[None]:
        """Within the block, the routed rows' generator outputs are replaced by static gates."""
        if not bool(plan.routed.any()):
            yield
            return
        static = self.static_gates(plan.members)
        blocks = dict(gated_layers(model))

        def replace(value: torch.Tensor):  # noqa: ANN202
            def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
                out = out.clone()
                out[plan.routed] = value.to(out.dtype)
                return out
            return hook

        handles = [blocks[n].gate.register_forward_hook(replace(v))  # type: ignore[union-attr]
                   for n, v in zip(self.layers, static)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    @torch.no_grad()
    def update(self, gates: list[torch.Tensor], labels: torch.Tensor, dist: Dist = Dist()) -> None:
        """Fold one batch's dynamic gates into the running statistics (summed over processes)."""
        k = self.num_classes
        onehot = F.one_hot(labels, k).float()  # (B, K)
        counts = onehot.sum(0)
        sums = [torch.cat([onehot.T @ (g.float() > 0).float(), onehot.T @ g.float()]) for g in gates]  # (2K, C)
        if dist.active:
            for t in (counts, *sums):
                dist.all_reduce_sum(t)
        present = counts > 0
        m = self.settings.momentum
        for i, s in enumerate(sums):
            freq, mean = s[:k] / counts.clamp(min=1)[:, None], s[k:] / counts.clamp(min=1)[:, None]
            # A class seen for the first time takes the batch's figures as they are.
            w = torch.where(self.seen, torch.full_like(counts, m), torch.ones_like(counts))[:, None]
            w = w * present[:, None]
            self.frequency[i] = (1 - w) * self.frequency[i] + w * freq
            self.mean[i] = (1 - w) * self.mean[i] + w * mean
        self.seen |= present

    def state_dict(self) -> dict[str, list[torch.Tensor] | torch.Tensor]:
        return {"frequency": [t.cpu() for t in self.frequency], "mean": [t.cpu() for t in self.mean],
                "seen": self.seen.cpu()}

    def load_state_dict(self, state: object) -> None:
        """Restore saved statistics; anything not of this route's shapes is an error."""
        ok = (isinstance(state, dict) and isinstance(state.get("seen"), torch.Tensor)
              and tuple(state["seen"].shape) == (self.num_classes,)
              and all(isinstance(state.get(key), list) and len(state[key]) == len(self.frequency)
                      and all(isinstance(t, torch.Tensor) and t.shape == ref.shape and bool(torch.isfinite(t).all())
                              for t, ref in zip(state[key], self.frequency))
                      for key in ("frequency", "mean")))
        if not ok:
            raise MwtError("the checkpoint's resume state has malformed sub-task statistics")
        device = self.seen.device
        self.frequency = [t.to(device, torch.float32) for t in state["frequency"]]  # type: ignore[index]
        self.mean = [t.to(device, torch.float32) for t in state["mean"]]  # type: ignore[index]
        self.seen = state["seen"].to(device, torch.bool)  # type: ignore[index]


def subtask_cross_entropy(logits: torch.Tensor, members: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each routed row over its sub-task's classes only (as its module scores it)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    masked = logits.masked_fill(~members, float("-inf"))
    return F.cross_entropy(masked, labels)
