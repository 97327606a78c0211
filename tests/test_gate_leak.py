"""Reopenable gates (`mwt train --gate-leak`): the same forward values, an opening gradient for closed gates
that MwT's gates never get, runs that train with it, and bad values refused in one line."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mwt.cli import main
from mwt.models import ModelSpec, build_model, gated_layers
from mwt.train import train
from mwt.train_config import TrainConfig
from tests.test_training import TINY, _data


def _model(leak: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelSpec("vgg11", 10, 1, (28, 28), width=0.0625, pad=2)).train()
    with torch.no_grad():  # close about half of the gates: fc2's bias from 1 to 0
        for _, block in gated_layers(model):
            block.gate.fc2.bias.zero_()  # type: ignore[union-attr]
            block.gate.leak = leak  # type: ignore[union-attr]
    return model


def _closed_gate_gradients(leak: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, the loss's gradient on every closed gate) of one batch."""
    model = _model(leak)
    x, y = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 10
    logits, gates = model(x)
    for g in gates:
        g.retain_grad()
    F.cross_entropy(logits, y).backward()
    return logits.detach(), torch.cat([g.grad[g.detach() == 0] for g in gates])


def test_a_closed_gate_learns_what_opening_it_would_do_and_the_values_stay():
    plain_logits, plain = _closed_gate_gradients(0.0)
    leaky_logits, leaky = _closed_gate_gradients(0.5)
    assert plain.numel() > 100 and leaky.numel() == plain.numel()
    # MwT's gates: the ReLU after a closed gate leaves it no gradient at all
    assert bool((plain == 0).all())
    # rectified before gating: the same values, and the task says which closed kernels would help open
    assert torch.allclose(plain_logits, leaky_logits, atol=1e-5)
    assert int((leaky < 0).sum()) > 0 and int((leaky > 0).sum()) > 0


def test_a_run_with_reopenable_gates_trains_and_keeps_the_leak_out_of_its_weights():
    data = _data()
    settings = dict(epochs=2, seed=1, flops_target=0.05, budget_adapt=0.2, **TINY)
    plain = train(TrainConfig.from_recipe("reuse", **settings), data, data, show_progress=False)
    leaky = train(TrainConfig.from_recipe("reuse", gate_leak=0.5, **settings), data, data, show_progress=False)
    assert leaky.training["config"]["gate_leak"] == 0.5
    assert leaky.state_dict.keys() == plain.state_dict.keys()
    assert any(not torch.equal(a, b) for a, b in zip(leaky.state_dict.values(), plain.state_dict.values()))
    model = leaky.build()  # a built checkpoint runs MwT's gates, the leak being training's alone
    assert all(block.gate.leak == 0 for _, block in gated_layers(model))  # type: ignore[union-attr]


def test_a_delayed_leak_starts_at_its_epoch():
    data = _data()
    settings = dict(epochs=2, seed=1, flops_target=0.05, budget_adapt=0.2, **TINY)
    plain = train(TrainConfig.from_recipe("reuse", **settings), data, data, show_progress=False)
    never = train(TrainConfig.from_recipe("reuse", gate_leak=0.5, gate_leak_from=3, **settings), data, data,
                  show_progress=False)
    second = train(TrainConfig.from_recipe("reuse", gate_leak=0.5, gate_leak_from=2, **settings), data, data,
                   show_progress=False)
    # a leak that starts after the last epoch changes nothing
    assert all(torch.equal(a, b) for a, b in zip(never.state_dict.values(), plain.state_dict.values()))
    # one that starts at epoch 2: epoch 1 as without it, epoch 2 not
    untimed = [{k: v for k, v in run.training["history"][0].items() if k not in ("seconds", "gate_leak")}
               for run in (second, plain)]
    assert untimed[0] == untimed[1] and second.training["history"][0]["gate_leak"] == 0.0
    assert any(not torch.equal(a, b) for a, b in zip(second.state_dict.values(), plain.state_dict.values()))


def test_a_leak_ramps_in_over_its_warmup_and_is_logged_per_epoch():
    data = _data()
    settings = dict(epochs=4, seed=1, flops_target=0.05, budget_adapt=0.2, gate_leak=0.5, gate_leak_from=2, **TINY)
    ramped = train(TrainConfig.from_recipe("reuse", gate_leak_warmup=2, **settings), data, data, show_progress=False)
    at_once = train(TrainConfig.from_recipe("reuse", **settings), data, data, show_progress=False)
    assert [r["gate_leak"] for r in ramped.training["history"]] == [0.0, 0.25, 0.5, 0.5]
    assert [r["gate_leak"] for r in at_once.training["history"]] == [0.0, 0.5, 0.5, 0.5]
    assert any(not torch.equal(a, b) for a, b in zip(ramped.state_dict.values(), at_once.state_dict.values()))
    plain = train(TrainConfig.from_recipe("reuse", epochs=1, seed=1, **TINY), data, data, show_progress=False)
    assert "gate_leak" not in plain.training["history"][0]  # runs without a leak log no such figure


@pytest.mark.parametrize(("args", "message"), [
    (["--recipe", "reuse", "--gate-leak", "0.1", "--gate-leak-from", "0"], "gate-leak-from"),
    (["--recipe", "reuse", "--gate-leak", "2"], "gate-leak"),
    (["--recipe", "reuse", "--gate-leak", "nan"], "gate-leak"),
    (["--standard", "--gate-leak", "0.1"], "gate-leak"),
    (["--recipe", "reuse", "--gate-leak-warmup", "2"], "gate-leak-warmup"),
    (["--recipe", "reuse", "--gate-leak", "0.1", "--gate-leak-warmup", "-1"], "gate-leak-warmup"),
])
def test_bad_gate_leak_is_one_line(tmp_path, capsys, args, message):
    code = main(["train", "--model", "vgg11", "--width", "0.0625", "--epochs", "1", *args, "-o", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "m.pt").exists()
