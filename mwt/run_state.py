"""Where a training run stands beyond its weights (what a resumable checkpoint holds under "resume"),
and the checks that a loaded state is whole and fits the run it resumes: a damaged one is refused with
one line, never half-restored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from mwt.collapse import MAX_REWINDS
from mwt.core.errors import MwtError
from mwt.defaults import finite_number

# The running sums of an epoch, in the order RunState.sums keeps them.
SUMS = ("loss", "ce", "cohesion", "coupling", "flops", "kernel_rate", "correct", "subtask_ce", "decisiveness",
        "distill", "similarity")


@dataclass
class RunState:
    """Where a run stands, beyond its weights: what a resumable checkpoint holds under "resume"."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps done in the epoch under way (0 at an epoch boundary)
    order: torch.Tensor | None = None  # the epoch under way's sample order
    generator: torch.Tensor | None = None  # state of the data-order generator
    torch_rng: torch.Tensor | None = None
    optimizer: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] = field(default_factory=dict)
    scaler: dict[str, Any] | None = None
    sums: list[float] = field(default_factory=list)  # the epoch under way's running sums (SUMS order)
    seen: int = 0
    seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    route: dict[str, Any] | None = None  # the reuse recipe's running sub-task statistics
    budget: dict[str, Any] | None = None  # the running per-class losses of --budget-by-loss
    pull: dict[str, Any] | None = None  # the FLOPs weight's factor under --budget-adapt
    # times the collapse guard rewound the run (mwt.collapse); each cut the learning rate, which the
    # optimizer's state carries
    rewinds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, epochs: int | None = None) -> RunState:
        """The state, with every field but `route` and `budget` checked (their loaders check those); what
        needs the run itself (optimizer, scheduler, order) is checked by `check_against`."""
        if not isinstance(d, dict):
            raise MwtError("the checkpoint's resume state is not a dict")
        # stop 51's guard halved the FLOPs weight instead and kept that factor; the weight is whole again
        d = {k: v for k, v in d.items() if k != "backoff"}
        try:
            state = cls(**d)
        except TypeError as e:
            raise MwtError(f"the checkpoint's resume state is malformed ({e})") from None
        bad = _bad_field(state, epochs)
        if bad:
            raise MwtError(f"the checkpoint's resume state is damaged: {bad}; resume from an untouched checkpoint or "
                           "train afresh")
        return state

    def check_against(self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                      steps: int, samples: int) -> None:
        """Check the fields that depend on the run: the sample order, the step, the optimizer's
        and the scheduler's state, against a run with `steps` steps of `samples` samples an epoch."""
        bad = _bad_order(self, steps, samples) or _bad_optimizer(self.optimizer, optimizer)
        bad = bad or _bad_scheduler(self.scheduler, scheduler, self.epoch * steps + self.step)
        if bad:
            raise MwtError(f"the checkpoint's resume state is damaged: {bad}; resume from an untouched checkpoint or "
                           "train afresh")


def _generator_problem(t: object) -> bool:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8:
        return True
    try:
        torch.Generator().set_state(t)  # the one authority on the format
    except (RuntimeError, TypeError, ValueError):
        return True
    return False


def _bad_field(state: RunState, epochs: int | None) -> str | None:
    """What is wrong with the run-independent fields (None when nothing)."""
    if type(state.epoch) is not int or type(state.step) is not int or state.epoch < 0 or state.step < 0:
        return "its epoch and step are not whole numbers"
    if epochs is not None and state.epoch >= epochs:
        return f"its epoch {state.epoch} is not before the run's last ({epochs})"
    if _generator_problem(state.generator):
        return "the data-order generator state is not a torch generator's"
    if state.torch_rng is not None and _generator_problem(state.torch_rng):
        return "torch's random number generator state is not a generator's"
    if not isinstance(state.sums, list) or len(state.sums) > len(SUMS) or not all(finite_number(v) for v in state.sums):
        return f"the running sums are not up to {len(SUMS)} finite numbers"
    if type(state.seen) is not int or state.seen < 0:
        return "the count of samples seen is not a whole number"
    if not finite_number(state.seconds) or state.seconds < 0:
        return "the seconds spent are not a finite number"
    if (not isinstance(state.history, list) or len(state.history) != state.epoch
            or not all(isinstance(r, dict) and all(isinstance(k, str) and type(v) in (int, float) for k, v in r.items())
                       for r in state.history)):
        return "the history is not one record of figures per epoch done"
    if not isinstance(state.optimizer, dict) or not isinstance(state.scheduler, dict):
        return "the optimizer or scheduler state is not a dict"
    if state.scaler is not None and not isinstance(state.scaler, dict):
        return "the gradient scaler state is not a dict"
    if type(state.rewinds) is not int or not 0 <= state.rewinds <= MAX_REWINDS:
        return f"its count of rewinds is not a whole number up to {MAX_REWINDS}"
    return None


