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

import torch

from mwt.checkpoint import Checkpoint
from mwt.cost import CostModel, cost_model
from mwt.data import AnySplit
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_THRESHOLD, check_selection
from mwt.core.errors import MwtError
from mwt.models import GatedConv, build_model
from mwt.modularize import folded_gate_values, module_kernels, retain_only
from mwt.train import TrainConfig, accuracy, train


@dataclass(frozen=True)
class FinetuneConfig:
    """Which module to cut out, and how to fine-tune it."""

    classes: tuple[int, ...]
    threshold: float = DEFAULT_THRESHOLD
    align: int = DEFAULT_ALIGN
    epochs: int = 10  # as the MwT reference implementation fine-tunes its modules
    lr: float = 0.01
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"

    def validate(self, num_classes: int) -> None:
        check_selection(self.classes, num_classes, self.threshold, self.align)
        if not self.epochs > 0:
            raise MwtError(f"epochs must be a positive number, got {self.epochs}")
        if not 0 < self.lr < float("inf"):
            raise MwtError(f"learning rate must be a positive number, got {self.lr}")


def _kept_indices(cost: CostModel, kept: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Per channel stream, the channels the module keeps: the union of its writers' kernels."""
    out = []
    for members in cost.streams:
        union = torch.zeros_like(kept[members[0]])
        for m in members:
            union |= kept[m]
        out.append(torch.nonzero(union).flatten())
    return out


def compact_module(ckpt: Checkpoint, classes: list[int], threshold: float = DEFAULT_THRESHOLD,
                   align: int = DEFAULT_ALIGN) -> Checkpoint:
    """The module of `classes` as a gate-free network of its kept kernels (see the module docstring).

    Its logits (the classes', in the order given) equal the exporter's folded module's with the
    same threshold and alignment.
    """
    model = ckpt.build()
    cost = cost_model(model, ckpt.spec.input_shape)
    kept = module_kernels(ckpt.require_modularization(), classes, threshold, align, cost.streams)
    return _compact(ckpt, classes, model, cost, kept)


def _compact(ckpt: Checkpoint, classes: list[int], model: torch.nn.Module, cost: CostModel,
             kept: dict[str, torch.Tensor]) -> Checkpoint:
    """`compact_module` from the full model, its cost model and the module's kept kernels."""
    gates = folded_gate_values(ckpt.require_modularization(), classes, kept)
    streams = _kept_indices(cost, kept)
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
    return Checkpoint(spec=spec, state_dict=compact.state_dict(), classes=[ckpt.classes[c] for c in classes],
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
        return "\n".join([
            f"module              {', '.join(self.classes)}  ({self.samples} test images)",
            f"full model          {100 * self.full_acc:6.2f}%   (argmax over these classes' logits)",
            f"dynamic module      {100 * self.dynamic_acc:6.2f}%   (mask generators kept)",
            f"folded module       {100 * self.folded_acc:6.2f}%   (gate-free, before fine-tuning)",
            f"fine-tuned module   {100 * self.finetuned_acc:6.2f}%   (gate-free)",
            f"FLOPs kept          {100 * self.flops_kept:6.2f}%   (of the full model without gates)",
        ])


def finetune(
    ckpt: Checkpoint, config: FinetuneConfig, train_data: AnySplit, test_data: AnySplit, *, source_sha256: str = "",
    show_progress: bool = True, log_path: Path | None = None,
) -> tuple[Checkpoint, FinetuneReport]:
    """Cut out the module of `config.classes`, fine-tune it on their training images, and report."""
    config.validate(len(ckpt.classes))
    classes = list(config.classes)
    sub_train, sub_test = train_data.relabel(classes), test_data.relabel(classes)
    if len(sub_train) == 0:
        raise MwtError("the training data holds no images of these classes")
    full = ckpt.build()
    cost = cost_model(full, ckpt.spec.input_shape)  # probing the dataflow: done once, for both uses
    kept = module_kernels(ckpt.require_modularization(), classes, config.threshold, config.align, cost.streams)
    compact = _compact(ckpt, classes, full, cost, kept)
    full_acc = accuracy(full, test_data, classes=classes)
    with retain_only(full, kept):
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
        flops_kept=cost.kept_fraction(kept, len(classes)),
    )
    tuned.training["finetune"] = {
        "source_sha256": source_sha256, "classes": list(compact.classes), "threshold": config.threshold,
        "align": config.align, "epochs": config.epochs, "lr": config.lr, "seed": config.seed,
        "batch_size": config.batch_size, "accuracy": asdict(report),
    }
    return tuned, report
