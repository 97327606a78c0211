"""Gate-free modules: the compact network equals the folded ONNX module, fine-tunes, exports, and
every bad input gets one line."""

from __future__ import annotations

import os
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from exporter.compile import ModuleCompiler
from mwt.checkpoint import file_sha256, load_checkpoint, save_checkpoint
from mwt.finetune import compact_module
from mwt.registry import MODELS
from mwt.core.metadata import GateMode, ModuleMetadata, Precision
from tests.children import signal_when
from tests.conftest import compiler_for, random_checkpoint, run

X = np.random.default_rng(3).random((5, 1, 28, 28), dtype=np.float32)


def onnx_logits(proto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        ["logits"], {"input": x})[0]


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("classes, align", [((7, 8), 8), ((9, 0, 4), 1)])
def test_compact_network_equals_the_folded_onnx_module(arch, classes, align):
    compiler = compiler_for(arch)
    folded, _ = compiler.compile(compiler.select(classes, align=align), GateMode.folded)
    compact = compact_module(compiler.ckpt, compiler.select(classes, align=align))
    assert compact.classes == [compiler.ckpt.classes[c] for c in classes] and not compact.spec.modular
    with torch.no_grad():
        ours = compact.build()(torch.from_numpy(X))[0].numpy()
    np.testing.assert_allclose(ours, onnx_logits(folded, X), atol=1e-4, rtol=0)
    params = sum(v.numel() for k, v in compact.state_dict.items() if "running" not in k)
    assert params < sum(v.numel() for k, v in compiler.ckpt.state_dict.items() if "running" not in k)


def test_finetune_then_export_through_the_cli(tmp_path, capsys, checkpoint_file, tiny_fashion_dir):
    out = tmp_path / "sb.pt"
    code, text, err = run(capsys, "finetune", str(checkpoint_file), "--classes", "sneaker,bag", "-o", str(out),
                          "--epochs", "2", "--data-dir", str(tiny_fashion_dir))
    assert code == 0, err
    for row in ("full model", "dynamic module", "folded module", "fine-tuned module", "FLOPs kept"):
        assert row in text
    assert text.count("epoch   2") == 1 and "kernel rate" not in text  # a gate-free network reports no gates
    tuned = load_checkpoint(out)
    assert tuned.classes == ["sneaker", "bag"] and not tuned.spec.modular and tuned.spec.num_classes == 2
    info = tuned.training["finetune"]
    assert info["source_sha256"] == file_sha256(checkpoint_file) and info["epochs"] == 2 and info["align"] == 8
    assert 0 <= info["accuracy"]["finetuned_acc"] <= 1

    module = tmp_path / "sb.onnx"
    code, text, err = run(capsys, "export", str(out), "--classes", "sneaker,bag", "-o", str(module))
    assert code == 0, err
    kept = f"{100 * info['accuracy']['flops_kept']:.1f}% of its source's plain full model"
    assert "exported whole" in text and kept in text
    import onnx

    proto = onnx.load(module)
    meta = ModuleMetadata.read(proto)
    assert meta.gates is None and meta.classes == ("sneaker", "bag") and meta.finetune["source_sha256"] == info[
        "source_sha256"]
    with torch.no_grad():
        reference = tuned.build()(torch.from_numpy(X))[0].numpy()
    np.testing.assert_allclose(onnx_logits(proto, X), reference, atol=1e-4, rtol=0)
    compiler = ModuleCompiler.from_file(out)  # a one-class module of the fine-tuned network works too
    _, report = compiler.compile(compiler.select((1,)))
    assert report.module.flops < compiler.plain_cost.flops
    # Its class 1 is the dataset's class 8 (bag): calibration finds the images by name.
    from exporter.precision import calibration_images
    from mwt.cli.export import load_export_images
    from mwt.data import load_split

    bags = load_split("fashion-mnist", "train", tiny_fashion_dir).where([8]).images.float().div(255).numpy()
    images = load_export_images(compiler.ckpt, compiler.select((1,)), {"train"}, Precision.int8, tiny_fashion_dir)
    # a one-class module gets every class's images, its own labelled 0 (its separation is scored on them all),
    # and calibrates on its own, as the export does
    assert sorted(set(images.train.labels.tolist())) == [0, 1]
    calibration = calibration_images(images.train.where([0]), 4)
    assert all(any(np.array_equal(c, b) for b in bags) for c in calibration)


@pytest.mark.parametrize("args, message", [
    (["--classes", "sneaker,cat"], "unknown class 'cat'"),
    (["--classes", "bag,Bag"], "named twice"),
    (["--classes", "bag", "--epochs", "0"], "--epochs"),
    (["--classes", "bag", "--lr", "nan"], "--lr"),
    (["--classes", "bag", "-o", "/nonexistent/dir/m.pt"], "does not exist"),
])
def test_finetune_bad_input(tmp_path, capsys, checkpoint_file, args, message):
    code, _, err = run(capsys, "finetune", str(checkpoint_file), *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_finetune_refuses_foreign_and_unmodularized_checkpoints(tmp_path, capsys):
    raw = random_checkpoint("vgg11")
    raw.modularization = None
    path = tmp_path / "raw.pt"
    save_checkpoint(raw, path)
    code, _, err = run(capsys, "finetune", str(path), "--classes", "bag")
    assert code == 2 and f"run 'mwt modularize {path}' first" in err
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    code, _, err = run(capsys, "finetune", str(foreign), "--classes", "bag")
    assert code == 2 and "not an mwt checkpoint" in err


def test_an_interrupted_finetune_writes_nothing(tmp_path, checkpoint_file, tiny_fashion_dir):
    out = tmp_path / "kept.pt"
    out.write_bytes(b"an earlier module")
    done = signal_when([sys.executable, "-m", "mwt", "finetune", str(checkpoint_file), "--classes", "sneaker,bag",
                        "-o", str(out), "--epochs", "100000", "--data-dir", str(tiny_fashion_dir)], ["epoch   1"],
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 130 and done.stderr.strip().splitlines()[-1] == "interrupted: nothing was written"
    assert out.read_bytes() == b"an earlier module"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.pt", "model.pt"]  # no temporary file left
