"""Distillation from a trained teacher: an optional term of the training loss.

A modular model runs each sample through a few percent of the network's FLOPs and underfits
(docs/results.md, issue 16). A teacher of the same classes, e.g. the standard model of the same
architecture (`mwt train --standard`), gives every image a full answer to learn from, not just its
label. Its softened answers (temperature T, Hinton et al. 2015) join the loss of the whole model's
rows and of the rows routed through sub-task gates, the latter over their sub-task's classes only,
as their modules will answer. Modules are still kernel sets read off the trained model.

A second, optional term (`similarity_loss`, `--similarity`) compares the penultimate features: not
channel by channel, which gates make meaningless, but by which images of a batch each side finds
alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mwt.core.errors import MwtError
from mwt.models.gate import MaskGenerator

# Logits of classes outside a row's sub-task: far enough below any real logit that their share of
# the softmax is 0 in float32 (at most a subnormal at the largest temperatures), finite so that
# 0 * log(0) terms stay 0 instead of NaN.
_OUTSIDE = -1e4

# Gram-matrix rows shorter than this are scaled, not normalized (similarity_loss); the twin of
# mwt.losses.GATE_NORM_FLOOR.
SIMILARITY_ROW_FLOOR = 1e-3


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


def similarity_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Similarity-preserving distillation (Tung & Mori, ICCV 2019): how far the batch's pairwise
    similarities in the student's features are from those in the teacher's.

    Each side's (B, D) features give a (B, B) Gram matrix whose rows are L2-normalized; the loss is
    the squared Frobenius distance between the two, over B^2. It compares samples with samples, so
    the two sides' channels need not correspond: a row whose gates closed half the student's
    kernels is still held to the teacher's sense of which images are alike."""
    b = student.shape[0]
    if b < 2:
        return student.sum() * 0.0
    s, t = student.reshape(b, -1), teacher.reshape(b, -1)
    # A row under the floor (a sample whose gates closed nearly all its features) is scaled, not stretched to
    # length 1: normalizing's gradient grows as 1 / the row's length, the divergence stop 65 found in cohesion.
    # Real rows are far above it (a 30-epoch reuse model's smallest, over 12,800 training images: 155).
    g_s = F.normalize(s @ s.t(), dim=1, eps=SIMILARITY_ROW_FLOOR)
    g_t = F.normalize(t @ t.t(), dim=1, eps=SIMILARITY_ROW_FLOOR)
    return (g_s - g_t).pow(2).sum() / (b * b)


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The network's last linear layer outside its mask generators: its input is the penultimate
    representation that `similarity_loss` compares."""
    in_generators = {id(m) for g in model.modules() if isinstance(g, MaskGenerator) for m in g.modules()}
    last = None
    for m in model.modules():
        if isinstance(m, nn.Linear) and id(m) not in in_generators:
            last = m
    if last is None:
        raise MwtError(f"{type(model).__name__} ends in no linear layer, so there are no penultimate features to "
                       "distill; leave out --similarity", options=("similarity",))
    return last


@contextlib.contextmanager
def classifier_inputs(layer: nn.Linear) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward pass through `layer` (a model's `classifier_layer`, found
    once per run) appends that layer's input (B, D)."""
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        yield seen
    finally:
        handle.remove()
