"""Where a dataset comes from: a built-in name or an image folder, with its preprocessing.

A checkpoint stores its `DataSource`, so every later command (modularize, eval, finetune, export
calibration, bench) loads exactly the images training saw, preprocessed the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mwt.data.builtin import dataset_info, load_builtin
from mwt.data.folder import channel_stats, load_folder
from mwt.data.split import FileSplit, Split
from mwt.core.errors import MwtError
from mwt.registry import DATASETS, DatasetInfo

STORAGE = ("auto", "memory", "stream")


@dataclass(frozen=True)
class DataSource:
    """A built-in dataset's name, or an image folder's path with its preprocessing settings."""

    name: str
    image_size: tuple[int, int] | None = None  # folders: (H, W) after resizing (None: decided on first load)
    channels: int | None = None  # folders: 1 or 3 (None: detected)
    resize: str = "bilinear"
    test_fraction: float = 0.2  # folders without train/ and test/: share of each class held out, seeded
    split_seed: int = 0
    storage: str = "auto"  # "memory", "stream" (decode batches from the files), or "auto" (by size)
    strict: bool = False  # refuse files that cannot be decoded instead of skipping them

    @property
    def is_folder(self) -> bool:
        return self.name.lower() not in DATASETS

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSource:
        if not isinstance(d, dict):
            raise TypeError(f"expected a dict, got {type(d).__name__}")
        size = d.get("image_size")
        return cls(name=str(d["name"]), image_size=(int(size[0]), int(size[1])) if size else None,
                   channels=int(d["channels"]) if d.get("channels") is not None else None,
                   resize=str(d.get("resize", "bilinear")), test_fraction=float(d.get("test_fraction", 0.2)),
                   split_seed=int(d.get("split_seed", 0)), storage=str(d.get("storage", "auto")),
                   strict=bool(d.get("strict", False)))

    def check(self, data_dir: Path | None = None) -> None:
        """Settings that make sense, and a name that is a built-in dataset or an existing folder
        (`data_dir`, where given: the folder a checkpoint's images are in now)."""
        if self.is_folder and data_dir is not None and not Path(data_dir).is_dir():
            raise MwtError(f"the image folder {data_dir} is not there", options=("data_dir",))
        if self.is_folder and data_dir is None and not Path(self.name).is_dir():
            if any(sep in self.name for sep in ("/", "\\")) or self.name.startswith("."):
                raise MwtError(f"the image folder {self.name} is not there; if it moved, give its new place",
                               options=("data_dir",))
            dataset_info(self.name)  # says which names are known
        if self.channels not in (None, 1, 3):
            raise MwtError(f"channels must be 1 or 3, got {self.channels}")
        if self.image_size is not None and not all(1 <= s <= 4096 for s in self.image_size):
            raise MwtError(f"the image size must be 1..4096 pixels, got {list(self.image_size)}")
        if not 0 < self.test_fraction < 1:
            raise MwtError(f"the test fraction must be in (0, 1), got {self.test_fraction}")
        if self.storage not in STORAGE:
            raise MwtError(f"storage must be one of {', '.join(STORAGE)}, got '{self.storage}'")


@dataclass
class Dataset:
    """A loaded dataset: what a model needs to know about it, and its two splits."""

    info: DatasetInfo
    source: DataSource  # with the folder's preprocessing settled (size and channels)
    train: Split | FileSplit
    test: Split | FileSplit


def load_dataset(source: str | DataSource, data_dir: Path | None = None, download: bool = False,
                 show_progress: bool = True) -> Dataset:
    """Both splits of a dataset. For a folder, the normalization comes from its training split."""
    source = DataSource(source) if isinstance(source, str) else source
    source.check(data_dir if source.is_folder else None)
    if not source.is_folder:
        info = dataset_info(source.name)
        return Dataset(info, source, load_builtin(info.name, "train", data_dir, download),
                       load_builtin(info.name, "test", data_dir, download))
    root = data_dir or Path(source.name)
    folder = load_folder(root, image_size=source.image_size, channels=source.channels, resize=source.resize,
                         test_fraction=source.test_fraction, split_seed=source.split_seed, storage=source.storage,
                         strict=source.strict, show_progress=show_progress)
    mean, std = channel_stats(folder.train)
    channels, height, width = folder.spec.shape
    info = DatasetInfo(str(Path(source.name)), tuple(folder.classes), channels, (height, width), mean, std,
                       augment="crop-flip")
    settled = DataSource(source.name, (height, width), channels, source.resize, source.test_fraction,
                         source.split_seed, source.storage, source.strict)
    return Dataset(info, settled, folder.train, folder.test)


def load_split(source: str | DataSource, split: str, data_dir: Path | None = None, download: bool = False,
               classes: list[str] | None = None) -> Split | FileSplit:
    """One split ("train" or "test") of a dataset. Nothing is downloaded unless `download`; a
    missing dataset raises MwtError saying how to get it. With `classes` (a checkpoint's), a
    folder whose classes have changed since is refused."""
    if split not in ("train", "test"):
        raise MwtError(f"unknown split '{split}'; use 'train' or 'test'")
    source = DataSource(source) if isinstance(source, str) else source
    if not source.is_folder:
        source.check()
        return load_builtin(source.name, split, data_dir, download)
    dataset = load_dataset(source, data_dir, show_progress=False)
    if classes is not None and list(dataset.info.classes) != list(classes):
        raise MwtError(f"the folder {data_dir or source.name} now holds classes {list(dataset.info.classes)}, "
                       f"not the checkpoint's {classes}")
    return dataset.train if split == "train" else dataset.test


def load_named(source: str | DataSource, split: str, names: list[str], data_dir: Path | None = None,
               download: bool = False) -> Split | FileSplit:
    """The samples of the classes called `names` in one split, labelled 0..k-1 in that order.

    A module's classes may be a subset of its dataset's (a fine-tuned module): this finds their
    images by name, whatever the dataset's own label numbers are."""
    source = DataSource(source) if isinstance(source, str) else source
    if source.is_folder:
        dataset = load_dataset(source, data_dir, download, show_progress=False)
        data, all_names = (dataset.train if split == "train" else dataset.test), list(dataset.info.classes)
    else:
        data, all_names = load_split(source, split, data_dir, download), list(dataset_info(source.name).classes)
    missing = [n for n in names if n not in all_names]
    if missing:
        raise MwtError(f"the dataset {source.name} has no class '{missing[0]}'")
    return data.relabel([all_names.index(n) for n in names])
