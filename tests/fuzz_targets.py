"""Fuzz targets for every loader of untrusted input: each must end in one MwtError (or a valid result).

Targets: the checkpoint loader (random byte flips and structure mutations of a real checkpoint),
the module reader and runner (byte flips of a real module, random metadata), image and .npy
decoding (random bytes, and plausible headers with hostile sizes), the server's /predict
body (random bodies: a 4xx or 200, never a 5xx), class-name strings through every writer
(checkpoint, module, file-name stem, labels.txt, config.pbtxt), decode-cache records, resume
checkpoints (one field of a real resumable state changed), and module graphs with ops outside
the compiler's set (which must be refused). The tests run each property with a small
example budget; benchmarks/fuzz.py runs many more and reports cases tried and failures.

    python benchmarks/fuzz.py --examples 2000
"""

from __future__ import annotations

import io
import sys
import traceback
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


def _post_status(url: str, body: bytes, headers: dict[str, str]) -> int:
    """The HTTP status the server answers a POST of `body` with (an error status included)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def server_body(url: str, body: bytes, content_type: str) -> None:
    """Any body to /predict: any answer but a 5xx keeps the contract."""
    if (status := _post_status(url + "/predict", body, {"Content-Type": content_type})) >= 500:
        raise ContractBroken(f"the server answered {status} to a {len(body)}-byte {content_type} body")


def server_v2_body(url: str, header: object, tail: bytes, split: bool) -> None:
    """A v2 infer request (JSON header, binary tail, maybe Inference-Header-Content-Length): any
    answer but a 5xx keeps the contract."""
    import json
    import urllib.request

    head = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(head))} if split else {}
    models = json.loads(urllib.request.urlopen(url + "/v2/models", timeout=30).read())["models"]
    if (status := _post_status(f"{url}/v2/models/{models[0]}/infer", head + tail, headers)) >= 500:
        raise ContractBroken(f"the server answered {status} to the v2 request {head[:200]!r}")


def class_names(seed_file: bytes, ckpt_dict: dict, work: Path, names: list[str]) -> None:
    """Names anywhere a class name enters (a checkpoint, a module's metadata): refused in one
    MwtError, or every writer keeps them in place: a safe file-name stem, one labels.txt line
    each, and a config.pbtxt that Triton's schema parses back to the same strings."""
    import copy
    import json
    import re

    import onnx
    import torch

    from mwt.checkpoint import load_checkpoint
    from mwt.core.names import safe_stem
    from runtime.module_file import read_module
    from runtime.triton import write_repository

    d = copy.deepcopy(ckpt_dict)
    d["classes"] = names + d["classes"][len(names):]
    torch.save(d, work / "names.pt")
    if holds(lambda: load_checkpoint(work / "names.pt")) is not None:
        stem = safe_stem(names)
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", stem) and len(stem) <= 100, stem
    model = onnx.load_from_string(seed_file)
    for p in model.metadata_props:
        if p.key == "mwt.classes":
            p.value = json.dumps((names + ["zz-1", "zz-2"])[:2])
    (work / "names.onnx").write_bytes(model.SerializeToString())
    module = holds(lambda: read_module(work / "names.onnx"))
    if module is None:
        return
    repo = work / "names-repo"
    written = holds(lambda: write_repository([module], repo, force=True))
    if written is None:
        return
    (folder_name,) = written  # type: ignore[misc]
    assert "/" not in folder_name and folder_name not in (".", "..")
    folder = repo / folder_name
    assert (folder / "labels.txt").read_text().split("\n")[:-1] == module.classes
    schema = _triton_schema()
    if schema is not None:
        from google.protobuf import text_format

        config = text_format.Parse((folder / "config.pbtxt").read_text(), schema.ModelConfig())
        assert [i.name for i in config.input] == [module.input.name] and len(config.output) == 1
        assert json.loads(config.parameters["mwt_classes"].string_value) == module.classes


def _triton_schema():  # type: ignore[no-untyped-def]
    """Triton's ModelConfig schema from tritonclient (None without it); see tests/test_deploy.py."""
    import importlib.util

    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    if not path.is_file():
        return None
    if "fuzz_model_config_pb2" not in sys.modules:
        module_spec = importlib.util.spec_from_file_location("fuzz_model_config_pb2", path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        sys.modules["fuzz_model_config_pb2"] = module
    return sys.modules["fuzz_model_config_pb2"]


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 1 << 40), st.floats(allow_nan=False), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)
CACHE_KEYS = st.sampled_from(["format", "shape", "failed", "sha256", "root", "extra"])


