"""MwT's cohesion and coupling losses over the gate vectors of a batch."""

from __future__ import annotations

from dataclasses import dataclass

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mwt.cost import CostModel
from mwt.models import gated_layers


@dataclass
class LossParts:
    """The parts of the modular loss for one batch (tensors, so `total` can be back-propagated)."""

    total: torch.Tensor
    ce: torch.Tensor
    cohesion: torch.Tensor
    coupling: torch.Tensor
    flops: torch.Tensor  # mean fraction of the network's MACs the samples' open gates use (1 without gates)
    subtask: torch.Tensor | None = None  # the reuse recipe: cross-entropy of the rows routed through sub-task gates
    decisiveness: torch.Tensor | None = None  # the reuse recipe: how undecided each class's kernels are (0 = crisp)
    distill: torch.Tensor | None = None  # a teacher's term (mwt.distill)
    similarity: torch.Tensor | None = None  # the teacher's similarity-preserving term (mwt.distill)


GATE_NORM_FLOOR = 1e-3  # gate vectors shorter than this are scaled, not normalized (gate_similarity_losses)


def gate_similarity_losses(gates: list[torch.Tensor], labels: torch.Tensor,
                           coupling_weights: Sequence[float] | None = None,
                           class_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cohesion, coupling) averaged over layers.

    Per layer, with gate vectors L2-normalized (one shorter than GATE_NORM_FLOOR divided by the floor
    instead, so its gradient stays bounded) and S their pairwise cosine similarities:
    cohesion = 1 - mean S over pairs of distinct samples with the same label;
    coupling = mean S over pairs with different labels.
    A layer with no such pairs contributes 0 to that term (never NaN). `coupling_weights` (one
    per layer, mean 1) weigh the layers' coupling, e.g. by what their kernels cost
    (`CostModel.kernel_costs`); by default every layer counts the same, as in MwT.
    `class_weights` ((num_classes,), positive) make coupling a weighted mean over the pairs, a pair of
    labels a and b weighing sqrt(w[a] * w[b]) (mwt.class_budget); by default every pair the same.
    """
    zero = labels.new_zeros((), dtype=torch.float32)
    if not gates:
        return zero, zero
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    same_pairs = same & ~eye
    diff_pairs = ~same
    n_same = same_pairs.sum()
    n_diff = diff_pairs.sum()
    pair_weight = None
    if class_weights is not None:
        w = class_weights.to(gates[0].device, torch.float32)[labels]
        pair_weight = (w[:, None] * w[None, :]).sqrt()[diff_pairs]
    cohesion = zero.to(gates[0].device)
    coupling = zero.to(gates[0].device)
    weights = [1.0] * len(gates) if coupling_weights is None else coupling_weights
    for g, weight in zip(gates, weights):
        # A gate vector this short (every gate under GATE_NORM_FLOOR) has no direction: it scales towards zero
        # (similarity towards 0, never NaN) instead of being stretched to length 1, whose gradient grows as
        # 1 / its length (stop 65: cohesion's gradient reached 4.7e8 in one step and the run diverged).
        u = F.normalize(g, dim=1, eps=GATE_NORM_FLOOR)
        sim = u @ u.T  # (B, B)
        if n_same > 0:
            cohesion = cohesion + (1.0 - sim[same_pairs].sum() / n_same)
        if n_diff > 0:
            if pair_weight is None:
                coupling = coupling + weight * sim[diff_pairs].sum() / n_diff
            else:
                coupling = coupling + weight * (pair_weight * sim[diff_pairs]).sum() / pair_weight.sum()
    return cohesion / len(gates), coupling / len(gates)


def modular_loss(
    logits: torch.Tensor, gates: list[torch.Tensor], labels: torch.Tensor, alpha: float, beta: float,
    gamma: float | torch.Tensor = 0.0, cost: CostModel | None = None, gate_names: list[str] | None = None, *,
    pairs: tuple[list[torch.Tensor], torch.Tensor] | None = None, block: int = 1, free: int = 0,
    target: float | torch.Tensor = 0.0, coupling_weights: Sequence[float] | None = None,
    class_weights: torch.Tensor | None = None,
) -> LossParts:
    """cross-entropy + alpha * cohesion + beta * coupling + gamma * expected FLOPs fraction.

    The last term (the cost-aware recipe) needs the model's `cost` model and the gated layers'
    names in gate order; it weighs each open kernel by what its layer costs, so that the early,
    expensive layers become class-specific too. Just cross-entropy when there are no gates.
    `pairs` (gates and labels of the whole global batch, when it is split over processes) are
    what cohesion and coupling compare; by default the local batch. `block` > 1 counts each conv's
    channels in whole blocks, as a blocked runtime computes them, and `free` > 0 leaves each stream's
