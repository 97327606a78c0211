"""The checkpoint format: safe loading, round trips, atomic writes, and every way a file can be wrong."""

import os
import pickle

import pytest
import torch

from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.core.errors import MwtError
from tests.conftest import random_checkpoint


def test_round_trip_under_weights_only(tmp_path):
    ckpt = random_checkpoint("resnet18")
    path = tmp_path / "m.pt"
    save_checkpoint(ckpt, path)
    raw = torch.load(path, weights_only=True)  # plain data only: no code can run
    assert raw["format"] == "mwt-checkpoint" and raw["format_version"] == 1
    back = load_checkpoint(path)
    assert back.spec == ckpt.spec and back.classes == ckpt.classes
    assert back.modularization.layers == ckpt.modularization.layers
    for k, v in ckpt.state_dict.items():
        assert torch.equal(back.state_dict[k], v)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(back.build()(x)[0], ckpt.build()(x)[0])


def test_missing_file(tmp_path):
    with pytest.raises(MwtError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path, checkpoint_file):
    data = checkpoint_file.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(MwtError, match="truncated or corrupt"):
        load_checkpoint(bad)


def test_not_ours(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(MwtError, match="not an mwt checkpoint"):
        load_checkpoint(path)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(MwtError):
        load_checkpoint(text)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/mwt-pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "mwt-checkpoint", "x": Payload()}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(MwtError, match="pickled objects"):
        load_checkpoint(path)
    assert not os.path.exists("/tmp/mwt-pwned")


def test_failed_write_keeps_existing_file(tmp_path, checkpoint_file, monkeypatch):
    before = checkpoint_file.read_bytes()

    def explode(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(OSError):
        save_checkpoint(random_checkpoint(), checkpoint_file)
    assert checkpoint_file.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temp file left behind
