"""Deployment targets: INT8 and FP16 modules, execution providers, and Triton model repositories
(every config parsed with Triton's own model-config schema from the tritonclient package)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from runtime import ComposedClassifier
from mwt.core.metadata import ModuleMetadata, Precision
from runtime.module_file import read_module
from tests.conftest import compiler_for, run

X = np.random.default_rng(4).random((6, 1, 28, 28), dtype=np.float32)


@pytest.fixture(scope="module")
def fp32_module(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deploy") / "fp32.onnx"
    compiler = compiler_for("vgg11")
    path.write_bytes(compiler.compile(compiler.select((7, 8)))[0].SerializeToString())
    return path


def logits(path: Path, x: np.ndarray = X) -> np.ndarray:
    return ComposedClassifier.from_files([path]).predict(x).logits


def test_int8_export_is_calibrated_on_the_classes_and_reports_accuracy(tmp_path, capsys, checkpoint_file,
                                                                       tiny_fashion_dir):
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    assert run(capsys, "export", str(checkpoint_file), "--classes", "sneaker,bag", "-o", str(fp32))[0] == 0
    code, out, err = run(capsys, "export", str(checkpoint_file), "--classes", "sneaker,bag", "-o", str(int8),
                         "--precision", "int8", "--calibration-images", "16", "--data-dir", str(tiny_fashion_dir))
    assert code == 0, err
    assert "accuracy" in out and "(int8, on the classes' test images)" in out and "(fp32," in out
    meta = read_module(int8).meta
    assert meta.precision is Precision.int8
    assert meta.calibration["images"] == 16 and meta.calibration["classes"] == ["sneaker", "bag"]
    ops = {n.op_type for n in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    a, b = logits(fp32), logits(int8)
    assert a.shape == b.shape and np.isfinite(b).all()
    assert np.abs(a - b).max() < 0.25 * (np.abs(a).max() + 1e-3)  # close, not equal: 8-bit activations


def test_a_one_class_module_reports_its_separation_not_a_100_percent_accuracy(tmp_path, capsys, trained_checkpoint_file):
    # argmax over one logit is right whatever it answers: a lowered one-class module is scored by how its
    # logit ranks its class's test images among every class's, and calibrated on its class's images only
    out = tmp_path / "bag.onnx"
    code, said, err = run(capsys, "export", str(trained_checkpoint_file), "--classes", "bag", "-o", str(out),
                          "--precision", "int8", "--calibration-images", "32")
    assert code == 0, err
    lines = [line for line in said.splitlines() if line.startswith("separation")]
    assert len(lines) == 2 and all("on the test images of every class" in line for line in lines), said
    assert all(0.5 < float(line.split()[1].rstrip("%")) / 100 <= 1 for line in lines), lines
    assert "accuracy " not in said
    assert read_module(out).meta.calibration["classes"] == ["bag"]


def test_fp16_export_keeps_float32_io_and_warns_on_cpu(tmp_path, capsys, checkpoint_file, tiny_fashion_dir):
    fp32, fp16 = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    assert run(capsys, "export", str(checkpoint_file), "--classes", "sneaker,bag", "-o", str(fp32))[0] == 0
    code, out, err = run(capsys, "export", str(checkpoint_file), "--classes", "sneaker,bag", "-o", str(fp16),
                         "--precision", "fp16", "--data-dir", str(tiny_fashion_dir))
    assert code == 0 and "gains nothing on a CPU" in err
    assert "(fp16, on the classes' test images)" in out
    model = onnx.load(fp16)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    np.testing.assert_allclose(logits(fp16), logits(fp32), atol=2e-2, rtol=2e-2)
    assert read_module(fp16).meta.precision is Precision.fp16


@pytest.mark.parametrize("args, needle", [
    (["--precision", "int8", "--data-dir", "/nonexistent"], "--data-dir"),
    (["--precision", "int8", "--calibration-images", "0"], "--calibration-images"),
    (["--precision", "int4"], "--precision"),
])
def test_export_precision_bad_input(tmp_path, capsys, checkpoint_file, args, needle):
    out = tmp_path / "m.onnx"
    code, _, err = run(capsys, "export", str(checkpoint_file), "--classes", "bag", "-o", str(out), *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err and not out.exists()


def test_modules_of_mixed_precision_compose_exactly(tmp_path, fp32_module):
    from exporter.precision import quantize_int8

    compiler = compiler_for("vgg11")
    bag = compiler.compile(compiler.select((8,)))[0]
    int8 = tmp_path / "sneaker-int8.onnx"
    sneaker = compiler.compile(compiler.select((7,)))[0]
    int8.write_bytes(quantize_int8(sneaker, X).SerializeToString())
    fp32 = tmp_path / "bag.onnx"
    fp32.write_bytes(bag.SerializeToString())
    clf = ComposedClassifier.from_files([int8, fp32])
    np.testing.assert_allclose(clf.predict(X).logits, np.concatenate([logits(int8), logits(fp32)], axis=1), atol=1e-5)
    assert ModuleMetadata.read(clf.merged_model()).precision is Precision.mixed


@pytest.mark.parametrize("args, needle", [
    (["--provider", "gpu"], "--provider"),
    (["--provider", "tensorrt"], "install it with: pip install 'mwt[gpu]'"),
])
def test_providers(capsys, fp32_module, tmp_path, args, needle):
    np.save(tmp_path / "x.npy", X[:1])
    code, _, err = run(capsys, "predict", str(fp32_module), str(tmp_path / "x.npy"), *args)
    assert code == 2 and needle in err
    assert run(capsys, "predict", str(fp32_module), str(tmp_path / "x.npy"), "--provider", "cpu")[0] == 0


# --- Triton -------------------------------------------------------------------------------------


def model_config_schema():
    """Triton's ModelConfig message, from tritonclient's generated module (its package __init__
    needs grpc; the schema itself needs only protobuf)."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tritonclient is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def parse_config(path: Path):
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config_schema().ModelConfig())


