"""The figures `mwt modularize` and `mwt eval` print: module KRR, cohesion, coupling, accuracy."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mwt.checkpoint import Checkpoint
from mwt.data import Split
from mwt.modularize import check_threshold, krr, module_coupling, retain_only, retained_kernels
from mwt.train import accuracy


@dataclass
class ModuleReport:
    """Figures for all single-class modules of a modularized checkpoint."""

    test_acc: float
    class_krr: dict[str, float]
    mean_krr: float
    cohesion: float  # mean Jaccard of kernel sets within a class (higher is better)
    coupling: float  # mean Jaccard between modules' kernel sets (lower is better)
    threshold: float

    def table(self) -> str:
        rows = [f"{'class':<14} {'KRR':>7}"]
        rows += [f"{name:<14} {100 * v:6.2f}%" for name, v in self.class_krr.items()]
        rows.append("")
        rows.append(f"test accuracy        {100 * self.test_acc:6.2f}%")
        rows.append(f"mean module KRR      {100 * self.mean_krr:6.2f}%   (threshold {self.threshold})")
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

    def table(self) -> str:
        return "\n".join([
            f"sub-task             {', '.join(self.classes)}  ({self.samples} test samples)",
            f"full model accuracy  {100 * self.full_acc:6.2f}%   (argmax over these classes' logits)",
            f"module accuracy      {100 * self.module_acc:6.2f}%   (simulated: unretained kernels zeroed)",
            f"module KRR           {100 * self.krr:6.2f}%",
        ])


def module_report(ckpt: Checkpoint, test_data: Split, threshold: float = 0.9, device: str = "cpu") -> ModuleReport:
    """KRR of every class's module, their cohesion and coupling, and the model's test accuracy."""
    check_threshold(threshold)
    mod = ckpt.require_modularization()
    class_krr = {name: krr(retained_kernels(mod, [c], threshold)) for c, name in enumerate(ckpt.classes)}
    cohesion_values = [v for v in mod.sample_cohesion if not math.isnan(v)]
    return ModuleReport(
        test_acc=accuracy(ckpt.build().to(device), test_data, device=device),
        class_krr=class_krr,
        mean_krr=sum(class_krr.values()) / len(class_krr),
        cohesion=sum(cohesion_values) / len(cohesion_values) if cohesion_values else float("nan"),
        coupling=module_coupling(mod, threshold),
        threshold=threshold,
    )


def subtask_report(
    ckpt: Checkpoint, classes: list[int], test_data: Split, threshold: float = 0.9, device: str = "cpu"
) -> SubtaskReport:
    """Full model vs its union module (simulated in PyTorch) on the sub-task's test samples."""
    mod = ckpt.require_modularization()
    retained = retained_kernels(mod, classes, threshold)
    model = ckpt.build().to(device)
    full = accuracy(model, test_data, classes=classes, device=device)
    with retain_only(model, retained):
        simulated = accuracy(model, test_data, classes=classes, device=device)
    return SubtaskReport(
        classes=[ckpt.classes[c] for c in classes], samples=len(test_data.where(classes)),
        full_acc=full, module_acc=simulated, krr=krr(retained),
    )
