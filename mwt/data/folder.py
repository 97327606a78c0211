"""Image folders as datasets, laid out as torchvision's ImageFolder.

    root/<class>/<image>                 one tree, split by a seeded --test-fraction (per class)
    root/train/<class>/<image>           explicit splits: train/ and test/ (or val/)
    root/test/<class>/<image>

Rules (also in the README): class names are the class folders' names, sorted; folders whose
names start with '.' are skipped; images are found by suffix (.png, .jpg, ...) anywhere below a
class folder, and only regular files are read (a FIFO named p.png is skipped and counted);
other files are ignored. Symbolic links are followed while they stay inside the dataset root,
each real folder and file once (a link loop ends there); a link that leads out of the root is
skipped and counted in the warning, and one that makes an image appear under two classes is an
error. Class names must be printable (no control characters or path separators, see
`mwt.core.names`) and may not differ only in case. A class folder without images, fewer than two classes, or a train/
without a test/ or val/ beside it is an error. Files that cannot be decoded are skipped and
counted in one warning, or refused with `strict`. Images are converted to the module's channels
and resized to its size by `mwt.core.images.to_input`, the same function inference uses.

The first load decodes every image (all cores) into a cache keyed by the folder's content
(paths, sizes, modification times) and the preprocessing settings, under $MWT_CACHE or
~/.cache/mwt; later loads read the cache. Nothing is written to the image folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mwt.core.atomic import write_atomic, write_bytes_atomic
from mwt.data.split import FileSplit, Split
from mwt.core.errors import MwtError, MwtWarning
from mwt.core.names import case_collisions, check_class_names
from mwt.progress import progress
from mwt.core.images import IMAGE_SUFFIXES, decode_image
from mwt.core.metadata import RESIZE_METHODS, InputSpec

CACHE_FORMAT = 2  # 2: records carry the shape and a digest of the arrays
DEFAULT_SIZE = 32
TEST_FOLDERS = ("test", "val")


@dataclass(frozen=True)
class FolderFile:
    path: str  # relative to the root
    label: int
    split: str  # "train" or "test"


@dataclass
class FolderScan:
    """What a folder holds, before anything is decoded."""

    root: Path
    classes: list[str]
    files: list[FolderFile]
    stats: list[tuple[int, int]]  # (size in bytes, mtime in ns) per file, for the cache key
    links_out: int = 0  # symbolic links skipped because they lead out of the root
    not_regular: int = 0  # entries named like images that are not regular files (FIFOs, devices), skipped


def _inside(real: str, root_real: str) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


@dataclass
class _Walk:
    """What a scan passed over, for the warning: links that lead out of the root, and entries
    with an image's name that are not regular files (a FIFO would block the reader forever)."""

    root_real: str
    links_out: int = 0
    not_regular: int = 0

    def leaves(self, path: str) -> bool:
        """Whether `path` is a symbolic link whose target is outside the dataset root (counted)."""
        if os.path.islink(path) and not _inside(os.path.realpath(path), self.root_real):
            self.links_out += 1
            return True
        return False


def _class_folders(folder: Path, walk: _Walk | None = None) -> list[Path]:
    found = []
    for d in sorted(folder.iterdir(), key=lambda d: d.name):
        if d.name.startswith(".") or not d.is_dir():
            continue
        if walk is not None and walk.leaves(str(d)):
            continue
        found.append(d)
    return found


