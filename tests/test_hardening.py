"""Hardening, round two (issue 20): untrusted class names, state and graphs, each reproduction as
the sweep found it. Every case ends in one line on stderr and exit 2 (or the documented rule),
with no traceback, no hang, no write outside the chosen output and nothing lost."""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image

from exporter.precision import lower
from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.core.errors import MwtError, MwtWarning
from mwt.core.names import safe_stem
from tests.children import sigint_at_default
from tests.conftest import compiler_for, run, write_idx
from tests.synthetic import random_checkpoint


def assert_one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and lines[-1].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def module_proto() -> onnx.ModelProto:
    compiler = compiler_for("vgg11")
    return compiler.compile(compiler.select([7, 8]))[0]


def with_props(model: onnx.ModelProto, **changes: str) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    props = {p.key: p.value for p in model.metadata_props}
    props.update({f"mwt.{k}": v for k, v in changes.items()})
    del model.metadata_props[:]
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    return model


def saved(path: Path, model: onnx.ModelProto) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- 1. default output names built from class names -------------------------------------------


@pytest.mark.parametrize("name", ["../../escaped", "../model", "a/b", "..", "x\\..\\y"])
def test_a_class_name_that_is_a_path_is_refused_at_checkpoint_load(tmp_path, capsys, monkeypatch, name):
    ckpt = random_checkpoint("vgg11")
    ckpt.classes[7] = name
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    save_checkpoint(ckpt, work / "h.pt")
    monkeypatch.chdir(work)
    before = listing(tmp_path)
    code, _, err = run(capsys, "finetune", "h.pt", "--classes", "7,8", "--epochs", "1")
    assert_one_line(code, err, "class name", "rename it")
    code, _, err = run(capsys, "export", "h.pt", "--classes", "7,8")
    assert_one_line(code, err, "class name")
    assert listing(tmp_path) == before


def test_default_names_are_safe_stems_of_the_resolved_classes(tmp_path, capsys, monkeypatch):
    ckpt = random_checkpoint("vgg11")
    ckpt.classes[7], ckpt.classes[8] = "-rf *", "bag: ?<>|"
    save_checkpoint(ckpt, tmp_path / "m.pt")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "export", "m.pt", "--classes", "7,8")[0] == 0
    assert (tmp_path / "rf_-bag_.onnx").is_file()
    assert safe_stem(["../../escaped", "bag"]) == "_escaped-bag"
    assert safe_stem(["x" * 300]) != safe_stem(["x" * 299]) and len(safe_stem(["x" * 300])) == 100
    assert safe_stem(["é"]) == "_" and safe_stem([]) == "module"


# --- 2. Triton config injection --------------------------------------------------------------


def test_the_triton_config_escapes_every_string(tmp_path, capsys, module_proto):
    from tests.test_deploy import parse_config

    hostile = 'input"}]\nparameters { key: "injected" value: { string_value: "x" } }\ninput [{ name: "zz'
    model = onnx.ModelProto.FromString(module_proto.SerializeToString())
    old = model.graph.input[0].name
    model.graph.input[0].name = hostile
    for node in model.graph.node:
        node.input[:] = [hostile if i == old else i for i in node.input]
    spec = json.loads({p.key: p.value for p in model.metadata_props}["mwt.input"])
    model = with_props(model, input=json.dumps({**spec, "name": hostile}), classes=json.dumps(['bag "x"', "sneaker}"]))
    path = saved(tmp_path / "m.onnx", model)
    code, _, err = run(capsys, "triton-repo", str(path), "-o", str(tmp_path / "repo"))
    assert code == 0, err
    (folder,) = (tmp_path / "repo").iterdir()
    config = parse_config(folder / "config.pbtxt")
    assert [i.name for i in config.input] == [hostile]
    assert "injected" not in config.parameters
    assert json.loads(config.parameters["mwt_classes"].string_value) == ['bag "x"', "sneaker}"]
    assert (folder / "labels.txt").read_text().splitlines() == ['bag "x"', "sneaker}"]


# --- 3. class names with control characters --------------------------------------------------


@pytest.mark.parametrize("names", [["bag\nforged 100%", "sneaker"], ["bag\r\n", "x"], ["a\x00", "b"],
                                   ["\u202eevil", "b"], ["a\u2028b", "c"], ["", "b"], ["a", "a"]])
