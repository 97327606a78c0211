"""compile_module: checkpoint + class list -> a compact ONNX module, and the export's report."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import torch

from exporter.channels import ChannelPlan, plan_channels
from exporter.errors import ExportError
from exporter.flops import Cost, graph_cost
from exporter.passes import (
    finalize, fold_channel_scales, freeze_gates, import_graph, mask_gates, reinfer, remove_identity_muls,
    select_classes, sink_channel_scales,
)
from exporter.slicing import apply_plan
from exporter.torch_export import LOGITS, export_with_gates
from mwt import __version__
from mwt.checkpoint import Checkpoint, Modularization, file_sha256, load_checkpoint
from mwt.data import resolve_classes
from mwt.modularize import check_threshold, krr, retained_kernels

METADATA_FORMAT = "mwt-module/1"


class GateMode(str, Enum):
    """How a module computes its gates."""

    dynamic = "dynamic"  # pruned mask generators stay: exactly the full modular model on retained kernels
    folded = "folded"  # each gate is a per-kernel constant (the classes' mean gate), folded into the weights


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how."""

    classes: tuple[int, ...]
    threshold: float = 0.9
    gates: GateMode = GateMode.dynamic
    align: int = 8  # round each layer's retained kernel count up to a multiple of this (see README)

    def validate(self) -> None:
        if not self.classes:
            raise ExportError("the class list is empty")
        if len(set(self.classes)) != len(self.classes):
            raise ExportError("a class is named twice in the class list")
        check_threshold(self.threshold)
        if self.align < 1:
            raise ExportError(f"--align must be at least 1, got {self.align}")


@dataclass
class LayerReport:
    name: str
    retained: int
    total: int


@dataclass
class ExportReport:
    """What the export did, with the figures that also go into the file's metadata."""

    classes: list[str]
    layers: list[LayerReport]
    krr: float
    module: Cost
    full: Cost
    seconds: float = 0.0
    file_bytes: int = 0
    retained: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # effective masks (after alignment)

    @property
    def flops_ratio(self) -> float:
        return self.full.flops / max(self.module.flops, 1)

    @property
    def params_ratio(self) -> float:
        return self.full.params / max(self.module.params, 1)

    def table(self) -> str:
        rows = [f"{'layer':<28} {'kept':>6} / {'total':<6}"]
        rows += [f"{r.name:<28} {r.retained:>6} / {r.total:<6}" for r in self.layers]
        rows += [
            "",
            f"classes          {', '.join(self.classes)}",
            f"KRR              {100 * self.krr:.2f}%",
            f"FLOPs            {self.module.flops / 1e6:.2f} M of {self.full.flops / 1e6:.2f} M  ({self.flops_ratio:.1f}x fewer)",
            f"parameters       {self.module.params / 1e3:.1f} k of {self.full.params / 1e3:.1f} k  ({self.params_ratio:.1f}x fewer)",
            f"file size        {self.file_bytes / 1024:.1f} KiB",
            f"export time      {self.seconds:.2f} s",
        ]
        return "\n".join(rows)


def pooled(mod: Modularization, statistic: str, layer: str, classes: list[int]) -> np.ndarray:
    """A per-class kernel statistic ('frequency' or 'gate_mean') of one layer, pooled over the
    samples of `classes` (classes weighted by their sample counts)."""
    per_class = getattr(mod, statistic)[layer][classes].double()
    counts = mod.class_counts[classes].double()
    return ((per_class * counts[:, None]).sum(0) / counts.sum().clamp(min=1)).numpy()


def align_counts(retained: np.ndarray, frequency: np.ndarray, align: int) -> np.ndarray:
    """Add a layer's most frequent unretained kernels until the count is a multiple of `align`."""
    keep = retained.copy()
    short = (-int(keep.sum())) % align
    if short:
        candidates = [int(i) for i in np.argsort(-frequency, kind="stable") if not keep[i]]
        keep[candidates[:short]] = True
    return keep


