"""onnxruntime sessions with the settings that matter for speed set on purpose."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from enum import Enum

import onnxruntime as ort

from mwt.core.errors import MwtError, first_line
from runtime.sliced import SlicedSession


class Provider(str, Enum):
    """Where a module runs: `auto` picks the best this onnxruntime build has (CUDA, else CPU)."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


class Parallelism(str, Enum):
    """How a session uses its threads on the CPU."""

    ops = "ops"  # one session; onnxruntime splits each op across its intra-op threads
    batch = "batch"  # one one-thread session per thread, each running a slice of the batch (runtime.sliced)


PROVIDER_NAMES = {
    Provider.cpu: "CPUExecutionProvider",
    Provider.cuda: "CUDAExecutionProvider",
    Provider.tensorrt: "TensorrtExecutionProvider",
}


@dataclass(frozen=True)
class SessionSettings:
    """How a module runs. Defaults suit a small CPU server: all graph optimizations, sequential
    execution (these graphs are chains; parallel mode only adds scheduling overhead), one
    intra-op pool sized to the cores given, and the best provider onnxruntime offers."""

    intra_op_threads: int = 0  # 0: onnxruntime's default (one per physical core)
    inter_op_threads: int = 1
    optimization: str = "all"  # "disable", "basic", "extended", "all"
    parallel: bool = False
    providers: tuple[str, ...] = ()  # empty: the best available (see `providers_for`)
    # After a run, onnxruntime's intra-op threads spin waiting for the next one. That suits one
    # session serving alone; sessions that take turns on the same cores must not spin, or each
    # one's idle threads take the cores from the next (4x slower at batch 32 on 2 cores, measured).
    spin_wait: bool = True
    # onnxruntime's QDQ propagation moves an INT8 module's first QuantizeLinear up past the float
    # max-pool before it, which then runs on uint8 in NCHW layout, 6x slower than in float: an
    # INT8 sneaker/bag module ran 1.22 ms instead of 1.54 ms at batch 32 with it off (FP32 models
    # hold no QDQ nodes, so it does nothing to them).
    disabled_optimizers: tuple[str, ...] = ("QDQPropagationTransformer",)
    # `batch`: intra_op_threads one-thread sessions (0: one per CPU this process may use), each
    # running a slice of every batch; small modules on few cores run faster so (see runtime.sliced).
    # CPU only: on a GPU provider one session runs the whole batch.
    parallelism: Parallelism = Parallelism.ops


_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def providers_for(provider: Provider | str = Provider.auto) -> tuple[str, ...]:
    """onnxruntime provider names for a choice, CPU last as the fallback for unsupported ops.

    `auto` takes CUDA when this onnxruntime build has it (TensorRT only when asked: its engine
    build takes minutes on first use); an explicit provider that is not installed is an error
    that names the extra to install.
    """
    provider = Provider(provider)
    available = set(ort.get_available_providers())
    if provider is Provider.auto:
        return tuple(p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available) or (
            "CPUExecutionProvider",)
    name = PROVIDER_NAMES[provider]
    if name not in available:
        raise MwtError(f"the {provider.value} provider is not in this onnxruntime build (it has "
                       f"{', '.join(sorted(available))}); install it with: pip install 'mwt[gpu]'")
    return (name, "CPUExecutionProvider") if provider is not Provider.cpu else (name,)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS tells it, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def make_session(model: bytes | str,
                 settings: SessionSettings = SessionSettings()) -> ort.InferenceSession | SlicedSession:
    """An InferenceSession for a serialized model or a path, configured by `settings`; with batch
    parallelism on the CPU, a SlicedSession of one-thread sessions that answers the same."""
    providers = list(settings.providers or providers_for())
    if Parallelism(settings.parallelism) is Parallelism.batch and providers[0] == PROVIDER_NAMES[Provider.cpu]:
        slices = settings.intra_op_threads or usable_cpus()
        one = replace(settings, intra_op_threads=1, parallelism=Parallelism.ops, providers=tuple(providers))
        return SlicedSession([make_session(model, one) for _ in range(slices)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.graph_optimization_level = _LEVELS[settings.optimization]
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if settings.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.log_severity_level = 4  # fatal only: errors reach the user as one MwtError line, not as log noise
    if not settings.spin_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers,
                                    disabled_optimizers=list(settings.disabled_optimizers))
    except Exception as e:  # onnxruntime's own error types (InvalidGraph, Fail, ...) for a model it cannot load
        raise MwtError(f"onnxruntime cannot load the model: {first_line(e)}") from None
