"""The cost model: the FLOPs a module keeps, found from the model's dataflow, against the compiled
module's real graph, and the differentiable expected-FLOPs term of the cost-aware recipe."""

from __future__ import annotations

import pytest
import torch

from exporter.flops import graph_cost
from mwt.cost import cost_model
from mwt.models import build_model, gated_layers
from mwt.registry import MODELS
from mwt.core.metadata import GateMode
from tests.conftest import compiler_for, tiny_spec


@pytest.mark.parametrize("arch", sorted(MODELS))
@pytest.mark.parametrize("classes", [(3,), (1, 7), (9, 0, 4)])
def test_kept_flops_equal_the_compiled_modules(arch, classes):
    compiler = compiler_for(arch)
    module, report = compiler.compile(compiler.select(classes, align=1), GateMode.folded)
    cost = cost_model(compiler.ckpt.build(), compiler.ckpt.spec.input_shape)
    kept = {k: torch.from_numpy(v) for k, v in report.retained.items()}
    assert cost.kept_macs(kept, len(classes)) == graph_cost(module).macs
    assert cost.total_macs == compiler.plain_cost.macs  # the plain network: no generators


def test_streams_follow_residual_sums():
    resnet = cost_model(build_model(tiny_spec("resnet18")), (1, 28, 28))
    assert ("blocks.2.conv2", "blocks.2.downsample", "blocks.3.conv2") in resnet.streams
    assert resnet.stream_of("blocks.0.conv2") is None  # the stem (plain) writes there too: always whole
    rescnn = cost_model(build_model(tiny_spec("rescnn")), (1, 28, 28))
    assert ("features.3", "features.4") in rescnn.streams and ("features.14", "features.16") in rescnn.streams
    vgg = cost_model(build_model(tiny_spec("vgg16", gate_first=True)), (1, 28, 28))
    assert vgg.layers[0].gate == "features.0" and all(len(s) == 1 for s in vgg.streams)


def test_kernel_costs_count_a_kernels_own_conv_and_its_readers():
    # Tiny VGG16 (width 0.125) on 28x28 images padded to 32: conv 0 is 1 -> 8 channels and conv 1
    # 8 -> 8, both 3x3 at 32x32; one kernel of conv 0 costs its own output map and conv 1's reading
    # of it, by hand.
    model = build_model(tiny_spec("vgg16", gate_first=True))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    costs = cost.kernel_costs(names)
    assert costs[0] == pytest.approx(32 * 32 * 1 * 9 + 32 * 32 * 8 * 9)
    assert costs[1] == pytest.approx(32 * 32 * 8 * 9 + 16 * 16 * 16 * 9)  # conv 2 (8 -> 16) reads it after a pool
    assert costs[0] < costs[1] and costs[-1] < costs[1] / 10  # the last convs, on small maps, cost the least


def test_kernel_costs_split_a_residual_streams_readers_among_its_writers():
    model = build_model(tiny_spec("rescnn"))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    costs = dict(zip(names, cost.kernel_costs(names)))
    writers = ("features.3", "features.4")
    assert writers in cost.streams
    own = {w: sum(layer.macs / layer.out_channels for layer in cost.layers if layer.gate == w) for w in writers}
    read = [costs[w] - own[w] for w in writers]
    assert read[0] == pytest.approx(read[1]) and read[0] > 0
    assert all(c > 0 for c in costs.values())


@pytest.mark.parametrize("arch", ["vgg16", "resnet18"])
def test_expected_fraction_counts_open_gates_and_has_a_gradient(arch):
    torch.manual_seed(0)
    model = build_model(tiny_spec(arch))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    masks = {n: torch.rand(b.out_channels) < 0.5 for n, b in gated_layers(model)}
    gates = {n: (m.float() * 0.7)[None].repeat(3, 1).requires_grad_() for n, m in masks.items()}
    expected = cost.expected_fraction(gates)
    assert expected.shape == (3,)
    assert expected[0].item() == pytest.approx(cost.kept_fraction(masks), rel=1e-5)  # the value counts exactly
    expected.sum().backward()
    priced = [n for n in names if cost.stream_of(n) is not None]  # a gate into a stream a plain layer also
    assert priced and all(gates[n].grad is not None for n in priced)  # writes changes no cost: no gradient
    assert all(float(gates[n].grad.abs().sum()) > 0 for n in priced)
    full = {n: torch.ones(3, b.out_channels) for n, b in gated_layers(model)}
    assert torch.allclose(cost.expected_fraction(full), torch.ones(3))


