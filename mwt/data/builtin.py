"""The built-in datasets, read from their standard file formats: Fashion-MNIST (IDX, gzipped or
not, as Debian ships it), CIFAR-10 (the `cifar-10-batches-py` folder), SVHN (`*_32x32.mat`).

Nothing is downloaded unless asked (`download=True`, through torchvision); local copies are read
without checksums, so a partial or hand-made copy in the standard format works too.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import torch

from mwt.data.split import Split
from mwt.core.errors import MwtError
from mwt.registry import DATASETS, DatasetInfo

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
USER_DATA = Path.home() / ".cache" / "mwt" / "data"


def dataset_info(name: str) -> DatasetInfo:
    """A built-in dataset by name; unknown names get an error listing the known ones."""
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise MwtError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS)}, or give a folder of "
                       "images") from None


def default_data_dir() -> Path | None:
    """`$MWT_DATA` if set, else None (each dataset then has its own default place)."""
    env = os.environ.get("MWT_DATA")
    return Path(env) if env else None


def load_builtin(name: str, split: str, data_dir: Path | None = None, download: bool = False) -> Split:
    """The `split` ("train" or "test") of a built-in dataset, in memory."""
    info = dataset_info(name)
    data_dir = data_dir or default_data_dir()
    loader = {"fashion-mnist": _load_fashion_mnist, "cifar10": _load_cifar10, "svhn": _load_svhn}[info.name]
    return loader(info, split, data_dir, download)


MAX_IDX_BYTES = 1 << 30  # the largest IDX body read (Fashion-MNIST's training images are 47 MB)
_CHUNK = 1 << 20


def _read_idx(path: Path, ndim: int | None = None, item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An IDX file of unsigned bytes with `ndim` dimensions (1 to 4 when None; the first counts
    samples, the rest must be `item_shape` where given). The header is checked before the body is read; the body is read in
    bounded chunks and must end where the header says, so a gzip bomb costs at most its header's
    claim, which is itself bounded by MAX_IDX_BYTES."""
    # torchvision's IDX reader takes only uncompressed files; Debian ships them gzipped.
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise MwtError(f"{path} is not an IDX file of unsigned bytes")
            if head[3] != ndim if ndim is not None else not 1 <= head[3] <= 4:
                raise MwtError(f"{path} has {head[3]} dimensions; these files hold {ndim or '1 to 4'} dimensions")
            ndim = head[3]
            raw = f.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise MwtError(f"{path} is truncated")
            dims = [int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(ndim)]
            if item_shape is not None and tuple(dims[1:]) != item_shape:
                raise MwtError(f"{path} holds items of {'x'.join(map(str, dims[1:]))}; this dataset's are "
                               f"{'x'.join(map(str, item_shape))}")
            count = math.prod(dims)  # Python integers: no wrap-around
            if count > MAX_IDX_BYTES:
                raise MwtError(f"{path} declares {count} bytes of data, over the limit of {MAX_IDX_BYTES}")
            body = bytearray()
            while len(body) < count:
                chunk = f.read(min(_CHUNK, count - len(body)))
                if not chunk:
                    raise MwtError(f"{path} is truncated: its header declares {count} bytes, it holds {len(body)}")
                body += chunk
            if f.read(1):
                raise MwtError(f"{path} is longer than its header says ({count} bytes); it is damaged")
    except (OSError, EOFError, zlib.error) as e:
        raise MwtError(f"cannot read {path}: {e}") from None
    return np.frombuffer(bytes(body), dtype=np.uint8).reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for sub in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist"):
        for candidate in (sub / stem, sub / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _checked(images: np.ndarray, labels: np.ndarray, info: DatasetInfo, where: str) -> Split:
    if images.shape[0] != labels.shape[0]:
        raise MwtError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(info.classes)):
        raise MwtError(f"{where}: labels outside 0..{len(info.classes) - 1}")
    images = np.ascontiguousarray(images)
    if not images.flags.writeable:  # read straight from a file's bytes: torch wants its own copy
        images = images.copy()
    return Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))


def _load_fashion_mnist(info: DatasetInfo, split: str, data_dir: Path | None, download: bool) -> Split:
    prefix = "train" if split == "train" else "t10k"
    folders = [data_dir] if data_dir else [DEBIAN_FASHION_MNIST, USER_DATA]
    for folder in folders:
        images_path = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
        labels_path = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
        if images_path and labels_path:
            images = _read_idx(images_path, 3, info.size)[:, None]
            return _checked(images, _read_idx(labels_path, 1), info, str(images_path.parent))
    if download:
        import torchvision

        root = folders[-1]
        torchvision.datasets.FashionMNIST(str(root), train=split == "train", download=True)
        return _load_fashion_mnist(info, split, root, download=False)
    where = ", ".join(str(f) for f in folders)
    raise MwtError(
        f"Fashion-MNIST not found in {where}; install it with 'apt-get install -y dataset-fashion-mnist', "
        "point the data directory ($MWT_DATA) at its IDX files, or allow a download", options=("data_dir", "download"),
    )


