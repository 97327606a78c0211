"""Fuzzing every loader of untrusted input: each must end in one MwtError (or a valid result).

Targets: the checkpoint loader (random byte flips and structure mutations of a real checkpoint),
the module reader and runner (byte flips of a real module, random metadata), image and .npy
decoding (random bytes, and plausible headers with hostile sizes), and the server's /predict
body (random bodies: a 4xx or 200, never a 5xx). The tests run each property with a small
example budget; this script runs many more and reports cases tried and failures.

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

from mwt.errors import MwtError
from runtime.metadata import InputSpec

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


# --- hostile files: tiny on disk, huge when believed ------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but whose data is a few bytes (a bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def npy_claiming(shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"") -> bytes:
    """A .npy header claiming `shape` of `descr`, followed by `data` (usually far too little)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


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
        from runtime.images import decode_image

        holds(lambda: clf.predict(np.zeros((1, *clf.input_shape), np.float32)))  # type: ignore[attr-defined]
        holds(lambda: clf.predict(decode_image(SMALL_PNG, clf.input_spec)))  # type: ignore[attr-defined]


def image_bytes(data: bytes) -> None:
    from runtime.images import decode_image

    array = holds(lambda: decode_image(data, SPEC))
    assert array is None or array.shape == SPEC.shape  # type: ignore[union-attr]


def npy_bytes(data: bytes) -> None:
    from runtime.images import read_npy

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

    from exporter.compile import ExportOptions, ModuleCompiler
    from mwt.checkpoint import save_checkpoint
    from mwt.synthetic import random_checkpoint

    ckpt = random_checkpoint("vgg11", width=0.0625, seed=3)
    save_checkpoint(ckpt, work / "seed.pt")
    proto, _ = ModuleCompiler(ckpt, "seed").compile(ExportOptions((7, 8)))
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=1000, help="examples per target")
    p.add_argument("--no-server", action="store_true", help="skip the server target")
    args = p.parse_args(argv)
    from runtime.local_server import local_server

    work = Path(tempfile.mkdtemp(prefix="mwt-fuzz-"))
    seed = seeds(work)
    (work / "module.onnx").write_bytes(seed["module"])  # type: ignore[arg-type]
    failures = 0
    print(f"{'target':<22} {'examples':>8} {'seconds':>8}  result")
    with local_server([work / "module.onnx"]) as server:
        for name, prop in properties(seed, work, None if args.no_server else server.url).items():
            start = time.perf_counter()
            try:
                run_property(prop, args.examples)
                result = "held"
            except Exception as e:  # hypothesis re-raises the shrunk failing example
                failures += 1
                result = "FAILED: " + str(e).splitlines()[0][:200]
            print(f"{name:<22} {args.examples:>8} {time.perf_counter() - start:>8.1f}  {result}", flush=True)
        if "Traceback" in server.stderr():
            failures += 1
            print("the server wrote a traceback:\n" + server.stderr()[-2000:])
    print(f"{failures} target(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
