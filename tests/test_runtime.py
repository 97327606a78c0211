"""Composing modules and running them on onnxruntime: exactness, the CLI, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from PIL import Image

from mwt.cli import main
from exporter.compile import ModuleCompiler
from mwt.core.errors import MwtError
from runtime import ComposedClassifier, read_module
from runtime.composed import MixedSourcesWarning
from mwt.core.metadata import ModuleMetadata
from runtime.module_file import module_from_model
from runtime.session import make_session
from tests.conftest import random_checkpoint


def _write(tmp_path, name, proto):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return path


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """Single-class modules for sneaker (7), bag (8) and ankle-boot (9), and their union, from one checkpoint."""
    tmp = tmp_path_factory.mktemp("modules")
    compiler = ModuleCompiler(random_checkpoint("vgg11", width=0.125, seed=4, frequency_power=2.0), "checkpoint-a")
    paths = {}
    for name, classes in {"sneaker": (7,), "bag": (8,), "ankle": (9,), "union": (7, 8)}.items():
        paths[name] = _write(tmp, f"{name}.onnx", compiler.compile(compiler.select(classes))[0])
    other = ModuleCompiler(random_checkpoint("vgg11", width=0.125, seed=5), "checkpoint-b")
    paths["foreign"] = _write(tmp, "foreign.onnx", other.compile(other.select((0,)))[0])
    return paths


def own_logits(path, x):
    return make_session(str(path)).run(["logits"], {"input": x})[0]


@pytest.mark.parametrize("mode", ["merged", "sessions", "sessions-parallel"])
def test_composition_is_exact(modules, mode):
    parts = [modules["sneaker"], modules["bag"], modules["ankle"]]
    clf = ComposedClassifier.from_files(parts, mode=mode)
    assert clf.classes == ["sneaker", "bag", "ankle-boot"]
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    result = clf.predict(x)
    expected = np.concatenate([own_logits(p, x) for p in parts], axis=1)
    np.testing.assert_allclose(result.logits, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0, atol=1e-5)
    assert result.labels == [clf.classes[i] for i in expected.argmax(1)]


@pytest.mark.parametrize("mode, spins", [("merged", ["1"]), ("sessions", ["0", "0"]),
                                         ("sessions-parallel", ["0", "0"])])
def test_sessions_that_take_turns_do_not_spin(modules, mode, spins):
    clf = ComposedClassifier.from_files([modules["sneaker"], modules["bag"]], mode=mode)
    assert [_allow_spinning(s) for s in clf.sessions] == spins


def _allow_spinning(session) -> str:
    try:
        return session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # not set: onnxruntime's default, spinning
        return "1"


@pytest.mark.parametrize("calls_per_turn", [1, 3])
def test_side_by_side_timing_takes_turns_of_the_calls_asked(calls_per_turn):
    from runtime.latency import measure_side_by_side

    order: list[str] = []
    timings = measure_side_by_side({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, warmup=0,
                                   min_runs=6, min_seconds=0, calls_per_turn=calls_per_turn)
    assert "".join(order) == ("a" * calls_per_turn + "b" * calls_per_turn) * (6 // calls_per_turn)
    assert timings["a"].runs == timings["b"].runs == 6
    with pytest.raises(ValueError, match="calls per turn"):
        measure_side_by_side({"a": lambda: None}, calls_per_turn=0)


def test_merged_file_outputs_and_metadata(modules):
    clf = ComposedClassifier.from_files([modules["sneaker"], modules["bag"]])
    model = clf.merged_model()
    assert [o.name for o in model.graph.output] == ["logits", "probabilities", "label"]
    meta = ModuleMetadata.read(model)
    assert meta.classes == ("sneaker", "bag") and [p["classes"] for p in meta.parts] == [["sneaker"], ["bag"]]
    assert meta.source_sha256 == "checkpoint-a" and meta.module_flops == sum(
        read_module(modules[n]).flops for n in ("sneaker", "bag"))
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    logits, probs, label = make_session(model.SerializeToString()).run(None, {"input": x})
    np.testing.assert_array_equal(label, logits.argmax(1))
    # A composed file is itself a module: it composes again and predicts the same.
    again = ComposedClassifier([module_from_model(model)])
    np.testing.assert_allclose(again.predict(x).logits, logits, atol=1e-6)
    # composed with another module, its parts are listed as they were (a composed file's own fields are empty)
    twice = ModuleMetadata.read(ComposedClassifier([module_from_model(model), read_module(modules["ankle"])]).merged_model())
    assert [p["classes"] for p in twice.parts] == [["sneaker"], ["bag"], ["ankle-boot"]]
    assert [p["gates"] for p in twice.parts] == [p["gates"] for p in meta.parts] + [read_module(modules["ankle"]).meta.gates.value]
    assert all(p["gates"] is not None and p["krr"] is not None for p in twice.parts)


def test_uint8_images_equal_scaled_floats(modules):
    clf = ComposedClassifier.from_files([modules["union"]])
    img = np.random.default_rng(2).integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(clf.predict(img).logits, clf.predict(img.astype(np.float32) / 255).logits, atol=1e-6)
    assert clf.predict(img[0]).logits.shape == (1, 2)  # one image without a batch axis


def test_bad_batches_leave_the_classifier_working(modules):
    clf = ComposedClassifier.from_files([modules["sneaker"], modules["bag"]])
    good = np.zeros((1, 1, 28, 28), np.float32)
    bad = [
        (np.zeros((0, 1, 28, 28), np.float32), "empty"),
        (np.zeros((2, 3, 28, 28), np.float32), "expected images of shape (N, 1, 28, 28)"),
        (np.zeros((2, 1, 28, 28), np.int32), "dtype int32"),
        (np.full((1, 1, 28, 28), np.nan, np.float32), "NaN"),
        ([[0.0]], "numpy array"),
    ]
    for batch, message in bad:
        with pytest.raises(MwtError, match=message.replace("(", r"\(").replace(")", r"\)")):
            clf.predict(batch)
        assert clf.predict(good).logits.shape == (1, 2)


def test_composition_checks(modules, tmp_path):
    with pytest.raises(MwtError, match="class 'bag' is in both"):
        ComposedClassifier.from_files([modules["union"], modules["bag"]])
    with pytest.raises(MwtError, match="different checkpoints"):
        ComposedClassifier.from_files([modules["sneaker"], modules["foreign"]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = ComposedClassifier.from_files([modules["sneaker"], modules["foreign"]], allow_mixed_sources=True)
    assert any(issubclass(w.category, MixedSourcesWarning) for w in caught) and len(clf.classes) == 2
    rgb = random_checkpoint("vgg11", width=0.125, seed=6)
    from dataclasses import replace

    rgb.spec = replace(rgb.spec, in_channels=3, input_size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3, pad=0)
    from mwt.models import build_model

    rgb.state_dict = build_model(rgb.spec).state_dict()
    compiler = ModuleCompiler(rgb, "checkpoint-a")
    proto, _ = compiler.compile(compiler.select((1,)))
    with pytest.raises(MwtError, match=r"takes input \[3, 32, 32\]"):
        ComposedClassifier.from_files([modules["sneaker"], _write(tmp_path, "rgb.onnx", proto)])


def test_not_onnx_and_not_mwt(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 not a model at all" * 10)
    with pytest.raises(MwtError, match="not an ONNX"):
        read_module(junk)
    plain = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["logits"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 2])]))
    with pytest.raises(MwtError, match="not an mwt module"):
        read_module(_write(tmp_path, "plain.onnx", plain))


# --- the command line ------------------------------------------------------------------------


def test_cli_compose_and_predict_images(modules, tmp_path, capsys):
    composed = tmp_path / "composed.onnx"
    assert main(["compose", str(modules["sneaker"]), str(modules["bag"]), "-o", str(composed)]) == 0
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(images / "b.jpg")  # RGB, other size
    np.save(tmp_path / "batch.npy", rng.random((3, 1, 28, 28), dtype=np.float32))
    capsys.readouterr()
    assert main(["predict", str(composed), str(images), str(tmp_path / "batch.npy"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in rows] == ["a.png", "b.jpg", "batch.npy[0]", "batch.npy[1]", "batch.npy[2]"]
    assert all(r["label"] in ("sneaker", "bag") and abs(sum(r["probabilities"].values()) - 1) < 1e-5 for r in rows)


def _undecodable(d):
    (d / "x.png").write_bytes(b"not a png")
    return d / "x.png"


def _npy(name, array):
    def make(d):
        np.save(d / name, array)
        return d / name

    return make


def _png_beside(name, array):
    """A folder of one PNG and one .npy: a batch that mixes pixels with another dtype."""
    def make(d):
        from PIL import Image

        folder = d / "mixed"
        folder.mkdir()
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "a.png")
        np.save(folder / name, array)
        return folder

    return make


@pytest.mark.parametrize("make_input, message", [
    (_undecodable, "cannot decode"),
    # 0..255 as floats: the module would answer, wrongly (the server refused them; predict did not)
    (_npy("f255.npy", np.full((1, 1, 28, 28), 200.0, np.float32)), "outside the model's input range"),
    (_png_beside("f255.npy", np.full((1, 1, 28, 28), 200.0, np.float32)), "outside the model's input range"),
    # beside a PNG an int64 array passed as floats of the wrong scale (alone it was refused)
    (_png_beside("i64.npy", np.full((1, 1, 28, 28), 200, np.int64)), "got dtype int64"),
    (_npy("e.npy", np.zeros((0, 1, 28, 28), np.float32)), "no samples"),
    (_npy("w.npy", np.zeros((2, 28, 28, 1), np.float32)), "expected (N, 1, 28, 28)"),
    (lambda d: d / "missing.png", "does not exist"),
])
def test_cli_predict_bad_input(modules, tmp_path, capsys, make_input, message):
    path = make_input(tmp_path)
    assert main(["predict", str(modules["union"]), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_cli_compose_bad_input(modules, tmp_path, capsys):
    out = tmp_path / "c.onnx"
    assert main(["compose", str(modules["bag"]), str(modules["union"]), "-o", str(out)]) == 2
    assert "is in both" in capsys.readouterr().err and not out.exists()
    assert main(["compose", str(modules["bag"]), str(modules["foreign"]), "-o", str(out)]) == 2
    assert "--allow-mixed-sources" in capsys.readouterr().err
    assert main(["compose", str(modules["bag"]), str(modules["foreign"]), "-o", str(out), "--allow-mixed-sources"]) == 0
    assert "warning:" in capsys.readouterr().err and out.exists()


def test_runtime_needs_no_torch():
    # The core and the runtime, and the CLI's root (its commands import torch only when they run).
    code = ("import sys, mwt.cli, runtime, runtime.composed, runtime.latency, runtime.merge, runtime.server, "
            "runtime.triton, mwt.core.errors, mwt.core.atomic, mwt.core.metadata, mwt.core.images; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
