"""Gate-free modules that keep their accuracy: cut a module out as a compact network, fine-tune it.

`compact_module` keeps only the module's kernels, folds the classes' mean gates into the batch
norms (exactly: BN(x) * g is a batch norm with weight and bias scaled by g), drops the mask
generators and keeps only the classes' logits. Before fine-tuning it computes what the exporter's
folded module computes. Folding approximates the per-sample gates, which can cost accuracy;
`finetune` trains the compact network on the classes' own training images to win it back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mwt.checkpoint import Checkpoint
from mwt.core.errors import MwtError
from mwt.registry import MODELS, is_constructed
from mwt.cost import CostModel, cost_model
from mwt.data import AnySplit
from mwt.defaults import check_seed
from mwt.evaluate import accuracy
from mwt.models import GatedConv, build_model
from mwt.modularize import folded_gate_values, retain_only
from mwt.report import percent_rows
from mwt.selection import ModuleSelection
from mwt.train import train
from mwt.train_config import TrainConfig


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune a module (which module: a ModuleSelection)."""

    epochs: int = 10  # as the MwT reference implementation fine-tunes its modules
    lr: float = 0.01
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"

    def validate(self) -> None:
        check_seed(self.seed)
        if not self.epochs > 0:
            raise MwtError(f"epochs must be a positive number, got {self.epochs}")
        if not 0 < self.lr < float("inf"):
            raise MwtError(f"learning rate must be a positive number, got {self.lr}")


def compact_module(ckpt: Checkpoint, selection: ModuleSelection, cost: CostModel | None = None) -> Checkpoint:
    """The selected module as a gate-free network of its kept kernels (see the module docstring).

    Its logits (the classes', in the order selected) equal the exporter's folded module's for the
    same selection. `cost` is the checkpoint's cost model where the caller has probed it already.
    """
    model = ckpt.build()
    return _compact(ckpt, selection, model, cost or cost_model(model, ckpt.spec.input_shape))


def _compact(ckpt: Checkpoint, selection: ModuleSelection, model: torch.nn.Module, cost: CostModel) -> Checkpoint:
    """`compact_module` from the full model and its cost model."""
    if not selection.gated:
        raise MwtError("a network without gates has no module to cut out of it")
    if is_constructed(ckpt.spec.arch):
        # Its compact network would need depthwise and SE convs narrowed with their streams; the
        # compiler (mwt export) removes them from the graph instead.
        raise MwtError(f"finetune cuts compact networks out of {', '.join(MODELS)}; for {ckpt.spec.arch}, export "
                       "its modules with 'mwt export' (folded gates give the gate-free network)")
    classes = list(selection.indices)
    gates = {k: torch.from_numpy(v) for k, v in
             folded_gate_values(ckpt.require_modularization(), classes, selection.kept).items()}
    streams = [torch.from_numpy(np.flatnonzero(union)) for union in cost.stream_channels(selection.kept)]
    rows: dict[str, torch.Tensor | None] = {}
    cols: dict[str, torch.Tensor | None] = {}
    widths = []
    for layer in cost.layers:
        cols[layer.name] = None if layer.stream is None else streams[layer.stream]
        out_stream = cost.stream_of(layer.gate) if layer.gate is not None else None
        if layer.logits:
            rows[layer.name] = torch.tensor(classes)
        else:
            rows[layer.name] = None if out_stream is None else streams[out_stream]
        c_in = layer.in_channels if cols[layer.name] is None else len(cols[layer.name])  # type: ignore[arg-type]
        c_out = layer.out_channels if rows[layer.name] is None else len(rows[layer.name])  # type: ignore[arg-type]
        if (c_in, c_out) != (layer.in_channels, layer.out_channels):
            widths.append((layer.name, c_in, c_out))
    spec = replace(ckpt.spec, modular=False, gate_first=False, num_classes=len(classes), widths=tuple(widths))
    compact = build_model(spec)
    state = {}
    source = ckpt.state_dict
    blocks = {n: m for n, m in model.named_modules() if isinstance(m, GatedConv)}
    for key, target in compact.state_dict().items():
        owner, _, leaf = key.rpartition(".")
        block_name, _, part = owner.rpartition(".")
        value = source[key]
        if owner in rows or block_name in rows:  # a linear layer, or the conv/bn of a conv block
            layer = owner if owner in rows else block_name
            r, c = rows[layer], cols[layer]
            if value.dim() >= 1 and r is not None:
                value = value[r]
            if value.dim() >= 2 and c is not None:
                value = value[:, c]
            if block_name in blocks and part == "bn" and leaf in ("weight", "bias") and blocks[block_name].gate:
                g = gates[block_name]
                value = value * (g[r] if r is not None else g)  # BN(x) * g == BN with weight, bias scaled by g
        if value.shape != target.shape:
            raise MwtError(f"cannot cut '{key}' down to {list(target.shape)} (got {list(value.shape)})")
        state[key] = value.clone()
    compact.load_state_dict(state)
    return Checkpoint(spec=spec, state_dict=compact.state_dict(), classes=list(selection.names),
                      dataset=ckpt.dataset, data=ckpt.data)