first `free` channels uncounted (`CostModel.expected_fraction`). `target` > 0 makes the FLOPs
    term a budget: each sample pays gamma * (fraction - target) above it and nothing below it;
    a (rows,) tensor gives each row its own target (mwt.class_budget). `gamma` may be a 0-d
    tensor (a budget's growing pull, mwt.budget_pull).
    `coupling_weights` weigh each layer's coupling, `class_weights` each pair of classes'
    (`gate_similarity_losses`).
    """
    gates = [g.float() for g in gates]
    ce = F.cross_entropy(logits, labels)
    pair_gates, pair_labels = pairs if pairs is not None else (gates, labels)
    cohesion, coupling = gate_similarity_losses([g.float() for g in pair_gates], pair_labels, coupling_weights,
                                                class_weights)
    total = ce + alpha * cohesion + beta * coupling
    flops = torch.ones((), device=logits.device)
    if cost is not None and gates:
        fraction = cost.expected_fraction(dict(zip(gate_names or [], gates)), block, free)
        flops = fraction.mean()
        if isinstance(gamma, torch.Tensor) or gamma:  # a tensor: a budget's pull (mwt.budget_pull), read without a sync
            # A budget leaves the cross-entropy free to use every FLOP below the target.
            budget = isinstance(target, torch.Tensor) or target > 0
            total = total + gamma * (F.relu(fraction - target).mean() if budget else flops)
    return LossParts(total, ce, cohesion, coupling, flops)


def kernel_rate(gates: list[torch.Tensor]) -> torch.Tensor:
    """Fraction of gated kernels switched on (gate > 0), over the batch and all layers, as a 0-d
    tensor on the gates' device (reading it is left to the caller: no host sync here)."""
    if not gates:
        return torch.ones(())
    on = sum((g > 0).sum() for g in gates)
    return on / sum(g.numel() for g in gates)


# Width of the soft step that stands for "gate > 0" in the decisiveness loss: the gate opens where
# its generator's pre-activation is positive, and the step's slope must reach closed gates too
# (ReLU(tanh) has no gradient there).
DECISIVE_TEMPERATURE = 0.5


@contextlib.contextmanager
def gate_preactivations(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward of `model` appends every gated layer's mask-generator
    pre-activation ((B, C), in gate order) to the yielded list; the hooks go on exit."""
    found: list[torch.Tensor] = []
    handles = [block.gate.fc2.register_forward_hook(lambda _m, _i, out: found.append(out))  # type: ignore[union-attr]
               for _, block in gated_layers(model)]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


@dataclass
class GeneratorOnlyGates:
    """Each gated layer's gates and generator pre-activations, as the forward computed them but
    with the generator's input detached (`MaskGenerator.detached`), in gate order."""

    gates: list[torch.Tensor]
    preactivations: list[torch.Tensor]


@contextlib.contextmanager
def generator_only_gates(model: nn.Module) -> Iterator[GeneratorOnlyGates]:
    """Within the block, each forward of `model` also records every gated layer's gates with the
    generator's input detached: losses on them (cohesion, coupling, FLOPs, decisiveness) train the
    mask generators only, and the network's weights learn from the task's losses alone
    (TrainConfig.gate_losses = "generators"). The hooks go on exit."""
    found = GeneratorOnlyGates([], [])

    def record(gen: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        z, g = gen.detached(inputs[0])  # type: ignore[operator]
        found.preactivations.append(z)
        found.gates.append(g)

    handles = [block.gate.register_forward_hook(record) for _, block in gated_layers(model)]  # type: ignore[union-attr]
    try:
        yield found
    finally:
        for h in handles:
            h.remove()


def decisiveness(preactivations: list[torch.Tensor], labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """How undecided the classes' kernels are, averaged over layers: 0 when every kernel is open for
    all of a class's samples or closed for all of them.

    Per layer, class and kernel, p = the share of the class's samples in the batch whose gate is
    open, made soft (a sigmoid step on the generator's pre-activation); the loss is 4 p (1 - p).
    A module is the kernels its classes open with frequency >= the threshold; where frequencies
    sit at 0 or 1 that set is what every sample of the class uses, so a module cut from it, and
    its constant (folded) gates, behave as the full model did on those classes.
    Classes with fewer than two samples in the batch do not count.
    """
    if not preactivations or labels.numel() == 0:
        return torch.zeros((), device=labels.device)
    onehot = F.one_hot(labels, num_classes).float()  # (B, K)
    counts = onehot.sum(0)
    present = counts > 1
    if not bool(present.any()):
        return torch.zeros((), device=labels.device)
    total = torch.zeros((), device=labels.device)
    for z in preactivations:
        share = onehot.T @ torch.sigmoid(z.float() / DECISIVE_TEMPERATURE) / counts.clamp(min=1)[:, None]  # (K, C)
        total = total + (4 * share * (1 - share))[present].mean()
    return total / len(preactivations)