def _images_below(folder: Path, walk: _Walk) -> list[Path]:
    """Regular image files below `folder`, following links that stay inside the dataset root,
    each real folder and file once, sorted."""
    found: list[Path] = []
    seen: set[str] = set()
    files: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link loop (or a second link to one folder): read it once
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not walk.leaves(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES or name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            if walk.leaves(path):
                continue
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:  # a dangling link: a file that cannot be read, counted as such later
                regular = True
            if not regular:
                walk.not_regular += 1
                continue
            real_file = os.path.realpath(path)
            if real_file not in files:
                files.add(real_file)
                found.append(Path(path))
    return found


def _check_class_names(classes: list[str], top: Path) -> None:
    check_class_names(classes, f"the folder {top}")
    collision = case_collisions(classes)
    if collision:
        raise MwtError(f"the class folders '{collision[0]}' and '{collision[1]}' in {top} differ only in case; rename "
                       "one (classes are named by their folders, and on a case-insensitive file system they are one)")


def scan_folder(root: Path, test_fraction: float = 0.2, split_seed: int = 0) -> FolderScan:
    """Find the classes, the image files and their split (see the module docstring for the rules)."""
    if not root.is_dir():
        raise MwtError(f"{root} is not a folder of images" if root.exists() else f"{root} does not exist")
    walk = _Walk(os.path.realpath(root))
    train_dir = root / "train"
    test_dir = next((root / n for n in TEST_FOLDERS if (root / n).is_dir()), None)
    if train_dir.is_dir() and test_dir is None:
        raise MwtError(f"{root} has a train/ folder but no test/ or val/ beside it; add one, or put the class "
                       "folders directly in the root to have each class split by the test fraction",
                       options=("test_fraction",))
    tops = {"train": train_dir, "test": test_dir} if test_dir is not None else {"all": root}
    classes = [d.name for d in _class_folders(tops.get("train", root), walk)]
    _check_class_names(classes, tops.get("train", root))
    if len(classes) < 2:
        raise MwtError(f"{tops.get('train', root)} holds {len(classes)} class folder(s); a classifier needs two or more "
                       "(one folder per class, named after it)")
    files: list[FolderFile] = []
    labels_of: dict[str, tuple[int, Path]] = {}  # real file -> the class folder it was found in
    for split, top in tops.items():
        present = [d.name for d in _class_folders(top, walk)]  # type: ignore[arg-type]
        if split == "test" and sorted(present) != classes:
            raise MwtError(f"{top} holds classes {present}, but the training classes are {classes}")
        for label, name in enumerate(classes):
            images = _images_below(top / name, walk)  # type: ignore[operator]
            if not images:
                raise MwtError(f"class folder {top / name} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")  # type: ignore[operator]
            for image in images:
                real = os.path.realpath(image)
                other = labels_of.setdefault(real, (label, top / name))  # type: ignore[operator]
                if other[0] != label:
                    raise MwtError(f"the class folders {other[1]} and {top / name} both hold {real} (through a "  # type: ignore[operator]
                                   "symbolic link); an image can have one label: remove the link")
            rel = [str(p.relative_to(root)) for p in images]
            if split == "all":
                order = np.random.default_rng([split_seed, label]).permutation(len(rel))
                n_test = min(len(rel) - 1, round(test_fraction * len(rel))) if len(rel) > 1 else 0
                test_set = set(order[:n_test].tolist())
                files += [FolderFile(r, label, "test" if i in test_set else "train") for i, r in enumerate(rel)]
            else:
                files += [FolderFile(r, label, split) for r in rel]
    if files and not any(f.split == "test" for f in files):  # scored on nothing, "test accuracy nan%"
        raise MwtError(f"--test-fraction {test_fraction:g} holds out no image of {root} for testing: raise it, or "
                       "give the folder train/ and test/ subfolders", options=("test_fraction",))
    stats = []
    for f in files:
        try:
            st = (root / f.path).stat()
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((-1, -1))
    return FolderScan(root, classes, files, stats, walk.links_out, walk.not_regular)


def _probe(paths: list[str]) -> list[tuple[int, int, str] | str]:
    """(width, height, mode) of each image from its header, or why it cannot be read."""
    from PIL import Image

    out: list[tuple[int, int, str] | str] = []
    for p in paths:
        try:
            with Image.open(p) as img:
                out.append((img.width, img.height, img.mode))
        except Exception as e:  # noqa: BLE001 - anything a broken file raises is a reason to skip it
            out.append(f"{type(e).__name__}")
    return out


def _decode_chunk(args: tuple[list[str], InputSpec]) -> tuple[np.ndarray, list[int]]:
    paths, spec = args
    images = np.zeros((len(paths), *spec.shape), np.uint8)
    failed = []
    for i, p in enumerate(paths):
        try:
            images[i] = decode_image(Path(p), spec, p)
        except MwtError:
            failed.append(i)
    return images, failed


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _parallel(fn, jobs: list, workers: int, desc: str, show_progress: bool) -> list:  # type: ignore[no-untyped-def]
    if workers <= 1 or len(jobs) <= 1:
        return [fn(j) for j in progress(jobs, total=len(jobs), desc=desc, enable=show_progress)]
    with ProcessPoolExecutor(workers) as pool:
        return list(progress(pool.map(fn, jobs), total=len(jobs), desc=desc, enable=show_progress))


@dataclass
class FolderData:
    """A decoded (or streamable) image folder."""

    classes: list[str]
    spec: InputSpec  # the preprocessing: shape (C, H, W) and resize method
    train: Split | FileSplit
    test: Split | FileSplit
    skipped: int


def cache_dir() -> Path:
    return Path(os.environ.get("MWT_CACHE", Path.home() / ".cache" / "mwt")) / "folders"


def load_folder(root: Path, *, image_size: tuple[int, int] | None = None, channels: int | None = None,
                resize: str = "bilinear", test_fraction: float = 0.2, split_seed: int = 0, storage: str = "auto",
                strict: bool = False, memory_budget: int = 2 << 30, workers: int | None = None,
                show_progress: bool = True) -> FolderData:
    """Load an image folder: scan it, settle the preprocessing, then decode it (or its cache) into
    memory, or, past `memory_budget` bytes or with storage "stream", stream it from the files."""
    if resize not in RESIZE_METHODS:
        raise MwtError(f"unknown resize method '{resize}'; choose one of {', '.join(RESIZE_METHODS)}")
    if not 0 < test_fraction < 1:
        raise MwtError(f"the test fraction must be in (0, 1), got {test_fraction}")
    workers = workers or os.cpu_count() or 1
    scan = scan_folder(root, test_fraction, split_seed)
    absolute = [str(root / f.path) for f in scan.files]
    probes = [r for part in _parallel(_probe, _chunks(absolute, 256), workers, "reading headers", show_progress)
              for r in part]
    bad = [p for p, r in zip(absolute, probes) if isinstance(r, str)]
    if bad and strict:
        raise MwtError(f"{len(bad)} file(s) cannot be read as images, e.g. {bad[0]} ({probes[absolute.index(bad[0])]})")
    keep = [i for i, r in enumerate(probes) if not isinstance(r, str)]
    headers = [probes[i] for i in keep]
    if image_size is None:
        sizes = {(h, w) for w, h, _ in headers}  # type: ignore[misc]
        image_size = sizes.pop() if len(sizes) == 1 else (DEFAULT_SIZE, DEFAULT_SIZE)
    if channels is None:
        channels = 1 if all(mode in ("1", "L", "LA", "I", "I;16", "F") for _, _, mode in headers) else 3  # type: ignore[misc]
    spec = InputSpec(shape=(channels, *image_size), resize=resize, dataset=str(root))  # type: ignore[arg-type]
    files = [scan.files[i] for i in keep]
    paths = np.array([absolute[i] for i in keep])
    labels = torch.tensor([f.label for f in files], dtype=torch.long)
    is_train = torch.tensor([f.split == "train" for f in files])
    decoded_bytes = len(files) * int(np.prod(spec.shape))
    stream = storage == "stream" or (storage == "auto" and decoded_bytes > memory_budget)
    skipped = len(bad)
    if stream:
        whole: Split | FileSplit = FileSplit(paths, labels, spec, workers=min(workers, 8))
    else:
        images, failed = _decoded(scan, keep, paths, spec, workers, show_progress)
        if failed and strict:
            raise MwtError(f"{len(failed)} file(s) cannot be decoded, e.g. {paths[failed[0]]}")
        ok = torch.ones(len(files), dtype=torch.bool)
        ok[failed] = False
        skipped += len(failed)
        whole = Split(torch.from_numpy(images)[ok], labels[ok])
        is_train = is_train[ok]
    passed = [f"{n} {what}" for n, what in ((scan.links_out, "symbolic link(s) that lead out of it"),
                                            (scan.not_regular, "file(s) that are not regular files (a FIFO or device)"))
              if n]
    if skipped:
        warnings.warn(MwtWarning(f"skipped {skipped} file(s) of {root} that cannot be read as images"
                                 f"{''.join('; and ' + p for p in passed)}; strict loading refuses unreadable files "
                                 "instead", options=("strict",)), stacklevel=2)
    elif passed:
        warnings.warn(MwtWarning(f"skipped {' and '.join(passed)} in {root}"), stacklevel=2)
    train_idx, test_idx = torch.nonzero(is_train).flatten(), torch.nonzero(~is_train).flatten()
    return FolderData(scan.classes, spec, whole.take(train_idx), whole.take(test_idx), skipped)


def _decoded(scan: FolderScan, keep: list[int], paths: np.ndarray, spec: InputSpec, workers: int,
             show_progress: bool) -> tuple[np.ndarray, list[int]]:
    """Every kept image decoded, from the cache when the folder and settings are unchanged."""
    key_source = json.dumps({"format": CACHE_FORMAT, "root": str(scan.root.resolve()),
                             "files": [[scan.files[i].path, scan.files[i].label, scan.files[i].split, *scan.stats[i]]
                                       for i in keep],
                             "shape": list(spec.shape), "resize": spec.resize})
    key = hashlib.sha256(key_source.encode()).hexdigest()[:32]
    images_path, meta_path = cache_dir() / f"{key}.npy", cache_dir() / f"{key}.json"
    if images_path.is_file() and meta_path.is_file():
        cached = _read_cache(images_path, meta_path, (len(keep), *spec.shape))
        if cached is not None:
            return cached
    parts = _parallel(_decode_chunk, [(c, spec) for c in _chunks(paths.tolist(), 256)], workers, "decoding images",
                      show_progress)
    images = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, *spec.shape), np.uint8)
    failed = [i * 256 + j for i, p in enumerate(parts) for j in p[1]]
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        write_atomic(images_path, lambda tmp: _save_array(tmp, images))
        write_bytes_atomic(meta_path, json.dumps({"format": CACHE_FORMAT, "root": str(scan.root), "shape": list(images.shape),
                                                  "failed": failed, "sha256": _digest(images, failed)}).encode())
    except (OSError, MwtError):
        pass  # no cache then; the data is still here
    return images, failed