def align_spaces(plan: ChannelPlan, gate_space: dict[str, int], retained: dict[str, np.ndarray],
                 frequency: dict[str, np.ndarray], align: int) -> dict[str, np.ndarray]:
    """Retained sets that make every channel space of `plan` an aligned width, fully used.

    A residual space keeps the union of several layers' kernels, so aligning each layer alone is
    not enough: the space's width is rounded up (with the kernels of highest summed frequency)
    and every gated layer writing into it then retains all of it. Those channels are computed
    anyway, so making them real kernels rather than masked ones costs nothing and removes the
    mask nodes; nothing is zero padding.
    """
    by_space: dict[int, list[str]] = {}
    for layer, sid in gate_space.items():
        by_space.setdefault(sid, []).append(layer)
    out = {k: v.copy() for k, v in retained.items()}
    for sid, layers in sorted(by_space.items()):
        kept = np.zeros(plan.width[sid], bool)
        kept[plan.kept[sid]] = True
        widened = align_counts(kept, sum(frequency[layer] for layer in layers), align)
        for layer in layers:
            out[layer] = widened.copy()
    return out


def compile_module(
    ckpt: Checkpoint, options: ExportOptions, source_sha256: str = ""
) -> tuple[onnx.ModelProto, ExportReport]:
    """Compile the module of `options.classes` from a modularized checkpoint.

    Guarantees with dynamic gates and align=1: for any input, the module's `logits` equal the
    PyTorch simulation (full modular model with unretained kernels zeroed) on the chosen classes,
    in the order given. The same inputs always give byte-identical output.
    """
    options.validate()
    start = time.perf_counter()
    mod = ckpt.require_modularization()
    classes = list(options.classes)
    if max(classes) >= len(ckpt.classes):
        raise ExportError(f"class index {max(classes)} is out of range; the model has {len(ckpt.classes)} classes")
    model = ckpt.build()
    input_shape = (ckpt.spec.in_channels, *ckpt.spec.input_size)
    full_proto = export_with_gates(model, input_shape)
    retained = {k: v.numpy().astype(bool) for k, v in retained_kernels(mod, classes, options.threshold).items()}
    frequency = {layer: pooled(mod, "frequency", layer, classes) for layer in mod.layers}
    if options.align > 1:
        retained = {k: align_counts(v, frequency[k], options.align) for k, v in retained.items()}

    def analyse(masks: dict[str, np.ndarray]) -> tuple[gs.Graph, ChannelPlan, dict[str, int]]:
        graph = import_graph(full_proto)
        sink_channel_scales(graph)
        masked = mask_gates(graph, masks)
        select_classes(graph, classes)
        graph = reinfer(graph)
        plan = plan_channels(graph)
        return graph, plan, {layer: plan.space_of[name] for layer, name in masked.items()}

    graph, plan, gate_space = analyse(retained)
    if options.align > 1:
        widened = align_spaces(plan, gate_space, retained, frequency, options.align)
        if any((widened[k] != retained[k]).any() for k in retained):
            retained = widened
            graph, plan, gate_space = analyse(retained)
    if options.gates is GateMode.folded:
        graph = import_graph(full_proto)
        freeze_gates(graph, {k: pooled(mod, "gate_mean", k, classes) * retained[k] for k in retained})
        select_classes(graph, classes)
        graph = reinfer(graph)
        plan = plan_channels(graph)
    apply_plan(graph, plan)
    remove_identity_muls(graph)
    fold_channel_scales(graph)
    module = finalize(graph, producer="mwt-export")

    full_cost = graph_cost(_full_logits_model(full_proto))
    layers = [LayerReport(k, int(v.sum()), int(v.size)) for k, v in retained.items()]
    report = ExportReport(
        classes=[ckpt.classes[c] for c in classes], layers=layers,
        krr=krr({k: torch.from_numpy(v) for k, v in retained.items()}),
        module=graph_cost(module), full=full_cost, retained=retained,
    )
    _write_metadata(module, ckpt, options, report, source_sha256)
    report.seconds = time.perf_counter() - start
    report.file_bytes = module.ByteSize()
    return module, report


