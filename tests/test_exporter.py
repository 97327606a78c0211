"""The compiled module against the PyTorch simulation, on every registered model, and the export CLI."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporter.passes import finalize, import_graph
from exporter.torch_export import export_with_gates
from mwt.cli.export import main as export_main
from mwt.checkpoint import save_checkpoint
from mwt.models import build_model
from mwt.modularize import folded_gate_values, frozen_gates, retain_only
from mwt.registry import MODELS
from mwt.selection import pooled_statistic
from mwt.core.metadata import GateMode, ModuleMetadata
from tests.conftest import compiler_for, needs_fashion_mnist, random_checkpoint
from tests.digests import module_digests

SUBSETS = [(3,), (1, 7), (9, 0, 4), (5, 2, 8, 6, 1), tuple(range(10))]
X = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)


def run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"input": x})[0]


def simulate(ckpt, retained, classes, x, frozen=None):
    model = ckpt.build()
    masks = {k: torch.from_numpy(v) for k, v in retained.items()}
    with retain_only(model, masks), frozen_gates(model, frozen or {}), torch.no_grad():
        return model(torch.from_numpy(x))[0][:, list(classes)].numpy()


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("classes", SUBSETS)
def test_module_matches_simulation_exactly(arch, classes):
    compiler = compiler_for(arch)
    module, report = compiler.compile(compiler.select(classes, align=1))
    got = run_onnx(module, X)
    assert got.shape == (4, len(classes))
    np.testing.assert_allclose(got, simulate(compiler.ckpt, report.retained, classes, X), atol=1e-4, rtol=0)
    if len(classes) < 10:
        assert report.module.flops < report.full.flops and report.module.params < report.full.params


@pytest.mark.parametrize("arch", ["vgg16", "resnet18"])
@pytest.mark.parametrize("align", [4, 8])
def test_alignment_widths_and_exactness(arch, align):
    compiler = compiler_for(arch)
    module, report = compiler.compile(compiler.select((1, 7), align=align))
    # Streams at least `align` wide are rounded up; narrower ones stay as they are.
    for layer in report.layers:
        assert layer.retained % align == 0 or layer.retained == layer.total or layer.retained < align
    if arch == "vgg16":  # no residual streams: each layer's width follows from its unaligned width alone
        _, unaligned = compiler.compile(compiler.select((1, 7), align=1))
        expected = [u.retained if u.retained < align else min(u.total, -(-u.retained // align) * align)
                    for u in unaligned.layers]
        assert [layer.retained for layer in report.layers] == expected
    conv_weights = {n.input[1] for n in module.graph.node if n.op_type == "Conv"}
    widths = [w.dims[0] for w in module.graph.initializer if w.name in conv_weights]
    assert widths and all(w % align == 0 or w < align for w in widths)
    np.testing.assert_allclose(run_onnx(module, X), simulate(compiler.ckpt, report.retained, (1, 7), X), atol=1e-4,
                               rtol=0)


def _conv_widths(module: onnx.ModelProto) -> dict[str, int]:
    """Output channels of each conv in a module file, by node name."""
    weights = {w.name: w for w in module.graph.initializer}
    return {n.name: weights[n.input[1]].dims[0] for n in module.graph.node if n.op_type == "Conv"}


ALIGN = 4  # the tiny test networks keep a few kernels per layer: rounding to 4 has work to do


def _stream_of(compiler, layer) -> tuple[str, ...]:
    """The gated layers sharing `layer`'s channel stream (itself alone outside a residual stream)."""
    return next((tuple(m) for m in compiler.cost.streams if layer in m), (layer,))


def _added_fraction(compiler, classes, layer) -> float:
    """What rounding `layer`'s stream up (as the alignment alone does) adds to the unrounded module's MACs."""
    exact = compiler.select(classes, align=1).kept
    rounded = compiler.select(classes, align=ALIGN).kept
    base = compiler.cost.kept_macs(exact, len(classes))
    return (compiler.cost.kept_macs({**exact, **{m: rounded[m] for m in _stream_of(compiler, layer)}}, len(classes))
            - base) / base


