"""Kernel frequencies, kernel sets with the threshold fallback, KRR, coupling and the simulation."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from mwt.checkpoint import Modularization
from mwt.core.errors import MwtError
from mwt.data import Split
from mwt.defaults import check_align, check_threshold
from mwt.models import build_model, gated_layers
from mwt.modularize import kernel_frequency, module_coupling, retain_only
from mwt.selection import ModuleSelection, class_kernels, krr, module_kernels, retained_kernels
from tests.conftest import random_checkpoint, tiny_spec


def test_class_kernels_threshold_and_fallback():
    freq = torch.tensor([
        [0.95, 0.90, 0.10, 0.00],  # two kernels pass 0.9
        [0.80, 0.86, 0.20, 0.00],  # none passes 0.9: falls back to 0.85 -> kernel 1
        [0.00, 0.00, 0.00, 0.00],  # never active: keeps one kernel, never all
    ])
    keep = class_kernels(freq, 0.9)
    assert keep.tolist() == [[True, True, False, False], [False, True, False, False], [True, False, False, False]]


def test_class_kernels_work_on_numpy_and_torch_alike():
    freq = torch.rand(4, 9) ** 3
    assert class_kernels(freq.numpy(), 0.6).tolist() == class_kernels(freq, 0.6).tolist()


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.01, float("nan"), float("inf")])
def test_threshold_outside_range(threshold):
    with pytest.raises(MwtError, match="threshold"):
        check_threshold(threshold)
    with pytest.raises(MwtError, match="threshold") as e:
        ModuleSelection.of(random_checkpoint("vgg11"), "bag", threshold=threshold)
    assert e.value.options == ("threshold",)


@pytest.mark.parametrize("align", [0, -8, 1025, 2.0, True])
def test_align_outside_range(align):
    with pytest.raises(MwtError, match="align"):
        check_align(align)


def test_a_selection_is_resolved_and_checked_once():
    ckpt = random_checkpoint("resnet18")
    selection = ModuleSelection.of(ckpt, "Sneaker, 8", align=8)
    assert selection.indices == (7, 8) and selection.names == ("sneaker", "bag")
    assert ModuleSelection.of(ckpt, [7, 8]).indices == ModuleSelection.of(ckpt, ["7", "bag"]).indices == (7, 8)
    assert set(selection.kept) == set(ckpt.modularization.layers)
    assert all(not m.flags.writeable for m in selection.kept.values())
    assert selection.krr == krr(selection.kept) and [k.name for k in selection.layers] == list(selection.kept)
    for classes, message in [([7, 7], "named twice"), ([10], "out of range"), ("", "empty"), ("cat", "unknown")]:
        with pytest.raises(MwtError, match=message):
            ModuleSelection.of(ckpt, classes)
    standard = random_checkpoint("vgg11")
    standard.spec = replace(standard.spec, modular=False)
    standard.modularization = None
    assert not ModuleSelection.of(standard, "bag", whole=True).gated  # a network without gates: exported whole
    with pytest.raises(MwtError, match="standard"):
        ModuleSelection.of(standard, "bag")


def _mod() -> Modularization:
    freq = {
        "a": torch.tensor([[1.0, 0.0, 0.95, 0.0], [0.0, 1.0, 0.95, 0.0]]),
        "b": torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
    }
    return Modularization(["a", "b"], freq, {k: v.clone() for k, v in freq.items()}, torch.tensor([10, 10]))


def test_union_krr_and_coupling():
    mod = _mod()
    single = retained_kernels(mod, [0])
    assert single["a"].tolist() == [True, False, True, False] and single["b"].tolist() == [True, False]
    assert krr(single) == pytest.approx(3 / 6)
    union = retained_kernels(mod, [0, 1])
    assert union["a"].tolist() == [True, True, True, False]
    assert krr(union) == pytest.approx(4 / 6)
    # module sets {a0, a2, b0} and {a1, a2, b0}: intersection 2, union 4
    assert module_coupling(mod) == pytest.approx(0.5)


def test_alignment_rounds_up_only_streams_at_least_as_wide_as_the_block():
    # Layer "wide" keeps 5 of 12 kernels, "narrow" 2 of 12; the frequencies order the extras.
    wide = torch.tensor([[1.0] * 5 + [0.5, 0.1, 0.4, 0.3, 0.2, 0.0, 0.0]])
    narrow = torch.tensor([[1.0, 1.0] + [0.5] * 10])
    freq = {"wide": wide, "narrow": narrow}
    mod = Modularization(["wide", "narrow"], freq, {k: v.clone() for k, v in freq.items()}, torch.tensor([10]))
    kept = module_kernels(mod, [0], align=4)
    assert kept["wide"].tolist() == [True] * 6 + [False, True, True] + [False] * 3  # 5 -> 8, by frequency
    assert kept["narrow"].tolist() == [True, True] + [False] * 10  # 2 < 4: left alone
    unaligned, retained = module_kernels(mod, [0], align=1), retained_kernels(mod, [0])
    assert all(np.array_equal(unaligned[k], retained[k]) for k in retained) and int(unaligned["wide"].sum()) == 5


def test_kernel_frequency_counts_per_class():
    torch.manual_seed(0)
    model = build_model(tiny_spec("vgg11"))
    images = (torch.rand(40, 1, 28, 28) * 255).to(torch.uint8)
    labels = torch.arange(40) % 10
    mod = kernel_frequency(model, Split(images, labels), 10, batch_size=16, show_progress=False)
    assert mod.layers == [n for n, _ in gated_layers(model)]
    assert mod.class_counts.tolist() == [4] * 10
    for name, block in gated_layers(model):
        f = mod.frequency[name]
        assert f.shape == (10, block.out_channels) and (f >= 0).all() and (f <= 1).all()
        assert torch.allclose(f * 4, (f * 4).round())  # counts out of 4 samples per class
    assert all(0 <= c <= 1 for c in mod.sample_cohesion)


def test_retain_only_zeroes_unretained_kernels_and_restores():
    torch.manual_seed(0)
    model = build_model(tiny_spec("vgg11")).eval()
    x = torch.rand(2, 1, 28, 28)
    name, block = gated_layers(model)[0]
    keep = torch.zeros(block.out_channels, dtype=torch.bool)
    keep[:2] = True
    seen: dict[str, torch.Tensor] = {}

    def capture(_m, _i, out):
        seen["y"] = out[0]

    with torch.no_grad():
        before = model(x)[0]
        with retain_only(model, {name: keep}):
            handle = block.register_forward_hook(capture)  # runs after the masking hook
            model(x)
            handle.remove()
        y = seen["y"]
        after = model(x)[0]
    assert (y[:, 2:] == 0).all() and (y[:, :2] != 0).any()
    assert torch.equal(before, after)  # hooks are gone after the block