def _bad_order(state: RunState, steps: int, samples: int) -> str | None:
    if state.step >= steps:
        return f"its step {state.step} is past the epoch's {steps} steps"
    if state.step:
        order = state.order
        if (not isinstance(order, torch.Tensor) or order.dtype != torch.int64 or order.shape != (samples,)
                or not torch.equal(order.sort().values, torch.arange(samples))):
            return f"the epoch's sample order is not an order of the {samples} training samples"
    return None


def _same_shape(value: object, reference: object) -> bool:
    """Whether a loaded state value is of the kind the fresh one is (numbers finite, tensors alike)."""
    if isinstance(reference, bool) or reference is None:
        return type(value) is type(reference)
    if isinstance(reference, (int, float)):
        return finite_number(value)
    if isinstance(reference, torch.Tensor):
        return (isinstance(value, torch.Tensor) and value.shape == reference.shape and value.dtype == reference.dtype
                and (not value.is_floating_point() or bool(torch.isfinite(value).all())))
    if isinstance(reference, (list, tuple)):
        return (isinstance(value, (list, tuple)) and len(value) == len(reference)
                and all(_same_shape(v, r) for v, r in zip(value, reference)))
    if isinstance(reference, dict):
        return isinstance(value, dict) and set(value) == set(reference) and all(
            _same_shape(value[k], reference[k]) for k in reference)
    return type(value) is type(reference)


def _bad_optimizer(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> str | None:
    fresh = optimizer.state_dict()
    groups = saved.get("param_groups")
    if set(saved) != {"state", "param_groups"} or not isinstance(groups, list) or len(groups) != len(fresh["param_groups"]):
        return "the optimizer state is not this run's optimizer's"
    for group, ref in zip(groups, fresh["param_groups"]):
        if not isinstance(group, dict) or set(group) != set(ref) or group["params"] != ref["params"]:
            return "the optimizer's parameter groups are not this run's"
        for key, value in ref.items():
            if key != "params" and not _same_shape(group[key], value):
                return f"the optimizer's {key} is {group[key]!r}, not a finite number"
        if not group["lr"] > 0 or not 0 <= group["momentum"] < 1:
            return f"the optimizer's lr {group['lr']} or momentum {group['momentum']} is out of range"
    params = [p for g in optimizer.param_groups for p in g["params"]]
    state = saved["state"]
    if not isinstance(state, dict) or not set(state) <= set(range(len(params))):
        return "the optimizer's per-parameter state is not this run's"
    for index, entry in state.items():
        buffer = entry.get("momentum_buffer") if isinstance(entry, dict) else None
        if (not isinstance(entry, dict) or set(entry) != {"momentum_buffer"} or not isinstance(buffer, torch.Tensor)
                or not _same_shape(buffer, params[index].detach())):
            return f"the optimizer's momentum buffer of parameter {index} does not fit it"
    return None


def _bad_scheduler(saved: dict[str, Any], scheduler: torch.optim.lr_scheduler.LRScheduler, done: int) -> str | None:
    fresh = scheduler.state_dict()
    if not _same_shape(saved, fresh):
        return "the learning-rate scheduler state is not this run's scheduler's"
    if saved.get("T_max") != fresh.get("T_max") or saved.get("last_epoch") != done:
        return (f"the learning-rate scheduler is at step {saved.get('last_epoch')} of {saved.get('T_max')}, "
                f"where the run is at step {done} of {fresh.get('T_max')}")
    return None
