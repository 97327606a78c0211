"""Any CNN made modular: torchvision's networks with gates inserted, compiled, composed; bad input.

Tiny on purpose (width 0.25 or less, 32x32 after padding, random weights and frequencies): what is
checked is that gates go where the rules say and that the compiled modules equal the PyTorch
simulation, not what the networks learn.
"""

from __future__ import annotations


import numpy as np
import onnx
import pytest
import torch
from torch import nn

from exporter.compile import ModuleCompiler
from mwt.checkpoint import checkpoint_from_dict, load_checkpoint, save_checkpoint
from mwt.cli import main
from mwt.core.errors import MwtError
from mwt.core.metadata import GateMode
from mwt.models import GatedConv, ModelSpec, PassThroughConv, build_model, gated_layers
from mwt.models.gate import Preprocess
from mwt.models.insert_gates import insert_gates
from mwt.modularize import folded_gate_values
from runtime import ComposedClassifier
from tests.conftest import FASHION, needs_fashion_mnist
from tests.digests import module_digests
from tests.synthetic import random_checkpoint
from tests.test_cli import one_line_error
from tests.test_exporter import X, run_onnx, simulate

# (torchvision name, width, stem): small enough for two busy CPU cores.
NETWORKS = {
    "mobilenet_v2": (0.25, "cifar"),
    "resnet50": (0.125, "default"),
    "mobilenet_v3_small": (0.25, "cifar"),
    "efficientnet_b0": (0.25, "default"),
    "regnet_y_400mf": (0.25, "default"),
}
_COMPILERS: dict[str, ModuleCompiler] = {}


def checkpoint(name: str, seed: int = 1):
    width, stem = NETWORKS[name]
    return random_checkpoint(f"torchvision:{name}", width=width, seed=seed, stem=stem)


def compiler(name: str) -> ModuleCompiler:
    """One compiler (one torch export) per network, shared by the tests of this file."""
    if name not in _COMPILERS:
        _COMPILERS[name] = ModuleCompiler(checkpoint(name), source_sha256=f"tv-{name}")
    return _COMPILERS[name]


def spec(name: str = "mobilenet_v2", **changes) -> ModelSpec:
    width, stem = NETWORKS[name]
    settings = dict(arch=f"torchvision:{name}", num_classes=10, in_channels=1, input_size=(28, 28), width=width,
                    mean=FASHION.mean, std=FASHION.std, pad=FASHION.pad, stem=stem)
    settings.update(changes)
    return ModelSpec(**settings)


def test_gates_go_where_the_rules_say():
    model = build_model(spec("mobilenet_v2"))
    blocks = dict(model.named_modules())
    stem = blocks["net.features.0.0"]
    assert isinstance(stem, GatedConv) and stem.gate is None  # the first conv stays plain
    assert stem.conv.kernel_size == (3, 3) and stem.conv.stride == (1, 1) and stem.conv.in_channels == 1  # cifar stem
    # A depthwise conv fed by a gated block passes its gates through; one fed by the plain stem stays plain.
    assert isinstance(blocks["net.features.2.conv.1.0"], PassThroughConv)
    first_dw = blocks["net.features.1.conv.0.0"]
    assert isinstance(first_dw, GatedConv) and first_dw.gate is None
    assert not any(isinstance(m, GatedConv) and m.conv.groups > 1 and m.gate is not None for m in model.modules())
    assert not any(isinstance(m, GatedConv) for m in model.net.classifier.modules())  # the head is not gated
    logits, gates = model(torch.from_numpy(X))
    layers = gated_layers(model)
    assert logits.shape == (4, 10) and len(gates) == len(layers) == 34
    assert [g.shape[1] for g in gates] == [b.out_channels for _, b in layers]
    gated_first = build_model(spec("mobilenet_v2", gate_first=True))
    assert dict(gated_first.named_modules())["net.features.0.0"].gate is not None


def test_resnet50_stem_and_residual_streams():
    model = build_model(spec("resnet50", stem="cifar"))
    assert isinstance(model.net.maxpool, nn.Identity)  # --stem cifar drops the first max-pool
    assert model.net.conv1.conv.kernel_size == (3, 3)
    # The residual stream of layer1: its last conv of each block and the downsample write into one.
    assert ("net.layer1.0.conv3", "net.layer1.0.downsample.0", "net.layer1.1.conv3",
            "net.layer1.2.conv3") in compiler("resnet50").streams
    default = build_model(spec("resnet50"))
    assert isinstance(default.net.maxpool, nn.MaxPool2d) and default.net.conv1.conv.stride == (2, 2)


def test_standard_model_has_the_same_weights_without_generators():
    modular = build_model(spec())
    standard = build_model(spec(modular=False))
    assert not gated_layers(standard) and not any(isinstance(m, PassThroughConv) for m in standard.modules())
    keys = {k for k in modular.state_dict() if ".gate." not in k}
    assert keys == set(standard.state_dict())


