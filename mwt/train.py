"""Training a modular (or standard) CNN with MwT's losses."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mwt.checkpoint import Checkpoint
from mwt.data import DatasetInfo, Split, batches, dataset_info
from mwt.errors import MwtError
from mwt.losses import kernel_rate, modular_loss
from mwt.cost import CostModel, cost_model
from mwt.models import ModelSpec, build_model, gated_layers
from mwt.progress import progress
from mwt.registry import architecture, check_width
from mwt.registry import recipe as registry_recipe


@dataclass
class TrainConfig:
    """Settings of one training run (defaults: the paper's recipe)."""

    model: str = "vgg16"
    dataset: str = "fashion-mnist"
    width: float = 1.0
    modular: bool = True
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    recipe: str = "paper"  # the named recipe the weights below came from (see mwt.registry.RECIPES)
    alpha: float = 0.5  # weight of the cohesion loss
    beta: float = 1.5  # weight of the coupling loss
    gamma: float = 0.0  # weight of the expected-FLOPs loss (the cost-aware recipe)
    gate_first: bool = False  # gate the first conv too
    beta_warmup: int = 0  # epochs over which beta ramps linearly from 0 (0: constant beta, the paper's recipe)
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    train_limit: int | None = None  # use only the first N training samples (tests, quick runs)
    test_limit: int | None = None

    @classmethod
    def from_recipe(cls, recipe: str = "paper", *, alpha: float | None = None, beta: float | None = None,
                    gamma: float | None = None, **settings: Any) -> TrainConfig:
        """A config with the named recipe's loss weights; a weight given here overrides the recipe's."""
        r = registry_recipe(recipe)
        return cls(recipe=recipe, alpha=r.alpha if alpha is None else alpha, beta=r.beta if beta is None else beta,
                   gamma=r.gamma if gamma is None else gamma, gate_first=r.gate_first, **settings)

    def validate(self) -> None:
        """The one place training settings are checked (every comparison also rejects NaN)."""
        architecture(self.model)
        check_width(self.width)
        dataset_info(self.dataset)
        if not self.epochs > 0:
            raise MwtError(f"epochs must be a positive number, got {self.epochs}")
        if not self.batch_size > 0:
            raise MwtError(f"batch size must be a positive number, got {self.batch_size}")
        if not 0 < self.lr < float("inf"):
            raise MwtError(f"learning rate must be a positive number, got {self.lr}")
        for name in ("alpha", "beta", "gamma"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise MwtError(f"{name} must be a non-negative number, got {getattr(self, name)}")
        if self.train_limit is not None and self.train_limit <= 0:
            raise MwtError(f"the training limit must be positive, got {self.train_limit}")


def resolve_device(device: str) -> torch.device:
    """"auto" means CUDA when available, else CPU; any other value is taken as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise MwtError(f"unknown device '{device}'") from None


def spec_for(config: TrainConfig, info: DatasetInfo) -> ModelSpec:
    """The model spec a config and dataset imply."""
    return ModelSpec(
        arch=config.model, num_classes=len(info.classes), in_channels=info.channels, input_size=info.size,
        width=config.width, modular=config.modular, mean=info.mean, std=info.std, pad=info.pad,
        gate_first=config.gate_first and config.modular,
    )


@torch.no_grad()
def accuracy(
    model: nn.Module, data: Split, *, classes: list[int] | None = None, batch_size: int = 512, device: torch.device | str = "cpu"
) -> float:
    """Top-1 accuracy; with `classes`, on those classes' samples with argmax over their logits only."""
    model.eval()
    if classes is not None:
        data = data.where(classes)
    if len(data) == 0:
        return float("nan")
    correct = 0
    lookup = torch.full((int(data.labels.max()) + 1,), -1, dtype=torch.long)
    if classes is not None:
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
    for x, y in batches(data, batch_size, shuffle=False):
        logits, _ = model(x.to(device))
        logits = logits.cpu()
        if classes is not None:
            pred = logits[:, classes].argmax(1)
            correct += int((pred == lookup[y]).sum())
        else:
            correct += int((logits.argmax(1) == y).sum())
    return correct / len(data)


EpochHook = Callable[[int, nn.Module], dict[str, float]]


def train(
    config: TrainConfig, train_data: Split, test_data: Split, *, log_path: Path | None = None, show_progress: bool = True,
    on_epoch_end: EpochHook | None = None,
) -> Checkpoint:
    """Train a model from scratch as `config` says and return it as a checkpoint (not yet modularized).

    With the same seed, data and CPU, two runs give the same weights. Every epoch's figures go to
    the checkpoint's history and, as one JSON line each, to `log_path`; `on_epoch_end(epoch, model)`
    may add figures of its own (it must leave the model's weights alone).
    """
    config.validate()
    info = dataset_info(config.dataset)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    spec = spec_for(config, info)
    model = build_model(spec)
    cost = cost_model(model, spec.input_shape) if config.modular else None
    gate_names = [n for n, _ in gated_layers(model)]
    model = model.to(device)
    train_data = train_data.subset(config.train_limit)
    test_data = test_data.subset(config.test_limit)
    steps = (len(train_data) + config.batch_size - 1) // config.batch_size
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    # The log is appended to, never truncated: an earlier run's lines survive a new run that fails.
    log = open(log_path, "a") if log_path else None
    if log:
        log.write(json.dumps({"run": {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "config": asdict(config)}}) + "\n")
    try:
        for epoch in range(1, config.epochs + 1):
            beta = config.beta * min(1.0, epoch / config.beta_warmup) if config.beta_warmup else config.beta
            record = _train_epoch(
                model, train_data, config, beta, optimizer, scheduler, generator, device, cost, gate_names,
                steps, desc=f"epoch {epoch}/{config.epochs}", show_progress=show_progress,
            )
            record["epoch"] = epoch
            record["test_acc"] = accuracy(model, test_data, device=device)
            if on_epoch_end is not None:
                record.update(on_epoch_end(epoch, model))
            history.append(record)
            if log:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if show_progress:
                print(
                    f"epoch {epoch:3d}  loss {record['loss']:.3f}  train acc {record['train_acc']:.4f}  "
                    f"test acc {record['test_acc']:.4f}  kernel rate {record['kernel_rate']:.3f}  FLOPs {record['flops']:.3f}  "
                    f"{record['seconds']:.1f}s",
                    flush=True,
                )
    finally:
        if log:
            log.close()
    model.eval().cpu()
    settings = asdict(config)
    return Checkpoint(
        spec=spec, state_dict=model.state_dict(), classes=list(info.classes), dataset=info.name,
        training={"config": settings, "history": history, "test_acc": history[-1]["test_acc"], "device": str(device)},
    )


def _train_epoch(
    model: nn.Module, data: Split, config: TrainConfig, beta: float, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler, generator: torch.Generator, device: torch.device,
    cost: CostModel | None, gate_names: list[str], steps: int, *, desc: str, show_progress: bool,
) -> dict[str, float]:
    model.train()
    info = dataset_info(config.dataset)
    sums = {"loss": 0.0, "ce": 0.0, "cohesion": 0.0, "coupling": 0.0, "flops": 0.0, "kernel_rate": 0.0}
    correct = seen = 0
    start = time.perf_counter()
    bar = progress(
        batches(data, config.batch_size, shuffle=True, generator=generator, augment=info.augment),
        total=steps, desc=desc, enable=show_progress,
    )
    for i, (x, y) in enumerate(bar, 1):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits, gates = model(x)
        parts = modular_loss(logits, gates, y, config.alpha, beta, config.gamma, cost, gate_names)
        if not math.isfinite(float(parts.total.detach())):
            raise MwtError("training diverged (the loss is not finite); try a smaller --lr")
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        scheduler.step()
        n = int(y.shape[0])
        sums["loss"] += float(parts.total.detach()) * n
        sums["ce"] += float(parts.ce.detach()) * n
        sums["cohesion"] += float(parts.cohesion.detach()) * n
        sums["coupling"] += float(parts.coupling.detach()) * n
        sums["flops"] += float(parts.flops.detach()) * n
        sums["kernel_rate"] += kernel_rate([g.detach() for g in gates]) * n
        correct += int((logits.argmax(1) == y).sum())
        seen += n
        if i % 20 == 0:
            bar.set_postfix(
                ce=f"{sums['ce'] / seen:.3f}", coh=f"{sums['cohesion'] / seen:.3f}",
                coup=f"{sums['coupling'] / seen:.3f}", acc=f"{correct / seen:.3f}", kr=f"{sums['kernel_rate'] / seen:.3f}",
                flops=f"{sums['flops'] / seen:.3f}",
            )
    record = {k: v / max(seen, 1) for k, v in sums.items()}
    record["train_acc"] = correct / max(seen, 1)
    record["seconds"] = time.perf_counter() - start
    record["lr"] = float(optimizer.param_groups[0]["lr"])
    record["beta"] = beta
    return record