def test_module_class_names_are_checked_at_load(tmp_path, capsys, module_proto, names):
    path = saved(tmp_path / "m.onnx", with_props(module_proto, classes=json.dumps(names)))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    code, out, err = run(capsys, "predict", str(path), str(tmp_path / "x.npy"))
    assert_one_line(code, err, "class")
    assert out == ""
    code, _, err = run(capsys, "triton-repo", str(path), "-o", str(tmp_path / "repo"))
    assert_one_line(code, err, "class")
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("name", ["a\x00b", "bag\n", "tab\there", "\x1b[31mred"])
def test_checkpoint_class_names_are_checked_at_load(tmp_path, capsys, name):
    ckpt = random_checkpoint("vgg11")
    ckpt.classes[0] = name
    save_checkpoint(ckpt, tmp_path / "m.pt")
    code, _, err = run(capsys, "eval", str(tmp_path / "m.pt"), "--classes", "bag")
    assert_one_line(code, err, "class name")


def folder_of(root: Path, classes: list[str], size: int = 32, per_class: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8), "L").save(root / c / f"{i}.png")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("MWT_CACHE", str(path))
    return path


def test_a_class_folder_with_a_newline_is_refused_at_train_time(tmp_path, capsys, cache):
    root = folder_of(tmp_path / "data", ["bag\nforged", "sneaker"])
    code, _, err = run(capsys, "train", "--dataset", str(root), "--epochs", "1", "--out", str(tmp_path / "m.pt"))
    assert_one_line(code, err, "class name", "'bag\\nforged'")
    assert not (tmp_path / "m.pt").exists()


def test_predict_escapes_control_characters_in_input_file_names(tmp_path, capsys, module_proto):
    path = saved(tmp_path / "m.onnx", module_proto)
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "x\nsneaker 100%.npy", np.zeros((1, 1, 28, 28), np.float32))
    code, out, err = run(capsys, "predict", str(path), str(tmp_path / "in"))
    assert code == 0, err
    assert len(out.strip().splitlines()) == 2 and "x\\nsneaker" in out


# --- 4. class names resolve exactly ----------------------------------------------------------


def test_classes_resolve_exactly_and_case_collisions_are_refused(tmp_path, capsys, cache):
    from mwt.data import resolve_classes

    assert resolve_classes(["Cat", "cat", "dog"], "Cat") == [0]
    assert resolve_classes(["Cat", "cat", "dog"], "cat") == [1]
    assert resolve_classes(["Cat", "dog"], "CAT,Dog") == [0, 1]  # case-insensitive where that is unambiguous
    with pytest.raises(MwtError, match="differ only in case"):
        resolve_classes(["Cat", "cat"], "CAT")
    root = folder_of(tmp_path / "data", ["Cat", "cat", "dog"])
    code, _, err = run(capsys, "train", "--dataset", str(root), "--epochs", "1", "--out", str(tmp_path / "m.pt"))
    assert_one_line(code, err, "'Cat' and 'cat'", "differ only in case")


# --- 5. a full disk ----------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs with `old.onnx` ("old") on it, then filled to the last byte."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a 1 MiB tmpfs")
    try:
        (mount / "old.onnx").write_bytes(b"old")
        with contextlib.suppress(OSError), open(mount / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gets_one_line_and_keeps_the_old_file(tmp_path, capsys, full_disk, shared_checkpoint_file,
                                                          module_proto):
    before = listing(full_disk)
    code, _, err = run(capsys, "export", str(shared_checkpoint_file), "--classes", "bag", "-o", str(full_disk / "old.onnx"))
    assert_one_line(code, err, "No space left on device", "old.onnx")
    module = saved(tmp_path / "m.onnx", module_proto)
    code, _, err = run(capsys, "compose", str(module), "-o", str(full_disk / "old.onnx"))
    assert_one_line(code, err, "No space left on device")
    code, _, err = run(capsys, "triton-repo", str(module), "-o", str(full_disk / "repo"))
    assert_one_line(code, err, "No space left on device")
    assert (full_disk / "old.onnx").read_bytes() == b"old" and listing(full_disk) == before


def test_training_on_a_full_disk_saves_the_finished_run_elsewhere(tmp_path, capsys, full_disk, tiny_fashion_dir,
                                                                  monkeypatch):
    monkeypatch.setenv("MWT_CACHE", str(tmp_path / "cache"))
    code, out, err = run(capsys, "train", "--data-dir", str(tiny_fashion_dir), "--model", "vgg11", "--width", "0.0625",
                         "--epochs", "1", "--limit", "32", "--batch-size", "32", "-q", "--out",
                         str(full_disk / "model.pt"))
    assert_one_line(code, err, "No space left on device", "rescued")
    (rescued,) = (tmp_path / "cache" / "rescued").iterdir()
    assert str(rescued) in err
    ckpt = load_checkpoint(rescued)
    assert ckpt.training["finished"] and len(ckpt.training["history"]) == 1


# --- 6. graphs outside the compiler's op set ---------------------------------------------------


def _loop_module(base: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(base.SerializeToString())
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])])
    model.graph.initializer.extend([helper.make_tensor("trips", TensorProto.INT64, [], [1 << 62]),
                                    helper.make_tensor("go", TensorProto.BOOL, [], [True])])
    logits = next(o for o in model.graph.output if o.name == "logits")
    for node in model.graph.node:
        node.output[:] = ["pre_logits" if o == "logits" else o for o in node.output]
    model.graph.node.append(helper.make_node("Loop", ["trips", "go"], [], body=body))
    model.graph.node.append(helper.make_node("Identity", ["pre_logits"], [logits.name]))
    return model


