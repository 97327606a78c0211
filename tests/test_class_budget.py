"""Per-class FLOPs budgets and coupling weights (`mwt train --budget-by-loss`, `--coupling-by-loss`):
targets and factors that follow each class's running cross-entropy, the per-row charge they make,
and runs that keep them across a resume."""

from __future__ import annotations

import pytest
import torch

from mwt.class_budget import DECAY, BudgetSettings, ClassBudget
from mwt.core.errors import MwtError
from mwt.cost import cost_model
from mwt.losses import modular_loss
from mwt.models import build_model, gated_layers
from mwt.train import train
from mwt.train_config import TrainConfig
from tests.conftest import tiny_spec
from tests.test_training import TINY, _data, _equal, stopped_and_resumed


def _budget(power: float = 1.0, classes: int = 4, coupling_power: float = 0.0) -> ClassBudget:
    return ClassBudget(classes, BudgetSettings(target=0.2, power=power, coupling_power=coupling_power),
                       torch.device("cpu"))


def test_coupling_factors_fall_with_the_class_loss_within_the_range():
    budget = _budget(coupling_power=1.0)
    assert torch.equal(budget.coupling_factors(), torch.ones(4))  # no loss seen yet: every class the same
    # class 0 twice the mean loss, class 1 the mean, class 2 a quarter of it; class 3 not seen (counts as average)
    budget.update(torch.tensor([2.0, 1.0, 0.25]), torch.tensor([0, 1, 2]))
    mean = (2.0 + 1.0 + 0.25 + 3.25 / 3) / 4
    relative = torch.tensor([2.0, 1.0, 0.25, 3.25 / 3]) / mean
    assert torch.allclose(budget.coupling_factors(), (1 / relative).clamp(0.5, 2.0))
    assert float(budget.coupling_factors()[2]) == 2.0  # the easiest class is parted at most twice as hard
    half = _budget(coupling_power=0.5)
    half.update(torch.tensor([2.0, 1.0, 0.25]), torch.tensor([0, 1, 2]))
    assert torch.allclose(half.coupling_factors(), relative.pow(-0.5).clamp(0.5, 2.0))


def test_every_class_has_the_runs_target_until_a_loss_is_seen():
    budget = _budget()
    assert torch.equal(budget.targets(torch.tensor([0, 3, 1])), torch.full((3,), 0.2))


def test_targets_follow_the_class_losses_to_the_power_within_the_range():
    budget = _budget(power=1.0)
    # class 0 twice the mean loss, class 1 the mean, class 2 a quarter of it; class 3 not seen (counts as average)
    budget.update(torch.tensor([2.0, 1.0, 0.25]), torch.tensor([0, 1, 2]))
    mean = (2.0 + 1.0 + 0.25 + 3.25 / 3) / 4
    expected = torch.tensor([2.0 / mean, 1.0 / mean, 0.25 / mean, (3.25 / 3) / mean], dtype=torch.float64).clamp(0.5, 2.0)
    assert torch.allclose(budget.scales(), expected)
    assert float(budget.scales()[2]) == 0.5  # 0.19 of the mean, held at half the run's target
    assert torch.allclose(budget.targets(torch.tensor([0, 2])), (0.2 * expected[[0, 2]]).float())
    root = _budget(power=0.5)
    root.update(torch.tensor([2.0, 1.0, 0.25]), torch.tensor([0, 1, 2]))
    relative = torch.tensor([2.0, 1.0, 0.25, 3.25 / 3], dtype=torch.float64) / mean
    assert torch.allclose(root.scales(), relative.pow(0.5).clamp(0.5, 2.0))


def test_later_batches_blend_in_at_the_decay_and_absent_classes_keep_theirs():
    budget = _budget()
    budget.update(torch.tensor([1.0, 4.0]), torch.tensor([0, 1]))
    budget.update(torch.tensor([3.0, 5.0]), torch.tensor([0, 0]))  # class 0's batch mean is 4; class 1 absent
    assert float(budget.loss[0]) == pytest.approx(DECAY * 1.0 + (1 - DECAY) * 4.0)
    assert float(budget.loss[1]) == 4.0 and not bool(budget.seen[2])


def test_a_per_row_target_charges_each_row_above_its_own():
    model = build_model(tiny_spec("vgg16", gate_first=True))
    cost = cost_model(model, (1, 28, 28))
    names = [n for n, _ in gated_layers(model)]
    gates = [torch.ones(2, block.out_channels, requires_grad=True) for _, block in gated_layers(model)]
    logits, labels = torch.zeros(2, 10), torch.tensor([0, 1])
    parts = modular_loss(logits, gates, labels, 0.0, 0.0, 2.0, cost, names, target=torch.tensor([0.5, 1.0]))
    # both rows keep everything (fraction 1): row 0 pays 2 * 0.5, row 1 (target 1) nothing; the mean of the two
    assert float((parts.total - parts.ce).detach()) == pytest.approx(2.0 * 0.5 / 2, rel=1e-5)
    parts.total.backward()
    assert float(gates[3].grad[1].abs().sum()) == 0 and float(gates[3].grad[0].abs().sum()) > 0


@pytest.mark.parametrize("damage", [{}, {"loss": torch.zeros(3), "seen": torch.zeros(4, dtype=torch.bool)},
                                    {"loss": torch.full((4,), float("nan")), "seen": torch.ones(4, dtype=torch.bool)},
                                    {"loss": -torch.ones(4), "seen": torch.ones(4, dtype=torch.bool)}, "loss"])
def test_malformed_budget_statistics_are_one_error(damage):
    with pytest.raises(MwtError, match="per-class budget"):
        _budget().load_state_dict(damage)


def test_a_budgeted_run_logs_its_spread_and_resumes_exactly(tmp_path):
    data = _data()
    # a target the rows cross, so the budgets bite (above every target each row's charge has the same gradient)
    config = TrainConfig.from_recipe("reuse", epochs=2, seed=1, flops_target=0.8, budget_by_loss=1.0, **TINY)
    whole, halfway, resumed = stopped_and_resumed(config, data, tmp_path)
    state = halfway.resume["budget"]
    assert state["seen"].all() and (state["loss"] > 0).all()
    assert _equal(whole.state_dict, resumed.state_dict)
    for record in whole.training["history"]:
        assert 0.5 <= record["budget_scale_min"] <= 1.0 <= record["budget_scale_max"] <= 2.0
    # without the budget the same run trains otherwise
    plain = train(TrainConfig.from_recipe("reuse", epochs=2, seed=1, flops_target=0.8, **TINY), data, data,
                  show_progress=False)
    assert "budget_scale_min" not in plain.training["history"][0]
    assert not _equal(whole.state_dict, plain.state_dict)


def test_a_run_with_coupling_by_loss_logs_its_factors_and_resumes_exactly(tmp_path):
    data = _data()
    config = TrainConfig.from_recipe("reuse", epochs=2, seed=1, coupling_by_loss=1.0, **TINY)
    whole, halfway, resumed = stopped_and_resumed(config, data, tmp_path)
    assert halfway.resume["budget"]["seen"].all()
    assert _equal(whole.state_dict, resumed.state_dict)
    for record in whole.training["history"]:
        assert 0.5 <= record["coupling_scale_min"] <= record["coupling_scale_max"] <= 2.0
        assert record["coupling_scale_min"] < record["coupling_scale_max"]  # the classes' losses differ
        assert "budget_scale_min" not in record  # the FLOPs targets stay the run's
    plain = train(TrainConfig.from_recipe("reuse", epochs=2, seed=1, **TINY), data, data, show_progress=False)
    assert not _equal(whole.state_dict, plain.state_dict)
