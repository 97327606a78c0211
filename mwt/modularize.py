"""From a trained modular model to modules: kernel frequencies, retained kernel sets, and metrics."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator

import torch
from torch import nn

from mwt.checkpoint import Modularization
from mwt.data import Split, batches_in_order
from mwt.defaults import DEFAULT_THRESHOLD, check_threshold
from mwt.distributed import Dist
from mwt.core.errors import MwtError
from mwt.models import gated_layers
from mwt.progress import progress

COHESION_SAMPLES = 256  # samples per class used for the pairwise-Jaccard cohesion estimate


@torch.no_grad()
def kernel_frequency(
    model: nn.Module, data: Split, num_classes: int, *, batch_size: int = 256, device: str | torch.device = "cpu",
    show_progress: bool = True, dist: Dist = Dist(),
) -> Modularization:
    """Run `model` over `data` and count, per class and gated kernel, how often the gate is > 0.

    Also records each class's mean gate value and mean squared gate (for folded gates and their
    folding error) and a cohesion estimate: the mean Jaccard similarity between kernel sets of pairs of
    same-class samples (first 256 per class). Under several processes each counts its share of
    `data` and the counts are summed, so the frequencies equal a single process's; the cohesion
    estimate then comes from rank 0's share.
    """
    names = [n for n, _ in gated_layers(model)]
    if not names:
        raise MwtError("this model has no gated layers: it is a standard model, not a modular one")
    model.eval().to(device)
    sums: list[torch.Tensor] = []  # per layer: (3, K, C) = gate > 0 counts, gate sums, squared gate sums
    class_counts = torch.zeros(num_classes, dtype=torch.float64)
    samples: list[list[torch.Tensor]] = [[] for _ in range(num_classes)]
    kept = [0] * num_classes
    order = torch.arange(len(data))[dist.rank::dist.world] if dist.active else torch.arange(len(data))
    steps = (len(order) + batch_size - 1) // batch_size
    bar = progress(batches_in_order(data, order, batch_size), total=steps, desc="modularize",
                   enable=show_progress and dist.main)
    for x, y in bar:
        _, gates = model(x.to(device))
        gates = [g.float().cpu() for g in gates]
        y = y.cpu()
        if not sums:
            sums = [torch.zeros(3, num_classes, g.shape[1], dtype=torch.float64) for g in gates]
        onehot = torch.nn.functional.one_hot(y, num_classes).double()  # (B, K)
        for i, g in enumerate(gates):
            g = g.double()
            sums[i][0] += onehot.T @ (g > 0).double()
            sums[i][1] += onehot.T @ g
            sums[i][2] += onehot.T @ (g * g)
        class_counts += onehot.sum(0)
        active = torch.cat([g > 0 for g in gates], dim=1)  # (B, total kernels)
        for c in range(num_classes):
            if kept[c] < COHESION_SAMPLES:
                rows = active[y == c][: COHESION_SAMPLES - kept[c]]
                samples[c].append(rows)
                kept[c] += rows.shape[0]
    if not sums:  # this rank's share was empty: contribute zeros
        sums = [torch.zeros(3, num_classes, b.out_channels, dtype=torch.float64) for _, b in gated_layers(model)]
    for t in [*sums, class_counts]:
        dist.all_reduce_sum(t)
    denom = class_counts.clamp(min=1)[:, None]
    frequency = {n: (sums[i][0] / denom).float() for i, n in enumerate(names)}
    gate_mean = {n: (sums[i][1] / denom).float() for i, n in enumerate(names)}
    gate_sq_mean = {n: (sums[i][2] / denom).float() for i, n in enumerate(names)}
    cohesion = [_mean_pairwise_jaccard(torch.cat(s) if s else torch.zeros(0, 1, dtype=torch.bool)) for s in samples]
    return Modularization(names, frequency, gate_mean, class_counts.round().long(), sample_cohesion=cohesion,
                          gate_sq_mean=gate_sq_mean)


def _mean_pairwise_jaccard(sets: torch.Tensor) -> float:
    """Mean Jaccard index over distinct pairs of rows of a boolean matrix (NaN with < 2 rows)."""
    n = sets.shape[0]
    if n < 2:
        return float("nan")
    a = sets.float()
    inter = a @ a.T
    sizes = a.sum(1)
    union = sizes[:, None] + sizes[None, :] - inter
    jac = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
    off = ~torch.eye(n, dtype=torch.bool)
    return float(jac[off].mean())


def class_kernels(frequency: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    """Kernels of each class's module in one layer: (num_classes, C) bool.

    A kernel belongs to a class's module when its frequency >= threshold. Where a class would keep
    no kernel of the layer, that class's threshold for the layer drops in steps of 0.05 (as in MwT)
    until one qualifies; the layer is never cut off.
    """
    check_threshold(threshold)
    keep = frequency >= threshold
    for c in range(frequency.shape[0]):
        t = threshold
        while not keep[c].any():
            t = round(t - 0.05, 10)
            if t <= 0:  # the class never switches this layer on: keep its single most active kernel
                keep[c, int(frequency[c].argmax())] = True
            else:
                keep[c] = frequency[c] >= t
    return keep


def retained_kernels(mod: Modularization, classes: list[int], threshold: float = DEFAULT_THRESHOLD) -> dict[str, torch.Tensor]:
    """Per layer, the union over `classes` of their modules' kernels: {layer: (C,) bool}."""
    if not classes:
        raise MwtError("the class list is empty")
    return {n: class_kernels(mod.frequency[n], threshold)[classes].any(0) for n in mod.layers}