def _foreign(base: onnx.ModelProto, op: str, domain: str = "") -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(base.SerializeToString())
    for node in model.graph.node:
        node.output[:] = ["pre_logits" if o == "logits" else o for o in node.output]
    model.graph.node.append(helper.make_node(op, ["pre_logits"], ["logits"], domain=domain))
    if domain:
        model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


@pytest.mark.parametrize("make, needle", [
    (_loop_module, "Loop"),
    (lambda m: _foreign(m, "Hardmax"), "Hardmax"),
    (lambda m: _foreign(m, "Relu", "com.example"), "com.example"),
])
def test_module_ops_outside_the_compilers_set_are_refused_before_a_session_runs(tmp_path, capsys, module_proto,
                                                                                 make, needle):
    path = saved(tmp_path / "m.onnx", make(module_proto))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    start = time.monotonic()
    code, _, err = run(capsys, "predict", str(path), str(tmp_path / "x.npy"))
    assert_one_line(code, err, needle, "mwt's compiler")
    assert time.monotonic() - start < 30


def test_every_module_the_compiler_writes_is_in_its_op_set():
    from mwt.core.metadata import GateMode, Precision
    from runtime.merge import merge_modules
    from runtime.module_file import module_from_model

    rng = np.random.default_rng(0)
    for arch in ("vgg11", "resnet18"):
        c = compiler_for(arch)
        models = [c.full_model, c.plain_model]
        for gates in GateMode:
            models.append(c.compile(c.select([7, 8]), gates)[0])
        fp32 = models[-1]
        models.append(lower(fp32, Precision.fp16))
        models.append(lower(fp32, Precision.int8, rng.random((8, 1, 28, 28), dtype=np.float32)))
        models.append(merge_modules([module_from_model(c.compile(c.select([i]))[0]) for i in (7, 8)]))
        for m in models:
            module_from_model(m)  # refuses any op outside MODULE_OPS


# --- 7. dataset scans ---------------------------------------------------------------------------


def test_a_fifo_in_a_class_folder_does_not_hang_the_scan(tmp_path, cache):
    from mwt.data import load_dataset

    root = folder_of(tmp_path / "data", ["a", "b"])
    os.mkfifo(root / "a" / "p.png")
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(load_dataset(str(root), show_progress=False)), daemon=True)
    with pytest.warns(MwtWarning, match="1 file"):
        worker.start()
        worker.join(60)
    if worker.is_alive():  # unblock the reader before failing
        with open(root / "a" / "p.png", "wb"):
            pass
        pytest.fail("the folder scan blocked on a FIFO")
    assert len(done[0].train) + len(done[0].test) == 8


def test_symlinks_that_leave_the_root_are_skipped_and_counted(tmp_path, cache):
    from mwt.data import load_dataset

    root = folder_of(tmp_path / "data", ["a", "b"])
    outside = folder_of(tmp_path / "outside", ["x"], per_class=5)
    (root / "a" / "elsewhere").symlink_to(outside / "x")
    (root / "b" / "proc").symlink_to("/proc/self")
    (root / "b" / "one.png").symlink_to(outside / "x" / "0.png")
    with pytest.warns(MwtWarning, match="3 symbolic link"):
        data = load_dataset(str(root), show_progress=False)
    assert len(data.train) + len(data.test) == 8


def test_a_link_to_another_class_folder_is_refused(tmp_path, capsys, cache):
    root = folder_of(tmp_path / "data", ["a", "b"])
    (root / "a" / "more").symlink_to(root / "b")
    code, _, err = run(capsys, "train", "--dataset", str(root), "--epochs", "1", "--out", str(tmp_path / "m.pt"))
    assert_one_line(code, err, "both", "one label")