@pytest.mark.parametrize("name", list(NETWORKS))
def test_module_equals_simulation_dynamic_and_folded(name):
    c = compiler(name)
    classes = (1, 7)
    module, report = c.compile(c.select(classes, align=1), GateMode.dynamic)
    got = run_onnx(module, X)
    assert got.shape == (4, 2)
    np.testing.assert_allclose(got, simulate(c.ckpt, report.retained, classes, X), atol=1e-4, rtol=0)
    assert report.module.flops < report.full.flops
    folded, folded_report = c.compile(c.select(classes, align=1), GateMode.folded)
    kept = {k: torch.from_numpy(v) for k, v in folded_report.retained.items()}
    frozen = folded_gate_values(c.ckpt.modularization, list(classes), kept)
    np.testing.assert_allclose(run_onnx(folded, X), simulate(c.ckpt, folded_report.retained, classes, X, frozen),
                               atol=1e-4, rtol=0)
    assert folded_report.module.flops < report.module.flops
    assert not {"MatMul", "Tanh"} & {n.op_type for n in folded.graph.node}  # no generators left


def _depthwise_widths(model: onnx.ModelProto) -> list[tuple[int, int, int, int]]:
    """(group, filters, input channels, output channels) of every depthwise conv."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input]}
    weights = {t.name: list(t.dims) for t in inferred.graph.initializer}
    out = []
    for n in inferred.graph.node:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        w = weights[n.input[1]] if n.op_type == "Conv" else None
        if w is not None and w[1] == 1 and (group > 1 or w[0] == 1 < w[2] * w[3]):  # one kept channel: group 1
            out.append((group, weights[n.input[1]][0], shapes[n.input[0]][1], shapes[n.output[0]][1]))
    return out


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"])
def test_depthwise_convs_keep_exactly_their_inputs_channels(name):
    c = compiler(name)
    full = _depthwise_widths(c.full_model)
    for gates in GateMode:
        module = _depthwise_widths(c.compile(c.select((3,), align=1), gates)[0])
        assert len(module) == len(full) > 0, (module, full)
        assert all(group == filters == c_in == c_out for group, filters, c_in, c_out in module)
        assert sum(w[0] for w in module) < sum(w[0] for w in full)  # physically removed, not kept whole


def _grouped_widths(model: onnx.ModelProto) -> list[tuple[int, int, int]]:
    """(group, output channels, input channels per group) of every conv with more than one group."""
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    return [(next(a.i for a in n.attribute if a.name == "group"), *weights[n.input[1]][:2])
            for n in model.graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]


def test_grouped_convs_are_compacted_to_whole_groups():
    c = compiler("regnet_y_400mf")
    full = _grouped_widths(c.full_model)
    assert any(per_group > 1 for _, _, per_group in full)  # RegNet's grouped (not depthwise) convs
    for gates in GateMode:
        module, report = c.compile(c.select((1, 7), align=8), gates)
        compact = _grouped_widths(module)
        assert len(compact) == len(full)
        assert all(out == group * per_group for group, out, per_group in compact)  # equal groups, in = out
        assert sum(out for _, out, _ in compact) < sum(out for _, out, _ in full) / 2  # not kept whole
        assert report.module.flops < report.full.flops / 4


def test_every_kernel_retained_equals_the_full_network():
    ckpt = checkpoint("mobilenet_v2", seed=2)
    for f in ckpt.modularization.frequency.values():
        f.fill_(1.0)
    c = ModuleCompiler(ckpt)
    module, report = c.compile(c.select(tuple(range(10)), align=1), GateMode.dynamic)
    assert report.krr == 1.0
    with torch.no_grad():
        reference = ckpt.build()(torch.from_numpy(X))[0].numpy()
    np.testing.assert_allclose(run_onnx(module, X), reference, atol=1e-4, rtol=0)
    np.testing.assert_allclose(run_onnx(c.plain_model, X).shape, reference.shape)


def test_folded_modules_keep_aligned_widths_and_depthwise_convs_at_least_align_channels():
    # The reuse recipe closes a class's gates outright, so an alignment's filler kernels often have
    # a mean gate of 0: folded, they are dead channels. The compiler keeps the widths the selection
    # aligned (odd widths miss onnxruntime's blocked conv kernels), and a depthwise conv whose
    # stream the selection left narrow gets `align` channels; the answers stay the same.
    classes, narrow = (7, 8), "net.features.2.conv.0.0"  # an expand conv: a depthwise conv runs in its stream
    c = ModuleCompiler(checkpoint("mobilenet_v2", seed=3), source_sha256="tv-zero-gates")
    frequency = c.ckpt.modularization.frequency[narrow]
    frequency[list(classes)] = 0.0
    frequency[list(classes), :3] = 1.0  # these classes use 3 of its kernels: narrower than the alignment
    selection = c.select(classes, align=8)
    exact = c.select(classes, align=1)
    assert int(selection.kept[narrow].sum()) == 3
    # every filler kernel: never open for these classes (folded gates are read at compile time)
    for layer, mask in selection.kept.items():
        filler = torch.from_numpy(mask & ~exact.kept[layer])
        c.ckpt.modularization.gate_mean[layer][list(classes)] *= ~filler
    full = [f for _, f, _, _ in _depthwise_widths(c.full_model)]
    for gates in GateMode:
        module, report = c.compile(selection, gates)
        widths = [f for _, f, _, _ in _depthwise_widths(module)]
        assert len(widths) == len(full) and all(w % 8 == 0 or w == f for w, f in zip(widths, full)), widths
        assert widths[1] == 8  # the narrow stream's depthwise conv: 3 kernels kept, 8 channels run
        kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
        frozen = folded_gate_values(c.ckpt.modularization, list(classes), kept) if gates is GateMode.folded else None
        np.testing.assert_allclose(run_onnx(module, X), simulate(c.ckpt, report.retained, classes, X, frozen),
                                   atol=1e-4, rtol=0)


def test_a_block_that_reads_its_mode_follows_the_model():
    # torchvision's StochasticDepth (EfficientNet's residual branches) drops rows at random, in
    # training only. Traced through, the mode it had while traced was baked in: random at inference.
    model = build_model(spec("efficientnet_b0"))
    x = torch.rand(8, 1, 28, 28)
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.equal(model.train()(x)[0], model(x)[0])  # training: drops, so two runs differ
        assert torch.equal(model.eval()(x)[0], model(x)[0])
    c = compiler("efficientnet_b0")
    ops = {n.op_type for n in c.compile(c.select((7,)), GateMode.folded)[0].graph.node}
    assert not {op for op in ops if op.startswith("Random")} and "Shape" not in ops, ops


def test_the_report_says_where_the_flops_go():
    c = compiler("mobilenet_v2")
    _, report = c.compile(c.select((7, 8)), GateMode.folded)
    kinds = dict(report.module.by_kind)
    assert set(kinds) == {"conv", "depthwise conv", "dense"} and sum(kinds.values()) == report.module.macs
    assert kinds["depthwise conv"] < kinds["conv"]
    line = next(r for r in report.table().splitlines() if r.startswith("FLOPs by layer"))
    assert line.split(None, 3)[3].startswith("conv ") and "depthwise conv" in line and "dense" in line


def test_byte_identical_output_across_processes(child_digests):
    here = module_digests(compiler("mobilenet_v2"))
    assert here == child_digests["torchvision:mobilenet_v2"] and len(set(here)) == 2


def test_checkpoint_round_trip_stores_the_constructor(tmp_path):
    ckpt = checkpoint("mobilenet_v2")
    path = tmp_path / "tv.pt"
    save_checkpoint(ckpt, path)
    raw = torch.load(path, weights_only=True)
    assert raw["model"]["arch"] == "torchvision:mobilenet_v2" and raw["model"]["stem"] == "cifar"
    assert raw["model"]["args"] == {}
    loaded = load_checkpoint(path)
    assert loaded.spec == ckpt.spec
    with torch.no_grad():
        np.testing.assert_allclose(loaded.build()(torch.from_numpy(X))[0].numpy(),
                                   ckpt.build()(torch.from_numpy(X))[0].numpy(), atol=1e-6)
    # A registry model's description is written as before (old checkpoints and new ones alike).
    assert set(random_checkpoint("vgg16").to_dict()["model"]) == {
        "arch", "num_classes", "in_channels", "input_size", "width", "modular", "mean", "std", "pad", "gate_first",
        "widths"}


def _with_model(ckpt_dict: dict, **model) -> dict:
    d = dict(ckpt_dict)
    d["model"] = {**d["model"], **model}
    return d


@pytest.mark.parametrize("model, message", [
    ({"arch": "torchvision:os.system"}, "unknown model 'torchvision:os.system'"),
    ({"arch": "evil_module:build"}, "unknown model 'evil_module:build'"),
    ({"args": {"block": {"__class__": "os.system"}}}, "constructor arguments must be plain values"),
    ({"args": {"norm_layer": "torch.nn.Identity"}}, "does not take these arguments"),
])
def test_a_checkpoint_never_names_code(model, message):
    d = _with_model(checkpoint("mobilenet_v2").to_dict(), **model)
    with pytest.raises(MwtError, match=message.replace("(", r"\(")):
        checkpoint_from_dict(d)


def test_no_conv_bn_pairs_and_untraceable_networks_are_refused():
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(MwtError, match="no conv followed by a batch norm"):
        insert_gates(plain, Preprocess((0.0,), (1.0,), 0))

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
                x = -x
            return self.bn(self.conv(x)).mean((2, 3))

    with pytest.raises(MwtError, match="cannot be traced by torch.fx"):
        insert_gates(Branchy(), Preprocess((0.0,), (1.0,), 0))


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "torchvision:not_a_net"], "unknown model 'torchvision:not_a_net'"),
    (["train", "--model", "torchvision:"], "is not one of"),
    (["train", "--model", "vgg16", "--stem", "cifar"], "--stem applies to torchvision: models"),
    (["train", "--model", "torchvision:mobilenet_v2", "--stem", "tiny"], "'tiny' is not one of"),
])
def test_bad_input(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code = main(args)
    _, err = capsys.readouterr()
    one_line_error(code, err, message)
    assert code == 2
    assert list(tmp_path.iterdir()) == []  # nothing written


@needs_fashion_mnist
def test_vgg_without_batch_norm_is_refused_at_train_time(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--model", "torchvision:vgg11", "--width", "0.125", "--epochs", "1", "--limit", "16", "-q"])
    _, err = capsys.readouterr()
    one_line_error(code, err, "no conv followed by a batch norm")
    assert code == 2 and list(tmp_path.iterdir()) == []  # nothing written


@needs_fashion_mnist
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_train_modularize_export_compose_predict(name, tmp_path):
    from mwt.data import load_split
    from mwt.modularize import kernel_frequency
    from mwt.train import train
    from mwt.train_config import TrainConfig

    width, stem = NETWORKS[name]
    data = load_split("fashion-mnist", "train").sample(64, seed=0)
    test = load_split("fashion-mnist", "test").subset(32)
    config = TrainConfig(model=f"torchvision:{name}", stem=stem, width=width, epochs=1, batch_size=32, lr=0.02,
                         seed=0, device="cpu")
    ckpt = train(config, data, test, show_progress=False)
    assert ckpt.spec.arch == f"torchvision:{name}" and len(ckpt.training["history"]) == 1
    ckpt.modularization = kernel_frequency(ckpt.build(), data, 10, show_progress=False)
    path = tmp_path / "m.pt"
    save_checkpoint(ckpt, path)
    c = ModuleCompiler.from_file(path)
    x = test.images[:4].float().div(255).numpy()
    paths = []
    for classes, gates in [((7,), GateMode.dynamic), ((8,), GateMode.folded)]:
        module, report = c.compile(c.select(classes, align=1), gates)
        kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
        frozen = folded_gate_values(c.ckpt.modularization, list(classes), kept) if gates is GateMode.folded else None
        np.testing.assert_allclose(run_onnx(module, x), simulate(c.ckpt, report.retained, classes, x, frozen),
                                   atol=1e-4, rtol=0)
        paths.append(tmp_path / f"{classes[0]}.onnx")
        paths[-1].write_bytes(module.SerializeToString())
    clf = ComposedClassifier.from_files(paths)
    assert clf.classes == ["sneaker", "bag"]
    result = clf.predict(x)
    expected = np.concatenate([run_onnx(onnx.load(str(p)), x) for p in paths], axis=1)
    np.testing.assert_allclose(result.logits, expected, atol=1e-5, rtol=0)


def test_init_from_a_torchvision_state_dict(tmp_path):
    import torchvision

    from mwt.init_weights import init_from, read_state_dict

    torch.manual_seed(0)
    source = torchvision.models.mobilenet_v2(weights=None)  # RGB, 1000 classes: built here, never downloaded
    for m in source.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = build_model(spec(width=1.0, stem="default"))
    report = init_from(model, read_state_dict(path), str(path))
    assert report.unused == ()
    assert [s.split()[0] for s in report.skipped] == ["classifier.1.weight", "classifier.1.bias"]  # 1000 -> 10 classes
    mine = model.state_dict()
    theirs = source.state_dict()
    assert torch.equal(mine["net.features.3.conv.0.0.conv.weight"], theirs["features.3.conv.0.0.weight"])
    assert torch.equal(mine["net.features.3.conv.1.0.bn.running_mean"], theirs["features.3.conv.1.1.running_mean"])
    assert torch.equal(mine["net.features.18.0.bn.weight"], theirs["features.18.1.weight"])
    # The RGB stem's filters, summed over colour, on the grayscale input.
    assert torch.allclose(mine["net.features.0.0.conv.weight"], theirs["features.0.0.weight"].sum(1, keepdim=True))
    assert "skipped" not in report.line(path) and "classifier.1.weight [1000, 1280] vs [10, 1280]" in report.line(path)
    with pytest.raises(MwtError, match="nothing in the file matches the network"):
        init_from(model, {"encoder.weight": torch.zeros(3)})


def test_init_from_an_mwt_checkpoint_of_other_data_keeps_this_datas_normalization(tmp_path):
    # A user with little data starts from a model trained on a bigger dataset: its learned
    # weights come over, its preprocessing (the other dataset's mean and std) does not.
    import dataclasses

    from mwt.checkpoint import save_checkpoint
    from mwt.init_weights import init_from, read_state_dict
    from tests.synthetic import random_checkpoint

    source = random_checkpoint("vgg16")
    path = tmp_path / "fashion.pt"
    save_checkpoint(source, path)
    target_spec = dataclasses.replace(source.spec, mean=(0.25,), std=(0.5,))
    model = build_model(target_spec)
    report = init_from(model, read_state_dict(path), str(path))
    mine = model.state_dict()
    assert torch.equal(mine["features.4.conv.weight"], source.state_dict["features.4.conv.weight"])
    assert mine["preprocess.mean"].flatten().tolist() == [0.25] and mine["preprocess.std"].flatten().tolist() == [0.5]
    assert sorted(report.unused) == ["preprocess.mean", "preprocess.std"]


class NotWeights:
    """A pickled object that is not plain tensors."""


@pytest.mark.parametrize("content, message", [
    (NotWeights(), "holds pickled objects that are not plain tensors; refusing"),
    ({"features.0.0.weight": torch.full((2, 2), float("nan"))}, "holds NaN or infinite values"),
    ([1, 2], "holds no state dict"),
])
def test_init_from_bad_files(tmp_path, capsys, monkeypatch, content, message):
    monkeypatch.chdir(tmp_path)
    torch.save(content, tmp_path / "w.pth")
    code = main(["train", "--model", "torchvision:mobilenet_v2", "--init-from", "w.pth", "--epochs", "1"])
    _, err = capsys.readouterr()
    one_line_error(code, err, message)
    assert code == 2 and [p.name for p in tmp_path.iterdir()] == ["w.pth"]  # nothing written


def test_finetune_points_torchvision_models_to_export():
    from mwt.cost import CostModel
    from mwt.finetune import compact_module

    c = compiler("mobilenet_v2")
    with pytest.raises(MwtError, match="export its modules with 'mwt export'"):
        compact_module(c.ckpt, c.select((1, 7)), CostModel((), ()))


USER_NET = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU())
        self.dw = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c, bias=False)
        self.dw_bn = nn.BatchNorm2d(2 * c)
        self.project = nn.Conv2d(2 * c, c, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.dw_bn(self.dw(self.expand(x))))
        return x + self.project_bn(self.project(y))


def build(num_classes, in_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        Block(8), Block(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def broken(num_classes, in_channels):
    raise ValueError("no such layer")


def not_a_module(num_classes, in_channels):
    return 42


class Concat(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.c = nn.Sequential(nn.Conv2d(12, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.stem(x)
        return self.fc(self.c(torch.cat([self.a(x), self.b(x)], 1)).mean((2, 3)))


def concat(num_classes, in_channels):
    return Concat(num_classes, in_channels)


def conv_bn(c_in, c_out, k):
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class ConcatThen(nn.Module):
    """Two gated branches concatenated, then `between`, then a gated conv: `move` rearranges the
    concatenation first (a shuffle: refused)."""

    def __init__(self, num_classes, in_channels, between, axis=1, move=None):
        super().__init__()
        self.axis, self.move = axis, move
        self.stem = conv_bn(in_channels, 8, 3)
        self.a, self.b = conv_bn(8, 8, 3), conv_bn(8, 8 if axis != 1 else 4, 1)
        self.between = between
        self.c = conv_bn(8 if axis != 1 else 12, 8, 3)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([self.a(x), self.b(x)], self.axis)
        if self.move is not None:
            y = self.move(y)
        return self.fc(self.c(self.between(y)).mean((2, 3)))


def concat_bn(num_classes, in_channels):
    return ConcatThen(num_classes, in_channels, nn.Sequential(nn.BatchNorm2d(12), nn.ReLU()))


def concat_pool(num_classes, in_channels):
    return ConcatThen(num_classes, in_channels, nn.MaxPool2d(3, stride=1, padding=1))


def concat_depthwise(num_classes, in_channels):
    return ConcatThen(num_classes, in_channels, nn.Sequential(
        nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False), nn.BatchNorm2d(12), nn.ReLU()))


def shuffle(y):
    n, c, h, w = y.shape
    return y.reshape(n, 3, c // 3, h, w).transpose(1, 2).reshape(n, c, h, w)


def concat_shuffle(num_classes, in_channels):
    return ConcatThen(num_classes, in_channels, nn.Identity(), move=shuffle)


def concat_rows(num_classes, in_channels):
    return ConcatThen(num_classes, in_channels, nn.Identity(), axis=2)
'''


@pytest.fixture
def user_net(tmp_path):
    from mwt.models.user_code import load_user_code, provide

    path = tmp_path / "net.py"
    path.write_text(USER_NET)
    provide(load_user_code(f"{path}:build"))
    yield path
    provide(None)


def test_a_users_network_is_gated_and_compiles_exactly(user_net):
    ckpt = random_checkpoint("code:build", width=1.0, seed=3)
    model = ckpt.build()
    assert [n for n, _ in gated_layers(model)] == [
        "net.3", "net.6.expand.0", "net.6.project", "net.7.expand.0", "net.7.project"]
    assert isinstance(model.get_submodule("net.6.dw"), PassThroughConv)
    c = ModuleCompiler(ckpt)
    for gates in GateMode:
        module, report = c.compile(c.select((2, 5), align=1), gates)
        kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
        frozen = folded_gate_values(ckpt.modularization, [2, 5], kept) if gates is GateMode.folded else None
        np.testing.assert_allclose(run_onnx(module, X), simulate(ckpt, report.retained, (2, 5), X, frozen),
                                   atol=1e-4, rtol=0)
        assert report.module.flops < report.full.flops


@pytest.mark.parametrize("function, message", [
    ("broken", "net.py:broken raised ValueError: no such layer"),
    ("not_a_module", "net.py:not_a_module returned a int, not a torch.nn.Module"),
    ("missing", "has no function 'missing'"),
])
def test_bad_user_code(user_net, function, message):
    from mwt.models.user_code import load_user_code, provide

    with pytest.raises(MwtError, match=message):
        provide(load_user_code(f"{user_net}:{function}"))
        build_model(spec(arch=f"code:{function}", width=1.0, stem="default"))


def test_a_checkpoint_of_user_code_needs_model_code(user_net, tmp_path, capsys):
    from mwt.models.user_code import code_args, provided

    ckpt = random_checkpoint("code:build", width=1.0, seed=3)
    ckpt.spec = ModelSpec(**{**ckpt.spec.__dict__, "args": code_args(provided())})
    path = tmp_path / "user.pt"
    save_checkpoint(ckpt, path)
    code = main(["export", str(path), "--classes", "bag", "-o", str(tmp_path / "m.onnx")])
    _, err = capsys.readouterr()
    one_line_error(code, err, "pass --model-code <file.py>:build")
    assert code == 2 and not (tmp_path / "m.onnx").exists()
    other = tmp_path / "other.py"
    other.write_text(USER_NET + "\n# changed\n")
    code = main(["--model-code", f"{other}:build", "export", str(path), "--classes", "bag", "-o",
                 str(tmp_path / "m.onnx")])
    _, err = capsys.readouterr()
    one_line_error(code, err, "is not the file this network was trained with")
    code = main(["--model-code", f"{user_net}:build", "export", str(path), "--classes", "bag", "-o",
                 str(tmp_path / "m.onnx")])
    assert code == 0 and (tmp_path / "m.onnx").exists()


@needs_fashion_mnist
def test_train_a_users_network_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(USER_NET)
    code = main(["train", "--model", "net.py:build", "--epochs", "1", "--limit", "64", "--batch-size", "32",
                 "--device", "cpu", "-o", "m.pt", "-q"])
    assert code == 0, capsys.readouterr().err
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["model"]["arch"] == "code:build" and set(raw["model"]["args"]) == {"sha256"}
    assert "net.py" not in str(raw["model"])  # the checkpoint names no file to import
    capsys.readouterr()
    code = main(["modularize", "m.pt", "--limit", "64", "-q"])
    one_line_error(code, capsys.readouterr().err, "pass --model-code <file.py>:build")
    assert main(["--model-code", "net.py:build", "modularize", "m.pt", "--limit", "64", "-q"]) == 0


@needs_fashion_mnist
def test_the_reuse_recipe_trains_a_torchvision_network():
    """The cost loss (pass-through convs counted once), sub-task routing and decisiveness on MobileNetV2."""
    from mwt.data import load_split
    from mwt.train import train
    from mwt.train_config import TrainConfig

    data = load_split("fashion-mnist", "train").sample(64, seed=0)
    test = load_split("fashion-mnist", "test").subset(32)
    config = TrainConfig.from_recipe("reuse", model="torchvision:mobilenet_v2", stem="cifar", width=0.25, epochs=1,
                                     batch_size=32, lr=0.02, seed=0, device="cpu")
    record = train(config, data, test, show_progress=False).training["history"][-1]
    assert 0 < record["flops"] <= 1 and record["subtask_ce"] > 0 and np.isfinite(record["loss"])


def test_the_cost_model_counts_depthwise_convs_once_with_their_stream():
    from mwt.cost import cost_model

    c = compiler("mobilenet_v2")
    cost = cost_model(c.ckpt.build(), c.ckpt.spec.input_shape)
    assert cost.total_macs == c.plain_cost.macs  # every conv (depthwise too) and the head, as the ONNX graph counts
    depthwise = [layer for layer in cost.layers if layer.channelwise]
    assert len(depthwise) == 16 and all(layer.stream is not None for layer in depthwise)
    everything = {n: np.ones(len(f[0]), bool) for n, f in c.ckpt.modularization.frequency.items()}
    assert cost.kept_fraction(everything) == pytest.approx(1.0)
    half = {n: np.arange(len(m)) % 2 == 0 for n, m in everything.items()}
    assert cost.kept_fraction(half) < 0.5  # convs between two halved streams keep a quarter


def _user_checkpoint(function: str, seed: int = 3):
    from mwt.models.user_code import load_user_code, provided, provide

    provide(load_user_code(f"{provided().path}:{function}"))
    return random_checkpoint(f"code:{function}", width=1.0, seed=seed)


def _convs_reading_concats(model: onnx.ModelProto) -> list[tuple[int, int]]:
    """(channels the Concat writes, input channels of the conv's weight) for each Conv that reads a
    Concat's output through BN, ReLU, max-pool or a depthwise conv (not through a mask generator)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    weights = {t.name: list(t.dims) for t in inferred.graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in inferred.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    found = []
    for concat in (n for n in inferred.graph.node if n.op_type == "Concat" and len(shapes[n.output[0]]) == 4):
        frontier = [concat.output[0]]
        while frontier:
            for n in readers.get(frontier.pop(), []):
                group = next((a.i for a in n.attribute if a.name == "group"), 1)
                if n.op_type == "Conv" and group == 1:
                    found.append((shapes[concat.output[0]][1], weights[n.input[1]][1]))
                elif n.op_type in ("BatchNormalization", "Relu", "MaxPool", "Mul", "Conv"):
                    frontier.append(n.output[0])
    return found


def _shift_free(ckpt, bn: str):
    """`ckpt` with batch norm `bn` mapping zero to zero (its bias and mean 0; scale and variance stay random)."""
    for key in ("bias", "running_mean"):
        ckpt.state_dict[f"{bn}.{key}"].zero_()
    return ckpt


@pytest.mark.parametrize("function", ["concat", "concat_bn", "concat_pool", "concat_depthwise"])
def test_concatenated_gated_convs_compile_exactly_and_smaller(user_net, function):
    from exporter.flops import graph_cost
    from mwt.cost import cost_model

    ckpt = _user_checkpoint(function)
    if function == "concat_bn":  # trained, its shift turns dropped channels into constants: kept (see docs/any-cnn.md)
        ckpt = _shift_free(ckpt, "net.between.0")
    assert {"net.a.0", "net.b.0", "net.c.0"} <= {n for n, _ in gated_layers(ckpt.build())}
    c = ModuleCompiler(ckpt)
    classes = (2, 5)
    for gates in GateMode:
        selection = c.select(classes, align=1)
        module, report = c.compile(selection, gates)
        kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
        frozen = folded_gate_values(ckpt.modularization, list(classes), kept) if gates is GateMode.folded else None
        np.testing.assert_allclose(run_onnx(module, X), simulate(ckpt, report.retained, classes, X, frozen),
                                   atol=1e-4, rtol=0)
        # The conv after the concatenation reads exactly the branches' kept kernels, physically.
        branches = int(selection.kept["net.a.0"].sum() + selection.kept["net.b.0"].sum())
        assert 0 < branches < 12 and _convs_reading_concats(module) == [(branches, branches)]
        assert _convs_reading_concats(c.full_model) == [(12, 12)]
        if gates is GateMode.folded:  # the cost model counts what the compiled module computes
            cost = cost_model(ckpt.build(), ckpt.spec.input_shape)
            assert cost.kept_macs(kept, len(classes)) == graph_cost(module).macs


def test_a_depthwise_conv_behind_a_concatenation_passes_both_branches_gates_through(user_net):
    model = _user_checkpoint("concat_depthwise").build()
    assert isinstance(model.get_submodule("net.between.0"), PassThroughConv)
    gates = {}
    with torch.no_grad():
        model.get_submodule("net.between.0").register_forward_pre_hook(lambda _m, args: gates.update(g=args[1]))
        _, out = model(torch.from_numpy(X))
    names = [n for n, _ in gated_layers(model)]
    expected = torch.cat([out[names.index("net.a.0")], out[names.index("net.b.0")]], 1)
    assert torch.equal(gates["g"], expected)


def test_a_shifted_batch_norm_after_a_concatenation_keeps_its_channels(user_net):
    from exporter.flops import graph_cost
    from mwt.cost import cost_model

    ckpt = _user_checkpoint("concat_bn")  # random BN statistics: BN(0) != 0 on every channel
    c = ModuleCompiler(ckpt)
    module, report = c.compile(c.select((2, 5), align=1), GateMode.folded)
    kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
    frozen = folded_gate_values(ckpt.modularization, [2, 5], kept)
    np.testing.assert_allclose(run_onnx(module, X), simulate(ckpt, report.retained, (2, 5), X, frozen),
                               atol=1e-4, rtol=0)
    assert _convs_reading_concats(module) == [(12, 12)]  # constant channels: the conv needs them
    # The cost model counts them as dropped, as they are untrained (BN(0) = 0), when it prices training.
    assert cost_model(ckpt.build(), ckpt.spec.input_shape).kept_macs(kept, 2) < graph_cost(module).macs


def test_the_cost_model_counts_a_concatenation_segment_by_segment(user_net):
    from mwt.cost import Segment, cost_model

    model = _user_checkpoint("concat").build()
    cost = cost_model(model, (1, 28, 28))
    layers = {layer.name: layer for layer in cost.layers}
    assert cost.streams == (("net.a.0",), ("net.b.0",), ("net.c.0",))
    assert layers["net.c.0"].segments == (Segment(0, 8, 0), Segment(8, 4, 1))
    # 32x32 maps: stem 1->8 3x3, a 8->8 3x3, b 8->4 1x1, c 12->8 3x3, fc 8->10.
    macs = {"net.stem.0": 1024 * 9 * 8, "net.a.0": 1024 * 8 * 9 * 8, "net.b.0": 1024 * 8 * 4,
            "net.c.0": 1024 * 12 * 9 * 8, "net.fc": 80}
    assert {n: layer.macs for n, layer in layers.items()} == macs
    kept = {"net.a.0": np.arange(8) < 2, "net.b.0": np.ones(4, bool), "net.c.0": np.arange(8) < 4}
    # a keeps 1/4 of its outputs, b all; c reads (2 + 4) of 12 channels and keeps half; fc reads half.
    by_hand = macs["net.stem.0"] + macs["net.a.0"] / 4 + macs["net.b.0"] + macs["net.c.0"] * 0.5 * 0.5 + 80 * 0.5
    assert cost.kept_macs(kept) == by_hand and cost.kept_fraction(kept) == pytest.approx(by_hand / sum(macs.values()))
    assert cost.kept_macs(kept, 2) == by_hand - 80 * 0.5 + 80 * 0.5 * 2 / 10
    gates = {n: torch.from_numpy(m).float()[None].repeat(3, 1).mul(0.7).requires_grad_() for n, m in kept.items()}
    expected = cost.expected_fraction(gates)
    assert expected[0].item() == pytest.approx(cost.kept_fraction(kept), rel=1e-6)
    expected.sum().backward()
    assert all(float(g.grad.abs().sum()) > 0 for g in gates.values())  # each branch's gates price c's input


@pytest.mark.parametrize("function, message", [
    ("concat_shuffle", "layer net.c.0 reads 2 channels (0..1) from net.a.0, which writes 8: an op that moves channels"),
    ("concat_rows", "concatenates gated convs' outputs along axis 2, not the channel axis"),
])
def test_channel_moves_other_than_concatenation_are_refused_in_one_line(user_net, function, message):
    from mwt.cost import cost_model
    from mwt.models.user_code import load_user_code, provide

    provide(load_user_code(f"{user_net}:{function}"))
    model = build_model(spec(arch=f"code:{function}", width=1.0, stem="default"))
    with pytest.raises(MwtError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")) as e:
        cost_model(model, (1, 28, 28))
    assert "\n" not in str(e.value)


def googlenet_compiler() -> ModuleCompiler:
    """GoogLeNet (Inception blocks concatenate four branches) at width 0.125, one per test run, built
    as `--model torchvision:googlenet` builds it (no auxiliary heads: CONSTRUCTOR_DEFAULTS)."""
    if "googlenet" not in _COMPILERS:
        ckpt = random_checkpoint("torchvision:googlenet", width=0.125, seed=1, stem="cifar")
        _COMPILERS["googlenet"] = ModuleCompiler(ckpt, source_sha256="tv-googlenet")
    return _COMPILERS["googlenet"]


def test_googlenet_inception_blocks_get_gates_and_compile_exactly():
    from exporter.flops import graph_cost
    from mwt.cost import cost_model

    c = googlenet_compiler()
    ckpt = c.ckpt
    model = ckpt.build()
    assert len(gated_layers(model)) == 56  # every conv but the stem: 3 + 9 inception blocks x 6, less 1
    cost = cost_model(model, ckpt.spec.input_shape)
    assert sum(len(layer.segments) == 4 for layer in cost.layers) == 8 * 4 + 1  # read a block's 4 branches
    classes = (1, 7)
    for gates in GateMode:
        module, report = c.compile(c.select(classes, align=1), gates)
        kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
        frozen = folded_gate_values(ckpt.modularization, list(classes), kept) if gates is GateMode.folded else None
        np.testing.assert_allclose(run_onnx(module, X), simulate(ckpt, report.retained, classes, X, frozen),
                                   atol=1e-4, rtol=0)
        assert report.module.flops < 0.2 * report.full.flops
        if gates is GateMode.folded:  # no generators left: the cost model counts what the module computes
            assert cost.kept_macs(kept, len(classes)) == graph_cost(module).macs
