"""The module compiler: checkpoint + class list -> a compact ONNX module, and the export's report.

`ModuleCompiler` exports a checkpoint from torch once and prepares the graph every module of it
starts from; `compile` then runs the passes for one class list. One compiler serves all the
modules of a command, a benchmark or a test.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import torch

from exporter.channels import plan_channels
from exporter.errors import ExportError
from exporter.flops import Cost, graph_cost
from exporter.passes import (
    finalize,
    fold_channel_scales,
    freeze_gates,
    import_graph,
    mask_gates,
    remove_identity_muls,
    select_classes,
    sink_channel_scales,
)
from exporter.slicing import apply_plan
from exporter.torch_export import export_with_gates
from mwt.checkpoint import Checkpoint, file_sha256, load_checkpoint
from mwt.cost import cost_model
from mwt.data import resolve_classes
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_THRESHOLD, check_selection
from mwt.core.errors import MwtWarning
from mwt.models import build_model, gated_layers
from mwt.modularize import folded_gate_values, folding_error, krr, module_kernels
from mwt.core.metadata import LOGITS, GateMode, InputSpec, LayerKeep, ModuleMetadata, Precision

# A folded module whose accuracy on its classes' training images falls more than this below the
# dynamic module's is refused unless forced: folded gates collapsed some trained modules to chance
# while others lost nothing, and no statistic of the gates told them apart (docs/results.md).
FOLDED_DROP_LIMIT = 0.05
FOLDED_CHECK_IMAGES = 1024


GATE_WORDS = {
    GateMode.dynamic: "dynamic: the pruned mask generators decide per image (data-free)",
    GateMode.folded: "folded: constant gates in the weights, no generators (gate-free, data-free: no images used)",
}


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how."""

    classes: tuple[int, ...]
    threshold: float = DEFAULT_THRESHOLD
    gates: GateMode = GateMode.dynamic
    align: int = DEFAULT_ALIGN  # round each stream's kept kernel count up to a multiple of this
    force_folded: bool = False  # fold gates even where constants cannot represent the classes
    precision: Precision = Precision.fp32
    calibration_images: int = 512  # INT8: training images of the module's classes for the activation ranges

    def validate(self, num_classes: int) -> None:
        """The one place export options are checked."""
        check_selection(self.classes, num_classes, self.threshold, self.align)
        if not 1 <= self.calibration_images <= 100_000:
            raise ExportError(f"the calibration image count must be in 1..100000, got {self.calibration_images}")


@dataclass(frozen=True)
class FoldedCheck:
    """A folded module against its dynamic self, on training images of its classes."""

    dynamic_acc: float
    folded_acc: float
    images: int


