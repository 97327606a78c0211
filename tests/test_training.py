"""Training runs: reproducible, resumable (after a save or a SIGTERM), and on two processes through
torchrun (gloo on CPU), with distributed modularization equal to a single process's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mwt.cli import main
from mwt.checkpoint import Checkpoint, load_checkpoint
from mwt.data import Split, load_split
from mwt.core.errors import MwtError
from mwt.train import train
from mwt.train_config import TrainConfig
from tests.children import signal_when

TINY = dict(model="vgg11", width=0.0625, batch_size=16, device="cpu")


def _data(n: int = 96, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split((torch.rand(n, 1, 28, 28, generator=g) * 255).to(torch.uint8), torch.arange(n) % 10)


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def stopped_and_resumed(config: TrainConfig, data: Split, folder: Path) -> tuple[Checkpoint, Checkpoint, Checkpoint]:
    """A run straight through, its resumable checkpoint after the first epoch, and that
    checkpoint resumed to the end: (whole, halfway, resumed)."""
    saved = folder / "run.pt"
    whole = train(config, data, data, show_progress=False, save_path=saved, save_every=1)
    halfway = load_checkpoint(saved)
    return whole, halfway, train(config, data, data, show_progress=False, resume=halfway)


def test_same_seed_same_weights():
    data = _data(64)
    config = TrainConfig(epochs=1, seed=5, **TINY)
    assert _equal(train(config, data, data, show_progress=False).state_dict,
                  train(config, data, data, show_progress=False).state_dict)


@pytest.mark.parametrize("recipe", ["paper", "cost", "reuse"])
def test_two_epochs_equal_one_epoch_then_resume(tmp_path, recipe):
    data = _data()
    config = TrainConfig.from_recipe(recipe, epochs=2, seed=1, **TINY)
    saved = tmp_path / "run.pt"
    whole = train(config, data, data, show_progress=False, save_path=saved, save_every=1)
    halfway = load_checkpoint(saved)
    assert halfway.resume is not None and halfway.training["finished"] is False
    assert len(halfway.training["history"]) == 1
    resumed = train(config, data, data, show_progress=False, resume=halfway)
    assert _equal(whole.state_dict, resumed.state_dict)
    assert [h["epoch"] for h in resumed.training["history"]] == [1, 2]


def test_the_weight_decay_reaches_the_optimizer_and_a_resume_keeps_it(tmp_path):
    data = _data(64)
    saved = tmp_path / "run.pt"
    config = TrainConfig(epochs=2, seed=3, weight_decay=0.02, **TINY)
    whole = train(config, data, data, show_progress=False, save_path=saved, save_every=1)
    halfway = load_checkpoint(saved)
    assert {g["weight_decay"] for g in halfway.resume["optimizer"]["param_groups"]} == {0.02}
    assert _equal(whole.state_dict, train(config, data, data, show_progress=False, resume=halfway).state_dict)
    # The decay is felt: the same run without it ends with other, larger weights.
    plain = train(replace(config, weight_decay=0.0), data, data, show_progress=False).state_dict
    norm = lambda sd: sum(float(v.float().norm()) for k, v in sd.items() if k.endswith("weight"))  # noqa: E731
    assert norm(plain) > norm(whole.state_dict)


def test_sigterm_saves_a_resumable_checkpoint_and_resume_completes_it(tmp_path, tiny_fashion_dir):
    args = ["train", "--data-dir", str(tiny_fashion_dir), "--model", "vgg11", "--width", "0.0625", "--epochs", "5",
            "--batch-size", "16", "--seed", "2"]
    out = tmp_path / "run.pt"
    done = signal_when([sys.executable, "-m", "mwt", *args, "--out", str(out)], ["training", "epoch   1"],
                       signal.SIGTERM, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    err = done.stderr
    assert done.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith(f"interrupted: saved a resumable checkpoint to {out}")
    assert load_checkpoint(out).resume is not None
    assert main([*args[:1], "--resume", str(out), "--data-dir", str(tiny_fashion_dir), "-q"]) == 0
    final = load_checkpoint(out)
    assert final.resume is None and final.training["finished"]
    data = load_split("fashion-mnist", "train", tiny_fashion_dir), load_split("fashion-mnist", "test", tiny_fashion_dir)
    config = TrainConfig(model="vgg11", width=0.0625, epochs=5, batch_size=16, seed=2, device="cpu")
    reference = train(config, *data, show_progress=False)
    assert _equal(final.state_dict, reference.state_dict)  # stopping and resuming changed nothing


def test_a_resumed_run_goes_on_saving_as_often_as_it_did(tmp_path, tiny_fashion_dir):
    # The cadence is kept in the checkpoint: `mwt train --resume` without --save-every must not
    # fall back to "save only at the end", which loses every epoch since if the machine goes.
    data = load_split("fashion-mnist", "train", tiny_fashion_dir), load_split("fashion-mnist", "test", tiny_fashion_dir)
    config = TrainConfig(model="vgg11", width=0.0625, epochs=4, batch_size=16, seed=3, device="cpu")
    saved, first = tmp_path / "run.pt", tmp_path / "epoch1.pt"

    def keep_epoch_one(epoch: int, model: torch.nn.Module) -> dict[str, float]:
        if epoch == 2:  # the file still holds epoch 1's periodic save
            first.write_bytes(saved.read_bytes())
        return {}

    train(config, *data, show_progress=False, save_path=saved, save_every=1, on_epoch_end=keep_epoch_one)
    assert load_checkpoint(first).training["save_every"] == 1
    out = tmp_path / "resumed.pt"
    # Killed outright once epoch 3 is reported: only a periodic save (epoch 2's, done before epoch
    # 3 began) can have written `out`.
    done = signal_when([sys.executable, "-m", "mwt", "train", "--resume", str(first), "--out", str(out),
                        "--data-dir", str(tiny_fashion_dir)], ["epoch   3"], signal.SIGKILL,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == -signal.SIGKILL, done.stderr
    again = load_checkpoint(out)
    assert again.resume is not None and len(again.training["history"]) in (2, 3)
    assert again.training["save_every"] == 1


@pytest.mark.parametrize("extra, message", [
    (["--model", "resnet18"], "model resnet18 differs from the run"),
    (["--epochs", "3"], "epochs 3 differs from the run"),
])
def test_resume_refuses_another_run(tmp_path, capsys, tiny_fashion_dir, extra, message):
    data = _data()
    saved = tmp_path / "run.pt"
    train(TrainConfig(epochs=2, **TINY), data, data, show_progress=False, save_path=saved, save_every=1)
    before = saved.read_bytes()
    assert main(["train", "--resume", str(saved), "--data-dir", str(tiny_fashion_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert saved.read_bytes() == before


def test_resume_refuses_a_finished_run_and_amp_on_cpu(tmp_path, capsys, shared_checkpoint_file, tiny_fashion_dir):
    assert main(["train", "--resume", str(shared_checkpoint_file)]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["train", "--amp", "bf16", "--device", "cpu", "--data-dir", str(tiny_fashion_dir),
                 "--out", str(tmp_path / "m.pt")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err and not (tmp_path / "m.pt").exists()


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc), "-m", "mwt",
         *args], capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _ranks_stderr(result: subprocess.CompletedProcess) -> str:
    # The ranks' own lines come first and torchrun's summary (some 2,500 characters) last: keep
    # both ends, so a rank that dies shows what it was doing (a rank aborted once in 8 suite runs).
    err = result.stderr
    return err if len(err) <= 8000 else f"{err[:5000]}\n...\n{err[-3000:]}"


def test_two_processes_train_the_reuse_recipe_while_classes_are_still_unseen(tmp_path, tiny_fashion_dir):
    # Two rows per process and ten classes: for the first steps each process holds classes the other has not
    # seen. Routing keyed to local labels gave the processes different row counts, and their gathers aborted.
    out = tmp_path / "ddp.pt"
    result = torchrun(2, "train", "--data-dir", str(tiny_fashion_dir), "--recipe", "reuse", "--model", "vgg11",
                      "--width", "0.0625", "--epochs", "2", "--batch-size", "4", "--limit", "40", "-q", "--out", str(out))
    assert result.returncode == 0, _ranks_stderr(result)
    ckpt = load_checkpoint(out)
    assert ckpt.training["weights_agree_across_processes"] is True
    assert ckpt.training["history"][-1]["subtask_ce"] > 0  # rows were routed once every class had been seen


def test_two_processes_train_one_model_and_modularize_like_one(tmp_path, capsys, tiny_fashion_dir):
    out = tmp_path / "ddp.pt"
    result = torchrun(2, "train", "--data-dir", str(tiny_fashion_dir), "--model", "vgg11", "--width", "0.0625",
                      "--epochs", "1", "--batch-size", "32", "--out", str(out))
    assert result.returncode == 0, _ranks_stderr(result)
    assert result.stdout.count("epoch   1") == 1  # only rank 0 prints
    ckpt = load_checkpoint(out)
    assert ckpt.training["processes"] == 2 and ckpt.training["weights_agree_across_processes"] is True
    history = ckpt.training["history"]
    assert all(0 <= h["test_acc"] <= 1 and 0 <= h["kernel_rate"] <= 1 and h["loss"] > 0 for h in history)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.jsonl", "ddp.pt"]  # rank 0 wrote, once

    single = tmp_path / "single.pt"
    single.write_bytes(out.read_bytes())
    assert main(["modularize", str(single), "--data-dir", str(tiny_fashion_dir), "-q"]) == 0
    result = torchrun(2, "modularize", str(out), "--data-dir", str(tiny_fashion_dir), "-q")
    assert result.returncode == 0, _ranks_stderr(result)
    a, b = load_checkpoint(single).modularization, load_checkpoint(out).modularization
    assert torch.equal(a.class_counts, b.class_counts)
    for layer in a.layers:
        assert torch.equal(a.frequency[layer], b.frequency[layer])
        torch.testing.assert_close(a.gate_mean[layer], b.gate_mean[layer])


def test_a_batch_that_does_not_split_over_the_processes_is_one_line(tmp_path, capsys, monkeypatch, tiny_fashion_dir):
    # What each of three torchrun processes sees (rank 0 speaks, the others only exit).
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--data-dir", str(tiny_fashion_dir), "--batch-size", "32", "--out", str(tmp_path / "m.pt")]) == 2
    assert capsys.readouterr().err.strip() == ("error: the batch size 32 does not split evenly over 3 processes; "
                                               "use a multiple of 3")
    assert not (tmp_path / "m.pt").exists()


def test_a_missing_rendezvous_is_one_error(monkeypatch):
    from mwt.distributed import join

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(MwtError, match="start the run with torchrun"):
        join(torch.device("cpu"))
    # A rendezvous nobody else joins: rank 1 never comes, so rank 0 gives up after the timeout.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    with pytest.raises(MwtError, match=f"cannot join the process group at 127.0.0.1:{port}"):
        join(torch.device("cpu"), timeout_s=2)


def _kl_to(teacher, student, data: Split) -> float:
    x = data.images.float() / 255
    with torch.no_grad():
        p, log_q = torch.softmax(teacher(x)[0], 1), torch.log_softmax(student(x)[0], 1)
    return float((p * (p.log() - log_q)).sum(1).mean())


def test_a_teacher_is_distilled_into_the_run(tmp_path):
    from mwt.checkpoint import save_checkpoint

    data = _data(64)
    teacher = train(TrainConfig(epochs=2, seed=2, modular=False, **TINY), data, data, show_progress=False)
    path = tmp_path / "teacher.pt"
    save_checkpoint(teacher, path)
    config = TrainConfig.from_recipe("reuse", epochs=3, seed=1, **TINY)
    alone = train(config, data, data, show_progress=False)
    taught = train(TrainConfig.from_recipe("reuse", epochs=3, seed=1, teacher=str(path), distill=10.0, **TINY),
                   data, data, show_progress=False)
    # Learning from the teacher brings the student's answers to the teacher's
    assert _kl_to(teacher.build(), taught.build(), data) < 0.5 * _kl_to(teacher.build(), alone.build(), data)
    assert taught.training["history"][-1]["distill"] > 0 and alone.training["history"][-1]["distill"] == 0
    for bad in (dict(teacher=str(path), distill=0.0), dict(distill=2.0), dict(temperature=2.0)):
        with pytest.raises(MwtError, match="teacher"):
            train(TrainConfig(epochs=1, **bad, **TINY), data, data, show_progress=False)


def test_the_teachers_similarity_term_joins_the_loss(tmp_path):
    from mwt.checkpoint import save_checkpoint

    data = _data(64)
    teacher = train(TrainConfig(epochs=2, seed=2, modular=False, **TINY), data, data, show_progress=False)
    path = tmp_path / "teacher.pt"
    save_checkpoint(teacher, path)
    config = TrainConfig.from_recipe("reuse", epochs=2, seed=1, teacher=str(path), **TINY)
    logits_only = train(config, data, data, show_progress=False)
    both = train(replace(config, similarity=1000.0), data, data, show_progress=False)
    assert both.training["history"][-1]["similarity"] > 0 and logits_only.training["history"][-1]["similarity"] == 0
    # the same seed and data: only the term's gradients can tell the two runs' weights apart
    assert any(not torch.equal(a, b) for a, b in zip(both.state_dict.values(), logits_only.state_dict.values()))
    for bad in (dict(similarity=1.0), dict(teacher=str(path), similarity=-1.0),
                dict(teacher=str(path), similarity=float("nan"))):
        with pytest.raises(MwtError, match="similarity"):
            train(TrainConfig(epochs=1, **bad, **TINY), data, data, show_progress=False)


def test_the_teachers_answers_kept_once_train_as_the_teacher_run_batch_by_batch(tmp_path, monkeypatch):
    import mwt.train as training
    from mwt.checkpoint import save_checkpoint
    from mwt.registry import DATASETS

    data = _data(80)  # 5 batches of 16: every step reads its own rows of the kept answers
    teacher = train(TrainConfig(epochs=2, seed=2, modular=False, **TINY), data, data, show_progress=False)
    path = tmp_path / "teacher.pt"
    save_checkpoint(teacher, path)
    config = TrainConfig.from_recipe("reuse", epochs=2, seed=1, teacher=str(path), similarity=1000.0, **TINY)
    kept = train(config, data, data, show_progress=False)
    whole, _, resumed = stopped_and_resumed(config, data, tmp_path)
    assert _equal(kept.state_dict, whole.state_dict) and _equal(whole.state_dict, resumed.state_dict)
    with monkeypatch.context() as m:  # the teacher run on each batch, as an augmented dataset needs
        m.setattr(training, "fits", lambda *_: False)
        per_batch = train(config, data, data, show_progress=False)
    for a, b in zip(kept.state_dict.values(), per_batch.state_dict.values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4)
    last, other = kept.training["history"][-1], per_batch.training["history"][-1]
    assert last["distill"] > 0 and last["similarity"] > 0
    assert last["distill"] == pytest.approx(other["distill"], rel=1e-4)
    assert last["similarity"] == pytest.approx(other["similarity"], rel=1e-4)
    # augmented images differ from epoch to epoch: nothing is kept
    monkeypatch.setattr(training, "answer_all", lambda *_, **__: pytest.fail("answers kept for augmented images"))
    augmented = replace(DATASETS["fashion-mnist"], augment="crop")
    assert train(config, data, data, show_progress=False, info=augmented).training["history"][-1]["distill"] > 0


def test_the_learning_rate_warms_up_without_moving_the_schedule_and_resumes_within_the_warmup(tmp_path):
    data = _data(64)
    config = TrainConfig.from_recipe("reuse", epochs=3, seed=2, lr_warmup=2, **TINY)
    start = train(replace(config, epochs=1, lr=1e-12), data, data, show_progress=False).state_dict  # ~ the init
    saved, cold_saved = tmp_path / "run.pt", tmp_path / "cold.pt"
    whole = train(config, data, data, show_progress=False, save_path=saved, save_every=1)
    train(replace(config, lr_warmup=0), data, data, show_progress=False, save_path=cold_saved, save_every=1)
    halfway, cold_halfway = load_checkpoint(saved), load_checkpoint(cold_saved)
    # Resumed halfway through the warm-up, the run ends with the same weights as the one never stopped.
    assert _equal(whole.state_dict, train(config, data, data, show_progress=False, resume=halfway).state_dict)
    # The schedule's rate is the cold run's; only the steps are scaled.
    lrs = lambda ck: [g["lr"] for g in ck.resume["optimizer"]["param_groups"]]  # noqa: E731
    assert lrs(halfway) == lrs(cold_halfway)
    # The warmed run's first epoch moved the convolutions less far from where they started.
    moved = lambda sd: sum(float((sd[k] - start[k]).norm()) for k in start if k.endswith("conv.weight"))  # noqa: E731
    assert 0 < moved(halfway.state_dict) < moved(cold_halfway.state_dict)
    with pytest.raises(MwtError, match="lr warmup"):
        train(TrainConfig(epochs=1, lr_warmup=-1, **TINY), data, data, show_progress=False)


def test_the_flops_weight_ramps_up_over_its_warmup_epochs():
    data = _data(32)
    config = TrainConfig.from_recipe("cost", epochs=3, gamma_warmup=2, **TINY)
    history = train(config, data, data, show_progress=False).training["history"]
    assert [h["gamma"] for h in history] == [config.gamma / 2, config.gamma, config.gamma]
    with pytest.raises(MwtError, match="gamma warmup"):
        train(TrainConfig(epochs=1, gamma_warmup=-1, **TINY), data, data, show_progress=False)


@pytest.mark.parametrize("warmup", ["lr_warmup", "beta_warmup", "gamma_warmup"])
@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_a_warmup_is_a_whole_number_of_epochs(warmup: str, bad: object):
    # A bool is an int to Python, but `lr_warmup=True` is a mistake, not one epoch.
    with pytest.raises(MwtError, match=warmup.replace("_", " ")):
        TrainConfig(epochs=1, **{warmup: bad}, **TINY).validate()


def test_the_blocked_flops_term_trains_and_bad_blocks_free_channels_or_targets_are_refused():
    data = _data(32)
    config = TrainConfig.from_recipe("cost", epochs=1, cost_block=8, free_channels=2, flops_target=0.2,
                                     coupling_by_cost=True, **TINY)
    history = train(config, data, data, show_progress=False).training["history"]
    assert 0 < history[-1]["flops"] <= 1 and history[-1]["loss"] == history[-1]["loss"]
    plain = train(replace(config, coupling_by_cost=False), data, data, show_progress=False).training["history"]
    assert history[0]["coupling"] != plain[0]["coupling"]  # the weights reach the loss
    for bad, message in ((dict(cost_block=0), "cost block"), (dict(cost_block=2000), "cost block"),
                         (dict(cost_block=True), "cost block"), (dict(cost_block=8, gamma=0.0), "FLOPs term"),
                         (dict(free_channels=-1), "free channels"), (dict(free_channels=2.5), "free channels"),
                         (dict(free_channels=4, gamma=0.0), "FLOPs term"),
                         (dict(flops_target=-0.1), "FLOPs target"), (dict(flops_target=1.0), "FLOPs target"),
                         (dict(flops_target=float("nan")), "FLOPs target"), (dict(flops_target=True), "FLOPs target"),
                         (dict(flops_target=0.2, gamma=0.0), "FLOPs term"),
                         (dict(coupling_by_cost=1), "coupling by cost"),
                         (dict(coupling_by_cost=True, beta=0.0), "coupling loss, which")):
        with pytest.raises(MwtError, match=message):
            train(TrainConfig.from_recipe("cost", epochs=1, **{**TINY, **bad}), data, data, show_progress=False)


def test_gate_losses_on_the_generators_only_train_another_network_and_bad_scopes_are_refused():
    data = _data(32)
    config = TrainConfig.from_recipe("reuse", epochs=1, **TINY)
    network = train(config, data, data, show_progress=False)
    generators = train(replace(config, gate_losses="generators"), data, data, show_progress=False)
    assert generators.training["config"]["gate_losses"] == "generators"
    last = generators.training["history"][-1]
    assert last["loss"] == last["loss"] and last["decisiveness"] > 0
    # the same seed and data: only where the gate losses' gradients go differs, and the convs see it
    conv = next(k for k in network.state_dict if k.endswith("conv.weight"))
    assert not torch.equal(network.state_dict[conv], generators.state_dict[conv])
    for bad, message in ((dict(gate_losses="backbone"), "gate losses train one of"),
                         (dict(gate_losses="generators", modular=False), "standard model has no gates")):
        with pytest.raises(MwtError, match=message):
            train(replace(config, **bad), data, data, show_progress=False)


def test_settle_epochs_freeze_the_generators_turn_the_gate_losses_off_and_bad_counts_are_refused():
    data = _data(32)
    config = TrainConfig.from_recipe("reuse", epochs=3, settle_epochs=2, **TINY)

    def weights_by_epoch(config: TrainConfig) -> tuple[dict[int, dict[str, torch.Tensor]], list[dict]]:
        seen: dict[int, dict[str, torch.Tensor]] = {}

        def keep(epoch: int, model: torch.nn.Module) -> dict:
            seen[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return {}
        history = train(config, data, data, show_progress=False, on_epoch_end=keep).training["history"]
        return seen, history

    settled, history = weights_by_epoch(config)
    plain, _ = weights_by_epoch(replace(config, settle_epochs=0))
    generators = [k for k in settled[1] if ".gate." in k]
    convs = [k for k in settled[1] if k.endswith("conv.weight")]
    assert generators and convs
    # Settling: the generators stay as epoch 1 left them while the convs go on learning
    assert all(torch.equal(settled[1][k], settled[3][k]) for k in generators)
    assert any(not torch.equal(settled[1][k], settled[3][k]) for k in convs)
    # without it, the same run's generators do change
    assert any(not torch.equal(plain[1][k], plain[3][k]) for k in generators)
    assert history[0]["beta"] > 0 and history[0]["decisiveness"] > 0
    assert [(h["alpha"], h["beta"], h["gamma"], h["decisiveness"]) for h in history[1:]] == [(0.0, 0.0, 0.0, 0.0)] * 2
    assert history[-1]["subtask_ce"] > 0  # the sub-task route still trains
    for bad, message in ((dict(settle_epochs=3), "leaves no epoch"), (dict(settle_epochs=-1), "settle epochs"),
                         (dict(settle_epochs=1.5), "settle epochs"), (dict(settle_epochs=True), "settle epochs"),
                         (dict(settle_epochs=1, modular=False, reuse=0.0), "standard model has none")):
        with pytest.raises(MwtError, match=message):
            train(replace(config, **bad), data, data, show_progress=False)


@pytest.mark.parametrize("teacher, message", [("missing.pt", "is not a file"), ("other.pt", "answers the classes")])
def test_a_teacher_that_cannot_teach_is_one_line(tmp_path, capsys, tiny_fashion_dir, teacher, message):
    import dataclasses

    from mwt.checkpoint import save_checkpoint
    from tests.synthetic import random_checkpoint

    other = random_checkpoint("vgg11")
    save_checkpoint(dataclasses.replace(other, classes=[f"c{i}" for i in range(10)]), tmp_path / "other.pt")
    code = main(["train", "--model", "vgg11", "--width", "0.0625", "--epochs", "1", "--data-dir", str(tiny_fashion_dir),
                 "--teacher", str(tmp_path / teacher), "--out", str(tmp_path / "m.pt"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "m.pt").exists()
