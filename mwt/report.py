"""The figures `mwt modularize` and `mwt eval` print: module KRR, FLOPs kept, cohesion, coupling, accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from mwt.checkpoint import Checkpoint
from mwt.cost import cost_model
from mwt.data import AnySplit
from mwt.defaults import DEFAULT_THRESHOLD
from mwt.evaluate import accuracy
from mwt.modularize import module_coupling, retain_only
from mwt.selection import ModuleSelection, krr


def percent_rows(rows: Sequence[tuple[str, float, str]], width: int) -> list[str]:
    """Figures as the reports print them: a label `width` wide, a percentage, and a note if any."""
    return [f"{label:<{width}}{100 * value:6.2f}%" + (f"   ({note})" if note else "") for label, value, note in rows]


@dataclass
class ModuleReport:
    """Figures for all single-class modules of a modularized checkpoint."""

    test_acc: float
    class_krr: dict[str, float]
    class_flops: dict[str, float]  # FLOPs of each module's kept kernels / the plain full model's
    union_krr: float  # the kernels any class keeps: what the whole model runs on, at most
    union_flops: float
    cohesion: float  # mean Jaccard of kernel sets within a class (higher is better)
    coupling: float  # mean Jaccard between modules' kernel sets (lower is better)
    threshold: float

    @property
    def mean_krr(self) -> float:
        return sum(self.class_krr.values()) / len(self.class_krr)

    @property
    def mean_flops(self) -> float:
        return sum(self.class_flops.values()) / len(self.class_flops)

    def table(self) -> str:
        rows = [f"{'class':<14} {'KRR':>7} {'FLOPs kept':>11}"]
        rows += [f"{name:<14} {100 * v:6.2f}% {100 * self.class_flops[name]:10.2f}%" for name, v in self.class_krr.items()]
        # The union of every module bounds the whole model's capacity: when classes share most
        # kernels it is barely bigger than one module, and the whole model is that small a network.
        rows.append(f"{'all classes':<14} {100 * self.union_krr:6.2f}% {100 * self.union_flops:10.2f}%   "
                    "(their union: the kernels the whole model uses)")
        rows.append("")
        rows += percent_rows([("test accuracy", self.test_acc, ""),
                              ("mean module KRR", self.mean_krr, f"threshold {self.threshold}"),
                              ("mean FLOPs kept", self.mean_flops, "of the full model without gates")], 21)
        rows.append(f"cohesion (Jaccard)   {self.cohesion:7.4f}")
        rows.append(f"coupling (Jaccard)   {self.coupling:7.4f}")
        return "\n".join(rows)


@dataclass
class SubtaskReport:
    """Figures for one sub-task's union module on that sub-task's test samples."""

    classes: list[str]
    samples: int
    full_acc: float
    module_acc: float
    krr: float
    flops_kept: float

    def table(self) -> str:
        return "\n".join([f"sub-task             {', '.join(self.classes)}  ({self.samples} test samples)", *percent_rows([
            ("full model accuracy", self.full_acc, "argmax over these classes' logits"),
            ("module accuracy", self.module_acc, "simulated: unretained kernels zeroed"),
            ("module KRR", self.krr, ""),
            ("module FLOPs kept", self.flops_kept, "of the full model without gates"),
        ], 21)])


def module_report(
    ckpt: Checkpoint, test_data: AnySplit, threshold: float = DEFAULT_THRESHOLD, device: str = "cpu"
) -> ModuleReport:
    """KRR and FLOPs kept of every class's module and of their union, their cohesion and coupling,
    and the model's test accuracy."""
    modules = [ModuleSelection.of(ckpt, [c], threshold=threshold, align=1) for c in range(len(ckpt.classes))]
    union = ModuleSelection.of(ckpt, list(range(len(ckpt.classes))), threshold=threshold, align=1)
    model = ckpt.build()
    cost = cost_model(model, ckpt.spec.input_shape)
    mod = ckpt.require_modularization()
    cohesion_values = [v for v in mod.sample_cohesion if not math.isnan(v)]
    return ModuleReport(
        test_acc=accuracy(model.to(device), test_data, device=device),
        class_krr={m.names[0]: krr(m.kept) for m in modules},
        class_flops={m.names[0]: m.flops_kept(cost) for m in modules},
        union_krr=krr(union.kept),
        union_flops=union.flops_kept(cost),
        cohesion=sum(cohesion_values) / len(cohesion_values) if cohesion_values else float("nan"),
        coupling=module_coupling(mod, threshold),
        threshold=threshold,
    )


def subtask_report(ckpt: Checkpoint, selection: ModuleSelection, test_data: AnySplit, device: str = "cpu"
                   ) -> SubtaskReport:
    """Full model vs the selected module (simulated in PyTorch) on the sub-task's test samples."""
    classes = list(selection.indices)
    model = ckpt.build()
    cost = cost_model(model, ckpt.spec.input_shape)
    model = model.to(device)
    full = accuracy(model, test_data, classes=classes, device=device)
    with retain_only(model, selection.kept):
        simulated = accuracy(model, test_data, classes=classes, device=device)
    return SubtaskReport(
        classes=list(selection.names), samples=len(test_data.where(classes)), full_acc=full, module_acc=simulated,
        krr=krr(selection.kept), flops_kept=selection.flops_kept(cost),
    )