def _digest(images: np.ndarray, failed: list[int]) -> str:
    """SHA-256 of a cache entry: the decoded images' bytes and the list of files that failed."""
    h = hashlib.sha256(json.dumps(failed).encode())
    h.update(np.ascontiguousarray(images).data)
    return h.hexdigest()


def _read_cache(images_path: Path, meta_path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, list[int]] | None:
    """A cache entry, if its record is well formed and its digest matches the arrays; None (rebuild)
    for anything else. The digest catches damage and edits, not a forger who recomputes it: the
    cache is the user's own folder."""
    try:
        meta = json.loads(meta_path.read_text())
        images = np.load(images_path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT or meta.get("shape") != list(shape):
        return None
    failed = meta.get("failed")
    if (not isinstance(failed, list) or not all(type(i) is int and 0 <= i < shape[0] for i in failed)
            or failed != sorted(set(failed))):
        return None
    if images.shape != shape or images.dtype != np.uint8 or meta.get("sha256") != _digest(images, failed):
        return None
    return images, failed


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would add ".npy" to a temporary name
        np.save(f, array, allow_pickle=False)


def channel_stats(data: Split | FileSplit, sample: int = 5000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of images in [0, 1] (over a seeded sample when large)."""
    images = data.sample(sample, seed=0).materialize().images.double() / 255.0  # (N, C, H, W)
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3)).clamp(min=1e-3)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