def cache_record(cache: dict, work: Path, key: str | None, value: object, array_change: int) -> None:
    """A decode-cache entry with one record field replaced and/or its array changed: read back
    exactly as written, or refused (None: rebuilt), never a traceback or different images."""
    import json

    from mwt.data.folder import _read_cache

    meta = dict(cache["meta"])
    if key is not None:
        meta[key] = value
    images = cache["images"]
    if array_change == 1:
        images = np.full_like(images, 255)
    elif array_change == 2:
        images = images[:-1]
    elif array_change == 3:
        images = images.astype(np.int16)
    meta_path, images_path = work / "cache.json", work / "cache.npy"
    meta_path.write_text(json.dumps(meta) if not isinstance(value, bytes) else "{not json")
    np.save(images_path, images)
    got = holds(lambda: _read_cache(images_path, meta_path, cache["images"].shape))
    if got is not None:
        got_images, got_failed = got  # type: ignore[misc]
        assert np.array_equal(got_images, cache["images"]) and got_failed == cache["meta"]["failed"]


def resume_state(seed: dict, work: Path, path_choice: int, value: object, delete: bool) -> None:
    """Replace or delete one field anywhere in a real resumable checkpoint's state (the reuse
    recipe's `route` is its own loader's), then resume: one MwtError, or a run that finishes."""
    import copy

    import torch

    from mwt.checkpoint import checkpoint_from_dict
    from mwt.train import train

    d = copy.deepcopy(seed["resume_dict"])
    places: list[tuple[object, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k in sorted(node, key=str):
                if k != "route":
                    places.append((node, k))
                    walk(node[k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                places.append((node, i))
                walk(v)

    walk(d["resume"])
    container, key = places[path_choice % len(places)]
    if delete and isinstance(container, dict):
        del container[key]
    elif isinstance(container[key], torch.Tensor) and isinstance(value, int):  # type: ignore[index]
        container[key] = torch.zeros([abs(value) + 1] * max(container[key].dim(), 1),  # type: ignore[index]
                                     dtype=container[key].dtype)  # type: ignore[index]
    else:
        container[key] = value  # type: ignore[index]
    ckpt = holds(lambda: checkpoint_from_dict(d))
    if ckpt is not None:
        train_data, test_data, config = seed["resume_data"]  # type: ignore[misc]
        holds(lambda: train(copy.deepcopy(config), train_data, test_data, resume=ckpt, show_progress=False))


FOREIGN_OPS = st.one_of(
    st.sampled_from(["Loop", "If", "Scan", "Hardmax", "NonZero", "Relu", "Identity", "Softmax", "Tanh", "Where",
                     "RandomNormalLike", "Abs"]),
    st.text(min_size=1, max_size=8),
)
DOMAINS = st.sampled_from(["", "", "ai.onnx", "com.microsoft", "ai.onnx.ml", "org.example"])


def module_graph(seed_file: bytes, work: Path, op: str, domain: str, position: int, subgraph: bool) -> None:
    """A real module with one node inserted on its logits path: an op outside the compiler's set,
    a foreign domain or a subgraph is refused in one MwtError before any session runs it."""
    import onnx
    from onnx import helper

    from mwt.core.metadata import MODULE_OPS
    from runtime.composed import ComposedClassifier

    model = onnx.load_from_string(seed_file)
    nodes = list(model.graph.node)
    for node in nodes:
        node.output[:] = ["pre_logits" if o == "logits" else o for o in node.output]
    attrs = {}
    if subgraph:
        attrs["body"] = helper.make_graph([], "body", [], [])
    extra = helper.make_node(op, ["pre_logits"], ["logits"], domain=domain, **attrs)
    nodes.append(extra)
    if position % 2:  # also somewhere in the middle, feeding nothing
        nodes.insert(position % len(nodes), helper.make_node(op, [nodes[0].input[0]], ["dangling"], domain=domain))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if domain not in ("", "ai.onnx"):
        model.opset_import.append(helper.make_opsetid(domain, 1))
    path = work / "graph.onnx"
    path.write_bytes(model.SerializeToString())
    foreign = op not in MODULE_OPS or domain not in ("", "ai.onnx") or subgraph
    try:
        clf = ComposedClassifier.from_files([path])
    except MwtError:
        return
    except Exception as e:  # noqa: BLE001
        raise ContractBroken(f"{type(e).__name__}: {e}\n{traceback.format_exc()}") from e
    if foreign:
        raise ContractBroken(f"a module with op {op!r} of domain {domain!r} (subgraph: {subgraph}) was accepted")
    holds(lambda: clf.predict(np.zeros((1, *clf.input_shape), np.float32)))


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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16)
v2_inputs = st.fixed_dictionaries({
    "name": st.sampled_from(["input", "x", ""]) | json_values,
    "datatype": st.sampled_from(["FP32", "UINT8", "INT64", "BYTES", "FP16", ""]) | json_values,
    "shape": st.lists(st.integers(-2, 1 << 40), max_size=5) | st.just([1, 1, 28, 28]) | json_values,
}, optional={
    "data": st.lists(st.floats(), max_size=784) | st.lists(st.integers(-1, 300), min_size=784, max_size=784)
            | json_values,
    "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-1, 4000) | json_values}) | json_values,
})
v2_headers = st.one_of(
    json_values,
    st.fixed_dictionaries({"inputs": st.lists(v2_inputs, max_size=2) | json_values}, optional={
        "outputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["logits", "label", "x"]) | json_values},
                                                  optional={"parameters": json_values}), max_size=3) | json_values,
        "parameters": json_values, "id": json_values}),
)


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
        **_resumable(work),
        "cache": _cache_entry(work),
    }