class _PlainData(pickle.Unpickler):
    """Unpickles only plain data and numpy arrays: a CIFAR batch file cannot run code."""

    ALLOWED = {(f"numpy{core}.multiarray", name) for core in (".core", "._core") for name in ("_reconstruct", "scalar")}
    ALLOWED |= {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")
        return super().find_class(module, name)


def _pixels(values: object, where: str) -> np.ndarray:
    """`values` as uint8, if they are whole numbers in 0..255 (never a silent cast of 1e300)."""
    array = np.asarray(values)
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "iuf" or array.size and (
            not np.isfinite(array).all() or (array != np.round(array)).any() or array.min() < 0 or array.max() > 255):
        raise MwtError(f"{where} holds pixel values that are not whole numbers in 0..255")
    return array.astype(np.uint8)


def _labels(values: object, where: str) -> np.ndarray:
    """`values` as int64 labels, if they are finite whole numbers that fit (never a cast of NaN)."""
    try:
        array = np.asarray(values)
    except OverflowError:
        array = np.asarray(values, dtype=object)
    if array.dtype == object:  # Python integers too large for int64
        raise MwtError(f"{where} holds labels that are not class numbers")
    if array.dtype.kind not in "iuf" or array.size and (
            not np.isfinite(array).all() or (array != np.round(array)).any() or np.abs(array).max() > 1 << 31):
        raise MwtError(f"{where} holds labels that are not class numbers")
    return array.astype(np.int64)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _PlainData(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = _pixels(batch[b"data"], str(path)).reshape(-1, 3, 32, 32)
        labels = _labels(batch[b"labels"], str(path)).reshape(-1)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, IndexError,
            OverflowError, MemoryError) as e:
        raise MwtError(f"{path} is not a CIFAR-10 batch file ({type(e).__name__}: {str(e)[:100]})") from None
    return data, labels


def _load_cifar10(info: DatasetInfo, split: str, data_dir: Path | None, download: bool) -> Split:
    root = data_dir or USER_DATA
    folder = next((f for f in (root / "cifar-10-batches-py", root) if (f / "test_batch").is_file()), None)
    if folder is None and download:
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=split == "train", download=True)
        folder = root / "cifar-10-batches-py"
    if folder is None:
        raise MwtError(f"CIFAR-10 not found in {root} (a cifar-10-batches-py folder); point the data directory "
                       "($MWT_DATA) at the folder that holds it, or allow a download", options=("data_dir", "download"))
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    present = [folder / n for n in names if (folder / n).is_file()]
    if not present:
        raise MwtError(f"{folder} holds no {' or '.join(names)} file")
    parts = [_read_cifar_batch(p) for p in present]
    return _checked(np.concatenate([d for d, _ in parts]), np.concatenate([lab for _, lab in parts]), info, str(folder))


def _load_svhn(info: DatasetInfo, split: str, data_dir: Path | None, download: bool) -> Split:
    root = data_dir or USER_DATA
    path = root / f"{split}_32x32.mat"
    if not path.is_file() and download:
        import torchvision

        torchvision.datasets.SVHN(str(root), split=split, download=True)
    if not path.is_file():
        raise MwtError(f"SVHN not found: no {path}; point the data directory ($MWT_DATA) at the folder with "
                       "train_32x32.mat and test_32x32.mat, or allow a download", options=("data_dir", "download"))
    try:
        import scipy.io

        mat = scipy.io.loadmat(str(path))
        x = _pixels(mat["X"], str(path))
        if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
            raise ValueError(f"X has shape {list(x.shape)}, not (32, 32, 3, N)")
        images = x.transpose(3, 2, 0, 1)  # (H, W, C, N) -> (N, C, H, W)
        labels = _labels(mat["y"], str(path)).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() > 10):
            raise MwtError(f"{path} holds labels outside 0..10")
        labels = labels % 10  # SVHN writes the digit 0 as 10
    except (OSError, KeyError, ValueError, TypeError, NotImplementedError, IndexError, MemoryError) as e:
        raise MwtError(f"{path} is not an SVHN .mat file ({type(e).__name__}: {str(e)[:100]})") from None
    return _checked(images, labels, info, str(path))
