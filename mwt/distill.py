"""Distillation from a trained teacher: an optional term of the training loss.

A modular model runs each sample through a few percent of the network's FLOPs and underfits
(docs/results.md, issue 16). A teacher of the same classes, e.g. the standard model of the same
architecture (`mwt train --standard`), gives every image a full answer to learn from, not just its
label. Its softened answers (temperature T, Hinton et al. 2015) join the loss of the whole model's
rows and of the rows routed through sub-task gates, the latter over their sub-task's classes only,
as their modules will answer. Modules are still kernel sets read off the trained model.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mwt.core.errors import MwtError

# Logits of classes outside a row's sub-task: far enough below any real logit that their share of
# the softmax is 0 in float32 (at most a subnormal at the largest temperatures), finite so that
# 0 * log(0) terms stay 0 instead of NaN.
_OUTSIDE = -1e4


def load_teacher(path: str | Path, classes: list[str], input_shape: tuple[int, ...], device: torch.device) -> nn.Module:
    """The teacher network of the checkpoint at `path`, frozen, in eval mode, on `device`.

    It must answer the same classes, in the same order, on the same images as the run it teaches."""
    from mwt.checkpoint import load_checkpoint

    try:
        teacher = load_checkpoint(path)
    except MwtError as e:
        raise MwtError(f"the teacher: {e}", options=("teacher",)) from None
    if list(teacher.classes) != list(classes):
        raise MwtError(f"the teacher {path} answers the classes {', '.join(teacher.classes)}; this run trains "
                       f"{', '.join(classes)}", options=("teacher",))
    if tuple(teacher.spec.input_shape) != tuple(input_shape):
        raise MwtError(f"the teacher {path} takes images of {tuple(teacher.spec.input_shape)}; this run's are "
                       f"{tuple(input_shape)}", options=("teacher",))
    with torch.random.fork_rng(devices=[]):  # building draws fresh weights first: not from the run's stream
        model = teacher.build().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                      allowed: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) at `temperature`, times T^2 (so its gradients keep their scale as T
    changes), averaged over rows. `allowed` (B, K) bool limits each row to some classes: both
    answers are renormalized over them."""
    if student.shape[0] == 0:
        return student.sum() * 0.0
    if allowed is not None:
        student, teacher = student.masked_fill(~allowed, _OUTSIDE), teacher.masked_fill(~allowed, _OUTSIDE)
    log_s = F.log_softmax(student / temperature, dim=1)
    log_t = F.log_softmax(teacher / temperature, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(1).mean() * temperature ** 2
