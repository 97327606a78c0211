"""The module compiler: a checkpoint's graph and a ModuleSelection in, a compact ONNX module out.

`ModuleCompiler` exports a checkpoint from torch once and prepares the graph every module of it
starts from; `compile` then runs the passes for one selection. One compiler serves all the
modules of a command, a benchmark or a test. It is pure: it reads no data and writes no file.
What needs images (the folded-gates guard, INT8 calibration, accuracy) is the export step's
(`exporter.export`), which is given them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from exporter.channels import ChannelPlan, plan_channels
from exporter.flops import Cost, graph_cost
from exporter.passes import (
    finalize,
    fold_channel_scales,
    freeze_gates,
    gate_tensors,
    gated_feature_maps,
    import_graph,
    mask_gates,
    remove_identity_muls,
    select_classes,
    sink_channel_scales,
)
from exporter.report import ExportReport
from exporter.slicing import apply_plan
from exporter.torch_export import export_with_gates
from mwt.checkpoint import Checkpoint, file_sha256, load_checkpoint
from mwt.core.metadata import LOGITS, GateMode, InputSpec, ModuleMetadata
from mwt.cost import CostModel, Streams, cost_model
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_ROUNDING, DEFAULT_THRESHOLD
from mwt.models import gated_layers
from mwt.modularize import folded_gate_values, folding_error
from mwt.selection import ModuleSelection, modularization_of

PRODUCER = "mwt-export"


class ModuleCompiler:
    """Compiles the modules of one checkpoint.

    Guarantees with dynamic gates and align=1: for any input, a module's `logits` equal the
    PyTorch simulation (full modular model with unretained kernels zeroed) on the chosen classes,
    in the order given. The same inputs always give byte-identical output.
    """

    def __init__(self, ckpt: Checkpoint, source_sha256: str = "", path: str | Path | None = None, *,
                 cost: CostModel | None = None) -> None:
        """`path` names the checkpoint's file in errors; `source_sha256` goes into every module's
        metadata; `cost` is the network's cost model, when the caller has probed it already."""
        self.ckpt = ckpt
        self.source_sha256 = source_sha256
        self.path = path
        model = ckpt.build()
        self.gated = [n for n, _ in gated_layers(model)]
        if self.gated:
            modularization_of(ckpt, path)  # before the torch export: an unmodularized file fails at once
        self.input = InputSpec(shape=ckpt.spec.input_shape, dataset=ckpt.dataset, resize=ckpt.source.resize)
        if cost is None and self.gated:
            cost = cost_model(model, ckpt.spec.input_shape)
        self.cost = cost  # None for a network without gates: it has no modules to price
        self._exported = export_with_gates(model, ckpt.spec.input_shape)
        self._imported = gs.export_onnx(import_graph(self._exported))  # constants folded, shapes inferred
        graph = gs.import_onnx(self._imported)
        sink_channel_scales(graph)
        self._prepared = gs.export_onnx(graph)  # every module with dynamic gates starts from this graph

    @classmethod
    def from_file(cls, path: str | Path) -> ModuleCompiler:
        """A compiler for a checkpoint file (its SHA-256 goes into every module's metadata)."""
        return cls(load_checkpoint(path), file_sha256(path), path)

    @property
    def default_gates(self) -> GateMode:
        """The gates a module of this checkpoint gets unless told otherwise: folded (gate-free,
        data-free) for a checkpoint trained for reuse, dynamic for any other."""
        return default_gates(self.ckpt)

    @property
    def streams(self) -> Streams:
        """The cost model's channel streams (none for a network without gates)."""
        return self.cost.streams if self.cost is not None else ()

    def select(self, classes: str | Sequence[int | str], *, threshold: float = DEFAULT_THRESHOLD,
               align: int = DEFAULT_ALIGN, pad_limit: float | None = None,
               rounding: str = DEFAULT_ROUNDING) -> ModuleSelection:
        """The module of `classes` (names or indices, as the CLI takes them); see ModuleSelection.of.
        A network without gates is selected whole."""
        return ModuleSelection.of(self.ckpt, classes, threshold=threshold, align=align, cost=self.cost,
                                  whole=True, path=self.path, pad_limit=pad_limit, rounding=rounding)

    @cached_property
    def _full_logits(self) -> onnx.ModelProto:
        graph = gs.import_onnx(self._prepared)
        graph.outputs = [t for t in graph.outputs if t.name == LOGITS]
        return finalize(graph, producer=PRODUCER)

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
        # Every gate frozen open (1): the generators become dead code and the gate Muls vanish,
        # which leaves the plain network. The same ops, weights and outputs as torch's export of
        # the network built without generators (compared over every architecture), at a fifth of
        # its time: no second model build and torch export.
        graph = gs.import_onnx(self._imported)
        freeze_gates(graph, {layer: np.ones(gate.shape[-1], np.float32) for layer, gate in gate_tensors(graph).items()})
        graph.outputs = [t for t in graph.outputs if t.name == LOGITS]
        remove_identity_muls(graph)
        return finalize(graph, producer=PRODUCER)

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

    def _gated_graph(self, selection: ModuleSelection, gates: GateMode) -> tuple[gs.Graph, float | None, set[str]]:
        """The graph with the selection's gates applied and only its classes' logits, before any
        channel is removed; with folded gates, also their folding error; and the feature maps of
        the layers the selection left unaligned (`ModuleSelection.unaligned`)."""
        folded = gates is GateMode.folded and selection.gated
        # Folded gates stay right after their convs (not sunk past ReLU and pooling) so that
        # fold_channel_scales can move them into the conv weights.
        graph = gs.import_onnx(self._imported if folded else self._prepared)
        maps = gated_feature_maps(graph) if selection.unaligned else {}
        unaligned = {maps[layer] for layer in selection.unaligned if layer in maps}
        folding = None
        if folded:
            mod = modularization_of(self.ckpt, self.path)
            folding = folding_error(mod, selection.indices, selection.kept)
            freeze_gates(graph, folded_gate_values(mod, selection.indices, selection.kept))
        else:
            mask_gates(graph, dict(selection.kept))
        select_classes(graph, list(selection.indices))
        return graph, folding, unaligned

    def channel_plan(self, selection: ModuleSelection, gates: GateMode = GateMode.dynamic) -> ChannelPlan:
        """The channels the module of `selection` computes, per channel space of its graph (the
        analysis `compile` slices by; tests check it against the cost model's streams)."""
        graph, _, unaligned = self._gated_graph(selection, gates)
        return plan_channels(graph, selection.align, unaligned)

    def compile(self, selection: ModuleSelection, gates: GateMode | None = None) -> tuple[onnx.ModelProto, ExportReport]:
        """Compile the module of `selection` with `gates` (default: `default_gates`); see the class
        docstring for what it guarantees. The report holds the module's figures, none that need images."""
        gates = gates or self.default_gates
        start = time.perf_counter()
        graph, folding, unaligned = self._gated_graph(selection, gates)
        apply_plan(graph, plan_channels(graph, selection.align, unaligned))
        remove_identity_muls(graph)
        fold_channel_scales(graph)
        module = finalize(graph, producer=PRODUCER)
        module_cost = graph_cost(module)
        report = ExportReport(
            classes=list(selection.names), layers=list(selection.layers), krr=selection.krr, module=module_cost,
            full=self.full_cost, plain=self.plain_cost, retained=selection.masks(), folding_error=folding,
            finetune=self.ckpt.training.get("finetune"), gates=gates if self.gated else None,
        )
        self._write_metadata(module, module_cost, gates=gates if self.gated else None, selection=selection,
                             folding=folding)
        report.seconds = time.perf_counter() - start
        report.file_bytes = module.ByteSize()
        return module, report

    def _write_metadata(self, proto: onnx.ModelProto, cost: Cost, *, gates: GateMode | None,
                        selection: ModuleSelection | None = None, folding: float | None = None) -> None:
        per_module = selection is not None and selection.gated
        ModuleMetadata(
            classes=selection.names if selection else tuple(self.ckpt.classes),
            input=self.input,
            source_sha256=self.source_sha256,
            module_flops=cost.flops,
            full_flops=self.full_cost.flops,
            plain_flops=self.plain_cost.flops,
            module_params=cost.params,
            full_params=self.full_cost.params,
            threshold=selection.threshold if per_module else None,  # type: ignore[union-attr]
            gates=gates,
            align=selection.align if per_module else None,  # type: ignore[union-attr]
            rounding=selection.rounding if per_module else None,  # type: ignore[union-attr]
            krr=selection.krr if selection else None,
            layers=selection.layers if selection else (),
            folding_error=folding,
            finetune=self.ckpt.training.get("finetune"),
            origin="fine-tuned" if self.ckpt.training.get("finetune") else ("data-free" if per_module else None),
        ).write(proto)


def trained_for_reuse(ckpt: Checkpoint) -> bool:
    """Whether the checkpoint was trained through static sub-task gates (the reuse recipe), so that
    its folded, gate-free modules are the networks its training scored."""
    config = ckpt.training.get("config", {})
    return isinstance(config, dict) and float(config.get("reuse", 0) or 0) > 0


def default_gates(ckpt: Checkpoint) -> GateMode:
    """Folded (gate-free, data-free) for a checkpoint trained for reuse, dynamic for any other."""
    return GateMode.folded if trained_for_reuse(ckpt) else GateMode.dynamic


def model_digest(model: onnx.ModelProto) -> str:
    """SHA-256 of a model's deterministic serialization (for byte-identity checks)."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


__all__ = ["ExportReport", "GateMode", "ModuleCompiler", "default_gates", "model_digest", "trained_for_reuse"]
