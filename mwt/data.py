"""Datasets as in-memory uint8 tensors, with their class names and input normalization.

Images are kept as one (N, C, H, W) uint8 tensor and batched by indexing: on a 2-core CPU a
per-sample PIL pipeline costs more than the model's forward pass on these small images.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mwt.errors import MwtError
from mwt.registry import DATASETS, DatasetInfo

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Split:
    """One split of a dataset: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, limit: int | None) -> Split:
        """The first `limit` samples (all when `limit` is None)."""
        if limit is None or limit >= len(self):
            return self
        return Split(self.images[:limit], self.labels[:limit])

    def sample(self, n: int, seed: int = 0) -> Split:
        """`n` samples drawn without replacement (all when n >= len)."""
        if n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.images[idx], self.labels[idx])

    def where(self, class_indices: list[int]) -> Split:
        """Only the samples whose label is one of `class_indices`."""
        keep = torch.isin(self.labels, torch.tensor(class_indices, device=self.labels.device))
        return Split(self.images[keep], self.labels[keep])

    def to(self, device: torch.device | str) -> Split:
        """The split on `device` (the whole decoded dataset fits on a GPU and then needs no copies per step)."""
        return Split(self.images.to(device), self.labels.to(device))


def dataset_info(name: str) -> DatasetInfo:
    """Look up a dataset by name; unknown names get an error listing the known ones."""
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise MwtError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}") from None


def default_data_dir() -> Path | None:
    """`$MWT_DATA` if set, else None (each dataset then has its own default place)."""
    env = os.environ.get("MWT_DATA")
    return Path(env) if env else None


def load_split(name: str, split: str, data_dir: Path | None = None, download: bool = False) -> Split:
    """Load the `split` ("train" or "test") of dataset `name` into memory.

    Nothing is downloaded unless `download` is True; a missing dataset raises MwtError saying how
    to get it.
    """
    info = dataset_info(name)
    if split not in ("train", "test"):
        raise MwtError(f"unknown split '{split}'; use 'train' or 'test'")
    data_dir = data_dir or default_data_dir()
    if info.name == "fashion-mnist":
        return _load_fashion_mnist(split, data_dir, download)
    return _load_torchvision(info, split, data_dir, download)


def _read_idx(path: Path) -> np.ndarray:
    # torchvision's IDX reader takes only uncompressed files; Debian ships them gzipped.
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise MwtError(f"cannot read {path}: {e}") from None
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise MwtError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise MwtError(f"{path} is truncated")
    return body.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist"):
        for candidate in (sub / stem, sub / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _load_fashion_mnist(split: str, data_dir: Path | None, download: bool) -> Split:
    prefix = "train" if split == "train" else "t10k"
    folders = [data_dir] if data_dir else [DEBIAN_FASHION_MNIST, Path.home() / ".cache" / "mwt" / "data"]
    for folder in folders:
        images_path = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
        labels_path = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
        if images_path and labels_path:
            images = torch.from_numpy(_read_idx(images_path).copy()).unsqueeze(1)
            labels = torch.from_numpy(_read_idx(labels_path).astype(np.int64))
            if images.shape[0] != labels.shape[0]:
                raise MwtError(f"{images_path} and {labels_path} hold different numbers of samples")
            return Split(images, labels)
    if download:
        import torchvision

        root = folders[-1]
        torchvision.datasets.FashionMNIST(str(root), train=split == "train", download=True)
        return _load_fashion_mnist(split, root, download=False)
    where = ", ".join(str(f) for f in folders)
    raise MwtError(
        f"Fashion-MNIST not found in {where}; install it with 'apt-get install -y dataset-fashion-mnist', "
        "point --data-dir or $MWT_DATA at its IDX files, or pass --download"
    )


def _load_torchvision(info: DatasetInfo, split: str, data_dir: Path | None, download: bool) -> Split:
    import torchvision

    root = data_dir or Path.home() / ".cache" / "mwt" / "data"
    try:
        if info.name == "cifar10":
            ds = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=download)
            images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            labels = torch.tensor(ds.targets, dtype=torch.int64)
        else:
            ds = torchvision.datasets.SVHN(str(root), split=split, download=download)
            images = torch.from_numpy(ds.data).contiguous()
            labels = torch.from_numpy(ds.labels.astype(np.int64))
    except RuntimeError as e:
        if download:
            raise MwtError(f"could not get {info.name}: {e}") from None
        raise MwtError(
            f"{info.name} not found under {root}; point --data-dir or $MWT_DATA at a folder that holds it, "
            "or pass --download to fetch it there"
        ) from None
    return Split(images, labels)


def batches(
    data: Split, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None, augment: str = "none"
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (float images in [0, 1], labels) batches; augmentation only where asked."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from batches_in_order(data, order, batch_size, generator=generator, augment=augment)


def batches_in_order(
    data: Split, order: torch.Tensor, batch_size: int, *, start_step: int = 0, generator: torch.Generator | None = None,
    augment: str = "none",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the samples `order` lists, from batch `start_step` on (a resumed epoch), on the
    device the data lives on; random draws come from the CPU `generator`, so a run on any device
    makes the same draws."""
    device = data.images.device
    for start in range(start_step * batch_size, len(order), batch_size):
        idx = order[start:start + batch_size].to(device)
        x = data.images[idx].float().div_(255.0)
        if augment != "none":
            x = _augment(x, augment, generator)
        yield x, data.labels[idx]


def _augment(x: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    # Random 4-pixel-shift crop (and horizontal flip), done on the whole batch at once.
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


def resolve_classes(names: list[str], spec: str | list[str]) -> list[int]:
    """Turn "cat,dog" (names, case-insensitive, or indices) into class indices, in the order given.

    Raises MwtError for an empty list, unknown names (listing the valid ones) and duplicates.
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [s.strip() for s in spec]
    items = [s for s in items if s]
    if not items:
        raise MwtError("the class list is empty; name at least one class, e.g. --classes " + ",".join(names[:2]))
    lookup = {n.lower(): i for i, n in enumerate(names)}
    out: list[int] = []
    for item in items:
        key = item.lower()
        if key in lookup:
            idx = lookup[key]
        elif key.isdigit() and int(key) < len(names):
            idx = int(key)
        else:
            raise MwtError(f"unknown class '{item}'; valid classes: {', '.join(names)}")
        if idx in out:
            raise MwtError(f"class '{item}' is named twice in the class list")
        out.append(idx)
    return out
