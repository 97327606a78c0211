"""Every registered architecture: shapes, gates, the standard variant, and gradients."""

import pytest
import torch

from mwt.core.errors import MwtError
from mwt.models import MODELS, ModelSpec, build_model, gated_layers
from tests.conftest import tiny_spec


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_modular_forward_returns_gates_in_layer_order(arch):
    model = build_model(tiny_spec(arch)).eval()
    logits, gates = model(torch.rand(3, 1, 28, 28))
    layers = gated_layers(model)
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    assert len(gates) == len(layers) > 0
    for g, (_, block) in zip(gates, layers):
        assert g.shape == (3, block.out_channels)
        assert (g >= 0).all() and (g < 1).all()


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_parameter_gets_a_gradient(arch):
    model = build_model(tiny_spec(arch)).train()
    logits, gates = model(torch.rand(4, 1, 28, 28))
    (logits.sum() + sum(g.sum() for g in gates)).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_standard_variant_has_no_gates_and_same_convs(arch):
    modular = build_model(tiny_spec(arch, modular=True))
    standard = build_model(tiny_spec(arch, modular=False))
    _, gates = standard(torch.rand(2, 1, 28, 28))
    assert gates == [] and gated_layers(standard) == []
    convs = lambda m: [tuple(c.weight.shape) for c in m.modules() if isinstance(c, torch.nn.Conv2d)]  # noqa: E731
    assert convs(modular) == convs(standard)


def test_first_conv_is_plain_and_mask_generator_shape():
    model = build_model(tiny_spec("vgg16", width=1.0))
    first = model.features[0]
    assert first.gate is None
    name, block = gated_layers(model)[-1]
    assert block.gate.fc1.in_features == 512 and block.gate.fc1.out_features == 256  # h = out // 2 for out >= 128
    assert block.gate.fc1.bias is None and torch.all(block.gate.fc2.bias == 1.0)
    small = gated_layers(model)[0][1]
    assert small.gate.fc1.out_features == 64  # h = out for out < 128


def test_resnet_gates_downsample_convs():
    names = [n for n, _ in gated_layers(build_model(tiny_spec("resnet18")))]
    assert sum(n.endswith("downsample") for n in names) == 3
    assert len(names) == 19


def test_unknown_model_and_bad_width():
    with pytest.raises(MwtError, match="unknown model"):
        build_model(ModelSpec("vgg99", 10, 1, (28, 28)))
    with pytest.raises(MwtError, match="width"):
        build_model(ModelSpec("vgg16", 10, 1, (28, 28), width=0))
