"""Datasets: the IDX reader on real and broken files, class-name resolution, batching."""

import numpy as np
import pytest
import torch

from mwt.data import Split, batches, load_split, resolve_classes
from mwt.data.builtin import _read_idx
from mwt.core.errors import MwtError
from tests.conftest import FASHION, needs_fashion_mnist, write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_a_folder(tmp_path, compress):
    suffix = ".gz" if compress else ""
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", np.array([1, 2, 9]), compress)
    data = load_split("fashion-mnist", "test", tmp_path)
    assert data.images.shape == (3, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [1, 2, 9]


def test_truncated_idx_and_missing_dataset(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((2, 4, 4)), compress=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(MwtError, match="truncated"):
        _read_idx(path)
    with pytest.raises(MwtError, match="dataset-fashion-mnist"):
        load_split("fashion-mnist", "train", tmp_path / "empty")
    with pytest.raises(MwtError, match="allow a download") as missing:
        load_split("cifar10", "train", tmp_path)
    assert missing.value.options == ("data_dir", "download")


@needs_fashion_mnist
def test_real_fashion_mnist():
    test = load_split("fashion-mnist", "test")
    assert len(test) == 10000 and test.images.shape[1:] == (1, 28, 28)
    assert sorted(test.labels.unique().tolist()) == list(range(10))


def test_resolve_classes():
    names = list(FASHION.classes)
    assert resolve_classes(names, "Sneaker, bag") == [7, 8]
    assert resolve_classes(names, "ankle-boot,0") == [9, 0]
    with pytest.raises(MwtError, match="valid classes: t-shirt"):
        resolve_classes(names, "cat")
    with pytest.raises(MwtError, match="twice"):
        resolve_classes(names, "bag,8")
    with pytest.raises(MwtError, match="empty"):
        resolve_classes(names, " , ")


def test_batches_cover_every_sample_once():
    data = Split(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10))
    seen = torch.cat([y for _, y in batches(data, 3, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    x, _ = next(batches(data, 4, shuffle=False))
    assert x.dtype == torch.float32 and x.max() <= 1.0