# --- 8. gzip bombs and 13. built-in files -------------------------------------------------------


def idx_bytes(dims: list[int], body: bytes = b"", ndim: int | None = None) -> bytes:
    return bytes([0, 0, 8, len(dims) if ndim is None else ndim]) + b"".join(d.to_bytes(4, "big") for d in dims) + body


@pytest.mark.parametrize("images, needle", [
    (idx_bytes([10_000_000, 28, 28]), "limit"),  # 7.8 GB claimed
    (idx_bytes([100, 28, 28], b"\0" * (40 << 20)), "longer than its header"),  # a bomb beyond its header
    (idx_bytes([65536] * 4), "3 dimensions"),
    (idx_bytes([4, 28, 28], ndim=255), "dimensions"),
    (idx_bytes([784]), "3 dimensions"),
    (idx_bytes([1, 1, 1, 28, 28]), "3 dimensions"),
    (idx_bytes([4, 28, 28], b"\0" * 10), "truncated"),
    (idx_bytes([4, 27, 28], b"\0" * (4 * 27 * 28)), "28x28"),
])
def test_idx_files_are_checked_against_their_header(tmp_path, capsys, images, needle):
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    code, _, err = run(capsys, "train", "--data-dir", str(tmp_path), "--epochs", "1", "--out", str(tmp_path / "m.pt"))
    assert_one_line(code, err, needle)


def _cifar(tmp_path: Path, data: object, labels: object) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    for name in ("data_batch_1", "test_batch"):
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": labels}))
    return tmp_path


@pytest.mark.parametrize("data, labels, needle", [
    (np.zeros((2, 3072), np.uint8), [1 << 70, 0], "labels"),
    (np.full((2, 3072), 1e300), [0, 1], "values"),
    (np.zeros((2, 3072), np.uint8), [0.5, 1], "labels"),
    (np.zeros((2, 3072), np.uint8), [-1, 1], "labels"),
])
def test_cifar_batches_hold_bytes_and_whole_labels(tmp_path, data, labels, needle):
    from mwt.data import load_split

    with pytest.raises(MwtError, match=needle):
        load_split("cifar10", "train", _cifar(tmp_path, data, labels))


@pytest.mark.parametrize("make, needle", [
    (lambda p: p.write_bytes(b"MATLAB 5.0 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x01IM"), "SVHN"),
    (lambda p: __import__("scipy.io").io.savemat(p, {"X": np.zeros((32, 32, 3), np.uint8), "y": np.ones((1, 1))}), "SVHN"),
    (lambda p: __import__("scipy.io").io.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8),
                                                      "y": np.array([[np.nan], [1.0]])}), "labels"),
    (lambda p: __import__("scipy.io").io.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8),
                                                      "y": np.array([[1e30], [1.0]])}), "labels"),
    (lambda p: __import__("scipy.io").io.savemat(p, {"X": np.full((32, 32, 3, 2), 1e300),
                                                      "y": np.array([[1.0], [2.0]])}), "values"),
])
def test_svhn_files_are_checked(tmp_path, make, needle):
    from mwt.data import load_split

    make(tmp_path / "train_32x32.mat")
    with pytest.raises(MwtError, match=needle):
        load_split("svhn", "train", tmp_path)


def test_a_bare_builtin_name_means_the_builtin_even_beside_a_folder_of_that_name(tmp_path, capsys, monkeypatch, cache):
    monkeypatch.chdir(tmp_path)
    folder_of(tmp_path / "svhn", ["a", "b"])
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "train", "--dataset", "svhn", "--data-dir", "empty", "--epochs", "1", "--out", "m.pt")
    assert_one_line(code, err, "SVHN not found")
    assert "./svhn" in err  # the warning says how to name the folder


# --- 9. images too small for the architecture ----------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    (["--model", "simcnn"], "at least 32x32"),
    (["--model", "vgg11", "--image-size", "28"], "at least 32x32"),
])
def test_images_too_small_for_the_network_are_refused(tmp_path, capsys, cache, args, needle):
    root = folder_of(tmp_path / "data", ["a", "b"], size=16)
    code, _, err = run(capsys, "train", "--dataset", str(root), "--epochs", "1", "--width", "0.0625",
                       "--out", str(tmp_path / "m.pt"), "-q", *args)
    assert_one_line(code, err, needle, "--image-size")