@pytest.mark.parametrize("arch", ["vgg16", "resnet18"])
@pytest.mark.parametrize("gates", [GateMode.dynamic, GateMode.folded])
def test_a_pad_limit_leaves_costly_streams_exact_in_the_selection_and_the_file(arch, gates):
    compiler = compiler_for(arch)
    classes = (1, 7)
    rounded = compiler.select(classes, align=ALIGN)
    exact = compiler.select(classes, align=ALIGN, pad_limit=0.0)  # any rounding costs more than nothing
    widened = [layer for layer in rounded.kept if rounded.kept[layer].sum() > exact.kept[layer].sum()]
    assert widened and sorted(exact.unaligned) == sorted(widened)
    # The rule: a stream is rounded up only where that adds at most the limit to the module's MACs.
    added = {layer: _added_fraction(compiler, classes, layer) for layer in widened}
    limit = float(np.median(list(added.values())))
    limited = compiler.select(classes, align=ALIGN, pad_limit=limit)
    assert limited.unaligned == {layer for layer, a in added.items() if a > limit}
    assert limited.unaligned and len(limited.unaligned) < len(widened)  # the median parts them
    for layer, mask in limited.kept.items():
        expected = exact.kept[layer] if layer in limited.unaligned else rounded.kept[layer]
        np.testing.assert_array_equal(mask, expected)
    # The file keeps the selection's widths (the plan re-pads no exact stream after folding), and
    # answers as the simulation of the same kernels does.
    module, report = compiler.compile(limited, gates)
    widths = _conv_widths(module)
    for layer in limited.unaligned:
        convs = [w for name, w in widths.items() if f".{layer}." in name.replace("/", ".")]
        assert convs and convs[0] == int(limited.kept[layer].sum()) and convs[0] % ALIGN
    frozen = None
    if gates is GateMode.folded:
        kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
        frozen = folded_gate_values(compiler.ckpt.modularization, list(classes), kept)
    np.testing.assert_allclose(run_onnx(module, X), simulate(compiler.ckpt, report.retained, classes, X, frozen),
                               atol=1e-4, rtol=0)
    assert report.module.flops < compiler.compile(rounded, gates)[1].module.flops