def _blocked_macs(cost, masks: dict[str, torch.Tensor], block: int) -> float:
    """MACs per sample as a runtime with `block`-channel convs computes them, counted by hand: a
    conv's outputs rounded up to whole blocks, its inputs too once they fill one."""
    def up(n: int, width: int) -> int:
        return min(-(-n // block) * block, width)

    kept = [int(cost.stream_channels(masks)[i].sum()) for i in range(len(cost.streams))]
    total = 0.0
    for layer in cost.layers:
        n_in = layer.in_channels if layer.stream is None else kept[layer.stream]
        out_stream = cost.stream_of(layer.gate) if layer.gate is not None else None
        n_out = layer.out_channels if out_stream is None or layer.logits else kept[out_stream]
        if layer.conv:
            n_in = n_in if n_in < block else up(n_in, layer.in_channels)
            n_out = up(n_out, layer.out_channels)
        total += layer.macs * n_in / layer.in_channels * n_out / layer.out_channels
    return total


def test_blocked_cost_counts_channels_in_whole_blocks_and_pushes_the_feeding_layer():
    torch.manual_seed(0)
    model = build_model(tiny_spec("vgg16", gate_first=True))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    widths = dict((n, b.out_channels) for n, b in gated_layers(model))
    masks = {n: torch.zeros(w, dtype=torch.bool) for n, w in widths.items()}
    for n, k in zip(names, [8, 2, 5, 16, 3, 20, 32, 1, 9, 64, 17, 4, 40]):
        masks[n][:k] = True
    gates = {n: m.float()[None].repeat(2, 1).requires_grad_() for n, m in masks.items()}
    blocked = cost.expected_fraction(gates, block=8)
    assert blocked[0].item() == pytest.approx(_blocked_macs(cost, masks, 8) / cost.total_macs, rel=1e-5)
    assert blocked[0].item() > cost.expected_fraction(gates)[0].item()  # padding is work too
    # features.1 keeps 2 of its 8 outputs, which a block of 8 computes anyway: what it costs is then
    # its input, so the gradient on the layer feeding it (features.0) counts 8 outputs, not 2.
    blocked.sum().backward()
    pushed = gates["features.0"].grad.clone()
    for g in gates.values():
        g.grad = None
    cost.expected_fraction(gates).sum().backward()
    plain = gates["features.0"].grad
    second = next(layer for layer in cost.layers if layer.name == "features.1")
    per_gate = second.macs / cost.total_macs / widths["features.0"]  # d(input rate)/d(gate) = 1 / width
    assert torch.allclose(pushed - plain, torch.full_like(plain, per_gate * (8 - 2) / 8))
    assert torch.allclose(cost.expected_fraction(gates, block=1), cost.expected_fraction(gates))


def test_free_channels_cost_nothing_and_stop_the_push_below_them():
    torch.manual_seed(0)
    model = build_model(tiny_spec("vgg16", gate_first=True))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    widths = dict((n, b.out_channels) for n, b in gated_layers(model))
    masks = {n: torch.zeros(w, dtype=torch.bool) for n, w in widths.items()}
    for n, k in zip(names, [8, 2, 5, 16, 3, 20, 32, 1, 9, 64, 17, 4, 40]):
        masks[n][:k] = True
    gates = {n: m.float()[None].repeat(2, 1).requires_grad_() for n, m in masks.items()}
    free = cost.expected_fraction(gates, free=4)
    # counted by hand: a layer keeping fewer than 4 channels costs as if it kept 4 (all, if narrower)
    floored = {n: torch.arange(widths[n]) < max(int(m.sum()), min(4, widths[n])) for n, m in masks.items()}
    assert free[0].item() == pytest.approx(cost.kept_fraction(floored), rel=1e-5)
    assert free[0].item() > cost.expected_fraction(gates)[0].item()
    free.sum().backward()
    assert float(gates["features.1"].grad.abs().sum()) == 0  # 2 open, under the free 4: no push to close
    assert float(gates["features.3"].grad.abs().sum()) > 0  # 16 open: pushed as before
    assert torch.allclose(cost.expected_fraction(gates, free=0), cost.expected_fraction(gates))


def test_a_flops_target_charges_only_the_samples_above_it():
    from mwt.losses import modular_loss

    torch.manual_seed(0)
    model = build_model(tiny_spec("vgg16", gate_first=True))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    # sample 0 keeps every kernel (fraction 1), sample 1 a quarter of each layer's
    gates = []
    for _, block in gated_layers(model):
        g = torch.ones(2, block.out_channels)
        g[1, block.out_channels // 4:] = 0
        gates.append(g.requires_grad_())
    logits, labels = torch.zeros(2, 10), torch.tensor([0, 1])
    fraction = cost.expected_fraction(dict(zip(names, gates))).detach()
    low = float(fraction[1])
    assert 0 < low < 0.5 < float(fraction[0]) == pytest.approx(1.0)

    def term(target: float) -> torch.Tensor:
        parts = modular_loss(logits, gates, labels, 0.0, 0.0, 2.0, cost, names, target=target)
        return parts.total - parts.ce

    # counted by hand: each sample pays 2 * (its fraction - 0.5) above the target, nothing below
    assert float(term(0.5).detach()) == pytest.approx(2.0 * (1.0 - 0.5) / 2, rel=1e-5)
    assert float(term(0.0).detach()) == pytest.approx(2.0 * float(fraction.mean()), rel=1e-5)  # 0: the plain term
    term(0.5).backward()
    assert float(gates[3].grad[1].abs().sum()) == 0  # under the budget: no push to close
    assert float(gates[3].grad[0].abs().sum()) > 0  # over it: pushed as before
    assert float(modular_loss(logits, gates, labels, 0.0, 0.0, 2.0, cost, names, target=0.5).flops.detach()) == \
        pytest.approx(float(fraction.mean()), rel=1e-5)  # the log still shows the FLOPs used