def test_a_checkpoint_whose_input_is_too_small_is_refused(tmp_path, capsys):
    ckpt = random_checkpoint("vgg11")
    d = ckpt.to_dict()
    d["model"]["pad"] = 0
    torch.save(d, tmp_path / "m.pt")
    code, _, err = run(capsys, "eval", str(tmp_path / "m.pt"), "--classes", "bag")
    assert_one_line(code, err, "at least 32x32")


# --- 10. logits against classes ------------------------------------------------------------------


@pytest.mark.parametrize("classes", [["a", "b", "c"], ["a"]])
def test_logit_columns_must_match_the_classes(tmp_path, capsys, module_proto, classes):
    path = saved(tmp_path / "m.onnx", with_props(module_proto, classes=json.dumps(classes)))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    code, _, err = run(capsys, "predict", str(path), str(tmp_path / "x.npy"))
    assert_one_line(code, err, "2 logits", f"{len(classes)} class")
    from runtime import ComposedClassifier

    with pytest.raises(MwtError, match="2 logits"):
        ComposedClassifier.from_files([path])  # what `serve` loads before it answers anything


# --- 11. the decode cache ------------------------------------------------------------------------


@pytest.mark.parametrize("meta, images", [
    ({"failed": 5}, None), ([1], None), (None, None), ("abc", None), ({"failed": [0, 1, 2, 3, 4, 5]}, None),
    ({"failed": ["x"]}, None), (None, "all-255"),
])
def test_a_tampered_cache_is_rebuilt(tmp_path, cache, meta, images):
    from mwt.data import load_dataset

    root = folder_of(tmp_path / "data", ["a", "b"], per_class=5)
    first = load_dataset(str(root), show_progress=False)
    (record,) = (cache / "folders").glob("*.json")
    if images == "all-255":
        array = np.load(record.with_suffix(".npy"))
        np.save(record.with_suffix(".npy"), np.full_like(array, 255))
    else:
        record.write_text(json.dumps(meta))
    again = load_dataset(str(root), show_progress=False)
    assert torch.equal(again.train.images, first.train.images) and torch.equal(again.test.images, first.test.images)
    assert torch.equal(again.train.labels, first.train.labels)


# --- 12. resume state ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resumable(tmp_path_factory, tiny_fashion_dir) -> Path:
    """A resumable checkpoint saved after epoch 1 of 2 (2 steps an epoch)."""
    from mwt.data import load_split
    from mwt.train import train
    from mwt.train_config import TrainConfig

    path = tmp_path_factory.mktemp("resume") / "run.pt"
    config = TrainConfig(model="vgg11", width=0.0625, epochs=2, batch_size=32, lr=0.02, seed=0, device="cpu",
                         train_limit=64, test_limit=32)
    train(config, load_split("fashion-mnist", "train", tiny_fashion_dir),
          load_split("fashion-mnist", "test", tiny_fashion_dir), show_progress=False, save_path=path, save_every=1)
    return path


def _set(path: list, value: object):
    def change(state: dict) -> None:
        node = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


def _mid_epoch(order: object):
    def change(state: dict) -> None:
        state["step"], state["order"] = 1, order
        state["scheduler"]["last_epoch"] += 1
    return change


