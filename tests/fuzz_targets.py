"""Fuzz targets for every loader of untrusted input: each must end in one MwtError (or a valid result).

Targets: the checkpoint loader (random byte flips and structure mutations of a real checkpoint),
the module reader and runner (byte flips of a real module, random metadata), image and .npy
decoding (random bytes, and plausible headers with hostile sizes), and the server's /predict
body (random bodies: a 4xx or 200, never a 5xx). The tests run each property with a small
example budget; benchmarks/fuzz.py runs many more and reports cases tried and failures.

    python benchmarks/fuzz.py --examples 2000
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mwt.core.errors import MwtError
from mwt.core.metadata import InputSpec
from tests.hostile_bytes import npy, npy_claiming, png_claiming  # noqa: F401 - targets use them

SPEC = InputSpec(shape=(1, 28, 28), dataset="fashion-mnist")


def _small_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


SMALL_PNG = _small_png()


class ContractBroken(AssertionError):
    """A loader raised something other than MwtError (or the server answered 5xx)."""


def holds(fn: Callable[[], object]) -> object:
    """Run `fn`: a result or MwtError keeps the contract; any other exception breaks it."""
    try:
        return fn()
    except MwtError:
        return None
    except Exception as e:  # noqa: BLE001 - that is the point
        raise ContractBroken(f"{type(e).__name__}: {e}\n{traceback.format_exc()}") from e


def flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    """`data` with the byte at each (position mod len) replaced."""
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=8)


# --- targets: each takes fuzzed input and checks the contract --------------------------------------


def checkpoint_bytes(seed_file: bytes, work: Path, changes: list[tuple[int, int]], cut: int | None) -> None:
    from mwt.checkpoint import load_checkpoint

    data = flip(seed_file, changes)
    if cut is not None:
        data = data[: cut % max(len(data), 1)]
    path = work / "fuzz.pt"
    path.write_bytes(data)
    ckpt = holds(lambda: load_checkpoint(path))
    if ckpt is not None:
        holds(lambda: ckpt.build())  # type: ignore[attr-defined]


STRUCTURE_VALUES = st.one_of(
    st.none(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5), st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)


def checkpoint_structure(seed: dict, work: Path, path_choice: int, value: object, delete: bool) -> None:
    """Replace or delete one field, anywhere in the checkpoint dict, then load."""
    import copy

    import torch

    from mwt.checkpoint import load_checkpoint

    d = copy.deepcopy(seed)
    # every (container, key) in the nested dict, in a fixed order
    places: list[tuple[dict, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                places.append((node, k))
                walk(node[k])

    walk(d)
    container, key = places[path_choice % len(places)]
    if delete:
        del container[key]
    elif isinstance(container[key], torch.Tensor) and isinstance(value, int):
        container[key] = torch.zeros([abs(value) + 1] * container[key].dim())
    else:
        container[key] = value
    path = work / "structure.pt"
    torch.save(d, path)
    ckpt = holds(lambda: load_checkpoint(path))
    if ckpt is not None:
        holds(lambda: ckpt.build())  # type: ignore[attr-defined]


def module_bytes(seed_file: bytes, work: Path, changes: list[tuple[int, int]]) -> None:
    from runtime.composed import ComposedClassifier

    path = work / "fuzz.onnx"
    path.write_bytes(flip(seed_file, changes))
    clf = holds(lambda: ComposedClassifier.from_files([path]))
    if clf is not None:
        holds(lambda: clf.predict(np.zeros((2, *clf.input_shape), np.float32)))  # type: ignore[attr-defined]


def module_metadata(seed_file: bytes, work: Path, key: str, value: str) -> None:
    import onnx

    from runtime.composed import ComposedClassifier

    model = onnx.load_from_string(seed_file)
    props = {p.key: p.value for p in model.metadata_props}
    props[key] = value
    del model.metadata_props[:]
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    path = work / "meta.onnx"
    path.write_bytes(model.SerializeToString())
    clf = holds(lambda: ComposedClassifier.from_files([path]))
    if clf is not None:
        from mwt.core.images import decode_image

        holds(lambda: clf.predict(np.zeros((1, *clf.input_shape), np.float32)))  # type: ignore[attr-defined]
        holds(lambda: clf.predict(decode_image(SMALL_PNG, clf.input_spec)))  # type: ignore[attr-defined]


def image_bytes(data: bytes) -> None:
    from mwt.core.images import decode_image

    array = holds(lambda: decode_image(data, SPEC))
    assert array is None or array.shape == SPEC.shape  # type: ignore[union-attr]


def npy_bytes(data: bytes) -> None:
    from mwt.core.images import read_npy

    array = holds(lambda: read_npy(data, SPEC))
    assert array is None or array.shape[1:] == SPEC.shape  # type: ignore[union-attr]


def npy_header(shape: tuple[int, ...], descr: str, extra: bytes) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    npy_bytes(buf.getvalue() + extra)


def server_body(url: str, body: bytes, content_type: str) -> None:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url + "/predict", data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    if status >= 500:
        raise ContractBroken(f"the server answered {status} to a {len(body)}-byte {content_type} body")


# --- strategies ---------------------------------------------------------------------------------

image_data = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda w, h, tail: png_claiming(w, h) + tail,
              st.integers(0, 1 << 20), st.integers(0, 1 << 20), st.binary(max_size=64)),
)
npy_shapes = st.lists(st.integers(0, 1 << 40), min_size=0, max_size=5).map(tuple)
npy_descrs = st.sampled_from(["<f4", "<f8", "|u1", "<i8", "|b1", "<U3", "|S2", "<c8", "|O", "<f2", ">f4"])
content_types = st.sampled_from(["image/png", "application/x-npy", "application/octet-stream", ""])
metadata_keys = st.sampled_from(["mwt.classes", "mwt.input", "mwt.format", "mwt.module_flops", "mwt.gates",
                                 "mwt.layers", "mwt.threshold", "mwt.precision", "mwt.parts"])
metadata_values = st.one_of(st.text(max_size=40), st.sampled_from([
    "[]", "[1, 2]", '["a", "a"]', "{}", '{"shape": [1, 28]}', '{"shape": [0, 28, 28]}', '{"shape": [1, 99999, 28]}',
    "-1", "nan", "1e999", "folded", "int4", '[["x", 1, 2]]', '[["x"]]', "mwt-module/2", '{"shape": [1, 28, 28], "range": [1, 0]}',
    '{"shape": [1, 28, 28], "resize": "magic"}', '{"shape": [1, 28, 28], "dtype": "int8"}',
]))


def seeds(work: Path) -> dict[str, object]:
    """A real checkpoint and a real module to mutate."""
    import torch

    from exporter.compile import ModuleCompiler
    from mwt.checkpoint import save_checkpoint
    from tests.synthetic import random_checkpoint

    ckpt = random_checkpoint("vgg11", width=0.0625, seed=3)
    save_checkpoint(ckpt, work / "seed.pt")
    compiler = ModuleCompiler(ckpt, "seed")
    proto, _ = compiler.compile(compiler.select((7, 8)))
    return {
        "checkpoint": (work / "seed.pt").read_bytes(),
        "checkpoint_dict": torch.load(work / "seed.pt", weights_only=True),
        "module": proto.SerializeToString(),
    }


def properties(seed: dict[str, object], work: Path, server_url: str | None) -> dict[str, Callable[..., None]]:
    """Each target wrapped as a hypothesis property (call it with no arguments to run it)."""
    props: dict[str, Callable[..., None]] = {
        "checkpoint bytes": given(edits, st.one_of(st.none(), st.integers(0, 1 << 30)))(
            lambda changes, cut: checkpoint_bytes(seed["checkpoint"], work, changes, cut)),  # type: ignore[arg-type]
        "checkpoint structure": given(st.integers(0, 10_000), STRUCTURE_VALUES, st.booleans())(
            lambda i, v, d: checkpoint_structure(seed["checkpoint_dict"], work, i, v, d)),  # type: ignore[arg-type]
        "module bytes": given(edits)(lambda changes: module_bytes(seed["module"], work, changes)),  # type: ignore[arg-type]
        "module metadata": given(metadata_keys, metadata_values)(
            lambda k, v: module_metadata(seed["module"], work, k, v)),  # type: ignore[arg-type]
        "image bytes": given(image_data)(image_bytes),
        "npy bytes": given(st.binary(max_size=512))(npy_bytes),
        "npy headers": given(npy_shapes, npy_descrs, st.binary(max_size=256))(npy_header),
    }
    if server_url is not None:
        props["server body"] = given(st.one_of(image_data, st.binary(max_size=4096)), content_types)(
            lambda body, ct: server_body(server_url, body, ct))
    return props


def run_property(prop: Callable[..., None], examples: int, derandomize: bool = False) -> None:
    """Run one property for `examples` inputs; `derandomize` draws the same inputs every run."""
    settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
             suppress_health_check=list(HealthCheck))(prop)()
