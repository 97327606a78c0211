"""The compiled module against the PyTorch simulation, on VGG16 and ResNet18, and the export CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporter.cli import main as export_main
from exporter.compile import ExportOptions, GateMode, compile_module, export_full_model, model_digest
from mwt.checkpoint import save_checkpoint
from mwt.modularize import retain_only
from tests.conftest import random_checkpoint

SUBSETS = [(3,), (1, 7), (9, 0, 4), (5, 2, 8, 6, 1), tuple(range(10))]


def run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def simulate(ckpt, retained, classes, x):
    model = ckpt.build()
    with retain_only(model, {k: torch.from_numpy(v) for k, v in retained.items()}), torch.no_grad():
        return model(torch.from_numpy(x))[0][:, list(classes)].numpy()


@pytest.fixture(scope="module", params=["vgg16", "resnet18"])
def ckpt(request):
    return random_checkpoint(request.param, width=0.125, seed=1)


@pytest.mark.parametrize("classes", SUBSETS)
def test_module_matches_simulation_exactly(ckpt, classes):
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    module, report = compile_module(ckpt, ExportOptions(classes, align=1))
    got = run_onnx(module, x)
    assert got.shape == (4, len(classes))
    np.testing.assert_allclose(got, simulate(ckpt, report.retained, classes, x), atol=1e-4, rtol=0)
    if len(classes) < 10:
        assert report.module.flops < report.full.flops and report.module.params < report.full.params


@pytest.mark.parametrize("align", [4, 8])
def test_alignment_widths_and_exactness(ckpt, align):
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    module, report = compile_module(ckpt, ExportOptions((1, 7), align=align))
    for layer in report.layers:
        assert layer.retained % align == 0 or layer.retained == layer.total
    conv_weights = {n.input[1] for n in module.graph.node if n.op_type == "Conv"}
    widths = [w.dims[0] for w in module.graph.initializer if w.name in conv_weights]
    assert all(w % align == 0 for w in widths)
    np.testing.assert_allclose(run_onnx(module, x), simulate(ckpt, report.retained, (1, 7), x), atol=1e-4, rtol=0)


def test_every_kernel_retained_equals_full_model(ckpt):
    full_ckpt = random_checkpoint(ckpt.spec.arch, width=0.125, seed=1)
    for f in full_ckpt.modularization.frequency.values():
        f.fill_(1.0)
    x = np.random.default_rng(2).random((3, 1, 28, 28), dtype=np.float32)
    module, report = compile_module(full_ckpt, ExportOptions(tuple(range(10)), align=1))
    assert report.krr == 1.0
    with torch.no_grad():
        reference = full_ckpt.build()(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(run_onnx(module, x), reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(run_onnx(export_full_model(full_ckpt), x), reference, atol=1e-4, rtol=0)


def test_byte_identical_output(ckpt):
    a, _ = compile_module(ckpt, ExportOptions((2, 5), gates=GateMode.folded))
    b, _ = compile_module(ckpt, ExportOptions((2, 5), gates=GateMode.folded))
    assert model_digest(a) == model_digest(b)


def test_folded_gates_remove_the_mask_generators(ckpt):
    module, report = compile_module(ckpt, ExportOptions((2, 5), gates=GateMode.folded, align=1))
    ops = {n.op_type for n in module.graph.node}
    assert "MatMul" not in ops and "Tanh" not in ops
    dynamic, dynamic_report = compile_module(ckpt, ExportOptions((2, 5), align=1))
    assert report.module.flops < dynamic_report.module.flops
    x = np.random.default_rng(3).random((2, 1, 28, 28), dtype=np.float32)
    assert np.isfinite(run_onnx(module, x)).all() and run_onnx(dynamic, x).shape == (2, 2)


def test_metadata(ckpt):
    module, report = compile_module(ckpt, ExportOptions((8, 7)), source_sha256="abc")
    meta = {p.key: p.value for p in module.metadata_props}
    assert json.loads(meta["mwt.classes"]) == ["bag", "sneaker"]
    assert meta["mwt.source_sha256"] == "abc" and meta["mwt.gates"] == "dynamic" and meta["mwt.align"] == "8"
    assert json.loads(meta["mwt.input"])["shape"] == [1, 28, 28]
    assert float(meta["mwt.krr"]) == pytest.approx(report.krr, abs=1e-6)
    assert int(meta["mwt.module_flops"]) < int(meta["mwt.full_flops"])
    assert [o.name for o in module.graph.output] == ["logits"]


# --- the command line ------------------------------------------------------------------------


def test_cli_writes_module(tmp_path, checkpoint_file, capsys):
    out = tmp_path / "m.onnx"
    assert export_main([str(checkpoint_file), "--classes", "Sneaker,bag", "-o", str(out)]) == 0
    assert "KRR" in capsys.readouterr().out
    model = onnx.load(out)
    onnx.checker.check_model(model)
    assert json.loads({p.key: p.value for p in model.metadata_props}["mwt.classes"]) == ["sneaker", "bag"]


@pytest.mark.parametrize("args, message", [
    (["--classes", "cat"], "valid classes: t-shirt, trouser"),
    (["--classes", "bag,bag"], "twice"),
    (["--classes", ","], "empty"),
    (["--classes", "bag", "--threshold", "0"], "threshold"),
    (["--classes", "bag", "--threshold", "1.5"], "threshold"),
    (["--classes", "bag", "--align", "0"], "align"),
    (["--classes", "bag", "--gates", "sometimes"], "gates"),
    (["--classes", "bag", "-o", "/nonexistent/dir/m.onnx"], "does not exist"),
])
def test_cli_bad_input(tmp_path, checkpoint_file, capsys, args, message):
    assert export_main([str(checkpoint_file), *args]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*tmp"))


def test_cli_never_modularized_and_corrupt(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    ckpt.modularization = None
    path = tmp_path / "raw.pt"
    save_checkpoint(ckpt, path)
    assert export_main([str(path), "--classes", "bag"]) == 2
    assert "mwt modularize" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    assert export_main([str(bad), "--classes", "bag"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_cli_failure_keeps_existing_output(tmp_path, checkpoint_file, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    assert export_main([str(checkpoint_file), "--classes", "bag,nope", "-o", str(out)]) == 2
    assert out.read_bytes() == b"precious"


def test_bench_latency_cli(tmp_path, checkpoint_file, capsys):
    from mwt.cli import main

    out = tmp_path / "bench"
    code = main(["bench", "latency", str(checkpoint_file), "--classes", "sneaker,bag", "--batch", "2",
                 "--seconds", "0.05", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    for config in ("full", "union (align 8)", "union (align 1)", "composed merged", "composed sessions"):
        assert config in text
    data = json.loads((out / "latency.json").read_text())
    assert {r["batch"] for r in data["rows"]} == {2} and all(r["median_ms"] > 0 for r in data["rows"])
    assert (out / "latency.png").stat().st_size > 1000


@pytest.mark.parametrize("arch", ["vgg11", "simcnn", "rescnn"])
def test_every_registered_model_exports_exactly(arch):
    # VGG16 and ResNet18 are covered above; the rest of the registry goes through the same passes.
    ckpt = random_checkpoint(arch, width=0.125, seed=2)
    x = np.random.default_rng(5).random((3, 1, 28, 28), dtype=np.float32)
    for classes in [(2, 5), (0,)]:
        module, report = compile_module(ckpt, ExportOptions(classes, align=1))
        np.testing.assert_allclose(run_onnx(module, x), simulate(ckpt, report.retained, classes, x), atol=1e-4, rtol=0)
        assert report.module.flops < report.full.flops
