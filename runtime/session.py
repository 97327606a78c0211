"""onnxruntime sessions with the settings that matter for speed set on purpose."""

from __future__ import annotations

from dataclasses import dataclass

import onnxruntime as ort


@dataclass(frozen=True)
class SessionSettings:
    """How a module runs. Defaults suit a small CPU server: all graph optimizations, sequential
    execution (these graphs are chains; parallel mode only adds scheduling overhead), one
    intra-op pool sized to the cores given, and the best provider onnxruntime offers."""

    intra_op_threads: int = 0  # 0: onnxruntime's default (one per physical core)
    inter_op_threads: int = 1
    optimization: str = "all"  # "disable", "basic", "extended", "all"
    parallel: bool = False
    providers: tuple[str, ...] = ()  # empty: CUDA/TensorRT when available, then CPU


_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def default_providers() -> list[str]:
    """GPU providers first where this onnxruntime build has them; CPU always last."""
    available = set(ort.get_available_providers())
    return [p for p in _PREFERRED if p in available and p != "TensorrtExecutionProvider"] or ["CPUExecutionProvider"]


def make_session(model: bytes | str, settings: SessionSettings = SessionSettings()) -> ort.InferenceSession:
    """An InferenceSession for a serialized model or a path, configured by `settings`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.graph_optimization_level = _LEVELS[settings.optimization]
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if settings.parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.log_severity_level = 3  # errors only: fusion notices are noise to a user
    providers = list(settings.providers) or default_providers()
    return ort.InferenceSession(model, sess_options=options, providers=providers)