@dataclass
class ExportReport:
    """What the export did, with the figures that also go into the file's metadata.

    `full` is the full modular model (gate generators included), `plain` the same architecture
    without gates: what a user would otherwise deploy, and the baseline of `flops_kept`.
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
        rows += [
            "",
            f"classes          {', '.join(self.classes)}",
            f"KRR              {'-' if self.krr is None else f'{100 * self.krr:.2f}%'}",
            *([f"gates            {GATE_WORDS[self.gates]}"] if self.gates is not None else []),
            f"FLOPs            {flops}",
            f"parameters       {params}",
            *([f"folding error    {100 * self.folding_error:.1f}% (RMS gate error of the constant gates, worst layer)"]
              if self.folding_error is not None else []),
            *([f"folded check     {100 * self.folded_check.folded_acc:.2f}% folded vs "
               f"{100 * self.folded_check.dynamic_acc:.2f}% dynamic on {self.folded_check.images} training images"]
              if self.folded_check is not None else []),
            f"precision        {self.precision.value}",
            *[f"accuracy         {100 * v:.2f}% ({k}, on the classes' test images)" for k, v in self.accuracy.items()],
            f"file size        {self.file_bytes / 1024:.1f} KiB",
            f"export time      {self.seconds:.2f} s",
        ]
        return "\n".join(rows)


class ModuleCompiler:
    """Compiles the modules of one checkpoint.

    Guarantees with dynamic gates and align=1: for any input, a module's `logits` equal the
    PyTorch simulation (full modular model with unretained kernels zeroed) on the chosen classes,
    in the order given. The same inputs always give byte-identical output.
    """

    def __init__(self, ckpt: Checkpoint, source_sha256: str = "") -> None:
        self.ckpt = ckpt
        self.source_sha256 = source_sha256
        model = ckpt.build()
        self.gated = [n for n, _ in gated_layers(model)]
        if self.gated:
            ckpt.require_modularization()
        self.input = InputSpec(shape=ckpt.spec.input_shape, dataset=ckpt.dataset, resize=ckpt.source.resize)
        self.streams = cost_model(model, ckpt.spec.input_shape).streams if self.gated else ()
        self._exported = export_with_gates(model, ckpt.spec.input_shape)
        self._imported = gs.export_onnx(import_graph(self._exported))  # constants folded, shapes inferred
        graph = gs.import_onnx(self._imported)
        sink_channel_scales(graph)
        self._prepared = gs.export_onnx(graph)  # every module with dynamic gates starts from this graph

    @classmethod
    def from_file(cls, path: str | Path) -> ModuleCompiler:
        """A compiler for a checkpoint file (its SHA-256 goes into every module's metadata)."""
        return cls(load_checkpoint(path), file_sha256(path))

    def resolve(self, classes: str | list[str]) -> tuple[int, ...]:
        """Class names or indices (as the CLI takes them) as indices into the checkpoint's classes."""
        return tuple(resolve_classes(self.ckpt.classes, classes))

    @cached_property
    def _full_logits(self) -> onnx.ModelProto:
        graph = gs.import_onnx(self._prepared)
        graph.outputs = [t for t in graph.outputs if t.name == LOGITS]
        return finalize(graph, producer="mwt-export")

    @cached_property
    def full_cost(self) -> Cost:
        return graph_cost(self._full_logits)

    @property
    def full_model(self) -> onnx.ModelProto:
        """The full model with only its logits output, through the same passes as a module (so
        latency comparisons measure pruning, not pass differences), as an mwt module of all classes."""
        proto = onnx.ModelProto()
        proto.CopyFrom(self._full_logits)
        self._write_metadata(proto, self.full_cost, gates=GateMode.dynamic if self.gated else None)
        return proto

    @cached_property
    def _plain_logits(self) -> onnx.ModelProto:
        spec = replace(self.ckpt.spec, modular=False, gate_first=False)
        model = build_model(spec)
        model.load_state_dict({k: v for k, v in self.ckpt.state_dict.items() if ".gate." not in k})
        return finalize(import_graph(export_with_gates(model.eval(), spec.input_shape)), producer="mwt-export")

    @cached_property
    def plain_cost(self) -> Cost:
        return graph_cost(self._plain_logits)

    @property
    def plain_model(self) -> onnx.ModelProto:
        """The same architecture and weights without mask generators: the network a user would
        otherwise deploy, and the baseline that speedups are quoted against."""
        proto = onnx.ModelProto()
        proto.CopyFrom(self._plain_logits)
        self._write_metadata(proto, self.plain_cost, gates=None)
        return proto

    def kernels(self, options: ExportOptions) -> dict[str, np.ndarray]:
        """The kernels a module keeps, per gated layer (after alignment)."""
        if not self.gated:
            return {}
        mod = self.ckpt.require_modularization()
        kept = module_kernels(mod, list(options.classes), options.threshold, options.align, self.streams)
        return {k: v.numpy().astype(bool) for k, v in kept.items()}

    def compile(self, options: ExportOptions) -> tuple[onnx.ModelProto, ExportReport]:
        """Compile the module of `options.classes`; see the class docstring for what it guarantees."""
        options.validate(len(self.ckpt.classes))
        start = time.perf_counter()
        classes = list(options.classes)
        retained = self.kernels(options)
        folded = options.gates is GateMode.folded and self.gated
        # Folded gates stay right after their convs (not sunk past ReLU and pooling) so that
        # fold_channel_scales can move them into the conv weights.
        graph = gs.import_onnx(self._imported if folded else self._prepared)
        folding = None
        if folded:
            mod = self.ckpt.require_modularization()
            masks = {k: torch.from_numpy(v) for k, v in retained.items()}
            folding = folding_error(mod, classes, masks)
            values = folded_gate_values(mod, classes, masks)
            freeze_gates(graph, {k: v.numpy() for k, v in values.items()})
        else:
            mask_gates(graph, retained)
        select_classes(graph, classes)
        apply_plan(graph, plan_channels(graph))
        remove_identity_muls(graph)
        fold_channel_scales(graph)
        module = finalize(graph, producer="mwt-export")
        module_cost = graph_cost(module)
        report = ExportReport(
            classes=[self.ckpt.classes[c] for c in classes],
            layers=[LayerKeep(k, int(v.sum()), int(v.size)) for k, v in retained.items()],
            krr=krr({k: torch.from_numpy(v) for k, v in retained.items()}) if retained else None,
            module=module_cost, full=self.full_cost, plain=self.plain_cost, retained=retained, folding_error=folding,
            finetune=self.ckpt.training.get("finetune"), gates=options.gates if self.gated else None,
        )
        self._write_metadata(module, module_cost, gates=options.gates if self.gated else None,
                             options=options, report=report)
        report.seconds = time.perf_counter() - start
        report.file_bytes = module.ByteSize()
        return module, report

    def check_folded(self, options: ExportOptions, data_dir: Path | None = None) -> FoldedCheck | None:
        """Accuracy of the module with dynamic and with folded gates (PyTorch simulations) on up to
        FOLDED_CHECK_IMAGES training images of its classes; None when they are not at hand."""
        from mwt.data import load_split
        from mwt.core.errors import MwtError
        from mwt.modularize import frozen_gates, retain_only
        from mwt.train import accuracy

        try:
            train = load_split(self.ckpt.source, "train", data_dir, classes=self.ckpt.classes)
        except MwtError:
            return None
        classes = list(options.classes)
        images = train.where(classes).sample(FOLDED_CHECK_IMAGES, seed=0).materialize()
        mod = self.ckpt.require_modularization()
        kept = {k: torch.from_numpy(v) for k, v in self.kernels(options).items()}
        model = self.ckpt.build()
        with retain_only(model, kept):
            dynamic = accuracy(model, images, classes=classes)
            with frozen_gates(model, folded_gate_values(mod, classes, kept)):
                folded = accuracy(model, images, classes=classes)
        return FoldedCheck(dynamic, folded, len(images))

    def calibration(self, classes: tuple[int, ...], count: int, data_dir: Path | None = None) -> np.ndarray:
        """`count` training images of `classes` (seeded sample), float32 in [0, 1], as training saw them."""
        from mwt.data import load_named
        from mwt.core.errors import MwtError

        try:
            train = load_named(self.ckpt.source, "train", [self.ckpt.classes[c] for c in classes], data_dir)
        except MwtError as e:
            raise ExportError(f"INT8 calibration needs training images of the module's classes, and {e}",
                              options=e.options) from None
        images = train.sample(count, seed=0).materialize().images
        return images.numpy().astype(np.float32) / 255.0

    def lower(self, module: onnx.ModelProto, options: ExportOptions, calibration: np.ndarray | None = None
              ) -> onnx.ModelProto:
        """The module at `options.precision` (INT8 needs `calibration` images, see `calibration`)."""
        from exporter.precision import convert_fp16, quantize_int8

        if options.precision is Precision.fp32:
            return module
        if options.precision is Precision.fp16:
            return convert_fp16(module)
        if calibration is None:
            raise ExportError("INT8 export needs calibration images")
        lowered = quantize_int8(module, calibration)
        meta = ModuleMetadata.read(lowered)
        info = {**(meta.calibration or {}), "classes": [self.ckpt.classes[c] for c in options.classes],
                "dataset": self.ckpt.dataset, "seed": 0}
        replace(meta, calibration=info).write(lowered)
        return lowered

    def _write_metadata(self, proto: onnx.ModelProto, cost: Cost, *, gates: GateMode | None,
                        options: ExportOptions | None = None, report: ExportReport | None = None) -> None:
        classes = options.classes if options else range(len(self.ckpt.classes))
        per_module = options is not None and bool(self.gated)
        ModuleMetadata(
            classes=tuple(self.ckpt.classes[c] for c in classes),
            input=self.input,
            source_sha256=self.source_sha256,
            module_flops=cost.flops,
            full_flops=self.full_cost.flops,
            plain_flops=self.plain_cost.flops,
            module_params=cost.params,
            full_params=self.full_cost.params,
            threshold=options.threshold if per_module else None,  # type: ignore[union-attr]
            gates=gates,
            align=options.align if per_module else None,  # type: ignore[union-attr]
            krr=report.krr if report else None,
            layers=tuple(report.layers) if report else (),
            folding_error=report.folding_error if report else None,
            finetune=self.ckpt.training.get("finetune"),
            origin="fine-tuned" if self.ckpt.training.get("finetune") else ("data-free" if per_module else None),
        ).write(proto)


def export_module_file(compiler: ModuleCompiler, options: ExportOptions, out: str | Path, *,
                       data_dir: Path | None = None) -> ExportReport:
    """Compile a module at its precision and write it to `out` atomically. A lowered module's
    accuracy on its classes' test images is measured beside the FP32 one's where they are at hand."""
    from mwt.core.atomic import write_bytes_atomic

    check = None
    if options.gates is GateMode.folded and compiler.gated and not options.force_folded:
        check = _guard_folded(compiler, options, data_dir)
    model, report = compiler.compile(options)
    report.folded_check = check
    if options.precision is not Precision.fp32:
        calibration = (compiler.calibration(options.classes, options.calibration_images, data_dir)
                       if options.precision is Precision.int8 else None)
        lowered = compiler.lower(model, options, calibration)
        report.accuracy = _accuracy({"fp32": model, options.precision.value: lowered}, compiler, options, data_dir)
        model, report.precision = lowered, options.precision
    data = model.SerializeToString(deterministic=True)
    write_bytes_atomic(out, data)
    report.file_bytes = len(data)
    return report


def trained_for_reuse(ckpt: Checkpoint) -> bool:
    """Whether the checkpoint was trained through static sub-task gates (the reuse recipe), so that
    its folded, gate-free modules are the networks its training scored."""
    config = ckpt.training.get("config", {})
    return isinstance(config, dict) and float(config.get("reuse", 0) or 0) > 0


def default_gates(ckpt: Checkpoint) -> GateMode:
    """Folded (gate-free, data-free) for a checkpoint trained for reuse; dynamic otherwise."""
    return GateMode.folded if trained_for_reuse(ckpt) else GateMode.dynamic


def _guard_folded(compiler: ModuleCompiler, options: ExportOptions, data_dir: Path | None) -> FoldedCheck | None:
    """Refuse folded gates that lose accuracy; warn where that cannot be checked (except for a
    checkpoint trained for reuse, whose folded modules are what it was trained as)."""
    names = ", ".join(compiler.ckpt.classes[c] for c in options.classes)
    check = compiler.check_folded(options, data_dir)
    if check is None and trained_for_reuse(compiler.ckpt):
        return None
    if check is None:
        warnings.warn(MwtWarning(f"folded gates for {names} were not checked (no training images of them at hand); "
                                 "folding has collapsed trained modules to chance: check this module's accuracy",
                                 options=("data_dir",)), stacklevel=3)
    elif check.folded_acc < check.dynamic_acc - FOLDED_DROP_LIMIT:
        raise ExportError(
            f"folded gates cannot represent {names}: on {check.images} of their training images the folded module "
            f"is right {100 * check.folded_acc:.1f}% of the time against {100 * check.dynamic_acc:.1f}% with dynamic "
            "gates; keep dynamic gates, fine-tune a gate-free module (mwt finetune), or force folding",
            options=("force_folded",))
    return check


def _accuracy(models: dict[str, onnx.ModelProto], compiler: ModuleCompiler, options: ExportOptions,
              data_dir: Path | None) -> dict[str, float]:
    from mwt.evaluate import module_accuracy
    from mwt.data import load_named
    from mwt.core.errors import MwtError

    names = [compiler.ckpt.classes[c] for c in options.classes]
    try:
        test = load_named(compiler.ckpt.source, "test", names, data_dir)
    except MwtError:
        return {}
    return module_accuracy(models, test, list(options.classes))


def model_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of a model's deterministic serialization (for byte-identity checks)."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


__all__ = ["ExportOptions", "ExportReport", "GateMode", "ModuleCompiler", "default_gates", "export_module_file",
           "model_digest", "trained_for_reuse"]
