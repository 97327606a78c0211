"""What an export did: the figures that also go into a module file's metadata, as a table."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporter.flops import Cost
from mwt.core.metadata import GateMode, LayerKeep, Precision

GATE_WORDS = {
    GateMode.dynamic: "dynamic: the pruned mask generators decide per image (data-free)",
    GateMode.folded: "folded: constant gates in the weights, no generators (gate-free, data-free: no images used)",
}


@dataclass(frozen=True)
class FoldedCheck:
    """A folded module against its dynamic self, on training images of its classes (of every class
    for a one-class module, scored by `measure`: its accuracy would be 100% whatever it answers)."""

    dynamic_acc: float
    folded_acc: float
    images: int
    measure: str = "accuracy"  # or "separation" (mwt.evaluate.one_class_separation)


@dataclass
class ExportReport:
    """What the export did, with the figures that also go into the file's metadata.

    `full` is the full modular model (gate generators included), `plain` the same architecture
    without gates: what a user would otherwise deploy, and the baseline of `flops_kept`. The
    compiler fills in the module's figures; the export steps add what needs images
    (`folded_check`, `accuracy`) and the precision.
    """

    classes: list[str]
    layers: list[LayerKeep]
    krr: float | None
    module: Cost
    full: Cost
    plain: Cost
    seconds: float = 0.0
    file_bytes: int = 0
    folding_error: float | None = None  # folded gates: how far the constants are from the real gates
    folded_check: FoldedCheck | None = None
    precision: Precision = Precision.fp32
    accuracy: dict[str, float] = field(default_factory=dict)  # on the classes' test images, where measured
    accuracy_measure: str = "accuracy"  # a one-class module's: "separation" on every class's test images
    retained: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # the kept kernels
    finetune: dict | None = None  # a fine-tuned module's checkpoint: its source and settings (mwt finetune)
    gates: GateMode | None = None  # None: a network without gates

    @property
    def flops_kept(self) -> float:
        return self.module.flops / max(self.plain.flops, 1)

    @property
    def flops_ratio(self) -> float:
        """How many times fewer FLOPs than the plain full model."""
        return self.plain.flops / max(self.module.flops, 1)

    def table(self) -> str:
        if self.layers:
            rows = [f"{'layer':<28} {'kept':>6} / {'total':<6}"]
            rows += [f"{r.name:<28} {r.retained:>6} / {r.total:<6}" for r in self.layers]
            flops = (f"{self.module.flops / 1e6:.2f} M: {100 * self.flops_kept:.1f}% of the plain full model "
                     f"({self.plain.flops / 1e6:.2f} M, {self.flops_ratio:.1f}x fewer); the modular one has "
                     f"{self.full.flops / 1e6:.2f} M")
            params = f"{self.module.params / 1e3:.1f} k of {self.full.params / 1e3:.1f} k"
        else:  # a network without gates (a fine-tuned module, a --standard model): exported whole
            rows = ["a network without gates: exported whole"]
            flops = f"{self.module.flops / 1e6:.2f} M"
            kept = (self.finetune or {}).get("accuracy", {}).get("flops_kept")
            if kept is not None:
                flops += (f": {100 * kept:.1f}% of its source's plain full model (fine-tuned from "
                          f"{str(self.finetune.get('source_sha256', '?'))[:12]})")  # type: ignore[union-attr]
            params = f"{self.module.params / 1e3:.1f} k"
        scored_on = "the test images of every class" if self.accuracy_measure == "separation" else \
            "the classes' test images"
        rows += [
            "",
            f"classes          {', '.join(self.classes)}",
            f"KRR              {'-' if self.krr is None else f'{100 * self.krr:.2f}%'}",
            *([f"gates            {GATE_WORDS[self.gates]}"] if self.gates is not None else []),
            f"FLOPs            {flops}",
            *([f"FLOPs by layer   {self.module.shares()}"] if len(self.module.by_kind) > 1 else []),
            f"parameters       {params}",
            *([f"folding error    {100 * self.folding_error:.1f}% (RMS gate error of the constant gates, worst layer)"]
              if self.folding_error is not None else []),
            *([f"folded check     {self.folded_check.measure} {100 * self.folded_check.folded_acc:.2f}% folded vs "
               f"{100 * self.folded_check.dynamic_acc:.2f}% dynamic on {self.folded_check.images} training images"]
              if self.folded_check is not None else []),
            f"precision        {self.precision.value}",
            *[f"{self.accuracy_measure:<16} {100 * v:.2f}% ({k}, on {scored_on})" for k, v in self.accuracy.items()],
            f"file size        {self.file_bytes / 1024:.1f} KiB",
            f"export time      {self.seconds:.2f} s",
        ]
        return "\n".join(rows)
