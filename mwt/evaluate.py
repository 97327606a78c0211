"""Accuracy, in one place: of a torch model (training, the reports, the folded-gates guard) and
of compiled modules on onnxruntime (an export's lowered modules, the latency benchmark)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mwt.core.errors import MwtError
from mwt.data import AnySplit, batches_in_order
from mwt.distributed import Dist

if TYPE_CHECKING:
    import onnx

Run = Callable[[np.ndarray], np.ndarray]


@torch.no_grad()
def accuracy(
    model: nn.Module, data: AnySplit, *, classes: Sequence[int] | None = None, columns: Sequence[int] | None = None,
    batch_size: int = 512, device: torch.device | str = "cpu", dist: Dist = Dist(),
) -> float:
    """Top-1 accuracy of a torch model whose forward returns (logits, gates).

    With `classes` (dataset labels), on those classes' samples with argmax over their logits
    only. With `columns`, `data` is a sub-task's already, labelled 0..k-1 (see `load_named`), and
    the argmax runs over those logits. Under several processes each counts its share of `data`
    and the counts are summed. NaN for no samples.
    """
    model.eval()
    if classes is not None:
        data, columns = data.relabel(list(classes)), classes
    if len(data) == 0:
        return float("nan")
    counts = torch.zeros(2, dtype=torch.long, device=device)
    order = torch.arange(len(data))[dist.rank::dist.world] if dist.active else torch.arange(len(data))
    for x, y in batches_in_order(data, order, batch_size):
        logits, _ = model(x.to(device))
        if columns is not None:
            logits = logits[:, list(columns)]
        counts[0] += (logits.argmax(1) == y.to(device)).sum()
        counts[1] += y.shape[0]
    dist.all_reduce_sum(counts)
    return int(counts[0]) / int(counts[1])


def subtask_accuracy(runs: dict[str, Run], test: AnySplit, columns: Sequence[int], chunk: int = 500, *,
                     whole_models: Collection[str] = ()) -> dict[str, float]:
    """Accuracy of each run (float32 images -> logits) on a sub-task's test images, labelled
    0..k-1 (see `load_named`). A module answers with the sub-task's k logits, in order; the runs
    named in `whole_models` answer all the model's classes, restricted here to `columns`, the
    sub-task's classes among its own (named, not guessed from the width: a sub-task of every
    class in another order is as wide as the whole model)."""
    x, target = _inputs(test)
    out = {}
    for name, run in runs.items():
        logits = _in_chunks(run, x, chunk)
        if name in whole_models:
            logits = logits[:, list(columns)]
        out[name] = float((logits.argmax(1) == target).mean())
    return out


@torch.no_grad()
def separation(model: nn.Module, data: AnySplit, column: int, batch_size: int = 512) -> float:
    """`one_class_separation` of a torch model's logit `column` (forward returns (logits, gates)),
    on `data` of every class labelled 0 for that column's class."""
    model.eval()
    scores = [model(x)[0][:, column] for x, _ in batches_in_order(data, torch.arange(len(data)), batch_size)]
    return one_class_separation(torch.cat(scores).numpy(), (data.labels == 0).numpy())


def one_class_separation(scores: np.ndarray, own: np.ndarray) -> float:
    """How well one class's logit ranks its own images (`own` True) above every other class's: the
    share of (own, other) image pairs in the right order, ties counting half (ROC AUC). A one-class
    module answers one logit, so its accuracy (argmax over one column) is always 100%; in a
    composition its logit must still rise on its class's images and only there."""
    scores, own = np.asarray(scores, np.float64).ravel(), np.asarray(own, bool).ravel()
    positives, negatives = int(own.sum()), int((~own).sum())
    if not positives or not negatives:
        raise MwtError("a one-class module is scored on images of its class and of other classes; "
                       f"got {positives} of its class and {negatives} of others")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based, tied scores share their mean rank
    return float((ranks[own].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def module_separation(models: dict[str, onnx.ModelProto], images: AnySplit, threads: int = 0) -> dict[str, float]:
    """`one_class_separation` of one-class module files held in memory, on `images` of every class
    labelled 0 for the module's own class (as `load_export_images` gives them)."""
    x, labels = _inputs(images)
    return {name: one_class_separation(_in_chunks(run, x), labels == 0)
            for name, run in _module_runs(models, threads).items()}


def module_accuracy(models: dict[str, onnx.ModelProto], test: AnySplit, columns: Sequence[int],
                    threads: int = 0, *, whole_models: Collection[str] = ()) -> dict[str, float]:
    """`subtask_accuracy` of module files held in memory (`whole_models`: as there)."""
    return subtask_accuracy(_module_runs(models, threads), test, columns, whole_models=whole_models)


def _module_runs(models: dict[str, onnx.ModelProto], threads: int) -> dict[str, Run]:
    """Each module file held in memory as a run (float32 images -> logits) on onnxruntime's CPU."""
    from runtime.composed import ComposedClassifier
    from runtime.module_file import module_from_model
    from runtime.session import SessionSettings

    settings = SessionSettings(intra_op_threads=threads, providers=("CPUExecutionProvider",))
    return {k: ComposedClassifier([module_from_model(m)], settings=settings).logits for k, m in models.items()}


def _inputs(data: AnySplit) -> tuple[np.ndarray, np.ndarray]:
    """A split's images as float32 in [0, 1], as a module takes them, and its labels."""
    split = data.materialize()
    return split.images.cpu().numpy().astype(np.float32) / 255.0, split.labels.cpu().numpy()


def _in_chunks(run: Run, x: np.ndarray, chunk: int = 500) -> np.ndarray:
    """`run`'s logits for `x`, `chunk` images a call (memory stays bounded on big splits)."""
    return np.concatenate([run(x[i:i + chunk]) for i in range(0, len(x), chunk)])
