"""Training a modular (or standard) CNN with MwT's losses: one process or several, resumable.

The loop keeps its running sums on the device and reads them only every `SYNC_EVERY` steps and
at the end of an epoch, so a GPU never waits for the host; on a CPU the results are those of a
plain loop. A run can be saved at epoch boundaries (`save_every`) and on SIGINT or SIGTERM at
the next step boundary, and resumed from such a checkpoint with identical results.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn

from mwt.budget_pull import BudgetPull
from mwt.class_budget import BudgetSettings, ClassBudget
from mwt.collapse import LR_BACKOFF, MAX_REWINDS, Collapse, Divergence, SnapshotRing, detect
from mwt.checkpoint import Checkpoint, save_checkpoint
from mwt.cost import CostModel, cost_model
from mwt.data import AnySplit, DatasetInfo, DataSource, batches_in_order, classes_missing, dataset_info
from mwt.distributed import Dist
from mwt.evaluate import accuracy
from mwt.init_weights import init_from, read_state_dict
from mwt.core.atomic import WriteFailed
from mwt.core.errors import Interrupted, MwtError, MwtWarning
from mwt.distill import classifier_inputs, classifier_layer, distillation_loss, load_teacher, similarity_loss
from mwt.teacher_answers import TeacherAnswers, answer, answer_all, fits
from mwt.losses import (
    LossParts, decisiveness, gate_preactivations, generator_only_gates, kernel_rate, modular_loss,
)
from mwt.models import ModelSpec, build_model, gated_layers
from mwt.progress import progress
from mwt.registry import check_input_size, is_constructed, is_user_code
from mwt.run_state import SUMS, RunState
from mwt.stop_request import StopRequest
from mwt.subtask_route import RouteSettings, SubtaskRoute, subtask_cross_entropy
from mwt.train_config import AMP_TYPES, TrainConfig

SYNC_EVERY = 20  # steps between reads of the running sums (progress bar, divergence check)


def resolve_device(device: str, dist: Dist = Dist()) -> torch.device:
    """"auto" means CUDA when available (this process's GPU under torchrun), else CPU."""
    if device == "auto":
        return torch.device(f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise MwtError(f"unknown device '{device}'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise MwtError(f"device '{device}' asked for, but this machine has no CUDA GPU")
    return resolved


def spec_for(config: TrainConfig, info: DatasetInfo) -> ModelSpec:
    """The model spec a config and dataset imply (a user's network: tied to its file's SHA-256)."""
    args: tuple[tuple[str, bool | int | float | str], ...] = ()
    if is_user_code(config.model):
        from mwt.models.user_code import code_args, required_code

        args = code_args(required_code(config.model))
    return ModelSpec(args=args,
        arch=config.model, num_classes=len(info.classes), in_channels=info.channels, input_size=info.size,
        width=config.width, modular=config.modular, mean=info.mean, std=info.std, pad=info.pad,
        gate_first=config.gate_first and config.modular, stem=config.stem,
    )


EpochHook = Callable[[int, nn.Module], dict[str, float]]


@dataclass
class _Run:
    """Everything the step loop works with."""

    config: TrainConfig
    spec: ModelSpec
    model: nn.Module  # the network (what gets saved)
    forward: nn.Module  # what the loop calls: the network, wrapped for several processes or compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    generator: torch.Generator
    device: torch.device
    dist: Dist
    cost: CostModel | None
    gate_names: list[str]
    classes: list[str]
    info: DatasetInfo
    data: dict[str, Any] | None = None  # an image folder's DataSource, for the checkpoint
    route: SubtaskRoute | None = None  # the reuse recipe's static sub-task gates
    budget: ClassBudget | None = None  # per-class FLOPs targets (TrainConfig.budget_by_loss)
    pull: BudgetPull | None = None  # the FLOPs weight's factor that makes the target bind (TrainConfig.budget_adapt)
    coupling_weights: list[float] | None = None  # per gated layer (TrainConfig.coupling_by_cost); None: equal
    teacher: nn.Module | None = None  # distilled from (mwt.distill)
    # the student's and the teacher's classifier layers, whose inputs the similarity term compares
    classifiers: tuple[nn.Linear, nn.Linear] | None = None
    answers: TeacherAnswers | None = None  # the teacher's answers to every training image, kept when unaugmented
    resumed: bool = False  # continues a resumable checkpoint's run (its state is restored)
    save_every: int = 0  # epochs between periodic saves; kept in them, so a resumed run saves as often


def train(
    config: TrainConfig, train_data: AnySplit, test_data: AnySplit, *, log_path: Path | None = None,
    show_progress: bool = True, on_epoch_end: EpochHook | None = None, save_path: Path | None = None,
    save_every: int | None = None, resume: Checkpoint | None = None, start: Checkpoint | None = None,
    dist: Dist = Dist(), info: DatasetInfo | None = None, source: DataSource | None = None,
) -> Checkpoint:
    """Train a model as `config` says and return it as a checkpoint (not yet modularized).

    With the same seed, data and CPU, two runs give the same weights, and so does a run stopped
    and resumed from its resumable checkpoint. Every epoch's figures go to the checkpoint's
    history and, as one JSON line each, to `log_path` (appended to, never truncated);
    `on_epoch_end(epoch, model)` may add figures of its own (it must leave the weights alone).
    `save_path` receives a resumable checkpoint every `save_every` epochs (None: as often as the
    resumed run did, which its checkpoint records; else never) and when SIGINT or SIGTERM stops the
    run (which then raises Interrupted). Under several processes only rank 0 prints, logs and
    writes. `start` trains from a checkpoint's network and weights instead of a fresh one (a
    compact module being fine-tuned); its classes are the labels 0..k-1 of the data.
    `info` describes the data (default: the built-in dataset `config.dataset`); `source` (an image
    folder's, as `load_dataset` settled it) is stored in the checkpoint.
    """
    config.validate(dist.world)
    info = info or dataset_info(config.dataset)
    if start is None and resume is None:
        check_input_size(config.model, info.size, info.pad)
    run, state = _setup(config, info, resume or start, dist, fresh=resume is None)
    run.save_every = save_every if save_every is not None else _saved_every(resume)
    initial = resume or start
    if source is not None and source.is_folder:
        run.data = source.to_dict()
    elif initial is not None:
        run.data = initial.data
    train_data = train_data.subset(config.train_limit)
    test_data = test_data.subset(config.test_limit)
    missing = classes_missing(train_data, list(info.classes))
    if missing and dist.main:  # the model cannot learn them (an image folder lists its images class by class)
        warnings.warn(MwtWarning(f"--limit {config.train_limit} leaves no training image of {', '.join(missing)} (it "
                                 f"takes the first {config.train_limit} images)", options=("limit",)), stacklevel=2)
    if run.device.type == "cuda":  # decoded datasets are small: one copy to the GPU, none per step
        train_data, test_data = train_data.to(run.device), test_data.to(run.device)
    taught_layer = run.classifiers[1] if run.classifiers else None
    if run.teacher is not None and info.augment == "none" and fits(taught_layer, len(train_data), len(run.classes)):
        run.answers = answer_all(run.teacher, taught_layer, train_data, run.device,
                                 batch_size=config.batch_size, amp=AMP_TYPES.get(config.amp),
                                 show_progress=show_progress and dist.main)
    _schedule(run, state, train_data)
    log = _EpochLog(log_path) if log_path and dist.main else None
    try:
        if log:
            log.write({"run": {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "config": asdict(config),
                               "processes": dist.world, "resumed_at_epoch": state.epoch}})
        guarded = _guarded(config)
        ring = SnapshotRing()
        if guarded and not state.step:  # (a run resumed within an epoch has its first boundary at that epoch's end)
            ring.keep(state.epoch, _capture(run, state))
        with StopRequest() as stop:
            epoch = state.epoch + 1
            while epoch <= config.epochs:
                try:
                    record = _train_epoch(run, state, train_data, epoch, stop, save_path, show_progress)
                except _Diverged as diverged:  # rewound two epochs where the guard keeps them; else the error
                    event = Divergence(epoch, diverged.step)
                    if guarded and _rewind(run, state, ring, event, None, log, dist.main):
                        epoch = state.epoch + 1
                        continue
                    _diverged_for_good(state, guarded, event, log)
                record["test_acc"] = accuracy(run.model, test_data, device=run.device, dist=dist)
                if on_epoch_end is not None:
                    record.update(on_epoch_end(epoch, run.model))
                collapse = detect(state.history[-1] if state.history else None, record, config.collapse_drop,
                                  len(train_data)) if guarded else None
                if collapse is not None:
                    if _rewind(run, state, ring, collapse, record, log, dist.main):
                        epoch = state.epoch + 1
                        continue
                    _collapse_kept(state, ring, collapse, record, log, dist.main)
                state.history.append(record)
                state.epoch, state.step, state.order = epoch, 0, None
                if log:
                    log.write(record)
                if show_progress and dist.main:
                    gates = (f"kernel rate {record['kernel_rate']:.3f}  FLOPs {record['flops']:.3f}  "
                             if config.modular else "")  # a plain network has no gates to report
                    print(f"epoch {epoch:3d}  loss {record['loss']:.3f}  train acc {record['train_acc']:.4f}  "
                          f"test acc {record['test_acc']:.4f}  {gates}{record['seconds']:.1f}s", flush=True)
                if save_path and run.save_every and epoch % run.save_every == 0 and epoch < config.epochs:
                    _save_resumable(run, state, save_path, periodic=True)
                if guarded:
                    ring.keep(epoch, _capture(run, state))
                epoch += 1
    finally:
        if log:
            log.close()
    agree = _weights_agree(run.model, dist, run.device)
    run.model.eval().cpu()
    return Checkpoint(
        spec=run.spec, state_dict=run.model.state_dict(), classes=run.classes, dataset=run.info.name, data=run.data,
        training={"config": asdict(config), "history": state.history, "test_acc": state.history[-1]["test_acc"],
                  "device": str(run.device), "processes": dist.world, "weights_agree_across_processes": agree,
                  "finished": True},
    )


def _schedule(run: _Run, state: RunState, data: AnySplit) -> None:
    """Build the learning-rate schedule (it needs the steps per epoch) and, for a resumed run, restore
    the saved optimizer, schedule and generators: before the first epoch, so that the run's state is
    whole from the start (the collapse guard's first snapshot is taken there)."""
    steps = _steps_per_epoch(len(data), run.config, run.dist)
    run.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(run.optimizer, T_max=run.config.epochs * steps)
    if run.resumed:
        state.check_against(run.optimizer, run.scheduler, steps, len(data))
        _restore(run, state)


def _guarded(config: TrainConfig) -> bool:
    """Whether the collapse guard watches this run: a modular run with a FLOPs term (where collapses come)."""
    return bool(config.collapse_drop and config.modular and config.gamma)


def _capture(run: _Run, state: RunState) -> dict[str, Any]:
    """The run's state at an epoch boundary, for the collapse guard's snapshots (copied by the ring):
    its weights and what a resumable checkpoint holds."""
    _record_state(run, state)
    return {"weights": run.model.state_dict(), "state": state}


def _rewind(run: _Run, state: RunState, ring: SnapshotRing, event: Collapse | Divergence,
            record: dict[str, float] | None, log: _EpochLog | None, main: bool) -> bool:
    """Answer a collapse or a divergence: restore the oldest kept snapshot and cut the learning rate, warn and
    log it (True); past MAX_REWINDS or with no epoch boundary kept, do nothing (False). `record`: the
    abandoned epoch's figures, where it got to its end."""
    if state.rewinds >= MAX_REWINDS or not len(ring):
        return False
    target = ring.oldest()
    assert target is not None
    saved: RunState = target.state["state"]
    run.model.load_state_dict(target.state["weights"])
    _restore(run, saved)
    _restore_running(run, saved)
    # the count of rewinds goes on from the live state's, not the snapshot's
    state.history, state.epoch, state.step, state.order = saved.history, saved.epoch, 0, None
    state.rewinds += 1
    # The cosine schedule scales each step's rate from the group's current one, so the cut lasts to the end
    # (and a resumable checkpoint carries it in the optimizer's state). Earlier cuts are in the snapshot's.
    factor = LR_BACKOFF ** state.rewinds
    for group in run.optimizer.param_groups:
        group["lr"] *= factor / LR_BACKOFF ** saved.rewinds
    ring.drop_after(target.epoch)
    if main:
        warnings.warn(MwtWarning(f"{event.describe()}; rewound to the end of epoch {target.epoch} with the learning "
                                 f"rate x{factor:g} (rewind {state.rewinds} of {MAX_REWINDS})"), stacklevel=3)
    if log:
        log.write({event.log_key: {**asdict(event), "rewound_to": target.epoch, "lr_factor": factor,
                                   **({"record": record} if record is not None else {})}})
    return True


def _collapse_kept(state: RunState, ring: SnapshotRing, collapse: Collapse, record: dict[str, float],
                   log: _EpochLog | None, main: bool) -> None:
    """A collapse the guard cannot rewind: warn that the run goes on as it is, and log it."""
    why = (f"the run has rewound {state.rewinds} times already" if len(ring) else
           "no earlier epoch's state is kept (the run was resumed within the epoch before)")
    if main:
        warnings.warn(MwtWarning(f"{collapse.describe()}; {why} and it goes on: its modules will likely be even "
                                 "and its accuracy low"), stacklevel=3)
    if log:
        log.write({"collapse": {**asdict(collapse), "rewound_to": None, "record": record}})


class _EpochLog:
    """The JSON-lines epoch log, appended to. A write that fails (a full disk) warns once and
    ends the log, not the run: every epoch's figures are in the checkpoint's history too."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "a")  # noqa: SIM115 - closed by close()

    def write(self, record: dict[str, Any]) -> None:
        if self.file is None:
            return
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as e:
            self._fail(e)

    def _fail(self, e: OSError) -> None:
        warnings.warn(MwtWarning(f"cannot append to the epoch log {self.path} ({e.strerror or e}); training goes on, "
                                 "and the checkpoint's history holds every epoch"), stacklevel=3)
        with contextlib.suppress(OSError):
            self.file.close()  # type: ignore[union-attr]
        self.file = None

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError as e:
                self.file = None
                warnings.warn(MwtWarning(f"cannot finish the epoch log {self.path} ({e.strerror or e})"), stacklevel=2)


def _saved_every(ckpt: Checkpoint | None) -> int:
    """How often (in epochs) the run in a resumable checkpoint saved itself, so that resuming it
    goes on saving as often; 0 for no checkpoint, where it did not say (checkpoints written before
    it was recorded) or where what it says is not a count."""
    value = ckpt.training.get("save_every", 0) if ckpt is not None else 0
    return value if type(value) is int and value >= 0 else 0


def rescue_dir() -> Path:
    """Where a finished run goes when its own output cannot be written: $MWT_CACHE/rescued
    (default ~/.cache/mwt/rescued), usually another file system than the output's."""
    return Path(os.environ.get("MWT_CACHE", Path.home() / ".cache" / "mwt")) / "rescued"


def save_or_rescue(ckpt: Checkpoint, path: Path, what: str = "the finished run") -> None:
    """Save `ckpt` to `path`; if that write fails (a full disk), save it under `rescue_dir()`
    and raise MwtError naming where it is, so a run is never thrown away at its last write."""
    try:
        save_checkpoint(ckpt, path)
        return
    except WriteFailed as e:
        failed = str(e)
    rescued = rescue_dir() / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}{path.suffix or '.pt'}"
    try:
        rescued.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(ckpt, rescued)
    except (OSError, MwtError) as e:
        survives = ("its last resumable checkpoint, if one was written, is still in " + str(path)
                    if path.exists() else "nothing of it survives")
        raise MwtError(f"{failed}; saving {what} to {rescued.parent} failed too ({str(e)[:80]}); {survives}") from None
    raise MwtError(f"{failed}; {what} was rescued to {rescued}: move it where it belongs"
                   + ("" if ckpt.resume is None else " and resume from it"), options=("out",))


def _weights_agree(model: nn.Module, dist: Dist, device: torch.device) -> bool:
    """Whether every process ended with the same parameters (DDP keeps them equal; this checks it).
    BatchNorm running statistics are per process; the checkpoint holds rank 0's."""
    if not dist.active:
        return True
    with torch.no_grad():
        checksum = torch.stack([p.double().sum() for p in model.parameters()]).sum()
    gathered = dist.all_gather_rows(checksum.reshape(1).to(device))
    if not bool((gathered == gathered[0]).all()):
        raise MwtError(f"the processes ended with different weights (checksums {gathered.tolist()})")
    return True


def _setup(config: TrainConfig, info: DatasetInfo, initial: Checkpoint | None, dist: Dist,
           fresh: bool) -> tuple[_Run, RunState]:
    """The run's network and state: new, from `initial`'s weights (fresh), or resumed from it."""
    device = resolve_device(config.device, dist)
    if config.amp != "off" and device.type != "cuda":
        raise MwtError(f"mixed precision ({config.amp}) needs a CUDA GPU; this run is on {device}", options=("amp",))
    torch.manual_seed(config.seed)
    spec = initial.spec if initial is not None else spec_for(config, info)
    classes = list(initial.classes) if initial is not None else list(info.classes)
    model = build_model(spec)
    if is_constructed(spec.arch):
        from mwt.models.torchvision_models import check_network

        check_network(model, spec)  # a network that cannot take these images fails here, in one line
    if initial is None and config.init_from is not None:
        report = init_from(model, read_state_dict(config.init_from), config.init_from)
        if dist.main:
            print(report.line(config.init_from), flush=True)
    state = RunState()
    if initial is not None:
        model.load_state_dict(initial.state_dict)
        if not fresh:
            state = RunState.from_dict(initial.resume, config.epochs)
    cost = cost_model(model, spec.input_shape) if spec.modular else None
    gate_names = [n for n, _ in gated_layers(model)]
    model = model.to(device)
    channels_last = device.type == "cuda" if config.channels_last is None else config.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay
    )
    forward: nn.Module = model
    if dist.active:
        forward = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        forward = torch.compile(forward)  # type: ignore[assignment]
    generator = torch.Generator().manual_seed(config.seed)
    scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" else None
    run = _Run(config, spec, model, forward, optimizer, None, scaler, generator, device, dist, cost,  # type: ignore[arg-type]
               gate_names, classes, info, resumed=initial is not None and not fresh)
    if config.coupling_by_cost and cost is not None and gate_names:
        run.coupling_weights = _relative_to_mean(cost.kernel_costs(gate_names))
    if config.teacher is not None:
        run.teacher = load_teacher(config.teacher, classes, spec.input_shape, device)
        if config.similarity:  # found once: walking the modules every step cost both networks a scan
            run.classifiers = (classifier_layer(model), classifier_layer(run.teacher))
    if config.reuse and gate_names:
        run.route = SubtaskRoute(model, spec.num_classes, RouteSettings.for_task(config.reuse, spec.num_classes), device)
    if (config.budget_by_loss or config.coupling_by_loss) and gate_names:
        settings = BudgetSettings(config.flops_target, config.budget_by_loss, config.coupling_by_loss)
        run.budget = ClassBudget(spec.num_classes, settings, device)
    if config.budget_adapt and gate_names:
        run.pull = BudgetPull(config.budget_adapt, device, config.budget_relax)
    _restore_running(run, state)
    return run, state


def _relative_to_mean(values: list[float]) -> list[float]:
    """`values` divided by their mean (so a weighted average keeps the scale of a plain one)."""
    mean = sum(values) / max(len(values), 1)
    return [v / mean for v in values] if mean > 0 else [1.0] * len(values)


def _steps_per_epoch(n: int, config: TrainConfig, dist: Dist) -> int:
    per_rank = -(-n // dist.world)
    local_batch = config.batch_size // dist.world
    return -(-per_rank // local_batch)


def _ramped(weight: float, epoch: int, warmup: int) -> float:
    """`weight` ramped linearly from 0 over the first `warmup` epochs, or steps (0: constant); `epoch` counts from 1."""
    return weight * min(1.0, epoch / warmup) if warmup else weight


@contextlib.contextmanager
def _warmed_up(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """Scale every group's learning rate by `factor` for one step. The scheduler's state never sees it,
    so a rewind's cut and a resumed run's schedule stay as they are; the factor is a function of the step."""
    if factor == 1.0:
        yield
        return
    rates = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= factor
    try:
        yield
    finally:
        for group, rate in zip(optimizer.param_groups, rates):
            group["lr"] = rate


@dataclass(frozen=True)
class _EpochWeights:
    """One epoch's loss weights and gate leak: ramped in over their warm-ups, all 0 in the settle epochs."""

    alpha: float
    beta: float
    gamma: float
    delta: float
    leak: float
    settling: bool  # one of the last settle_epochs: the gate losses off and the mask generators frozen

    @classmethod
    def for_epoch(cls, config: TrainConfig, epoch: int) -> _EpochWeights:
        """The weights of epoch `epoch` (counted from 1) of a run configured by `config`."""
        if epoch > config.epochs - config.settle_epochs:
            return cls(0.0, 0.0, 0.0, 0.0, 0.0, settling=True)
        return cls(config.alpha, _ramped(config.beta, epoch, config.beta_warmup),
                   _ramped(config.gamma, epoch, config.gamma_warmup), config.delta,
                   _ramped(config.gate_leak, epoch - config.gate_leak_from + 1, config.gate_leak_warmup)
                   if epoch >= config.gate_leak_from else 0.0, settling=False)


def _train_epoch(run: _Run, state: RunState, data: AnySplit, epoch: int, stop: StopRequest, save_path: Path | None,
                 show_progress: bool) -> dict[str, float]:
    config, dist = run.config, run.dist
    steps = _steps_per_epoch(len(data), config, dist)
    run.forward.train()
    info = run.info
    weights = _EpochWeights.for_epoch(config, epoch)
    # Frozen by dropping their gradients after each backward (SGD skips a weight with none, momentum and
    # decay included); toggling requires_grad instead would upset DistributedDataParallel's hooks.
    frozen = ([p for _, block in gated_layers(run.model) for p in block.gate.parameters()]  # type: ignore[union-attr]
              if weights.settling else [])
    for _, block in gated_layers(run.model):
        block.gate.leak = weights.leak  # type: ignore[union-attr]
    if state.step:  # a resumed epoch: the same order, from the step where it stopped
        order = state.order
    else:
        order = torch.randperm(len(data), generator=run.generator)
        state.sums, state.seen, state.seconds = [0.0] * len(SUMS), 0, 0.0
    assert order is not None
    local_order = dist.shard(order)
    # (a state saved before a figure was added to SUMS resumes with that figure at 0)
    sums = torch.tensor((state.sums + [0.0] * len(SUMS))[:len(SUMS)], dtype=torch.float64, device=run.device)
    seen = state.seen
    start = time.perf_counter() - state.seconds
    batch = config.batch_size // dist.world
    bar = progress(
        batches_in_order(data, local_order, batch, start_step=state.step,
                         generator=run.generator, augment=info.augment),
        total=steps - state.step, desc=f"epoch {epoch}/{config.epochs}", enable=show_progress and dist.main,
    )
    step = state.step
    for x, y in bar:
        x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
        if run.device.type == "cuda" and config.channels_last is not False:
            x = x.contiguous(memory_format=torch.channels_last)
        parts, logits, gates, y = _step_loss(run, x, y, local_order[step * batch:(step + 1) * batch], weights, epoch)
        _optimizer_step(run, parts.total, frozen, steps)
        with torch.no_grad():
            sums += _step_sums(parts, logits, gates, y)
        seen += int(y.shape[0])
        step += 1
        if step % SYNC_EVERY == 0:
            current = sums.tolist()  # the one host read every SYNC_EVERY steps
            if not _finite(current, dist, run.device):
                raise _Diverged(step)
            bar.set_postfix(**{k: f"{v / seen:.3f}" for k, v in zip(("loss", "ce", "coh", "coup", "flops", "kr", "acc"),
                                                                    current)})
        if _stop_agreed(stop, dist, run.device):
            current = sums.tolist()
            # the loss may have gone non-finite since the last check: such a state is rewound, never saved
            if not (_finite(current, dist, run.device) and _weights_finite(run.model)):
                raise _Diverged(step)
            state.step, state.order, state.sums, state.seen = step, order, current, seen
            state.seconds = time.perf_counter() - start
            _stop(run, state, save_path, stop.signal)
    # weights gone non-finite on the epoch's last steps would go into its snapshot and periodic save
    if not (_finite(sums.tolist(), dist, run.device) and _weights_finite(run.model)):
        raise _Diverged(step)
    return _epoch_record(run, sums, seen, start, weights, epoch)


def _step_loss(run: _Run, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, weights: _EpochWeights,
               epoch: int) -> tuple[LossParts, torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """One batch's forward and every loss term (`idx`: the batch's training-image indices, for kept teacher
    answers), updating the running statistics the terms keep. Returns the parts and the logits, gates and
    labels of the batch's dynamic rows (those the reuse recipe did not route through sub-task gates)."""
    config, dist = run.config, run.dist
    amp = AMP_TYPES.get(config.amp)
    alpha, beta, gamma, delta = weights.alpha, weights.beta, weights.gamma, weights.delta
    plan = run.route.plan(y, run.generator, dist) if run.route is not None else None
    with torch.autocast(run.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        with contextlib.ExitStack() as hooks:
            if plan is not None:
                hooks.enter_context(run.route.routing(run.model, plan))  # type: ignore[union-attr]
            local = (hooks.enter_context(generator_only_gates(run.model))
                     if config.gate_losses == "generators" else None)
            preactivations = (hooks.enter_context(gate_preactivations(run.model))
                              if delta and local is None else [])
            features = hooks.enter_context(classifier_inputs(run.classifiers[0])) if run.classifiers else []
            logits, gates = run.forward(x)
        loss_gates = gates
        if local is not None:  # the same values; their gradients stop at each generator's input
            loss_gates = local.gates
            if delta:
                preactivations = local.preactivations
        if run.teacher is not None:
            taught, taught_features = _teacher_answer(run, x, idx)
            if taught_features is not None:  # over every row, routed or not: each path keeps the teacher's geometry
                similar = similarity_loss(features[-1].float(), taught_features)
            # each routed row learns the teacher's answer over its sub-task's classes only
            allowed = torch.ones_like(taught, dtype=torch.bool)
            if plan is not None:
                allowed[plan.routed] = plan.members
            distilled = distillation_loss(logits.float(), taught, config.temperature, allowed)
        if plan is not None:  # MwT's losses see the dynamic rows; the routed rows their sub-task's classes
            routed_logits, members, routed_y = logits[plan.routed], plan.members, y[plan.routed]
            keep = ~plan.routed
            logits, gates, y = logits[keep], [g[keep] for g in gates], y[keep]
            loss_gates = [g[keep] for g in loss_gates]
        pairs = ([dist.all_gather_rows(g) for g in loss_gates], dist.all_gather_rows(y)) if dist.active else None
        target = run.budget.targets(y) if run.budget is not None and config.budget_by_loss else config.flops_target
        class_weights = run.budget.coupling_factors() if run.budget is not None and config.coupling_by_loss else None
        pull = gamma * run.pull.factor.float() if run.pull is not None and gamma else gamma
        parts = modular_loss(logits.float(), loss_gates, y, alpha, beta, pull, run.cost, run.gate_names,
                             pairs=pairs, block=config.cost_block, free=config.free_channels,
                             target=target, coupling_weights=run.coupling_weights, class_weights=class_weights)
        # the factor adapts once the FLOPs weight has ramped in: during the ramp the samples sit far over any
        # budget, and a factor grown on that would close gates the ramp means to close slowly
        if run.pull is not None and gamma and epoch >= config.gamma_warmup:
            run.pull.update(parts.flops, target, int(y.shape[0]), dist.all_reduce_sum)
        if run.budget is not None:
            run.budget.update(nn.functional.cross_entropy(logits.detach().float(), y, reduction="none"), y,
                              dist.all_reduce_sum)
        if plan is not None:
            parts.subtask = subtask_cross_entropy(routed_logits.float(), members, routed_y)
            parts.total = parts.total + parts.subtask
            run.route.update(gates, y, dist)  # type: ignore[union-attr]
        if preactivations:  # over the dynamic rows (all processes' rows under torchrun)
            rows = [z[~plan.routed] if plan is not None else z for z in preactivations]
            if dist.active:
                rows = [dist.all_gather_rows(z) for z in rows]
            parts.decisiveness = decisiveness(rows, pairs[1] if pairs is not None else y, len(run.classes))
            parts.total = parts.total + delta * parts.decisiveness
        if run.teacher is not None:
            parts.distill = distilled
            parts.total = parts.total + config.distill * distilled
            if run.classifiers:
                parts.similarity = similar
                parts.total = parts.total + config.similarity * similar
    return parts, logits, gates, y


def _optimizer_step(run: _Run, total: torch.Tensor, frozen: list[nn.Parameter], steps_per_epoch: int) -> None:
    """Back-propagate `total`, drop the frozen weights' gradients, and step the optimizer (its learning rate
    warmed up) and the scheduler."""
    run.optimizer.zero_grad(set_to_none=True)
    (run.scaler.scale(total) if run.scaler is not None else total).backward()
    for p in frozen:
        p.grad = None
    # The scheduler has stepped once per step done, so this step is the run's (last_epoch + 1)-th.
    lr_factor = _ramped(1.0, run.scheduler.last_epoch + 1, run.config.lr_warmup * steps_per_epoch)
    with _warmed_up(run.optimizer, lr_factor):
        if run.scaler is not None:
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            run.optimizer.step()
    run.scheduler.step()


def _step_sums(parts: LossParts, logits: torch.Tensor, gates: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """One step's contribution to the epoch's running sums (SUMS order), each figure times the rows it is over."""
    n = int(y.shape[0])
    zero = torch.zeros((), device=logits.device)
    extra = [zero if v is None else v.detach()
             for v in (parts.subtask, parts.decisiveness, parts.distill, parts.similarity)]
    return torch.stack([parts.total.detach(), parts.ce.detach(), parts.cohesion.detach(), parts.coupling.detach(),
                        parts.flops.detach(), kernel_rate(gates).to(logits.device),
                        (logits.argmax(1) == y).sum() / max(n, 1), *extra]).double() * n


def _epoch_record(run: _Run, sums: torch.Tensor, seen: int, start: float, weights: _EpochWeights,
                  epoch: int) -> dict[str, float]:
    """The epoch's figures over all processes: the running sums' means, its time since `start` (read after the
    sums, so a GPU's queued work counts), the weights it trained with, and where the FLOPs budget's pull and the
    per-class scales stand."""
    dist, config = run.dist, run.config
    totals = dist.all_reduce_sum(torch.cat([sums, torch.tensor([seen], dtype=torch.float64, device=run.device)]))
    values = totals.tolist()  # (every process's sums were found finite at the epoch's end)
    total_seen = max(values[-1], 1)
    record = {k: v / total_seen for k, v in zip(SUMS, values)}
    record["train_acc"] = record.pop("correct")
    record["seconds"] = time.perf_counter() - start
    record["lr"] = float(run.optimizer.param_groups[0]["lr"])
    record["alpha"] = weights.alpha
    record["beta"] = weights.beta
    record["gamma"] = weights.gamma
    if run.config.gate_leak:  # the leak this epoch trained with (0 before --gate-leak-from, ramped in after)
        record["gate_leak"] = weights.leak
    if run.pull is not None:  # the factor on gamma that the budget's excess has built up
        record["budget_pull"] = float(run.pull.factor)
    if run.budget is not None and config.budget_by_loss:  # how far the per-class targets have moved apart
        scales = run.budget.scales()
        record["budget_scale_min"], record["budget_scale_max"] = float(scales.min()), float(scales.max())
    if run.budget is not None and config.coupling_by_loss:  # and the per-class coupling weights
        factors = run.budget.coupling_factors()
        record["coupling_scale_min"], record["coupling_scale_max"] = float(factors.min()), float(factors.max())
    record["epoch"] = epoch
    return record


def _teacher_answer(run: _Run, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The teacher's logits for batch `x` (the training images `idx`), and the input of its classifier
    layer when the similarity term compares it: kept from the run's start, or computed now."""
    if run.answers is not None:
        return run.answers.rows(idx)
    return answer(run.teacher, run.classifiers[1] if run.classifiers else None, x)  # type: ignore[arg-type]


def _diverged_for_good(state: RunState, guarded: bool, event: Divergence, log: _EpochLog | None) -> NoReturn:
    """End a run whose loss is no longer finite and which cannot be rewound: log it (under the guard) and raise the
    one-line error, saying whether the rewinds were spent."""
    if guarded and log:
        log.write({event.log_key: {**asdict(event), "rewound_to": None}})
    spent = (f"; {state.rewinds} rewinds at a lower learning rate did not help" if state.rewinds >= MAX_REWINDS
             else "")
    raise MwtError(f"training diverged (the loss is not finite{spent}); try a smaller learning rate", options=("lr",))


class _Diverged(Exception):
    """The loss (or a weight) went non-finite by `step` steps into the epoch: the loop rewinds the run or ends it."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


def _finite(sums: list[float], dist: Dist, device: torch.device) -> bool:
    """Whether this process's running sums are finite; under several processes, whether every one's are, so that
    all of them rewind (or stop) at the same step."""
    return not _any_process(not all(math.isfinite(v) for v in sums), dist, device)


def _weights_finite(model: nn.Module) -> bool:
    """Whether every floating-point weight and buffer is finite (one host read)."""
    tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def _any_process(flag: bool, dist: Dist, device: torch.device) -> bool:
    """Whether `flag` holds in this process or, under several processes, in any of them (the same answer in all)."""
    if not dist.active:
        return flag
    return bool(dist.all_reduce_sum(torch.tensor([1.0 if flag else 0.0], device=device)).item() > 0)


def _stop_agreed(stop: StopRequest, dist: Dist, device: torch.device) -> bool:
    """Whether to stop now; under several processes all stop at the same step (any rank's signal counts)."""
    return _any_process(stop.signal is not None, dist, device)


def _stop(run: _Run, state: RunState, save_path: Path | None, signum: int | None) -> None:
    code = 128 + (signum or signal.SIGINT)
    if save_path is None:
        raise Interrupted("nothing was written", code)
    _save_resumable(run, state, save_path)
    raise Interrupted(f"saved a resumable checkpoint to {save_path}; resume from it to continue", code,
                      options=("resume",))


def _restore(run: _Run, state: RunState) -> None:
    """Load the optimizer, schedule, gradient scaler and random generators from `state`."""
    try:
        run.optimizer.load_state_dict(state.optimizer)
        run.scheduler.load_state_dict(state.scheduler)
        if run.scaler is not None and state.scaler:
            run.scaler.load_state_dict(state.scaler)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise MwtError(f"the checkpoint's optimizer state does not fit this run ({str(e)[:120]})") from None
    run.generator.set_state(state.generator)  # type: ignore[arg-type]
    if state.torch_rng is not None:
        torch.set_rng_state(state.torch_rng)


def _record_state(run: _Run, state: RunState) -> None:
    """Copy into `state` what of the run a resumable checkpoint holds beyond its weights (references,
    not copies: a checkpoint or a snapshot copies them when it keeps them)."""
    state.generator = run.generator.get_state()
    state.route = run.route.state_dict() if run.route is not None else None
    state.budget = run.budget.state_dict() if run.budget is not None else None
    state.pull = run.pull.state_dict() if run.pull is not None else None
    state.torch_rng = torch.get_rng_state()
    state.optimizer = run.optimizer.state_dict()
    state.scheduler = run.scheduler.state_dict()
    state.scaler = run.scaler.state_dict() if run.scaler is not None else None


def _restore_running(run: _Run, state: RunState) -> None:
    """Load the reuse route's, the class budget's and the budget pull's running statistics from `state`, where
    both sides have them."""
    if run.route is not None and state.route is not None:
        run.route.load_state_dict(state.route)
    if run.budget is not None and state.budget is not None:
        run.budget.load_state_dict(state.budget)
    if run.pull is not None and state.pull is not None:
        run.pull.load_state_dict(state.pull)


def _save_resumable(run: _Run, state: RunState, path: Path, periodic: bool = False) -> None:
    """Write a resumable checkpoint (rank 0 only; every rank waits until it is written). A
    periodic save that fails (a full disk) warns and training goes on, the last one kept; the
    save of a stopped run is rescued elsewhere (see `save_or_rescue`)."""
    if run.dist.main:
        _record_state(run, state)
        weights = {k: v.detach().cpu() for k, v in run.model.state_dict().items()}
        ckpt = Checkpoint(spec=run.spec, state_dict=weights, classes=run.classes, dataset=run.info.name, data=run.data,
                          training={"config": asdict(run.config), "history": list(state.history),
                                    "test_acc": state.history[-1]["test_acc"] if state.history else float("nan"),
                                    "device": str(run.device), "processes": run.dist.world, "finished": False,
                                    "save_every": run.save_every},
                          resume=_cpu(state.to_dict()))
        if periodic:
            try:
                save_checkpoint(ckpt, path)
            except WriteFailed as e:
                warnings.warn(MwtWarning(f"{e}; training goes on"), stacklevel=2)
        else:
            save_or_rescue(ckpt, path, "the stopped run")
    run.dist.barrier()


def _cpu(obj: Any) -> Any:
    """Tensors anywhere in a nested structure moved to the CPU (a checkpoint holds no device tensors)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj
