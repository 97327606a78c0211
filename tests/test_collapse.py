"""The collapse guard (mwt.collapse, `mwt train --collapse-drop`): a sharp fall of training accuracy, or a loss
that is no longer finite, rewinds the run two epochs and halves its learning rate; a healthy run is left exactly
as it was."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from dataclasses import replace

import pytest
import torch

from mwt.checkpoint import load_checkpoint
from mwt.collapse import MAX_REWINDS, SnapshotRing, detect
from mwt.core.errors import Interrupted, MwtError, MwtWarning
from mwt.data import Split
from mwt.run_state import RunState
from mwt.train import train
from mwt.train_config import TrainConfig

TINY = dict(model="vgg11", width=0.0625, batch_size=16, device="cpu")


def _learnable(n: int = 640) -> Split:
    """Images whose brightness says their class: a tiny network fits them within a few epochs."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = y[:, None, None, None].float() * 25 + torch.rand(n, 1, 28, 28, generator=g) * 20
    return Split(x.clamp(0, 255).to(torch.uint8), y)


def _scrambler(at: int, times: int = 1):
    """An epoch hook that scrambles every weight after epoch `at` (the first `times` times it gets
    there), so that the next epoch's training accuracy falls as in a collapse."""
    done: list[int] = []

    def hook(epoch: int, model: torch.nn.Module) -> dict:
        if epoch == at and len(done) < times:
            done.append(epoch)
            gen = torch.Generator().manual_seed(len(done))
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(torch.randn(p.shape, generator=gen))
        return {}
    return hook


def _poisoner(at: int, times: int = 1):
    """An epoch hook that sets every weight to NaN after epoch `at` (the first `times` times it gets there), so
    that the next epoch's loss is not finite, as in a run that diverged."""
    done: list[int] = []

    def hook(epoch: int, model: torch.nn.Module) -> dict:
        if epoch == at and len(done) < times:
            done.append(epoch)
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))
        return {}
    return hook


def _events(log, key: str = "collapse") -> list[dict]:
    return [json.loads(line)[key] for line in log.read_text().splitlines() if f'"{key}"' in line]


CONFIG = TrainConfig.from_recipe("cost", epochs=5, seed=0, collapse_drop=0.05, **TINY)


