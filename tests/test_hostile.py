"""The command line tried as a hostile user would: damaged checkpoints, bombs, huge headers, bad
numbers, taken ports, interrupts, and outputs that must keep their mode and links."""

from __future__ import annotations

import math
import os
import socket
import stat
import sys

import numpy as np
import pytest
import torch

from tests.children import signal_when
from tests.hostile_bytes import npy, npy_claiming, png_claiming
from mwt.cli import main
from mwt.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import compiler_for, random_checkpoint, run


def assert_one_line(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- checkpoints are untrusted input ---------------------------------------------------------


def _saved(tmp_path, ckpt, name="bad.pt"):
    path = tmp_path / name
    save_checkpoint(ckpt, path)
    return path


def test_modularization_missing_a_layer(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    del ckpt.modularization.frequency["features.6"]
    path = _saved(tmp_path, ckpt)
    code, _, err = run(capsys, "export", str(path), "--classes", "sneaker,bag", "-o", str(tmp_path / "m.onnx"))
    assert_one_line(code, err, "frequency of layer 'features.6'")
    assert not (tmp_path / "m.onnx").exists()


def test_modularization_frequencies_out_of_range(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    ckpt.modularization.frequency["features.1"][0, 0] = math.nan
    code, _, err = run(capsys, "eval", str(_saved(tmp_path, ckpt)), "--classes", "bag")
    assert_one_line(code, err, "values in [0, 1]")


def test_a_wrong_tensor_shape_is_named(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    ckpt.state_dict["features.3.conv.weight"] = torch.zeros(5, 2, 3, 3)
    code, _, err = run(capsys, "eval", str(_saved(tmp_path, ckpt)), "--classes", "bag")
    assert_one_line(code, err, "'features.3.conv.weight' has shape [5, 2, 3, 3]", "needs [16, 8, 3, 3]")


def test_missing_and_foreign_tensors_are_named(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    del ckpt.state_dict["classifier.4.bias"]
    code, _, err = run(capsys, "eval", str(_saved(tmp_path, ckpt)), "--classes", "bag")
    assert_one_line(code, err, "'classifier.4.bias' is missing")
    ckpt = random_checkpoint("vgg16")
    ckpt.state_dict["features.99.weight"] = torch.zeros(1)
    code, _, err = run(capsys, "eval", str(_saved(tmp_path, ckpt)), "--classes", "bag")
    assert_one_line(code, err, "'features.99.weight' does not belong to a vgg16")


def test_nan_weights_are_refused_before_anything_runs(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    ckpt.state_dict = {k: torch.full_like(v, math.nan) if v.is_floating_point() else v
                       for k, v in ckpt.state_dict.items()}
    code, _, err = run(capsys, "export", str(_saved(tmp_path, ckpt)), "--classes", "bag", "-o", str(tmp_path / "m.onnx"))
    assert_one_line(code, err, "NaN or infinite")
    assert not (tmp_path / "m.onnx").exists()


def test_nan_weights_in_a_module_file_are_refused(tmp_path, capsys):
    from onnx import numpy_helper

    compiler = compiler_for("vgg11")
    proto, _ = compiler.compile(compiler.select((7, 8)))
    init = next(i for i in proto.graph.initializer if numpy_helper.to_array(i).dtype.kind == "f")
    init.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(init), np.nan), init.name))
    path = tmp_path / "nan.onnx"
    path.write_bytes(proto.SerializeToString())
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    code, out, err = run(capsys, "predict", str(path), str(tmp_path / "x.npy"))
    assert_one_line(code, err, "NaN or infinite")
    assert "nan" not in out


def test_bad_spec_values(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    d = ckpt.to_dict()
    d["model"]["std"] = [0.0]
    path = tmp_path / "spec.pt"
    torch.save(d, path)
    code, _, err = run(capsys, "eval", str(path), "--classes", "bag")
    assert_one_line(code, err, "mean/std")


# --- images and arrays ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def union_module(tmp_path_factory):
    compiler = compiler_for("vgg11")
    proto, _ = compiler.compile(compiler.select((7, 8)))
    path = tmp_path_factory.mktemp("hostile") / "union.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


@pytest.mark.parametrize("make, needles", [
    (lambda d: (d / "bomb.png").write_bytes(png_claiming(30000, 30000)), ["bomb.png", "limit"]),
    (lambda d: (d / "big.png").write_bytes(png_claiming(13000, 13000)), ["big.png", "pixels", "limit"]),
    (lambda d: (d / "s.npy").write_bytes(npy(np.array(["a", "b"]))), ["holds <U1 values, not numbers"]),
    (lambda d: (d / "huge.npy").write_bytes(npy_claiming((100_000_000, 1, 28, 28))), ["100000000 samples", "limit"]),
    (lambda d: (d / "cut.npy").write_bytes(npy_claiming((2, 1, 28, 28), data=b"\0" * 100)), ["truncated"]),
    (lambda d: (d / "obj.npy").write_bytes(npy_claiming((1,), descr="|O")), ["not numbers"]),
])
def test_predict_refuses_hostile_files_in_one_line(tmp_path, capsys, union_module, make, needles):
    make(tmp_path)
    (path,) = [p for p in tmp_path.iterdir() if p.suffix in (".png", ".npy")]
    code, out, err = run(capsys, "predict", str(union_module), str(path))
    assert_one_line(code, err, *needles)


@pytest.mark.parametrize("damage, needle", [
    ("pad_mode", "cannot load the model"),  # onnxruntime refuses the graph, and used to log it too
    ("weight_dims", "is damaged"),  # a weight whose data does not fit its shape
])
def test_a_damaged_module_gets_one_line_and_no_runtime_log(tmp_path, capfd, union_module, damage, needle):
    import onnx

    model = onnx.load(union_module)
    if damage == "pad_mode":
        pad = next(n for n in model.graph.node if n.op_type == "Pad")
        kept = [a for a in pad.attribute if a.name != "mode"]
        del pad.attribute[:]
        pad.attribute.extend([*kept, onnx.helper.make_attribute("mode", "bogus")])
    else:
        conv_weight = next(t for t in model.graph.initializer if len(t.dims) == 4)
        conv_weight.dims[0] = 0
    path = tmp_path / "damaged.onnx"
    path.write_bytes(model.SerializeToString())
    image = tmp_path / "x.npy"
    image.write_bytes(npy(np.zeros((1, 1, 28, 28), np.float32)))
    code = main(["predict", str(path), str(image)])
    assert_one_line(code, capfd.readouterr().err, needle)


# --- numbers, outputs, ports, interrupts --------------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    (["serve", "m.onnx", "--max-body-mb", "nan"], "--max-body-mb"),
    (["serve", "m.onnx", "--max-wait-ms", "inf"], "--max-wait-ms"),
    (["serve", "m.onnx", "--max-wait-ms", "-1"], "--max-wait-ms"),
    (["serve", "m.onnx", "--port", "70000"], "--port"),
    (["serve", "m.onnx", "--body-timeout", "0"], "--body-timeout"),
    (["bench", "latency", "m.pt", "--classes", "bag", "--seconds", "nan"], "--seconds"),
    (["bench", "latency", "m.pt", "--classes", "bag", "--batch", "0"], "--batch"),
    (["predict", "m.onnx", "x.png", "--threads", "-1"], "--threads"),
    (["train", "--alpha", "-inf"], "--alpha"),
    (["train", "--batch-size", "0"], "--batch-size"),
])
def test_numbers_reject_nan_inf_and_out_of_range(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *args)
    assert_one_line(code, err, needle)
    assert list(tmp_path.iterdir()) == []


def test_serve_on_a_taken_port_or_bad_host_fails_before_saying_it_serves(capsys, union_module):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, _, err = run(capsys, "serve", str(union_module), "--port", str(port))
    assert_one_line(code, err, f"cannot listen on 127.0.0.1:{port}")
    code, _, err = run(capsys, "serve", str(union_module), "--host", "no-such-host.invalid")
    assert_one_line(code, err, "cannot listen on no-such-host.invalid")


def test_replacing_an_output_keeps_its_mode_and_follows_a_symlink(tmp_path, capsys, shared_checkpoint_file):
    out = tmp_path / "private.onnx"
    out.write_bytes(b"old")
    out.chmod(0o600)
    assert run(capsys, "export", str(shared_checkpoint_file), "--classes", "bag", "-o", str(out))[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_bytes() != b"old"
    real = tmp_path / "real.onnx"
    real.write_bytes(b"old")
    link = tmp_path / "link.onnx"
    link.symlink_to(real)
    assert run(capsys, "export", str(shared_checkpoint_file), "--classes", "bag", "-o", str(link))[0] == 0
    assert link.is_symlink() and real.read_bytes() != b"old"


def test_ctrl_c_saves_says_interrupted_exits_130_and_keeps_the_old_epoch_log(tmp_path, tiny_fashion_dir):
    log = tmp_path / "m.jsonl"
    log.write_text('{"epoch": 1, "note": "an earlier run"}\n')
    done = signal_when([sys.executable, "-m", "mwt", "train", "--data-dir", str(tiny_fashion_dir), "--width",
                        "0.0625", "--epochs", "100000", "--out", str(tmp_path / "m.pt")], ["training", "epoch   1"],
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    err = done.stderr
    assert done.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: saved a resumable checkpoint to") and "Traceback" not in err
    assert load_checkpoint(tmp_path / "m.pt").resume is not None
    assert log.read_text().startswith('{"epoch": 1, "note": "an earlier run"}\n')


def test_checkpoint_round_trip_still_loads(tmp_path):
    path = _saved(tmp_path, random_checkpoint("resnet18"), "ok.pt")
    assert load_checkpoint(path).spec.arch == "resnet18"
