"""Turning image files, folders and .npy batches into arrays in a module's input spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mwt.errors import MwtError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by the images and .npy files in them, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | {".npy"})
            if not found:
                raise MwtError(f"folder {p} holds no images or .npy files")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise MwtError(f"{p} does not exist")
    if not out:
        raise MwtError("no inputs given")
    return out


def decode_image(data: bytes | Path, shape: tuple[int, int, int], label: str = "image") -> np.ndarray:
    """Decode one image (PNG, JPEG, ...) into float32 (C, H, W) in [0, 1], converted to the
    module's channels (grayscale or RGB) and resized to its size where it differs."""
    import io

    from PIL import Image, UnidentifiedImageError

    channels, height, width = shape
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MwtError(f"cannot decode {label} as an image ({type(e).__name__})") from None
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_npy(path: Path) -> np.ndarray:
    """A .npy batch (N, C, H, W) or image (C, H, W); never unpickles objects."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise MwtError(f"cannot read {path} as a .npy array ({e})") from None
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32, copy=False)


def load_inputs(paths: list[Path], shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """A float32 batch (N, C, H, W) and one name per sample, from images, folders and .npy files."""
    arrays: list[np.ndarray] = []
    names: list[str] = []
    for path in expand_paths(paths):
        if path.suffix.lower() == ".npy":
            array = load_npy(path)
            if array.ndim == len(shape):
                array = array[None]
            if tuple(array.shape[1:]) != shape:
                raise MwtError(f"{path} holds arrays of shape {tuple(array.shape)}; expected (N, {', '.join(map(str, shape))})")
            arrays.append(array)
            names.extend(f"{path.name}[{i}]" for i in range(array.shape[0]))
        else:
            arrays.append(decode_image(path, shape, str(path))[None])
            names.append(path.name)
    batch = np.concatenate(arrays)
    if batch.shape[0] == 0:
        raise MwtError("the inputs hold no samples")
    return batch, names