@pytest.mark.parametrize("arch", ["vgg16", "resnet18"])
def test_rounding_down_drops_each_streams_weakest_kernels_to_a_whole_block(arch):
    compiler = compiler_for(arch)
    classes = (1, 7)
    mod = compiler.ckpt.modularization
    exact = compiler.select(classes, align=1)
    down = compiler.select(classes, align=ALIGN, rounding="down")
    nearest = compiler.select(classes, align=ALIGN, rounding="nearest")
    up = compiler.select(classes, align=ALIGN)
    trimmed = 0
    for layer, kept in down.kept.items():
        was = np.logical_or.reduce([exact.kept[m] for m in _stream_of(compiler, layer)])  # a stream keeps its union
        width = int(was.sum())
        assert not (kept & ~was).any()  # only kernels the classes' modules keep
        if width < ALIGN:
            np.testing.assert_array_equal(kept, was)
            continue
        assert int(kept.sum()) == width - width % ALIGN
        dropped = was & ~kept
        trimmed += int(dropped.any())
        if dropped.any():  # the weakest: no kept kernel has a lower mean gate than a dropped one
            strength = sum(pooled_statistic(mod, "gate_mean", m, classes) for m in _stream_of(compiler, layer)).numpy()
            assert strength[dropped].max() <= strength[kept].min()
        # nearest: down where that moves fewer kernels than up, else up (ties go up)
        expected = kept if width % ALIGN < ALIGN - width % ALIGN else up.kept[layer]
        np.testing.assert_array_equal(nearest.kept[layer], expected)
    assert trimmed  # the tiny network keeps odd widths: the rule had work to do
    assert not down.unaligned and down.rounding == "down"
    module, report = compiler.compile(down, GateMode.folded)
    assert all(w % ALIGN == 0 or w < ALIGN for w in _conv_widths(module).values())
    kept_t = {k: torch.from_numpy(v) for k, v in report.retained.items()}
    frozen = folded_gate_values(mod, list(classes), kept_t)
    np.testing.assert_allclose(run_onnx(module, X), simulate(compiler.ckpt, report.retained, classes, X, frozen),
                               atol=1e-4, rtol=0)
    assert ModuleMetadata.read(module).rounding == "down"
    assert report.module.flops < compiler.compile(exact, GateMode.folded)[1].module.flops


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_folded_gates_equal_pytorch_with_the_same_constant_gates(arch):
    compiler = compiler_for(arch)
    classes = (2, 5)
    module, report = compiler.compile(compiler.select(classes, align=1), GateMode.folded)
    assert not {"MatMul", "Tanh"} & {n.op_type for n in module.graph.node}  # the generators are gone
    kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
    frozen = folded_gate_values(compiler.ckpt.modularization, list(classes), kept)
    np.testing.assert_allclose(run_onnx(module, X), simulate(compiler.ckpt, report.retained, classes, X, frozen),
                               atol=1e-4, rtol=0)
    _, dynamic = compiler.compile(compiler.select(classes, align=1))
    assert report.module.flops < dynamic.module.flops


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_kernel_retained_equals_full_model(arch):
    ckpt = random_checkpoint(arch, width=0.125, seed=1)
    for f in ckpt.modularization.frequency.values():
        f.fill_(1.0)
    from exporter.compile import ModuleCompiler

    compiler = ModuleCompiler(ckpt)
    module, report = compiler.compile(compiler.select(tuple(range(10)), align=1))
    assert report.krr == 1.0
    with torch.no_grad():
        reference = ckpt.build()(torch.from_numpy(X))[0].numpy()
    np.testing.assert_allclose(run_onnx(module, X), reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(run_onnx(compiler.full_model, X), reference, atol=1e-4, rtol=0)


def test_plain_model_is_the_same_network_without_generators():
    compiler = compiler_for("vgg16")
    plain = compiler.plain_model
    assert not {"MatMul", "Tanh"} & {n.op_type for n in plain.graph.node}
    assert compiler.plain_cost.flops < compiler.full_cost.flops
    meta = ModuleMetadata.read(plain)
    assert meta.gates is None and meta.plain_flops == meta.module_flops == compiler.plain_cost.flops
    # With every gate open, the modular model computes the plain one, scaled per kernel by its gate:
    # so equal weights with gates frozen at 1 give the plain network's logits.
    ones = {n: torch.ones_like(f[0]) for n, f in compiler.ckpt.modularization.frequency.items()}
    model = compiler.ckpt.build()
    with frozen_gates(model, ones), torch.no_grad():
        reference = model(torch.from_numpy(X))[0].numpy()
    np.testing.assert_allclose(run_onnx(plain, X), reference, atol=1e-4, rtol=0)
    # The compiler derives it from the modular graph; torch's export of the network built without
    # generators has the same ops and weights.
    spec = replace(compiler.ckpt.spec, modular=False, gate_first=False)
    network = build_model(spec)
    network.load_state_dict({k: v for k, v in compiler.ckpt.state_dict.items() if ".gate." not in k})
    exported = finalize(import_graph(export_with_gates(network.eval(), spec.input_shape)), producer="test")
    assert Counter(n.op_type for n in exported.graph.node) == Counter(n.op_type for n in plain.graph.node)
    def weights(m: onnx.ModelProto) -> list[tuple[tuple[int, ...], bytes]]:
        return sorted((tuple(t.dims), onnx.numpy_helper.to_array(t).tobytes()) for t in m.graph.initializer)

    assert weights(exported) == weights(plain)
    np.testing.assert_array_equal(run_onnx(exported, X), run_onnx(plain, X))


def test_byte_identical_output_across_processes(child_digests):
    here = module_digests(compiler_for("resnet18"))  # the compiler the other tests share
    assert here == child_digests["resnet18"] and len(set(here)) == 2


def test_metadata():
    compiler = compiler_for("vgg16")
    module, report = compiler.compile(compiler.select((8, 7)))
    meta = ModuleMetadata.read(module)
    assert meta.classes == ("bag", "sneaker")
    assert meta.source_sha256 == "vgg16-1" and meta.gates is GateMode.dynamic and meta.align == 8
    assert meta.input.shape == (1, 28, 28) and meta.input.dataset == "fashion-mnist"
    assert meta.krr == pytest.approx(report.krr, abs=1e-6)
    assert meta.module_flops < meta.full_flops and meta.plain_flops == compiler.plain_cost.flops
    assert meta.flops_kept == pytest.approx(report.flops_kept)
    assert [(k.name, k.retained, k.total) for k in meta.layers] == [(k.name, k.retained, k.total) for k in report.layers]
    assert [o.name for o in module.graph.output] == ["logits"]
    assert ModuleMetadata.from_props(meta.to_props()) == meta


def test_the_folding_error_measures_how_far_constant_gates_are_from_the_gates():
    from exporter.compile import ModuleCompiler

    ckpt = random_checkpoint("vgg16", width=0.125, seed=1)
    mod = ckpt.modularization
    # Gates that are the same for every sample of both classes: constants are exact.
    mod.gate_mean = {k: v[:1].expand_as(v).clone() for k, v in mod.gate_mean.items()}
    mod.gate_sq_mean = {k: v * v for k, v in mod.gate_mean.items()}
    compiler = ModuleCompiler(ckpt)
    _, report = compiler.compile(compiler.select((2, 5)), GateMode.folded)
    assert report.folding_error == pytest.approx(0.0, abs=1e-3)
    # Gates that are on for one class and off for the other: one constant cannot serve both.
    for layer, v in mod.gate_mean.items():
        v[2], v[5] = 0.9, 0.0
        mod.gate_sq_mean[layer] = v * v
    module, report = compiler.compile(compiler.select((2, 5)), GateMode.folded)
    assert report.folding_error == pytest.approx(0.5 ** 0.5, abs=1e-3)  # constant 0.45 vs gates 0.9 and 0
    assert ModuleMetadata.read(module).folding_error == pytest.approx(report.folding_error, abs=1e-5)


@needs_fashion_mnist
def test_folded_gates_that_lose_accuracy_are_refused(tmp_path, capsys, trained_checkpoint_file):
    from mwt.cli import main
    from mwt.checkpoint import load_checkpoint

    broken = load_checkpoint(trained_checkpoint_file)
    for v in broken.modularization.gate_mean.values():
        v.zero_()  # every constant gate 0: the folded module answers the same for every image
    path = tmp_path / "broken.pt"
    save_checkpoint(broken, path)
    out = tmp_path / "m.onnx"
    assert main(["export", str(path), "--classes", "trouser,bag", "--gates", "folded", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "folded gates cannot represent trouser, bag" in err
    assert "(--force-folded)" in err and not out.exists()
    assert main(["export", str(path), "--classes", "trouser,bag", "--gates", "folded", "-o", str(out),
                 "--force-folded"]) == 0 and out.exists()
    # One class: argmax over its one logit is right 100% of the time whatever it answers, so a one-class
    # module is checked by how its logit ranks its class's images among every class's.
    code = main(["export", str(trained_checkpoint_file), "--classes", "trouser", "--gates", "folded", "-o", str(out)])
    said = capsys.readouterr().out
    assert code == 0 and "folded check     separation" in said and "100.00% folded vs 100.00%" not in said, said
    one = tmp_path / "one.onnx"
    assert main(["export", str(path), "--classes", "trouser", "--gates", "folded", "-o", str(one)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "folded gates cannot represent trouser" in err and not one.exists(), err
    assert "ranks its class's images above the others'" in err
    code = main(["export", str(path), "--classes", "trouser,bag", "--gates", "folded", "-o", str(out), "--data-dir",
                 str(tmp_path / "nowhere")])
    assert code == 0 and "warning: folded gates for trouser, bag were not checked" in capsys.readouterr().err


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
    (["--classes", "bag", "--threshold", "0"], "--threshold"),
    (["--classes", "bag", "--threshold", "1.5"], "--threshold"),
    (["--classes", "bag", "--threshold", "nan"], "finite"),
    (["--classes", "bag", "--align", "0"], "--align"),
    (["--classes", "bag", "--gates", "sometimes"], "'sometimes' is not one of 'dynamic', 'folded'"),
    (["--classes", "bag", "-o", "/nonexistent/dir/m.onnx"], "does not exist"),
])
def test_cli_bad_input(tmp_path, checkpoint_file, capsys, args, message):
    assert export_main([str(checkpoint_file), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*tmp"))


def test_cli_never_modularized_and_corrupt(tmp_path, capsys):
    ckpt = random_checkpoint("vgg16")
    ckpt.modularization = None
    path = tmp_path / "raw.pt"
    save_checkpoint(ckpt, path)
    assert export_main([str(path), "--classes", "bag"]) == 2
    assert f"{path} was never modularized; run 'mwt modularize {path}' first" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    assert export_main([str(bad), "--classes", "bag"]) == 2
    assert "corrupt" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--full", "--precision", "int8"], ["--plain", "--gates", "folded"],
                                  ["--full", "--plain"], ["--full", "--force-folded"]])
def test_whole_model_export_refuses_options_it_would_ignore(tmp_path, capsys, checkpoint_file, args):
    out = tmp_path / "m.onnx"
    assert export_main([str(checkpoint_file), "--classes", "bag", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not apply" in err and not out.exists(), err
    assert export_main([str(checkpoint_file), "--classes", "bag", "-o", str(out), args[0]]) == 0 and out.exists()


def test_cli_failure_keeps_existing_output(tmp_path, checkpoint_file, capsys):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    assert export_main([str(checkpoint_file), "--classes", "bag,nope", "-o", str(out)]) == 2
    assert out.read_bytes() == b"precious"


def test_bench_latency_cli(tmp_path, shared_checkpoint_file, tiny_fashion_dir, capsys):
    from mwt.cli import main

    out = tmp_path / "bench"
    mine = tmp_path / "mine.onnx"
    assert main(["export", str(shared_checkpoint_file), "--classes", "sneaker,bag", "--align", "1", "-o", str(mine)]) == 0
    code = main(["bench", "latency", str(shared_checkpoint_file), "--classes", "sneaker,bag", "--batch", "2",
                 "--seconds", "0.01", "--out", str(out), "--module", str(mine), "--data-dir", str(tiny_fashion_dir),
                 "--parallelism", "batch", "--calls-per-turn", "3"])
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    for config in ("plain full", "full modular", "union (align 8)", "union (align 1)", "composed merged",
                   "composed sessions", "mine.onnx"):
        assert config in text
    # A module file is the union module at align 1 by another name: the same accuracy.
    accuracy = json.loads((out / "latency.json").read_text())["accuracy"]
    assert accuracy["mine.onnx"] == accuracy["union (align 1)"] and "plain full" not in accuracy
    # A module of other classes, or in another order, is refused before any timing.
    code = main(["bench", "latency", str(shared_checkpoint_file), "--classes", "bag,sneaker", "--module", str(mine),
                 "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--classes" in err
    assert not (tmp_path / "refused").exists()
    data = json.loads((out / "latency.json").read_text())
    assert {r["batch"] for r in data["rows"]} == {2} and all(r["median_ms"] > 0 for r in data["rows"])
    assert data["parallelism"] == "batch" and "batch parallelism" in text
    assert data["calls_per_turn"] == 3 and "3 calls per turn" in text
    plain = next(r for r in data["rows"] if r["config"] == "plain full")
    assert plain["speedup"] == 1.0 and plain["flops_ratio"] == 1.0
    assert (out / "latency.png").stat().st_size > 1000


def test_one_class_separation_is_the_share_of_pairs_in_order():
    from mwt.core.errors import MwtError
    from mwt.evaluate import one_class_separation

    own = np.array([True, True, False, False])
    assert one_class_separation(np.array([3.0, 2.0, 1.0, 0.0]), own) == 1.0
    assert one_class_separation(np.array([0.0, 1.0, 2.0, 3.0]), own) == 0.0
    assert one_class_separation(np.full(4, 7.0), own) == 0.5  # a constant logit tells nothing apart
    assert one_class_separation(np.array([3.0, 1.0, 2.0, 0.0]), own) == 0.75  # 3 of 4 pairs in order
    with pytest.raises(MwtError, match="other classes"):
        one_class_separation(np.array([1.0, 2.0]), np.array([True, True]))


def test_whole_model_accuracy_follows_the_sub_tasks_class_order(trained_checkpoint_file):
    # Every class in another order is a sub-task as wide as the whole model: its logits must still be
    # put in the sub-task's order (bench latency once scored the full model 0% on a reversed --classes).
    from exporter.compile import ModuleCompiler
    from mwt.data import load_named
    from mwt.evaluate import module_accuracy
    from runtime.composed import ComposedClassifier
    from runtime.module_file import module_from_model

    compiler = ModuleCompiler.from_file(trained_checkpoint_file)
    names = list(compiler.ckpt.classes)
    test = load_named(compiler.ckpt.source, "test", names).subset(500)
    runner = ComposedClassifier([module_from_model(compiler.full_model)])
    predicted = runner.logits(test.images.numpy().astype(np.float32) / 255.0).argmax(1)
    assert len(set(predicted.tolist())) > 1  # not one answer for every image, which any order scores alike
    expected = float((predicted == test.labels.numpy()).mean())
    for order in (names, names[::-1], names[3:] + names[:3]):
        columns = [names.index(n) for n in order]
        scored = module_accuracy({"whole": compiler.full_model},
                                 load_named(compiler.ckpt.source, "test", order).subset(500), columns, whole_models={"whole"})
        assert scored["whole"] == pytest.approx(expected), order


def test_bench_latency_refuses_a_file_as_output_folder_before_working(tmp_path, shared_checkpoint_file, capsys):
    from mwt.cli import main

    out = tmp_path / "taken"
    out.write_text("keep me")
    assert main(["bench", "latency", str(shared_checkpoint_file), "--classes", "bag", "--out", str(out)]) == 2
    assert "not a folder" in capsys.readouterr().err and out.read_text() == "keep me"
