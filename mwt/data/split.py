"""One split of a dataset, in memory or streamed from image files, with one batching API.

`Split` keeps images as one (N, C, H, W) uint8 tensor and batches by indexing: on a 2-core CPU a
per-sample pipeline costs more than the model's forward pass on small images. `FileSplit` holds
only paths and decodes each batch in DataLoader workers with the same preprocessing as
inference (`mwt.core.images.to_input`), for datasets larger than memory. For the same order and
generator both yield the same batches: augmentation runs on whole batches, after decoding, with
the caller's generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mwt.core.errors import MwtError
from mwt.core.images import decode_image
from mwt.core.metadata import InputSpec


@dataclass
class Split:
    """One split in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, idx: torch.Tensor) -> Split:
        """The samples at `idx`, in that order."""
        return Split(self.images[idx.to(self.images.device)], self.labels[idx.to(self.labels.device)])

    def subset(self, limit: int | None) -> Split:
        """The first `limit` samples (all when `limit` is None)."""
        if limit is None or limit >= len(self):
            return self
        return Split(self.images[:limit], self.labels[:limit])

    def sample(self, n: int, seed: int = 0) -> Split:
        """`n` samples drawn without replacement (all when n >= len)."""
        if n >= len(self):
            return self
        return self.take(torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n])

    def where(self, class_indices: list[int]) -> Split:
        """Only the samples whose label is one of `class_indices`."""
        keep = torch.isin(self.labels, torch.tensor(class_indices, device=self.labels.device))
        return Split(self.images[keep], self.labels[keep])

    def relabel(self, classes: list[int]) -> Split:
        """The samples of `classes`, labelled 0..k-1 in the order the classes are given."""
        sub = self.where(classes)
        return Split(sub.images, _lookup(self.labels, classes).to(sub.labels.device)[sub.labels])

    def to(self, device: torch.device | str) -> Split:
        """The split on `device` (a decoded dataset fits on a GPU and then needs no copies per step)."""
        return Split(self.images.to(device), self.labels.to(device))

    def materialize(self) -> Split:
        return self

    def batches(self, order: torch.Tensor, batch_size: int, *, start_step: int = 0,
                generator: torch.Generator | None = None, augment: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.images.device
        for start in range(start_step * batch_size, len(order), batch_size):
            idx = order[start:start + batch_size].to(device)
            x = self.images[idx].float().div_(255.0)
            yield (augment_batch(x, augment, generator) if augment != "none" else x), self.labels[idx]


def _lookup(labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    lookup = torch.full((int(labels.max()) + 1 if len(labels) else 1,), -1, dtype=torch.long)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    return lookup


class _Decode(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Decodes one image file in a DataLoader worker."""

    def __init__(self, paths: np.ndarray, spec: InputSpec) -> None:
        self.paths, self.spec = paths, spec

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(decode_image(Path(self.paths[i]), self.spec, str(self.paths[i])).copy())


@dataclass
class FileSplit:
    """One split streamed from image files: paths, int64 labels, and how to decode them."""

    paths: np.ndarray  # (N,) str
    labels: torch.Tensor
    spec: InputSpec  # the decoded shape and resize method
    workers: int = 2

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, idx: torch.Tensor) -> FileSplit:
        """The samples at `idx`, in that order."""
        return FileSplit(self.paths[idx.numpy()], self.labels[idx], self.spec, self.workers)

    def subset(self, limit: int | None) -> FileSplit:
        return self if limit is None or limit >= len(self) else self.take(torch.arange(limit))

    def sample(self, n: int, seed: int = 0) -> FileSplit:
        if n >= len(self):
            return self
        return self.take(torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n])

    def where(self, class_indices: list[int]) -> FileSplit:
        return self.take(torch.nonzero(torch.isin(self.labels, torch.tensor(class_indices))).flatten())

    def relabel(self, classes: list[int]) -> FileSplit:
        sub = self.where(classes)
        return FileSplit(sub.paths, _lookup(self.labels, classes)[sub.labels], self.spec, self.workers)

    def to(self, device: torch.device | str) -> FileSplit:
        return self  # batches move to the device as they are made

    def materialize(self) -> Split:
        """Every image decoded into memory (for small subsets: calibration, evaluation)."""
        order = torch.arange(len(self))
        xs = [x for x, _ in self._decoded(order, 256, 0)]
        images = torch.cat(xs) if xs else torch.zeros(0, *self.spec.shape, dtype=torch.uint8)
        return Split(images, self.labels.clone())

    def _decoded(self, order: torch.Tensor, batch_size: int, start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        steps = [order[s:s + batch_size].tolist() for s in range(start_step * batch_size, len(order), batch_size)]
        loader = torch.utils.data.DataLoader(_Decode(self.paths, self.spec), batch_sampler=steps,
                                             num_workers=self.workers, persistent_workers=False)
        try:
            for idx, x in zip(steps, loader):
                yield x, self.labels[torch.tensor(idx)]
        except Exception as e:  # a worker's error arrives with the worker's traceback in its message
            last = (str(e).strip().splitlines() or ["a decoding worker failed"])[-1]
            raise MwtError(last.removeprefix("mwt.core.errors.MwtError: ")[:300]) from None

    def batches(self, order: torch.Tensor, batch_size: int, *, start_step: int = 0,
                generator: torch.Generator | None = None, augment: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for images, labels in self._decoded(order, batch_size, start_step):
            x = images.float().div_(255.0)
            yield (augment_batch(x, augment, generator) if augment != "none" else x), labels


AnySplit = Split | FileSplit


def batches(data: AnySplit, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
            augment: str = "none") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (float images in [0, 1], labels) batches; augmentation only where asked."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from data.batches(order, batch_size, generator=generator, augment=augment)


def batches_in_order(
    data: AnySplit, order: torch.Tensor, batch_size: int, *, start_step: int = 0,
    generator: torch.Generator | None = None, augment: str = "none",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the samples `order` lists, from batch `start_step` on (a resumed epoch); random
    draws come from the CPU `generator`, so every device and both kinds of split draw the same."""
    yield from data.batches(order, batch_size, start_step=start_step, generator=generator, augment=augment)


def augment_batch(x: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """Random 4-pixel-shift crop (and horizontal flip for "crop-flip"), on the whole batch at once."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 9, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None].expand(n, x.shape[1], h, w + 8)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols)
    if kind == "crop-flip":
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out[flip] = out[flip].flip(3)
    return out


def classes_missing(split: AnySplit, classes: list[str]) -> list[str]:
    """The classes (of `classes`, by label index) with no sample in `split`: what `--limit` leaves
    out where the samples are listed class by class, as an image folder lists them."""
    present = set(torch.unique(split.labels.cpu()).tolist())
    return [name for i, name in enumerate(classes) if i not in present]