TAMPERS = {
    "generator short": (_set(["generator"], torch.zeros(5, dtype=torch.uint8)), "generator"),
    "generator float": (_set(["generator"], torch.zeros(5)), "generator"),
    "torch rng": (_set(["torch_rng"], torch.zeros(7, dtype=torch.uint8)), "random number"),
    "epoch huge": (_set(["epoch"], 10**6), "epoch"),
    "epoch float": (_set(["epoch"], 1.0), "epoch"),
    "order out of range": (_mid_epoch(torch.arange(64) + 1000), "order"),
    "order float": (_mid_epoch(torch.arange(64).float()), "order"),
    "order short": (_mid_epoch(torch.arange(10)), "order"),
    "step past the epoch": (_set(["step"], 99), "step"),
    "lr string": (_set(["optimizer", "param_groups", 0, "lr"], "fast"), "optimizer"),
    "momentum string": (_set(["optimizer", "param_groups", 0, "momentum"], "0.9"), "optimizer"),
    "lr nan": (_set(["optimizer", "param_groups", 0, "lr"], math.nan), "optimizer"),
    "optimizer missing": (_set(["optimizer"], {}), "optimizer"),
    "momentum buffer": (_set(["optimizer", "state", 0, "momentum_buffer"], torch.zeros(3)), "optimizer"),
    "momentum buffer nan": (_set(["optimizer", "state", 0, "momentum_buffer"], None), "optimizer"),
    "scheduler garbage": (_set(["scheduler"], {"T_max": "x"}), "scheduler"),
    "scheduler T_max": (_set(["scheduler", "T_max"], 0), "scheduler"),
    "scheduler last_epoch": (_set(["scheduler", "last_epoch"], "3"), "scheduler"),
    "sums": (_set(["sums"], ["a", 1.0]), "running sums"),
    "sums nan": (_set(["sums"], [math.nan]), "running sums"),
    "seconds": (_set(["seconds"], "x"), "seconds"),
    "seconds inf": (_set(["seconds"], math.inf), "seconds"),
    "seen": (_set(["seen"], -5), "seen"),
    "history": (_set(["history"], [{"loss": "x"}]), "history"),
    "history not a list": (_set(["history"], "abc"), "history"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_a_tampered_resume_state_gets_one_line(tmp_path, capsys, resumable, tiny_fashion_dir, tamper):
    change, needle = TAMPERS[tamper]
    d = torch.load(resumable, weights_only=True)
    change(d["resume"])
    path = tmp_path / "run.pt"
    torch.save(d, path)
    code, _, err = run(capsys, "train", "--resume", str(path), "--data-dir", str(tiny_fashion_dir), "-q")
    assert_one_line(code, err, needle)


def test_an_untampered_resume_still_finishes(tmp_path, capsys, resumable, tiny_fashion_dir):
    path = tmp_path / "run.pt"
    path.write_bytes(resumable.read_bytes())
    code, _, err = run(capsys, "train", "--resume", str(path), "--data-dir", str(tiny_fashion_dir), "-q")
    assert code == 0, err
    assert load_checkpoint(path).training["finished"]


# --- 15. the environment ---------------------------------------------------------------------


@pytest.mark.parametrize("env", [{"RANK": "5", "WORLD_SIZE": "2"}, {"RANK": "-1"}, {"RANK": "x"},
                                 {"RANK": "00"}, {"RANK": "0", "WORLD_SIZE": "zero"}])
def test_a_bad_or_odd_rank_still_says_what_is_wrong(tmp_path, capsys, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = run(capsys, "train", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--data-dir", str(tmp_path))
    assert code == 2 and err.startswith("error: "), err


def test_a_rank_pointed_at_a_foreign_port_stops_on_sigint(tmp_path, tiny_fashion_dir):
    with socket.socket() as http:  # something listening that is not a torch store
        http.bind(("127.0.0.1", 0))
        http.listen(8)
        env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(http.getsockname()[1]), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "mwt", "train", "--data-dir", str(tiny_fashion_dir), "--epochs", "1",
                   "--device", "cpu", "--out", str(tmp_path / "m.pt")]
        # The rank starts as a terminal's foreground command does, whatever pytest inherited (stop 47:
        # a suite started in the background failed this test).
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
                                preexec_fn=sigint_at_default)
        # Signal once the rank is waiting in its rendezvous: its store client has connected here,
        # and a moment later the main thread waits in its interruptible loop. A fixed 12 s was too
        # short for a loaded machine's imports; SIGINT at the very moment of connecting did not
        # stop the rank either (a follow-up: a signal while torch starts the store's C++ thread).
        http.settimeout(90)
        try:
            peer, _ = http.accept()
        except TimeoutError:
            proc.kill()
            pytest.fail("the rank never connected to MASTER_PORT")
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("SIGINT did not stop a process joining a group")
        peer.close()
    assert proc.returncode == 130 and len(err.strip().splitlines()) <= 2, err


# --- 16. replacing the working folder ------------------------------------------------------------


def test_triton_repo_refuses_to_replace_the_working_folder(tmp_path, capsys, monkeypatch, module_proto):
    module = saved(tmp_path / "m.onnx", module_proto)
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    monkeypatch.chdir(work)
    for out in (".", str(work), ".."):
        code, _, err = run(capsys, "triton-repo", str(module), "-o", out, "--force")
        assert_one_line(code, err, "working folder")
    assert listing(tmp_path) == ["m.onnx", "work", "work/keep.txt"]


def test_triton_repo_refuses_a_mount_point(tmp_path, capsys, full_disk, module_proto):
    module = saved(tmp_path / "m.onnx", module_proto)
    code, _, err = run(capsys, "triton-repo", str(module), "-o", str(full_disk), "--force")
    assert_one_line(code, err, "mount point")
    assert (full_disk / "old.onnx").read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
