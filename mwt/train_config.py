"""The settings of one training run, as a typed dataclass, checked in one place (`TrainConfig.validate`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from mwt.collapse import DEFAULT_DROP
from mwt.core.errors import MwtError
from mwt.data import DataSource
from mwt.defaults import check_channel_block, check_seed, finite_number
from mwt.init_weights import read_state_dict
from mwt.registry import (
    GATE_LOSS_SCOPES,
    STEMS,
    TORCHVISION_PREFIX,
    check_input_size,
    check_model_name,
    check_width,
    is_torchvision,
    is_user_code,
)
from mwt.registry import recipe as registry_recipe

AMP_TYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# How a run computes, not what it computes: a resumed run may change these.
RUNTIME_SETTINGS = ("device", "amp", "channels_last", "compile")


def _check_count(value: object, what: str, option: str, least: int = 0) -> None:
    """A count (of channels, of epochs) must be a whole number >= `least`; a bool is not one."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise MwtError(f"{what} must be a whole number >= {least}, got {value}", options=(option,))


@dataclass
class TrainConfig:
    """Settings of one training run (defaults: the paper's recipe)."""

    model: str = "vgg16"
    stem: str = "default"  # torchvision: models only: "cifar" adapts the stem to 32x32 images
    init_from: str | None = None  # a state dict (weights only) to start from (mwt.init_weights)
    dataset: str = "fashion-mnist"
    width: float = 1.0
    modular: bool = True
    epochs: int = 200
    batch_size: int = 128  # the global batch: split evenly across processes
    lr: float = 0.05
    # epochs over which each step's learning rate ramps linearly from near 0 to the schedule's (0: off)
    lr_warmup: int = 0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    recipe: str = "paper"  # the named recipe the weights below came from (see mwt.registry.RECIPES)
    alpha: float = 0.5  # weight of the cohesion loss
    beta: float = 1.5  # weight of the coupling loss
    gamma: float = 0.0  # weight of the expected-FLOPs loss (the cost-aware recipe)
    gate_first: bool = False  # gate the first conv too
    beta_warmup: int = 0  # epochs over which beta ramps linearly from 0 (0: constant beta, the paper's recipe)
    gamma_warmup: int = 0  # epochs over which gamma ramps linearly from 0 (0: constant gamma)
    cost_block: int = 1  # the FLOPs term counts conv channels in blocks of this many (mwt.cost.blocked_rate)
    free_channels: int = 0  # the FLOPs term leaves each layer's first N open channels uncounted (mwt.cost)
    flops_target: float = 0.0  # > 0: the FLOPs term is a budget, charged per sample only above this fraction
    # > 0: each class's budget is flops_target * (its running cross-entropy / the mean) ** budget_by_loss,
    # within 0.5-2x (mwt.class_budget), so hard classes may keep more kernels and easy ones fewer
    budget_by_loss: float = 0.0
    # > 0: the FLOPs weight grows by exp(budget_adapt * relative excess) a step while the samples' mean
    # FLOPs stay above their mean target, and shrinks back below it (never under gamma): the budget binds
    # (mwt.budget_pull); 0: the pull above the target is gamma's, whatever the target
    budget_adapt: float = 0.0
    # >= 1: under the target the factor shrinks this many times faster than it grows above it (mwt.budget_pull;
    # 1: the same rate both ways; 5 held the samples at the budget's edge with the factor still up: stop 66)
    budget_relax: float = 1.0
    # > 0: closed gates can open again. A gate at 0 gets no gradient from any loss (ReLU(tanh) in its generator,
    # and the ReLU after it); with this, VGG's gated convs rectify before gating (the same values) and a closed
    # gate passes this share of an opening gradient (mwt.models.gate); 0: MwT's gates
    gate_leak: float = 0.0
    gate_leak_from: int = 1  # the epoch (from 1) the leak starts at: later lets the budget bind first
    # epochs over which the leak ramps linearly from 0, from gate_leak_from on (0: at full strength at once), so
    # the kernels it reopens come back a few at a time instead of all in the epoch the budget's pull answers them
    gate_leak_warmup: int = 0
    # > 0: each pair of classes weighs sqrt(f_a * f_b) in the coupling loss, f = (running cross-entropy /
    # the mean) ** -coupling_by_loss within 0.5-2x, so hard classes are parted less (mwt.class_budget)
    coupling_by_loss: float = 0.0
    coupling_by_cost: bool = False  # weigh each layer's coupling by what one of its kernels costs
    # What the gate losses (cohesion, coupling, FLOPs, decisiveness) train: "network", as in MwT (their
    # gradients reach every layer through each generator's input), or "generators" only (the network's
    # weights then learn from the task's losses alone: cross-entropy, the sub-task route, the teacher).
    gate_losses: str = "network"
    # The last N epochs train the network's weights under the gates it has: the gate losses (cohesion,
    # coupling, FLOPs, decisiveness) are off and the mask generators frozen; the route and teacher stay.
    settle_epochs: int = 0
    # A fall of training accuracy (a fraction) between consecutive epochs that rewinds the run two epochs and
    # halves its learning rate (mwt.collapse), as a loss no longer finite does; 0: no guard (a divergence
    # ends the run). Only where a FLOPs term is in play.
    collapse_drop: float = DEFAULT_DROP
    reuse: float = 0.0  # share of each batch trained through static sub-task gates (the reuse recipe; mwt.subtask_route)
    delta: float = 0.0  # weight of the decisiveness loss (mwt.losses.decisiveness; the reuse recipe)
    teacher: str | None = None  # a checkpoint of the same classes to distill from (mwt.distill)
    distill: float = 1.0  # weight of the teacher's term (with a teacher only)
    temperature: float = 4.0  # softens both answers in the teacher's term
    # > 0: weight of the teacher's similarity-preserving term on the penultimate features (mwt.distill)
    similarity: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    amp: str = "off"  # "off", "bf16" or "fp16" (CUDA only; fp16 with a gradient scaler)
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False  # torch.compile the model
    train_limit: int | None = None  # use only the first N training samples (tests, quick runs)
    test_limit: int | None = None
    # Image folders (`dataset` is then the folder's path): see mwt.data.folder.
    image_size: int | None = None  # resize to this square size (None: the images' common size, else 32)
    channels: int | None = None  # 1 or 3 (None: detected)
    test_fraction: float = 0.2  # held out per class when the folder has no train/ and test/
    storage: str = "auto"  # "memory", "stream" or "auto" (stream past the memory budget)
    strict: bool = False  # refuse files that cannot be decoded instead of skipping them

    @classmethod
    def from_recipe(cls, recipe: str = "paper", *, alpha: float | None = None, beta: float | None = None,
                    gamma: float | None = None, reuse: float | None = None, delta: float | None = None,
                    **settings: Any) -> TrainConfig:
        """A config with the named recipe's loss weights; a weight given here overrides the recipe's."""
        r = registry_recipe(recipe)
        return cls(recipe=recipe, alpha=r.alpha if alpha is None else alpha, beta=r.beta if beta is None else beta,
                   gamma=r.gamma if gamma is None else gamma, gate_first=r.gate_first,
                   reuse=r.reuse if reuse is None else reuse, delta=r.delta if delta is None else delta, **settings)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A config from a checkpoint's training settings (unknown keys are an error)."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - names)
        if unknown:
            raise MwtError(f"the checkpoint's training settings hold an unknown field '{unknown[0]}'")
        return cls(**d)

    def resumed_with(self, given: dict[str, Any], run: str | Path = "the run") -> TrainConfig:
        """This config (a resumable checkpoint's) continued with the settings `given` now.

        A setting given at its default is no change; any other must equal the run's, or this
        raises MwtError naming `run` (resuming continues a run as it was configured). The
        runtime settings (RUNTIME_SETTINGS: device, mixed precision, memory layout, compiling)
        are taken from `given` where it names them.
        """
        defaults = TrainConfig()
        for key, value in given.items():
            if key in RUNTIME_SETTINGS:
                continue
            if value != getattr(defaults, key) and value != getattr(self, key):
                raise MwtError(f"{key} {value} differs from the run in {run} ({getattr(self, key)}); "
                               "--resume continues a run as it was configured")
        return replace(self, **{k: given[k] for k in RUNTIME_SETTINGS if k in given})

    def source(self) -> DataSource:
        """Where the images come from (a built-in name or a folder) and how they are preprocessed."""
        size = (self.image_size, self.image_size) if self.image_size else None
        return DataSource(self.dataset, size, self.channels, test_fraction=self.test_fraction, storage=self.storage,
                          strict=self.strict)

    def validate(self, world: int = 1) -> None:
        """The one place training settings are checked (every comparison also rejects NaN)."""
        check_model_name(self.model)
        check_width(self.width)
        if self.stem not in STEMS:
            raise MwtError(f"unknown stem '{self.stem}'; choose one of: {', '.join(STEMS)}")
        if is_torchvision(self.model):
            from mwt.models.torchvision_models import torchvision_builder

            torchvision_builder(self.model[len(TORCHVISION_PREFIX):])  # an unknown name fails before any work
        elif is_user_code(self.model):
            from mwt.models.user_code import required_code

            required_code(self.model)
        elif self.stem != "default":
            raise MwtError(f"--stem applies to {TORCHVISION_PREFIX} models; {self.model} has its own stem")
        if self.init_from is not None:
            read_state_dict(self.init_from)  # a pickle, a file without tensors or NaN weights fail before any work
        if self.image_size is not None:
            check_input_size(self.model, (self.image_size, self.image_size))
        self.source().check()
        check_seed(self.seed)
        if not self.epochs > 0:
            raise MwtError(f"epochs must be a positive number, got {self.epochs}")
        if not self.batch_size > 0:
            raise MwtError(f"batch size must be a positive number, got {self.batch_size}")
        if self.batch_size % world:
            raise MwtError(f"the batch size {self.batch_size} does not split evenly over {world} processes; "
                           f"use a multiple of {world}")
        if not 0 < self.lr < float("inf"):
            raise MwtError(f"learning rate must be a positive number, got {self.lr}")
        if not 0 <= self.weight_decay < 1:
            raise MwtError(f"weight decay must be a number in [0, 1), got {self.weight_decay}")
        for name in ("alpha", "beta", "gamma", "delta", "distill"):
            if not 0 <= getattr(self, name) < float("inf"):
                raise MwtError(f"{name} must be a non-negative number, got {getattr(self, name)}")
        for name in ("lr_warmup", "beta_warmup", "gamma_warmup"):
            _check_count(getattr(self, name), f"{name.replace('_', ' ')} (epochs)", name)
        check_channel_block(self.cost_block, "the cost block", "cost_block")
        if self.cost_block > 1 and not self.gamma:
            raise MwtError("--cost-block shapes the FLOPs term, which this run does not have (gamma 0); "
                           "use --recipe cost or reuse, or --gamma", options=("cost_block",))
        _check_count(self.free_channels, "the free channels", "free_channels")
        if self.free_channels and not self.gamma:
            raise MwtError("--free-channels shapes the FLOPs term, which this run does not have (gamma 0); "
                           "use --recipe cost or reuse, or --gamma", options=("free_channels",))
        if not (isinstance(self.flops_target, (int, float)) and not isinstance(self.flops_target, bool)
                and 0 <= self.flops_target < 1):
            raise MwtError(f"the FLOPs target must be a fraction in [0, 1), got {self.flops_target}",
                           options=("flops_target",))
        if self.flops_target and not self.gamma:
            raise MwtError("--flops-target shapes the FLOPs term, which this run does not have (gamma 0); "
                           "use --recipe cost or reuse, or --gamma", options=("flops_target",))
        if not (finite_number(self.budget_by_loss) and 0 <= self.budget_by_loss <= 4):
            raise MwtError(f"--budget-by-loss must be a number in [0, 4], got {self.budget_by_loss}",
                           options=("budget_by_loss",))
        if not (finite_number(self.budget_adapt) and 0 <= self.budget_adapt <= 1):
            raise MwtError(f"--budget-adapt must be a number in [0, 1], got {self.budget_adapt}",
                           options=("budget_adapt",))
        if not (finite_number(self.budget_relax) and 1 <= self.budget_relax <= 100):
            raise MwtError(f"--budget-relax must be a number in [1, 100], got {self.budget_relax}",
                           options=("budget_relax",))
        if self.budget_relax != 1 and not self.budget_adapt:
            raise MwtError("--budget-relax sets how fast the budget's pull eases; give one with --budget-adapt",
                           options=("budget_relax",))
        if not (finite_number(self.gate_leak) and 0 <= self.gate_leak <= 1):
            raise MwtError(f"--gate-leak must be a number in [0, 1], got {self.gate_leak}", options=("gate_leak",))
        _check_count(self.gate_leak_from, "--gate-leak-from (an epoch)", "gate_leak_from", least=1)
        _check_count(self.gate_leak_warmup, "--gate-leak-warmup (epochs)", "gate_leak_warmup")
        if self.gate_leak_warmup and not self.gate_leak:
            raise MwtError("--gate-leak-warmup ramps the gate leak in; give one with --gate-leak",
                           options=("gate_leak_warmup",))
        if self.gate_leak and not self.modular:
            raise MwtError("--gate-leak trains the gates; a standard model has none", options=("gate_leak",))
        if self.budget_adapt and not self.flops_target:
            raise MwtError("--budget-adapt makes the FLOPs target bind; give one with --flops-target",
                           options=("budget_adapt",))
        if self.budget_by_loss and not self.flops_target:
            raise MwtError("--budget-by-loss scales the FLOPs target per class; give one with --flops-target",
                           options=("budget_by_loss",))
        if not (finite_number(self.coupling_by_loss) and 0 <= self.coupling_by_loss <= 4):
            raise MwtError(f"--coupling-by-loss must be a number in [0, 4], got {self.coupling_by_loss}",
                           options=("coupling_by_loss",))
        if self.coupling_by_loss and not (self.modular and self.beta):
            raise MwtError("--coupling-by-loss weighs the coupling loss, which this run does not have "
                           "(a standard model, or beta 0)",
                           options=("coupling_by_loss",))
        if not isinstance(self.coupling_by_cost, bool):
            raise MwtError(f"coupling by cost is on or off, got {self.coupling_by_cost!r}",
                           options=("coupling_by_cost",))
        if self.coupling_by_cost and not (self.modular and self.beta):
            raise MwtError("coupling by cost weighs the coupling loss, which this run does not have "
                           f"({'no gates' if not self.modular else 'beta 0'})", options=("coupling_by_cost",))
        if self.gate_losses not in GATE_LOSS_SCOPES:
            raise MwtError(f"the gate losses train one of: {', '.join(GATE_LOSS_SCOPES)}; got '{self.gate_losses}'",
                           options=("gate_losses",))
        if self.gate_losses != "network" and not self.modular:
            raise MwtError("--gate-losses applies to gated runs; a standard model has no gates",
                           options=("gate_losses",))
        _check_count(self.settle_epochs, "the settle epochs", "settle_epochs")
        if not (finite_number(self.collapse_drop) and 0 <= self.collapse_drop < 1):
            raise MwtError(f"--collapse-drop must be a fraction in [0, 1), got {self.collapse_drop}",
                           options=("collapse_drop",))
        if self.settle_epochs and not self.modular:
            raise MwtError("--settle-epochs trains under the gates; a standard model has none",
                           options=("settle_epochs",))
        if self.settle_epochs >= self.epochs:
            raise MwtError(f"--settle-epochs {self.settle_epochs} leaves no epoch to train the gates in "
                           f"(of {self.epochs}); use fewer than --epochs", options=("settle_epochs",))
        if self.teacher is None and (self.distill, self.temperature) != (TrainConfig.distill, TrainConfig.temperature):
            raise MwtError("the teacher's weight and temperature apply only with a teacher (--teacher)",
                           options=("teacher",))
        if self.teacher is not None and not self.distill > 0:
            raise MwtError(f"the teacher's weight must be positive, got {self.distill}; to train without a "
                           "teacher, leave out --teacher", options=("distill",))
        if not 0 <= self.similarity <= 1e6:  # also refuses NaN
            raise MwtError(f"the similarity weight must be in [0, 1e6], got {self.similarity}", options=("similarity",))
        if self.similarity and self.teacher is None:
            raise MwtError("the similarity term compares the run with a teacher: give one with --teacher",
                           options=("similarity",))
        if not 0 < self.temperature < float("inf"):
            raise MwtError(f"the temperature must be a positive number, got {self.temperature}",
                           options=("temperature",))
        if self.teacher is not None and not Path(self.teacher).is_file():
            raise MwtError(f"the teacher {self.teacher} is not a file", options=("teacher",))
        if not 0 <= self.reuse < 1:
            raise MwtError(f"the reuse share must be in [0, 1), got {self.reuse}", options=("reuse",))
        if self.reuse and not self.modular:
            raise MwtError("the reuse share trains through gates; a standard model has none", options=("reuse",))
        if self.train_limit is not None and self.train_limit <= 0:
            raise MwtError(f"the training limit must be positive, got {self.train_limit}")
        if self.amp not in ("off", *AMP_TYPES):
            raise MwtError(f"amp must be off, bf16 or fp16, got '{self.amp}'")
