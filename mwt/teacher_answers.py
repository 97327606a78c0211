"""The teacher's answers to every training image, computed once for a run (mwt.distill's terms read them).

Without augmentation a training image is the same tensor in every epoch, and the frozen teacher (in
eval mode: BatchNorm on its running statistics) answers it the same way each time. Running the teacher
on every batch of every epoch took about a fifth of a reuse-recipe step on a 2-core CPU (stop 61's
profile, docs/results.md) to recompute what one pass over the training set gives. With augmentation
each epoch's images differ, so the teacher still runs batch by batch there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mwt.data import AnySplit, batches
from mwt.distill import classifier_inputs
from mwt.progress import progress

# Above this the answers are not kept (a large dataset's features would crowd the device's memory);
# Fashion-MNIST's 60,000 images with a quarter-width VGG16's 128 features take 33 MB.
MAX_BYTES = 2 << 30


@dataclass
class TeacherAnswers:
    """The teacher's logits, and the input of its classifier layer when the similarity term needs it,
    for every training image (row i answers the split's image i)."""

    logits: torch.Tensor  # (N, K) float32
    features: torch.Tensor | None  # (N, D) float32, or None without the similarity term

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits, features) of the images `idx` (as the training batch lists them)."""
        idx = idx.to(self.logits.device)
        return self.logits[idx], None if self.features is None else self.features[idx]


def fits(classifier: nn.Linear | None, images: int, classes: int) -> bool:
    """Whether the answers to `images` images (and their features, with the teacher's `classifier`) would
    stay under MAX_BYTES."""
    width = classes + (classifier.in_features if classifier is not None else 0)
    return images * width * 4 <= MAX_BYTES


@torch.no_grad()
def answer(teacher: nn.Module, classifier: nn.Linear | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (frozen, eval-mode) `teacher`'s float32 logits for batch `x`, and with `classifier` (the teacher's
    `mwt.distill.classifier_layer`) that layer's input, one row per image."""
    if classifier is None:
        return teacher(x)[0].float(), None
    with classifier_inputs(classifier) as seen:
        logits = teacher(x)[0].float()
    return logits, seen[-1].float().reshape(x.shape[0], -1)


@torch.no_grad()
def answer_all(teacher: nn.Module, classifier: nn.Linear | None, data: AnySplit, device: torch.device, *,
               batch_size: int = 128, amp: torch.dtype | None = None, show_progress: bool = True) -> TeacherAnswers:
    """One pass of the (frozen, eval-mode) `teacher` over `data` in its order, unaugmented; with
    `classifier` (the teacher's `mwt.distill.classifier_layer`) its input is kept too. `amp` runs the
    pass under the autocast the training steps use. Batches as large as training's: on a 2-core CPU,
    batches of 512 took 10% longer per image than the training steps' 128 (stop 61)."""
    logits, features = [], []
    steps = -(-len(data) // batch_size)
    for x, _ in progress(batches(data, batch_size, shuffle=False), total=steps, desc="teacher's answers",
                         enable=show_progress):
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            taught, seen = answer(teacher, classifier, x.to(device, non_blocking=True))
        logits.append(taught)
        if seen is not None:
            features.append(seen)
    return TeacherAnswers(torch.cat(logits), torch.cat(features) if classifier is not None else None)