@dataclass
class FinetuneReport:
    """Accuracy on the classes' test images, before and after fine-tuning."""

    classes: list[str]
    samples: int
    full_acc: float  # the full model, argmax over these classes' logits
    dynamic_acc: float  # the module with its mask generators (PyTorch simulation)
    folded_acc: float  # the compact network before fine-tuning (= the exporter's folded module)
    finetuned_acc: float
    flops_kept: float  # the compact network's MACs / the plain full model's

    def table(self) -> str:
        return "\n".join([f"module              {', '.join(self.classes)}  ({self.samples} test images)", *percent_rows([
            ("full model", self.full_acc, "argmax over these classes' logits"),
            ("dynamic module", self.dynamic_acc, "mask generators kept"),
            ("folded module", self.folded_acc, "gate-free, before fine-tuning"),
            ("fine-tuned module", self.finetuned_acc, "gate-free"),
            ("FLOPs kept", self.flops_kept, "of the full model without gates"),
        ], 20)])


def finetune(
    ckpt: Checkpoint, selection: ModuleSelection, config: FinetuneConfig, train_data: AnySplit, test_data: AnySplit, *,
    cost: CostModel | None = None, source_sha256: str = "", show_progress: bool = True, log_path: Path | None = None,
) -> tuple[Checkpoint, FinetuneReport]:
    """Cut out the selected module, fine-tune it on its classes' training images, and report.
    `cost` is the checkpoint's cost model where the caller has probed it already."""
    config.validate()
    classes = list(selection.indices)
    sub_train, sub_test = train_data.relabel(classes), test_data.relabel(classes)
    if len(sub_train) == 0:
        raise MwtError("the training data holds no images of these classes")
    full = ckpt.build()
    cost = cost or cost_model(full, ckpt.spec.input_shape)
    compact = _compact(ckpt, selection, full, cost)
    full_acc = accuracy(full, test_data, classes=classes)
    with retain_only(full, selection.kept):
        dynamic_acc = accuracy(full, test_data, classes=classes)
    folded_acc = accuracy(compact.build(), sub_test)
    settings = TrainConfig(model=ckpt.spec.arch, dataset=ckpt.dataset, width=ckpt.spec.width, modular=False,
                           epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                           device=config.device)
    info = ckpt.dataset_info()
    info = replace(info, classes=tuple(compact.classes))
    tuned = train(settings, sub_train, sub_test, start=compact, show_progress=show_progress, log_path=log_path,
                  info=info)
    report = FinetuneReport(
        classes=list(compact.classes), samples=len(sub_test), full_acc=full_acc, dynamic_acc=dynamic_acc,
        folded_acc=folded_acc, finetuned_acc=tuned.training["test_acc"],
        flops_kept=selection.flops_kept(cost),
    )
    tuned.training["finetune"] = {
        "source_sha256": source_sha256, "classes": list(compact.classes), "threshold": selection.threshold,
        "align": selection.align, "epochs": config.epochs, "lr": config.lr, "seed": config.seed,
        "batch_size": config.batch_size, "accuracy": asdict(report),
    }
    return tuned, report
