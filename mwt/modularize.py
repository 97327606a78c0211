"""From a trained modular model to modules: kernel frequencies, retained kernel sets, and metrics."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mwt.checkpoint import Modularization
from mwt.core.errors import MwtError
from mwt.data import Split, batches_in_order
from mwt.defaults import DEFAULT_THRESHOLD
from mwt.distributed import Dist
from mwt.models import gated_layers
from mwt.progress import progress
from mwt.selection import class_kernels, krr, pooled_statistic, retained_kernels

Mask = object  # a (C,) bool kernel mask: a numpy array (a ModuleSelection's) or a CPU torch tensor

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
    if dist.active:  # summed where the process group can: NCCL reduces only tensors on the GPU
        on_device = dist.all_reduce_sum(torch.cat([t.flatten() for t in [*sums, class_counts]]).to(device)).cpu()
        parts = on_device.split([t.numel() for t in [*sums, class_counts]])
        sums = [p.view_as(t) for p, t in zip(parts, sums)]
        class_counts = parts[-1].view_as(class_counts)
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


def mean_module_krr(mod: Modularization, threshold: float = DEFAULT_THRESHOLD) -> float:
    """Mean KRR of the single-class modules."""
    k = mod.class_counts.shape[0]
    return sum(krr(retained_kernels(mod, [c], threshold)) for c in range(k)) / k


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


def _tensor(values: object, dtype: type[np.generic]) -> torch.Tensor:
    """A mask or gate vector (numpy or torch) as a CPU torch tensor of its own (a copy: the
    selection's masks are read-only)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return torch.from_numpy(np.array(values, dtype=dtype))


def retain_only(model: nn.Module, retained: Mapping[str, Mask]) -> contextlib.AbstractContextManager[nn.Module]:
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

    return _forward_hooks(model, {n: zeroing(_tensor(m, np.float32)) for n, m in retained.items()}, on_gate=False)


def frozen_gates(model: nn.Module, values: Mapping[str, object]) -> contextlib.AbstractContextManager[nn.Module]:
    """Within the block, each named gated layer's gate is the constant `values[layer]` ((C,)) for
    every sample: the PyTorch simulation of a module with folded gates. Hooks go on exit."""

    def constant(value: torch.Tensor) -> Callable[..., object]:
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
            return value.to(out.device, out.dtype).expand_as(out)
        return hook

    return _forward_hooks(model, {n: constant(_tensor(v, np.float32)) for n, v in values.items()}, on_gate=True)


def folded_gate_values(mod: Modularization, classes: Sequence[int], kept: Mapping[str, Mask]) -> dict[str, np.ndarray]:
    """The constant gates of a folded module: the classes' pooled mean gate on kept kernels, 0
    elsewhere, {layer: (C,) float32}."""
    return {k: (pooled_statistic(mod, "gate_mean", k, classes).float() * _tensor(kept[k], np.float32)).numpy()
            for k in kept}


def folding_error(mod: Modularization, classes: Sequence[int], kept: Mapping[str, Mask]) -> float:
    """How far folded (constant) gates are from the per-sample gates they replace, 0 = exact.

    Per layer: the root-mean-square difference between each kept kernel's gate and its constant
    (the classes' pooled mean), over the classes' samples, relative to the gates' own RMS; the
    figure is the worst layer's. It needs each class's mean and mean squared gate; a checkpoint
    modularized before squared gates were recorded counts only the spread between the classes.
    """
    classes = list(classes)
    counts = mod.class_counts[classes].double()
    weights = counts / counts.sum().clamp(min=1)
    worst = 0.0
    for layer in mod.layers:
        mask = _tensor(kept[layer], np.bool_)
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
