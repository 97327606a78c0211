"""Accuracy of compiled modules on a sub-task's real test images (onnxruntime, CPU)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx

from mwt.data import Split
from runtime.composed import ComposedClassifier
from runtime.module_file import module_from_model
from runtime.session import SessionSettings

Run = Callable[[np.ndarray], np.ndarray]


def subtask_accuracy(runs: dict[str, Run], test: Split, classes: list[int], chunk: int = 500) -> dict[str, float]:
    """Accuracy of each run (float32 images -> logits) on the test images of `classes`. A run with
    more logits than classes (a whole model) is restricted to the classes' logits, in their order."""
    test = test.where(classes)
    x = test.images.cpu().numpy().astype(np.float32) / 255.0
    target = np.array([classes.index(int(c)) for c in test.labels.cpu().numpy()])
    out = {}
    for name, run in runs.items():
        logits = np.concatenate([run(x[i:i + chunk]) for i in range(0, len(x), chunk)])
        if logits.shape[1] != len(classes):
            logits = logits[:, classes]
        out[name] = float((logits.argmax(1) == target).mean())
    return out


def module_accuracy(models: dict[str, onnx.ModelProto], test: Split, classes: list[int], threads: int = 0) -> dict[str, float]:
    """`subtask_accuracy` of module files held in memory."""
    settings = SessionSettings(intra_op_threads=threads, providers=("CPUExecutionProvider",))
    runners = {k: ComposedClassifier([module_from_model(m)], settings=settings) for k, m in models.items()}
    return subtask_accuracy({k: r.logits for k, r in runners.items()}, test, classes)