def test_triton_repository_configs_parse_with_tritons_schema(tmp_path, capsys, fp32_module):
    schema = model_config_schema()
    repo = tmp_path / "repo"
    code, _, err = run(capsys, "triton-repo", str(fp32_module), "-o", str(repo), "--max-batch-size", "16",
                       "--instances", "2")
    assert code == 0, err
    config = parse_config(repo / "sneaker-bag" / "config.pbtxt")
    module = read_module(fp32_module)
    assert config.name == "sneaker-bag" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 16
    (inp,) = config.input
    assert inp.name == "input" and list(inp.dims) == [1, 28, 28] and inp.data_type == schema.TYPE_FP32
    (out,) = config.output
    assert out.name == "logits" and list(out.dims) == [2] and out.label_filename == "labels.txt"
    assert config.instance_group[0].count == 2 and config.instance_group[0].kind == schema.ModelInstanceGroup.KIND_CPU
    assert config.dynamic_batching.max_queue_delay_microseconds == 5000
    assert (repo / "sneaker-bag" / "labels.txt").read_text().split() == module.classes
    assert (repo / "sneaker-bag" / "1" / "model.onnx").read_bytes() == module.model.SerializeToString(deterministic=True)
    assert config.parameters["mwt_source_sha256"].string_value == module.source


def test_triton_merged_repository(tmp_path, capsys):
    compiler = compiler_for("vgg11")
    paths = []
    for c in (7, 8):
        path = tmp_path / f"{c}.onnx"
        path.write_bytes(compiler.compile(compiler.select((c,)))[0].SerializeToString())
        paths.append(str(path))
    repo = tmp_path / "repo"
    assert run(capsys, "triton-repo", *paths, "-o", str(repo), "--merged", "--instance", "gpu")[0] == 0
    (folder,) = list(repo.iterdir())
    config = parse_config(folder / "config.pbtxt")
    assert [o.name for o in config.output] == ["logits", "probabilities", "label"]
    assert list(config.output[2].reshape.shape) == [] and config.instance_group[0].kind == 1  # KIND_GPU
    onnx.checker.check_model(onnx.load(folder / "1" / "model.onnx"))


def test_triton_repository_bad_input(tmp_path, capsys, fp32_module):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "triton-repo", str(fp32_module), "-o", str(repo))
    assert code == 2 and "--force" in err and (repo / "keep.txt").read_text() == "mine"
    code, _, err = run(capsys, "triton-repo", str(fp32_module), "-o", str(repo), "--force")
    assert code == 0 and not (repo / "keep.txt").exists() and (repo / "sneaker-bag").is_dir()
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["logits"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 2])])).SerializeToString())
    code, _, err = run(capsys, "triton-repo", str(plain), "-o", str(tmp_path / "other"))
    assert code == 2 and "not an mwt module" in err and not (tmp_path / "other").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.onnx", "repo"]  # no staging folder left


@pytest.mark.skipif(shutil.which("tritonserver") is None, reason="no tritonserver binary on PATH")
def test_triton_serves_the_repository_like_onnxruntime(tmp_path, capsys, fp32_module):  # pragma: no cover
    import json
    import subprocess
    import time
    import urllib.request

    from tests.local_server import free_port

    repo = tmp_path / "repo"
    assert run(capsys, "triton-repo", str(fp32_module), "-o", str(repo))[0] == 0
    port = free_port()
    proc = subprocess.Popen(["tritonserver", f"--model-repository={repo}", f"--http-port={port}",
                             "--allow-grpc=false", "--allow-metrics=false"])
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready").status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        body = {"inputs": [{"name": "input", "shape": list(X.shape), "datatype": "FP32",
                            "data": X.flatten().tolist()}]}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/sneaker-bag/infer",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req).read())
        got = np.array(answer["outputs"][0]["data"], np.float32).reshape(len(X), -1)
        np.testing.assert_allclose(got, logits(fp32_module), atol=1e-4)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
