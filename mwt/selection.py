"""Which module of a checkpoint: its classes, threshold, alignment and kept kernels, worked out
and checked once.

A `ModuleSelection` is what compile, finetune, eval and the reports take. It is built from a
checkpoint's modularization (the per-class kernel frequencies `mwt modularize` records) in
numpy; nothing downstream resolves a class name, checks a threshold or recomputes a kernel set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from mwt.cost import CostModel, Streams, as_mask, union_of
from mwt.core.metadata import LayerKeep
from mwt.data import resolve_classes
from mwt.defaults import (DEFAULT_ALIGN, DEFAULT_ROUNDING, DEFAULT_THRESHOLD, check_align, check_pad_limit, check_rounding,
                          check_threshold)

if TYPE_CHECKING:
    import torch

    from mwt.checkpoint import Checkpoint, Modularization

A = TypeVar("A", np.ndarray, "torch.Tensor")


def modularization_of(ckpt: Checkpoint, path: str | Path | None = None) -> Modularization:
    """The checkpoint's modularization; MwtError naming `path`, the file it came from, when it
    has none (a standard model, or one never modularized)."""
    return ckpt.require_modularization(path) if path is not None else ckpt.require_modularization()


def class_kernels(frequency: A, threshold: float = DEFAULT_THRESHOLD) -> A:
    """Kernels of each class's module in one layer: (num_classes, C) bool, from (num_classes, C)
    frequencies (a numpy array, or a torch tensor on any device for training's sub-task route).

    A kernel belongs to a class's module when its frequency >= threshold. Where a class would keep
    no kernel of the layer, that class's threshold for the layer drops in steps of 0.05 (as in MwT)
    until one qualifies; the layer is never cut off. The threshold is the caller's to check.
    """
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


def retained_kernels(mod: Modularization, classes: Sequence[int], threshold: float = DEFAULT_THRESHOLD
                     ) -> dict[str, np.ndarray]:
    """Per layer, the union over `classes` of their modules' kernels: {layer: (C,) bool}."""
    return {n: class_kernels(mod.frequency[n].numpy(), threshold)[list(classes)].any(0) for n in mod.layers}


def pooled_statistic(mod: Modularization, statistic: str, layer: str, classes: Sequence[int]) -> torch.Tensor:
    """A per-class kernel statistic ('frequency' or 'gate_mean') of one layer, pooled over the
    samples of `classes` (classes weighted by their sample counts): (C,) float64.

    Summed by torch, as the statistics are stored: numpy sums in another order, and the last bits
    decide the order of near-ties among the kernels alignment adds, and folded gates' bytes.
    """
    per_class = getattr(mod, statistic)[layer][list(classes)].double()
    counts = mod.class_counts[list(classes)].double()
    return (per_class * counts[:, None]).sum(0) / counts.sum().clamp(min=1)


def module_kernels(mod: Modularization, classes: Sequence[int], threshold: float = DEFAULT_THRESHOLD,
                   align: int = 1, cost: CostModel | None = None,
                   pad_limit: float | None = None, rounding: str = DEFAULT_ROUNDING) -> dict[str, np.ndarray]:
    """The kernels the module of `classes` keeps: {gated layer: (C,) bool} (see `aligned_kernels`)."""
    return aligned_kernels(mod, classes, threshold, align, cost, pad_limit, rounding)[0]


def aligned_kernels(mod: Modularization, classes: Sequence[int], threshold: float = DEFAULT_THRESHOLD,
                    align: int = 1, cost: CostModel | None = None,
                    pad_limit: float | None = None,
                    rounding: str = DEFAULT_ROUNDING) -> tuple[dict[str, np.ndarray], frozenset[str]]:
    """The kernels the module of `classes` keeps, {gated layer: (C,) bool}, and the gated layers
    whose stream was left at its exact width although it is at least `align` wide.

    With align 1, the union of the classes' modules (`retained_kernels`). With align N > 1, each
    channel stream at least N wide is rounded up to a multiple of N with the kernels these classes
    use most often (real kernels, not zero padding), and every writer of a residual stream (the
    network's `cost` model's streams; without one, every layer is its own stream) keeps the whole
    stream: those channels are computed anyway.
    Narrower streams stay as they are: rounding one up to a single block costs the most where
    layers are narrow, at full resolution, and widening the input of the next conv only adds work
    (measured: 2.67x against 2.23x over the plain model at batch 32 for a sneaker/bag module,
    docs/results.md). Such a layer runs off onnxruntime's blocked (NCHWc) convs, which need a
    multiple of the block in output channels.

    With `pad_limit` F (which needs the `cost` model), a stream is rounded up only if that adds
    at most F x the unrounded module's MACs; a costlier one keeps its exact width. Rounding pays
    in time but can cost a module much of its size where a narrow high-resolution layer has just
    over N kernels (a quarter-width VGG16 on Fashion-MNIST, all 45 pairs: leaving its 32-kernel
    layer exact where 11 of them became 16 took the mean from 13.42% to 12.01% of the plain
    model's FLOPs and the median batch-32 speedup from 4.16x to 3.83x; docs/results.md, stop 37).

    `rounding` "down" meets the alignment the other way: a stream drops its `width % N` weakest
    kept kernels, those with the lowest mean gate over these classes' samples (what the folded
    module scales them by; zero where a sample closes them), so the module is smaller and still
    on the blocked kernels, with no data at hand; "nearest" drops where that moves fewer kernels
    than adding would (ties add). The pad limit applies to the streams rounded up.
    """
    retained = retained_kernels(mod, classes, threshold)
    if align == 1:
        return retained, frozenset()
    if pad_limit is not None and cost is None:
        raise ValueError("a pad limit needs the network's cost model")
    streams: Streams = cost.streams if cost is not None else ()
    base = cost.kept_macs(retained, len(classes)) if cost is not None and pad_limit is not None else 0

    def too_costly(members: list[str], padded: np.ndarray) -> bool:
        """Whether rounding this stream up adds more than the pad limit allows (never without one)."""
        if pad_limit is None or cost is None:
            return False
        return cost.kept_macs({**retained, **dict.fromkeys(members, padded)}, len(classes)) - base > pad_limit * base

    in_stream = {layer for members in streams for layer in members}
    groups = [list(members) for members in streams] + [[layer] for layer in mod.layers if layer not in in_stream]
    out = dict(retained)
    unaligned: set[str] = set()
    for members in groups:
        keep = union_of(members, retained)
        width = int(keep.sum())
        extra = width % align
        short = (-width) % align
        if short and width >= align:
            if rounding == "down" or (rounding == "nearest" and extra < short):
                strength = sum(pooled_statistic(mod, "gate_mean", layer, classes) for layer in members).numpy()
                order = np.argsort(strength, kind="stable")
                keep = keep.copy()
                keep[order[keep[order]][:extra]] = False
            else:
                frequency = sum(pooled_statistic(mod, "frequency", layer, classes) for layer in members).numpy()
                order = np.argsort(-frequency, kind="stable")
                padded = keep.copy()
                padded[order[~keep[order]][:short]] = True
                if too_costly(members, padded):
                    unaligned.update(members)
                else:
                    keep = padded
        for layer in members:
            out[layer] = keep.copy()
    return out, frozenset(unaligned)


def krr(retained: Mapping[str, object]) -> float:
    """Kernel retention rate: retained gated kernels / all gated kernels (masks numpy or torch)."""
    masks = [as_mask(m) for m in retained.values()]
    return sum(int(m.sum()) for m in masks) / max(sum(m.size for m in masks), 1)


@dataclass(frozen=True, eq=False)
class ModuleSelection:
    """One module of a checkpoint: which classes (in output order), at which threshold and
    alignment, and the kernels it keeps per gated layer.

    Built by `of`, which resolves and checks everything once; the masks are read-only. A network
    without gates (a fine-tuned module, a standard model) selected whole keeps no per-layer
    kernels: `kept` is empty and `gated` false.
    """

    indices: tuple[int, ...]  # into the checkpoint's classes
    names: tuple[str, ...]
    threshold: float = DEFAULT_THRESHOLD
    align: int = DEFAULT_ALIGN  # each stream's kept kernel count rounded to a multiple of this (see `rounding`)
    kept: Mapping[str, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))
    unaligned: frozenset[str] = frozenset()  # gated layers whose stream the pad limit left at its exact width
    rounding: str = DEFAULT_ROUNDING  # how each stream met the alignment ("up", "nearest", "down")

    @classmethod
    def of(cls, ckpt: Checkpoint, classes: str | Sequence[int | str], *, threshold: float = DEFAULT_THRESHOLD,
           align: int = DEFAULT_ALIGN, cost: CostModel | None = None, whole: bool = False,
           path: str | Path | None = None, pad_limit: float | None = None,
           rounding: str = DEFAULT_ROUNDING) -> ModuleSelection:
        """The module of `classes` (names, case-insensitive, or indices; a comma-separated string
        as the CLI takes them) of `ckpt`.

        Raises MwtError for an empty list, an unknown or repeated class, a threshold outside
        (0, 1], an alignment outside 1..1024, a negative or non-finite pad limit, an unknown
        rounding and a checkpoint never modularized (naming `path`). `cost` is the network's cost model (its streams and
        costs), probed here when an alignment needs it and none is given. With `whole`, a network
        without gates is its own module (the exporter's case); without, it is an error: modules
        come from a modular checkpoint.
        """
        indices = tuple(resolve_classes(ckpt.classes, classes))
        check_threshold(threshold)
        check_align(align)
        if pad_limit is not None:
            check_pad_limit(pad_limit)
        check_rounding(rounding)
        kept: dict[str, np.ndarray] = {}
        unaligned: frozenset[str] = frozenset()
        if ckpt.spec.modular or not whole:
            mod = modularization_of(ckpt, path)
            if align > 1 and cost is None:
                from mwt.cost import cost_model

                cost = cost_model(ckpt.build(), ckpt.spec.input_shape)
            kept, unaligned = aligned_kernels(mod, indices, threshold, align, cost, pad_limit, rounding)
            for mask in kept.values():
                mask.setflags(write=False)
        return cls(indices, tuple(ckpt.classes[c] for c in indices), threshold, align, MappingProxyType(kept),
                   unaligned, rounding)

    @property
    def gated(self) -> bool:
        """Whether the module keeps a subset of gated kernels (false for a network without gates)."""
        return bool(self.kept)

    @property
    def krr(self) -> float | None:
        """Kernel retention rate (None for a network without gates)."""
        return krr(self.kept) if self.kept else None

    def flops_kept(self, cost: CostModel) -> float:
        """The module's MACs per sample as a fraction of the whole network's under `cost` (the
        network's cost model), its logits cut to its own classes."""
        return cost.kept_fraction(self.kept, len(self.indices))

    @property
    def layers(self) -> tuple[LayerKeep, ...]:
        """Kept and total kernels per gated layer, as the module file's metadata records them."""
        return tuple(LayerKeep(k, int(v.sum()), int(v.size)) for k, v in self.kept.items())

    def masks(self) -> dict[str, np.ndarray]:
        """Writable copies of the kept masks."""
        return {k: v.copy() for k, v in self.kept.items()}
