"""Turning image files, folders and .npy batches into arrays in a module's input spec.

Everything here reads untrusted input, so sizes are checked before anything large is decoded or
allocated: an image's pixel count from its header, a .npy array's shape and dtype from its header.
`to_input` is the one preprocessing: training on an image folder uses it too, so a module sees
an image exactly as its training data did.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mwt.core.errors import MwtError, first_line
from mwt.core.metadata import InputSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


@dataclass(frozen=True)
class InputLimits:
    """Bounds on what one request (or one `predict` run) may make us decode."""

    max_pixels: int = 4096 * 4096  # per image, from its header, before decoding
    max_samples: int = 100_000  # per .npy array or batch


class TooLarge(MwtError):
    """The input is larger than the limits allow (the server answers 413)."""


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders replaced by the images and .npy files in them, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES | {".npy"} and f.is_file())
            if not found:
                raise MwtError(f"folder {p} holds no images or .npy files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise MwtError(f"{p} is not a file or folder")
        else:
            raise MwtError(f"{p} does not exist")
    if not out:
        raise MwtError("no inputs given")
    return out


def to_input(image: object, spec: InputSpec) -> np.ndarray:
    """A PIL image as the module's input: uint8 (C, H, W), converted to its channels (grayscale or
    RGB) and resized to its size with its resize method where the size differs."""
    from PIL import Image

    channels, height, width = spec.shape
    img = image.convert("L" if channels == 1 else "RGB")  # type: ignore[attr-defined]
    if img.size != (width, height):
        img = img.resize((width, height), getattr(Image.Resampling, spec.resize.upper()))
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def decode_image(data: bytes | bytearray | Path, spec: InputSpec, label: str = "image",
                 limits: InputLimits = InputLimits()) -> np.ndarray:
    """Decode one image (PNG, JPEG, ...) into uint8 (C, H, W) in the module's input spec."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as img:
                pixels = img.width * img.height
                if pixels > limits.max_pixels:
                    raise TooLarge(f"{label} is {img.width}x{img.height} pixels, over the limit of "
                                   f"{limits.max_pixels} pixels per image")
                return to_input(img, spec)
    except TooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"{label} declares more pixels than the limit of {limits.max_pixels} per image") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        raise MwtError(f"cannot decode {label} as an image ({type(e).__name__})") from None


def read_npy(data: bytes | bytearray | Path, spec: InputSpec, label: str = "array",
             limits: InputLimits = InputLimits()) -> np.ndarray:
    """A .npy batch (N, C, H, W) or one image (C, H, W) of numbers, checked from its header first:
    never unpickles objects and never allocates more than the file holds."""
    try:
        with (open(data, "rb") if isinstance(data, Path) else io.BytesIO(data)) as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = read_header(f, max_header_size=10_000)
            if dtype.kind not in "buif" or dtype.hasobject:
                raise MwtError(f"{label} holds {dtype} values, not numbers")
            if len(shape) == len(spec.shape):
                shape = (1, *shape)
            if len(shape) != len(spec.shape) + 1 or tuple(shape[1:]) != spec.shape:
                raise MwtError(f"{label} holds arrays of shape {tuple(shape)}; expected "
                               f"(N, {', '.join(map(str, spec.shape))})")
            if shape[0] > limits.max_samples:
                raise TooLarge(f"{label} holds {shape[0]} samples, over the limit of {limits.max_samples}")
            count = int(np.prod(shape, dtype=np.int64))
            body = f.read(count * dtype.itemsize + 1)
    except MwtError:
        raise
    except (ValueError, OSError, EOFError, TypeError) as e:
        raise MwtError(f"cannot read {label} as a .npy array ({first_line(e, 120)})") from None
    if len(body) != count * dtype.itemsize:
        raise MwtError(f"{label} is a .npy array whose data is {'truncated' if len(body) < count * dtype.itemsize else 'longer than its header says'}")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def iter_inputs(paths: list[Path], spec: InputSpec, limits: InputLimits = InputLimits()) -> Iterator[tuple[str, np.ndarray]]:
    """(name, array (N, C, H, W)) for each image or .npy file, folders expanded."""
    for path in expand_paths(paths):
        if path.suffix.lower() == ".npy":
            array = read_npy(path, spec, str(path), limits)
            yield from ((f"{path.name}[{i}]", array[i:i + 1]) for i in range(array.shape[0]))
        else:
            yield path.name, decode_image(path, spec, str(path), limits)[None]


def load_inputs(paths: list[Path], spec: InputSpec, limits: InputLimits = InputLimits()) -> tuple[np.ndarray, list[str]]:
    """One batch (N, C, H, W) and one name per sample, from images, folders and .npy files.

    Images come as uint8; a batch mixing them with float arrays is float32 in [0, 1]."""
    names: list[str] = []
    arrays: list[np.ndarray] = []
    for name, array in iter_inputs(paths, spec, limits):
        names.append(name)
        arrays.append(array)
        if len(names) > limits.max_samples:
            raise TooLarge(f"the inputs hold more than {limits.max_samples} samples")
    if not arrays:
        raise MwtError("the inputs hold no samples")
    if len({a.dtype for a in arrays}) > 1:
        # only pixels (uint8) and floats mix: any other dtype would pass as floats of the wrong scale
        for name, a in zip(names, arrays):
            if a.dtype != np.uint8 and a.dtype.kind != "f":
                raise MwtError(f"{name}: expected float images in [0, 1] or uint8 pixels, got dtype {a.dtype}")
        arrays = [a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32) for a in arrays]
    return np.concatenate(arrays), names
