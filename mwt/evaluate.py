"""Accuracy of compiled modules on a sub-task's real test images (onnxruntime, CPU)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from mwt.data import AnySplit
from runtime.composed import ComposedClassifier
from runtime.module_file import module_from_model
from runtime.session import SessionSettings

Run = Callable[[np.ndarray], np.ndarray]


def subtask_accuracy(runs: dict[str, Run], test: AnySplit, columns: list[int], chunk: int = 500) -> dict[str, float]:
    """Accuracy of each run (float32 images -> logits) on a sub-task's test images, labelled
    0..k-1 (see `load_named`). A module answers with the sub-task's k logits; a whole model's
    logits are restricted to `columns`, the sub-task's classes among its own."""
    data = test.materialize()
    x = data.images.cpu().numpy().astype(np.float32) / 255.0
    target = data.labels.cpu().numpy()
    out = {}
    for name, run in runs.items():
        logits = np.concatenate([run(x[i:i + chunk]) for i in range(0, len(x), chunk)])
        if logits.shape[1] != len(columns):
            logits = logits[:, columns]
        out[name] = float((logits.argmax(1) == target).mean())
    return out


def module_accuracy(models: dict[str, onnx.ModelProto], test: AnySplit, columns: list[int],
                    threads: int = 0) -> dict[str, float]:
    """`subtask_accuracy` of module files held in memory."""
    settings = SessionSettings(intra_op_threads=threads, providers=("CPUExecutionProvider",))
    runners = {k: ComposedClassifier([module_from_model(m)], settings=settings) for k, m in models.items()}
    return subtask_accuracy({k: r.logits for k, r in runners.items()}, test, columns)