def pooled_statistic(mod: Modularization, statistic: str, layer: str, classes: list[int]) -> torch.Tensor:
    """A per-class kernel statistic ('frequency' or 'gate_mean') of one layer, pooled over the
    samples of `classes` (classes weighted by their sample counts): (C,) float64."""
    per_class = getattr(mod, statistic)[layer][classes].double()
    counts = mod.class_counts[classes].double()
    return (per_class * counts[:, None]).sum(0) / counts.sum().clamp(min=1)


def module_kernels(
    mod: Modularization, classes: list[int], threshold: float = DEFAULT_THRESHOLD, align: int = 1,
    streams: tuple[tuple[str, ...], ...] = (),
) -> dict[str, torch.Tensor]:
    """The kernels the module of `classes` keeps: {gated layer: (C,) bool}.

    With align 1, the union of the classes' modules (`retained_kernels`). With align N > 1, each
    channel stream at least N wide is rounded up to a multiple of N with the kernels these classes
    use most often (real kernels, not zero padding), and every writer of a residual stream
    (`streams`, from the cost model) keeps the whole stream: those channels are computed anyway.
    Narrower streams stay as they are: onnxruntime pads a narrow output to its block anyway, and
    widening the input of the next conv only adds work (measured: 2.67x against 2.23x over the
    plain model at batch 32 for a sneaker/bag module, docs/results.md).
    """
    if align < 1:
        raise MwtError(f"align must be at least 1, got {align}")
    retained = retained_kernels(mod, classes, threshold)
    if align == 1:
        return retained
    in_stream = {layer for members in streams for layer in members}
    groups = [list(members) for members in streams] + [[layer] for layer in mod.layers if layer not in in_stream]
    out = dict(retained)
    for members in groups:
        keep = torch.zeros_like(retained[members[0]])
        for layer in members:
            keep |= retained[layer]
        width = int(keep.sum())
        short = (-width) % align
        if short and width >= align:
            frequency = sum(pooled_statistic(mod, "frequency", layer, classes) for layer in members)
            order = torch.argsort(-frequency, stable=True)  # type: ignore[arg-type]
            keep[order[~keep[order]][:short]] = True
        for layer in members:
            out[layer] = keep.clone()
    return out


