"""A FLOPs budget that binds (`mwt train --budget-adapt`): the factor on gamma, the runs it drives
below a target the plain budget leaves them over, and resuming with it."""

from __future__ import annotations

import math

import pytest
import torch

from mwt.budget_pull import MAX_FACTOR, BudgetPull
from mwt.cli import main
from mwt.core.errors import MwtError
from mwt.train import train
from mwt.train_config import TrainConfig
from tests.test_training import TINY, _data, _equal, stopped_and_resumed


def _pull(rate: float = 0.1) -> BudgetPull:
    return BudgetPull(rate, torch.device("cpu"))


def test_the_factor_grows_by_the_relative_excess_and_stays_within_its_range():
    pull = _pull()
    pull.update(torch.tensor(0.3, dtype=torch.float64), 0.2, rows=8)  # 50% over
    assert float(pull.factor) == pytest.approx(math.exp(0.1 * 0.5))
    pull.update(torch.tensor(0.3), torch.full((8,), 0.4), rows=8)  # 25% under: back down
    assert float(pull.factor) == pytest.approx(math.exp(0.1 * 0.5 - 0.1 * 0.25), rel=1e-6)
    pull.update(torch.tensor(0.0), 0.4, rows=8)  # far under: not under 1
    assert float(pull.factor) == 1.0
    for _ in range(500):
        pull.update(torch.tensor(1.0), 0.1, rows=8)
    assert float(pull.factor) == MAX_FACTOR


def test_under_the_target_the_factor_eases_relax_times_faster():
    pull = BudgetPull(0.1, torch.device("cpu"), relax=5)
    for _ in range(3):
        pull.update(torch.tensor(0.3, dtype=torch.float64), 0.2, rows=8)  # 50% over: grows at the rate
    assert float(pull.factor) == pytest.approx(math.exp(3 * 0.1 * 0.5))
    pull.update(torch.tensor(0.36, dtype=torch.float64), 0.4, rows=8)  # 10% under: eases five times as fast
    assert float(pull.factor) == pytest.approx(math.exp(3 * 0.1 * 0.5 - 5 * 0.1 * 0.1))


def test_a_batch_without_rows_leaves_the_factor():
    pull = _pull()
    pull.update(torch.tensor(0.5), 0.2, rows=4)
    before = float(pull.factor)
    pull.update(torch.tensor(float("nan")), torch.empty(0), rows=0)  # every row routed to a sub-task
    assert float(pull.factor) == before


@pytest.mark.parametrize("damage", [{}, "factor", {"factor": torch.tensor(0.5)}, {"factor": torch.tensor(float("nan"))},
                                    {"factor": torch.ones(2)}, {"factor": torch.tensor(MAX_FACTOR * 2)}])
def test_a_malformed_factor_is_one_error(damage):
    with pytest.raises(MwtError, match="budget factor"):
        _pull().load_state_dict(damage)


def test_the_pull_drives_a_run_down_to_a_target_the_plain_budget_leaves_it_over():
    # The reuse recipe's pull (gamma 4) holds this tiny run far above a 5% target (49% of the FLOPs at
    # its third epoch); the factor grows while the samples stay over and brings the run down to it.
    data = _data()
    settings = dict(epochs=3, seed=1, flops_target=0.05, **TINY)
    plain = train(TrainConfig.from_recipe("reuse", **settings), data, data, show_progress=False)
    assert min(r["flops"] for r in plain.training["history"]) > 0.2
    assert "budget_pull" not in plain.training["history"][0]
    slow = train(TrainConfig.from_recipe("reuse", budget_adapt=0.02, **settings), data, data, show_progress=False)
    factors = [r["budget_pull"] for r in slow.training["history"]]
    assert factors == sorted(factors) and factors[0] > 1  # over the target throughout: it only grows
    assert slow.training["history"][-1]["flops"] < plain.training["history"][-1]["flops"]
    fast = train(TrainConfig.from_recipe("reuse", budget_adapt=0.2, **settings), data, data, show_progress=False)
    assert fast.training["history"][-1]["flops"] < 1.5 * 0.05  # bound


def test_relax_eases_a_runs_factor_once_its_samples_are_under_the_target():
    # This tiny run sits over a 50% target through epoch 1 and comes under it in epoch 2.
    data = _data()
    settings = dict(epochs=3, seed=1, flops_target=0.5, budget_adapt=0.05, **TINY)
    one = train(TrainConfig.from_recipe("reuse", **settings), data, data, show_progress=False)
    relaxed = train(TrainConfig.from_recipe("reuse", budget_relax=20, **settings), data, data, show_progress=False)
    one_rate, eased = ([r["budget_pull"] for r in run.training["history"]] for run in (one, relaxed))
    assert one_rate[0] == eased[0] > 1  # over the target: grown at the same rate
    assert eased[-1] < one_rate[-1] - 0.05


def test_the_factor_waits_for_the_flops_weight_to_ramp_in():
    # Over the ramp the samples sit far over the target; a factor grown there would close what the ramp
    # means to close slowly. It starts at the epoch the weight is whole (epoch 2 of a 2-epoch ramp).
    run = train(TrainConfig.from_recipe("reuse", epochs=2, seed=1, flops_target=0.05, budget_adapt=0.2, gamma_warmup=2,
                                        **TINY), _data(), _data(), show_progress=False)
    first, second = run.training["history"]
    assert first["gamma"] < second["gamma"] and first["budget_pull"] == 1.0 < second["budget_pull"]


def test_a_run_with_the_pull_resumes_exactly(tmp_path):
    data = _data()
    config = TrainConfig.from_recipe("reuse", epochs=2, seed=1, flops_target=0.05, budget_adapt=0.2, **TINY)
    whole, halfway, resumed = stopped_and_resumed(config, data, tmp_path)
    assert float(halfway.resume["pull"]["factor"]) > 1
    assert _equal(whole.state_dict, resumed.state_dict)


@pytest.mark.parametrize(("args", "message"), [
    (["--budget-adapt", "0.01"], "--flops-target"),
    (["--flops-target", "0.2", "--budget-adapt", "2"], "budget-adapt"),
    (["--flops-target", "0.2", "--budget-adapt", "nan"], "budget-adapt"),
    (["--flops-target", "0.2", "--budget-adapt", "0.01", "--budget-relax", "0.5"], "budget-relax"),
    (["--flops-target", "0.2", "--budget-relax", "5"], "--budget-adapt"),
])
def test_bad_budget_adapt_is_one_line(tmp_path, capsys, args, message):
    code = main(["train", "--recipe", "reuse", "--model", "vgg11", "--width", "0.0625", "--epochs", "1", *args,
                 "-o", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "m.pt").exists()