def test_a_fall_rewinds_two_epochs_halves_the_learning_rate_and_a_resume_keeps_the_cut(tmp_path):
    data, log, saved, after2 = _learnable(), tmp_path / "run.jsonl", tmp_path / "run.pt", tmp_path / "after2.pt"
    scramble = _scrambler(3)

    def keep_epoch_2_then_scramble(epoch: int, model: torch.nn.Module) -> dict:
        if epoch == 3 and not after2.exists():  # the periodic save still holds epoch 2
            shutil.copy(saved, after2)
        return scramble(epoch, model)
    with pytest.warns(MwtWarning, match="rewound to the end of epoch 2 with the learning rate x0.5"):
        whole = train(CONFIG, data, data, show_progress=False, on_epoch_end=keep_epoch_2_then_scramble, log_path=log,
                      save_path=saved, save_every=1)
    history = whole.training["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert {h["gamma"] for h in history} == {CONFIG.gamma}  # the budget is left as it was
    # the learning rate, halved at the rewind, follows the cosine schedule at half height from there
    cosine = [CONFIG.lr * (1 + math.cos(math.pi * e / CONFIG.epochs)) / 2 for e in range(1, 6)]
    assert [h["lr"] for h in history] == pytest.approx(cosine[:2] + [c / 2 for c in cosine[2:]], abs=1e-12)
    (event,) = _events(log)
    assert event["epoch"] == 4 and event["rewound_to"] == 2 and event["lr_factor"] == 0.5
    assert event["before"] - event["train_acc"] >= 0.05
    assert event["record"]["epoch"] == 4 and event["record"]["train_acc"] == event["train_acc"]  # the abandoned epoch
    # the periodic checkpoint after epoch 4 carries the rewind, and resuming it ends where the run did
    halfway = load_checkpoint(saved)
    assert halfway.resume["rewinds"] == 1
    assert halfway.resume["optimizer"]["param_groups"][0]["lr"] == pytest.approx(cosine[3] / 2, abs=1e-12)
    resumed = train(CONFIG, data, data, show_progress=False, resume=halfway)
    assert all(torch.equal(whole.state_dict[k], resumed.state_dict[k]) for k in whole.state_dict)
    # a run resumed after epoch 2 that falls the same way rewinds to the state it resumed from
    with pytest.warns(MwtWarning, match="rewound to the end of epoch 2"):
        again = train(CONFIG, data, data, show_progress=False, resume=load_checkpoint(after2),
                      on_epoch_end=_scrambler(3))
    assert all(torch.equal(whole.state_dict[k], again.state_dict[k]) for k in whole.state_dict)


def test_without_the_guard_the_fall_stays_and_a_healthy_run_is_the_same_with_it(tmp_path):
    data, log = _learnable(), tmp_path / "off.jsonl"
    off = train(replace(CONFIG, collapse_drop=0.0), data, data, show_progress=False, on_epoch_end=_scrambler(3),
                log_path=log)
    history = off.training["history"]
    assert history[2]["train_acc"] - history[3]["train_acc"] >= 0.05  # the fall the guard answers
    assert {h["gamma"] for h in history} == {CONFIG.gamma} and not _events(log)
    guarded = train(CONFIG, data, data, show_progress=False)
    unguarded = train(replace(CONFIG, collapse_drop=0.0), data, data, show_progress=False)
    assert all(torch.equal(guarded.state_dict[k], unguarded.state_dict[k]) for k in guarded.state_dict)


def test_past_its_rewinds_the_guard_warns_and_the_run_goes_on(tmp_path):
    data, log = _learnable(), tmp_path / "run.jsonl"
    with pytest.warns(MwtWarning) as caught:
        run = train(CONFIG, data, data, show_progress=False, on_epoch_end=_scrambler(3, times=MAX_REWINDS + 1),
                    log_path=log)
    said = [str(w.message) for w in caught]
    assert [f"rewind {i} of {MAX_REWINDS}" in m for i, m in enumerate(said[:-1], 1)] == [True] * MAX_REWINDS
    assert f"rewound {MAX_REWINDS} times already and it goes on" in said[-1]
    events = _events(log)
    assert [e["rewound_to"] for e in events] == [2] * MAX_REWINDS + [None]
    assert [e["lr_factor"] for e in events[:-1]] == [0.5 ** (i + 1) for i in range(MAX_REWINDS)]
    history = run.training["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    cosine = CONFIG.lr * (1 + math.cos(math.pi * 3 / CONFIG.epochs)) / 2  # every rewind went back to epoch 2
    assert history[2]["lr"] == pytest.approx(cosine * 0.5 ** MAX_REWINDS, abs=1e-12)


@pytest.mark.parametrize(("images", "found_at"), [(640, 20), (160, 10)])  # the check every 20 steps; the epoch's end
def test_a_divergence_rewinds_two_epochs_and_the_run_goes_on(tmp_path, images, found_at):
    data, log = _learnable(images), tmp_path / "run.jsonl"
    # the weights poisoned after epoch 3 are in that epoch's snapshot too: the rewind goes to epoch 2's
    with pytest.warns(MwtWarning, match=f"epoch 4's loss was not finite by step {found_at} .* rewound to the end of "
                                        "epoch 2 with the learning rate x0.5"):
        run = train(CONFIG, data, data, show_progress=False, on_epoch_end=_poisoner(3), log_path=log)
    history = run.training["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert all(math.isfinite(h["loss"]) for h in history)
    assert all(bool(torch.isfinite(v).all()) for v in run.state_dict.values() if v.is_floating_point())
    cosine = [CONFIG.lr * (1 + math.cos(math.pi * e / CONFIG.epochs)) / 2 for e in range(1, 6)]
    assert [h["lr"] for h in history] == pytest.approx(cosine[:2] + [c / 2 for c in cosine[2:]], abs=1e-12)
    (event,) = _events(log, "divergence")
    assert event["epoch"] == 4 and event["step"] == found_at and event["rewound_to"] == 2 and event["lr_factor"] == 0.5
    assert not _events(log)  # no collapse besides


def test_a_divergence_past_the_rewinds_or_unguarded_ends_the_run_with_the_error(tmp_path):
    data, log = _learnable(), tmp_path / "run.jsonl"
    with pytest.warns(MwtWarning) as caught, pytest.raises(MwtError, match="not finite; 3 rewinds at a lower learning rate did not help"):
        train(CONFIG, data, data, show_progress=False, on_epoch_end=_poisoner(3, times=MAX_REWINDS + 1), log_path=log)
    assert [f"rewind {i} of {MAX_REWINDS}" in str(w.message) for i, w in enumerate(caught, 1)] == [True] * MAX_REWINDS
    assert [e["rewound_to"] for e in _events(log, "divergence")] == [2] * MAX_REWINDS + [None]
    with pytest.raises(MwtError, match=r"^training diverged \(the loss is not finite\); try a smaller learning rate$"):
        train(replace(CONFIG, collapse_drop=0.0), data, data, show_progress=False, on_epoch_end=_poisoner(3))


def test_a_stop_asked_for_after_a_divergence_saves_the_rewound_run(tmp_path):
    # The stop lands one step into epoch 4, before the next check of the sums: the poisoned state is rewound, and
    # the save holds epoch 2's weights one step on, not NaN.
    data, saved = _learnable(), tmp_path / "run.pt"
    poison = _poisoner(3)

    def poison_then_stop(epoch: int, model: torch.nn.Module) -> dict:
        if epoch == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return poison(epoch, model)
    with pytest.warns(MwtWarning, match="by step 1 .* rewound to the end of epoch 2"), pytest.raises(Interrupted):
        train(CONFIG, data, data, show_progress=False, on_epoch_end=poison_then_stop, save_path=saved)
    stopped = load_checkpoint(saved)
    assert stopped.resume["epoch"] == 2 and stopped.resume["step"] == 1 and stopped.resume["rewinds"] == 1
    assert all(bool(torch.isfinite(v).all()) for v in stopped.state_dict.values() if v.is_floating_point())


def test_a_run_resumed_within_an_epoch_has_no_boundary_to_rewind_to_until_that_epoch_ends(tmp_path):
    data, saved = _learnable(), tmp_path / "run.pt"
    scramble = _scrambler(3)

    def scramble_then_stop(epoch: int, model: torch.nn.Module) -> dict:
        if epoch == 3:  # stopped one step into epoch 4, with the weights scrambled
            os.kill(os.getpid(), signal.SIGINT)
        return scramble(epoch, model)
    with pytest.raises(Interrupted):
        train(CONFIG, data, data, show_progress=False, on_epoch_end=scramble_then_stop, save_path=saved)
    stopped = load_checkpoint(saved)
    assert stopped.resume["epoch"] == 3 and stopped.resume["step"] == 1
    with pytest.warns(MwtWarning, match="no earlier epoch's state is kept .* and it goes on"):
        run = train(CONFIG, data, data, show_progress=False, resume=stopped)
    history = run.training["history"]
    assert history[2]["train_acc"] - history[3]["train_acc"] >= 0.05  # the fall is kept, told, not rewound


def test_detection_and_the_snapshot_ring():
    # P1s1's epochs 8 and 9 (stop 50), on 60,000 images
    before, fell = {"train_acc": 0.856, "coupling": 0.77}, {"train_acc": 0.683, "coupling": 0.85, "epoch": 9, "gamma": 4}
    found = detect(before, fell, 0.08, 60_000)
    assert found is not None and found.epoch == 9 and "17.3 pp" in found.describe()
    assert detect(None, fell, 0.08, 60_000) is None
    assert detect(before, {**fell, "train_acc": 0.79}, 0.08, 60_000) is None  # under the drop
    assert detect(before, fell, 0.0, 60_000) is None  # 0 is off
    assert detect(before, {**fell, "gamma": 0.0}, 0.08, 60_000) is None  # no FLOPs term to back off
    assert detect(before, fell, 0.08, 32) is None  # on 32 images a 17 pp swing is noise
    ring = SnapshotRing()
    assert ring.oldest() is None
    weights = {"w": torch.zeros(2)}
    for epoch in range(4):
        ring.keep(epoch, weights)
        weights["w"] += 1  # the ring holds copies: training goes on freely
    oldest = ring.oldest()
    assert oldest is not None and oldest.epoch == 2 and oldest.state["w"].tolist() == [2.0, 2.0]
    oldest.state["w"] += 5  # and hands out copies: a snapshot can be restored twice
    assert ring.oldest().state["w"].tolist() == [2.0, 2.0]
    ring.drop_after(2)
    assert ring.oldest().epoch == 2


@pytest.mark.parametrize("drop", [-0.1, 1.0, math.nan, True, "0.1"])
def test_a_bad_collapse_drop_is_refused(drop):
    data = _learnable(32)
    with pytest.raises(MwtError, match="collapse-drop"):
        train(replace(CONFIG, epochs=1, collapse_drop=drop), data, data, show_progress=False)


@pytest.mark.parametrize("value", [-1, MAX_REWINDS + 1, 1.0, "1"])
def test_a_damaged_rewind_count_in_a_checkpoint_is_refused(value):
    state = RunState(rewinds=value).to_dict()
    with pytest.raises(MwtError, match="resume state is damaged"):
        RunState.from_dict(state, 5)


def test_a_stop_51_checkpoint_with_a_flops_weight_backoff_resumes_at_the_whole_weight():
    # stop 51's guard halved the FLOPs weight and kept the factor in the state; it is read and let go
    saved = RunState(rewinds=1, generator=torch.Generator().get_state()).to_dict()
    state = RunState.from_dict({**saved, "backoff": 0.5}, 5)
    assert state.rewinds == 1 and not hasattr(state, "backoff")