def _resumable(work: Path) -> dict[str, object]:
    """A real resumable checkpoint (epoch 1 of 2, 2 steps an epoch) and the data it resumes on."""
    import torch

    from mwt.data.split import Split
    from mwt.train import train
    from mwt.train_config import TrainConfig

    gen = torch.Generator().manual_seed(0)
    data = Split(torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(32) % 10)
    config = TrainConfig(model="vgg11", width=0.0625, epochs=2, batch_size=16, lr=0.02, seed=0, device="cpu",
                         test_limit=16)
    train(config, data, data, show_progress=False, save_path=work / "resume.pt", save_every=1)
    return {"resume_dict": torch.load(work / "resume.pt", weights_only=True), "resume_data": (data, data, config)}


def _cache_entry(work: Path) -> dict[str, object]:
    """The decode cache's record and arrays for a real folder of 2 classes of 3 images."""
    import json
    import os

    from PIL import Image

    from mwt.data import load_dataset

    root = work / "folder"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (32, 32), 40 * i + (c == "b") * 100).save(root / c / f"{i}.png")
    previous = os.environ.get("MWT_CACHE")
    os.environ["MWT_CACHE"] = str(work / "cache")
    try:
        load_dataset(str(root), show_progress=False)
    finally:
        if previous is None:
            del os.environ["MWT_CACHE"]
        else:
            os.environ["MWT_CACHE"] = previous
    (record,) = (work / "cache" / "folders").glob("*.json")
    return {"meta": json.loads(record.read_text()), "images": np.load(record.with_suffix(".npy"))}


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
        "class names": given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(
            ["../x", "a/b", "..", ".", "a\nb", "a\x00", "\u202e", "Cat", "cat", "x" * 300, '"}]', "-rf"])),
            min_size=1, max_size=3))(
            lambda names: class_names(seed["module"], seed["checkpoint_dict"], work, names)),  # type: ignore[arg-type]
        "cache records": given(st.one_of(st.none(), CACHE_KEYS), st.one_of(JSON_VALUES, st.just(b"")),
                               st.integers(0, 3))(
            lambda k, v, a: cache_record(seed["cache"], work, k, v, a)),  # type: ignore[arg-type]
        "resume checkpoints": given(st.integers(0, 10_000), STRUCTURE_VALUES, st.booleans())(
            lambda i, v, d: resume_state(seed, work, i, v, d)),
        "module graphs": given(FOREIGN_OPS, DOMAINS, st.integers(0, 100), st.booleans())(
            lambda op, dom, pos, sub: module_graph(seed["module"], work, op, dom, pos, sub)),  # type: ignore[arg-type]
    }
    if server_url is not None:
        props["server body"] = given(st.one_of(image_data, st.binary(max_size=4096)), content_types)(
            lambda body, ct: server_body(server_url, body, ct))
        props["v2 body"] = given(v2_headers, st.binary(max_size=4096), st.booleans())(
            lambda header, tail, split: server_v2_body(server_url, header, tail, split))
    return props


def run_property(prop: Callable[..., None], examples: int, derandomize: bool = False) -> None:
    """Run one property for `examples` inputs; `derandomize` draws the same inputs every run."""
    settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
             suppress_health_check=list(HealthCheck))(prop)()