def mean_module_krr(mod: Modularization, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Mean KRR of the single-class modules."""
    k = mod.class_counts.shape[0]
    return sum(krr(retained_kernels(mod, [c], threshold)) for c in range(k)) / k


def krr(retained: dict[str, torch.Tensor]) -> float:
    """Kernel retention rate: retained gated kernels / all gated kernels."""
    total = sum(int(m.numel()) for m in retained.values())
    return sum(int(m.sum()) for m in retained.values()) / max(total, 1)


def module_coupling(mod: Modularization, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Mean Jaccard index between the kernel sets of every pair of single-class modules."""
    k = mod.class_counts.shape[0]
    sets = torch.cat([class_kernels(mod.frequency[n], threshold) for n in mod.layers], dim=1).float()
    values = []
    for i, j in itertools.combinations(range(k), 2):
        inter = float((sets[i] * sets[j]).sum())
        union = float(((sets[i] + sets[j]) > 0).sum())
        values.append(inter / union if union else 1.0)
    return sum(values) / len(values) if values else float("nan")


@contextlib.contextmanager
def _forward_hooks(model: nn.Module, hooks: dict[str, Callable[..., object]], *, on_gate: bool) -> Iterator[nn.Module]:
    """Within the block, each named gated layer (or its mask generator) runs its hook; gone on exit."""
    blocks = dict(gated_layers(model))
    missing = set(hooks) - set(blocks)
    if missing:
        raise MwtError(f"the model has no gated layer named {sorted(missing)[0]}")
    handles = [(blocks[n].gate if on_gate else blocks[n]).register_forward_hook(h)  # type: ignore[union-attr]
               for n, h in hooks.items()]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


def retain_only(model: nn.Module, retained: dict[str, torch.Tensor]) -> contextlib.AbstractContextManager[nn.Module]:
    """Within the block, every unretained gated kernel's output is forced to zero.

    This is the PyTorch simulation of a module: the reference the exported ONNX file must match.
    The hooks are removed on exit, whatever happens.
    """

    def zeroing(keep: torch.Tensor) -> Callable[..., object]:
        def hook(_m: nn.Module, _inp: object, out: tuple[torch.Tensor, torch.Tensor]) -> object:
            y, g = out
            k = keep.to(y.device)
            return y * k[None, :, None, None], g * k[None, :]
        return hook

    return _forward_hooks(model, {n: zeroing(m.float()) for n, m in retained.items()}, on_gate=False)


def frozen_gates(model: nn.Module, values: dict[str, torch.Tensor]) -> contextlib.AbstractContextManager[nn.Module]:
    """Within the block, each named gated layer's gate is the constant `values[layer]` ((C,)) for
    every sample: the PyTorch simulation of a module with folded gates. Hooks go on exit."""

    def constant(value: torch.Tensor) -> Callable[..., object]:
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
            return value.to(out.device, out.dtype).expand_as(out)
        return hook

    return _forward_hooks(model, {n: constant(v.float()) for n, v in values.items()}, on_gate=True)


def folded_gate_values(mod: Modularization, classes: list[int], kept: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The constant gates of a folded module: the classes' pooled mean gate on kept kernels, 0 elsewhere."""
    return {k: pooled_statistic(mod, "gate_mean", k, classes).float() * kept[k].float() for k in kept}


def folding_error(mod: Modularization, classes: list[int], kept: dict[str, torch.Tensor]) -> float:
    """How far folded (constant) gates are from the per-sample gates they replace, 0 = exact.

    Per layer: the root-mean-square difference between each kept kernel's gate and its constant
    (the classes' pooled mean), over the classes' samples, relative to the gates' own RMS; the
    figure is the worst layer's. It needs each class's mean and mean squared gate; a checkpoint
    modularized before squared gates were recorded counts only the spread between the classes.
    """
    counts = mod.class_counts[classes].double()
    weights = counts / counts.sum().clamp(min=1)
    worst = 0.0
    for layer in mod.layers:
        mask = kept[layer].bool()
        if not mask.any():
            continue
        mean = mod.gate_mean[layer][classes][:, mask].double()  # (K, C)
        square = (mod.gate_sq_mean[layer][classes][:, mask].double() if mod.gate_sq_mean is not None
                  else mean * mean)
        constant = (weights[:, None] * mean).sum(0)
        miss = (weights[:, None] * (square - 2 * constant * mean + constant * constant)).sum()
        energy = (weights[:, None] * square).sum()
        if energy > 0:
            worst = max(worst, float((miss.clamp(min=0) / energy).sqrt()))
    return worst