def _full_logits_model(full_proto: onnx.ModelProto) -> onnx.ModelProto:
    """The exported full model with only its logits output, through the same generic passes as a
    module (so latency comparisons measure pruning, not pass differences)."""
    graph = import_graph(full_proto)
    sink_channel_scales(graph)
    graph.outputs = [t for t in graph.outputs if t.name == LOGITS]
    return finalize(graph, producer="mwt-export")


def export_full_model(ckpt: Checkpoint, source_sha256: str = "") -> onnx.ModelProto:
    """The full model as an mwt module of all classes with nothing removed (the latency baseline)."""
    proto = _full_logits_model(export_with_gates(ckpt.build(), (ckpt.spec.in_channels, *ckpt.spec.input_size)))
    cost = graph_cost(proto)
    mod = ckpt.modularization
    layers = [LayerReport(n, len(f[0]), len(f[0])) for n, f in (mod.frequency.items() if mod else [])]
    report = ExportReport(classes=list(ckpt.classes), layers=layers, krr=1.0, module=cost, full=cost)
    options = ExportOptions(classes=tuple(range(len(ckpt.classes))), threshold=1.0, align=1)
    _write_metadata(proto, ckpt, options, report, source_sha256, kind="full")
    return proto


def _write_metadata(model: onnx.ModelProto, ckpt: Checkpoint, options: ExportOptions, report: ExportReport,
                    source_sha256: str, kind: str = "module") -> None:
    meta = {
        "mwt.format": METADATA_FORMAT,
        "mwt.kind": kind,
        "mwt.version": __version__,
        "mwt.classes": json.dumps(report.classes),
        "mwt.source_sha256": source_sha256,
        "mwt.threshold": repr(options.threshold),
        "mwt.gates": options.gates.value,
        "mwt.align": str(options.align),
        "mwt.layers": json.dumps([[r.name, r.retained, r.total] for r in report.layers]),
        "mwt.krr": f"{report.krr:.6f}",
        "mwt.module_flops": str(report.module.flops),
        "mwt.full_flops": str(report.full.flops),
        "mwt.module_params": str(report.module.params),
        "mwt.full_params": str(report.full.params),
        "mwt.input": json.dumps({
            "name": model.graph.input[0].name,
            "shape": [ckpt.spec.in_channels, *ckpt.spec.input_size],
            "channels": ckpt.spec.in_channels,
            "range": [0.0, 1.0],
            "dtype": "float32",
            "dataset": ckpt.dataset,
        }),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def export_module_file(
    checkpoint: str | Path, classes: str | list[str], out: str | Path, *, threshold: float = 0.9,
    gates: GateMode = GateMode.dynamic, align: int = 8,
) -> ExportReport:
    """Load a checkpoint, compile the module of `classes`, and write it to `out` atomically."""
    from mwt.atomic import write_bytes_atomic

    if align < 1:
        raise ExportError(f"--align must be at least 1, got {align}")
    check_threshold(threshold)
    ckpt = load_checkpoint(checkpoint)
    indices = resolve_classes(ckpt.classes, classes)
    ckpt.require_modularization(checkpoint)
    options = ExportOptions(classes=tuple(indices), threshold=threshold, gates=gates, align=align)
    model, report = compile_module(ckpt, options, source_sha256=file_sha256(checkpoint))
    data = model.SerializeToString(deterministic=True)
    write_bytes_atomic(out, data)
    report.file_bytes = len(data)
    return report


def model_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of a model's deterministic serialization (for byte-identity checks)."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


__all__ = ["ExportOptions", "ExportReport", "GateMode", "compile_module", "export_full_model", "export_module_file"]
