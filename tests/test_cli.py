"""The `mwt` command through its real entry point: a real run end to end, and every bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mwt.checkpoint import load_checkpoint, save_checkpoint
from mwt.core.metadata import ModuleMetadata
from tests.conftest import TRAINED_IMAGES, needs_fashion_mnist, random_checkpoint, run


def one_line_error(code: int, err: str, message: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


@needs_fashion_mnist
def test_train_modularize_eval_export_end_to_end(tmp_path, capsys, trained_run):
    # trained_run is `mwt train` then `mwt modularize` on the first 2,048 images (tests/conftest.py)
    ckpt = trained_run.checkpoint
    log = [r for r in map(json.loads, trained_run.log.read_text().splitlines()) if "epoch" in r]
    assert [r["epoch"] for r in log] == [1, 2] and all(0 <= r["kernel_rate"] <= 1 for r in log)
    assert log[-1]["test_acc"] > 0.3  # far above chance (0.1) after 2 small epochs
    assert "mean module KRR" in trained_run.modularize_out and "coupling" in trained_run.modularize_out
    # one row per class, then their union: never below any one class's module, never above the model
    table = trained_run.modularize_out.split("\n\n")[0].splitlines()[1:]
    figures = {row[:14].strip(): [float(v) for v in re.findall(r"([\d.]+)%", row)[:2]] for row in table}
    union, classes = figures.pop("all classes"), list(figures.values())
    assert len(classes) == 10 and all(union[i] >= max(c[i] for c in classes) for i in (0, 1))
    assert union[0] <= 100 and union[1] <= 100
    mod = load_checkpoint(ckpt).modularization
    assert mod is not None and int(mod.class_counts.sum()) == TRAINED_IMAGES

    code, out, err = run(capsys, "eval", str(ckpt), "--classes", "trouser,bag", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["samples"] == 2000 and 0 < report["krr"] <= 1
    assert report["full_acc"] > 0.5

    onnx_path = tmp_path / "tb.onnx"
    code, out, err = run(capsys, "export", str(ckpt), "--classes", "trouser,bag", "--align", "1", "-o", str(onnx_path))
    assert code == 0, err
    # The exported module's accuracy on the same 2000 test images is the simulated module's, exactly.
    from mwt.data import load_split
    test = load_split("fashion-mnist", "test").where([1, 8])
    x = test.images.float().div(255).numpy()
    logits = ort.InferenceSession(str(onnx_path)).run(["logits"], {"input": x})[0]
    y = torch.where(test.labels == 1, 0, 1).numpy()
    assert float((logits.argmax(1) == y).mean()) == pytest.approx(report["module_acc"], abs=1e-9)




@pytest.mark.parametrize("args, message", [
    (["train", "--model", "alexnet"], "'alexnet' is not one of 'vgg16', 'vgg11', 'simcnn', 'rescnn', 'resnet18'"),
    (["train", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["train", "--epochs", "0"], "Invalid value for '--epochs': Input should be greater than or equal to 1"),
    (["train", "--epochs", "-3"], "Invalid value for '--epochs'"),
    (["train", "--width", "nan"], "Invalid value for '--width': must be a finite number"),
    (["train", "--width", "5"], "Invalid value for '--width': must be <= 4"),
    (["train", "--lr", "inf"], "Invalid value for '--lr': must be a finite number"),
    (["train", "--recipe", "magic"], "'magic' is not one of 'paper', 'cost'"),
    (["train", "--out", "/nonexistent/dir/m.pt"], "does not exist"),
    (["train", "--no-such-flag"], "No such option"),
    (["train", "--epochs", "many"], "--epochs"),
    (["modularize", "missing.pt"], "does not exist"),
    (["eval", "missing.pt", "--classes", "bag"], "does not exist"),
])
def test_bad_input(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *args)
    one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("classes, message", [
    ("cat", "unknown class 'cat'; valid classes: t-shirt"),
    ("", "empty"),
    ("bag,Bag", "named twice"),
])
def test_bad_class_lists(checkpoint_file, capsys, classes, message):
    code, _, err = run(capsys, "eval", str(checkpoint_file), "--classes", classes)
    one_line_error(code, err, message)


@pytest.mark.parametrize("threshold", ["0", "1.2", "-1", "nan"])
def test_bad_threshold(checkpoint_file, capsys, threshold):
    code, _, err = run(capsys, "eval", str(checkpoint_file), "--classes", "bag", "--threshold", threshold)
    one_line_error(code, err, "Invalid value for '--threshold'")
    code, _, err = run(capsys, "modularize", str(checkpoint_file), "--threshold", threshold)
    one_line_error(code, err, "Invalid value for '--threshold'")


@pytest.mark.parametrize("limit", ["-0.1", "nan", "inf", "lots"])
def test_bad_pad_limit_is_refused_in_one_line_and_writes_nothing(tmp_path, checkpoint_file, capsys, limit):
    out = tmp_path / "m.onnx"
    code, _, err = run(capsys, "export", str(checkpoint_file), "--classes", "bag,coat", "--pad-limit", limit,
                       "-o", str(out))
    one_line_error(code, err, "Invalid value for '--pad-limit'")
    assert not out.exists()


@pytest.mark.parametrize("command", ["export", "eval"])
def test_unknown_rounding_is_refused_in_one_line_and_writes_nothing(tmp_path, checkpoint_file, capsys, command):
    out = tmp_path / "m.onnx"
    extra = ["--classes", "bag,coat", "-o", str(out)] if command == "export" else ["--all-pairs"]
    code, _, err = run(capsys, command, str(checkpoint_file), *extra, "--rounding", "sideways")
    one_line_error(code, err, "Invalid value for '--rounding'")
    assert not out.exists()


def test_export_rounded_down_keeps_whole_blocks_and_says_so(tmp_path, checkpoint_file, capsys):
    layers = {}
    for rounding in ("up", "down"):
        out = tmp_path / f"{rounding}.onnx"
        code, _, err = run(capsys, "export", str(checkpoint_file), "--classes", "bag,coat", "--align", "4",
                           "--rounding", rounding, "-o", str(out))
        assert code == 0, err
        meta = ModuleMetadata.read(onnx.load(str(out)))
        assert meta.rounding == rounding
        layers[rounding] = meta.layers
    for up, down in zip(layers["up"], layers["down"]):
        assert down.retained % 4 == 0 or down.retained < 4
        assert down.retained <= up.retained
    assert sum(k.retained for k in layers["down"]) < sum(k.retained for k in layers["up"])


def test_export_with_a_pad_limit_of_zero_keeps_every_layer_at_its_retained_width(tmp_path, checkpoint_file, capsys):
    # A limit of 0 rounds no layer up: the file keeps what `--align 1` keeps.
    widths = {}
    for name, extra in (("exact", ["--align", "1"]), ("limited", ["--align", "4", "--pad-limit", "0"])):
        out = tmp_path / f"{name}.onnx"
        code, _, err = run(capsys, "export", str(checkpoint_file), "--classes", "bag,coat", "--gates", "dynamic",
                           *extra, "-o", str(out))
        assert code == 0, err
        widths[name] = [(k.retained, k.total) for k in ModuleMetadata.read(onnx.load(str(out))).layers]
    assert widths["limited"] == widths["exact"]
    assert any(kept >= 4 and kept % 4 for kept, _ in widths["exact"])  # so the limit had work to do


def test_bad_checkpoints_never_destroyed(tmp_path, capsys, checkpoint_file):
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(checkpoint_file.read_bytes()[:2000])
    code, _, err = run(capsys, "modularize", str(truncated))
    one_line_error(code, err, "truncated or corrupt")
    assert truncated.stat().st_size == 2000

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    code, _, err = run(capsys, "eval", str(foreign), "--classes", "bag")
    one_line_error(code, err, "not an mwt checkpoint")

    from dataclasses import replace

    from mwt.models import build_model

    modular = random_checkpoint("vgg11")
    spec = replace(modular.spec, modular=False)
    standard = type(modular)(spec=spec, state_dict=build_model(spec).state_dict(), classes=modular.classes,
                             dataset=modular.dataset)
    path = tmp_path / "standard.pt"
    save_checkpoint(standard, path)
    before = path.read_bytes()
    code, _, err = run(capsys, "modularize", str(path))
    one_line_error(code, err, "standard model")
    assert path.read_bytes() == before


def test_help_lists_every_command_with_its_summary(capsys):
    from typer.main import get_command

    from mwt.cli import app

    code, out, _ = run(capsys, "--help")
    assert code == 0
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert name in out
        summary = (command.help or "").split(".")[0].split()[:3]
        assert " ".join(summary) in " ".join(out.split()), f"no summary for {name}"


@pytest.mark.parametrize("command, needles", [
    (["train"], ["--recipe", "paper", "cost", "vgg16", "resnet18", "fashion-mnist", "cifar10"]),
    (["export"], ["--gates", "dynamic", "folded", "--align", "--threshold"]),
    (["predict"], ["--mode", "merged", "sessions-parallel", "--top"]),
    (["serve"], ["--max-batch", "--max-wait-ms", "--queue-size", "--max-body-mb"]),
    (["bench", "latency"], ["--batch", "--seconds", "--out"]),
    (["demo"], ["--epochs", "--train-images", "--recipe"]),
])
def test_command_help_shows_choices_from_the_registries(capsys, command, needles):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    for needle in needles:
        assert needle in out, needle


def test_export_runs_on_onnxruntime_input_spec(tmp_path, capsys, checkpoint_file):
    out = tmp_path / "x.onnx"
    code, _, err = run(capsys, "export", str(checkpoint_file), "--classes", "0,9", "-o", str(out))
    assert code == 0, err
    sess = ort.InferenceSession(str(out))
    assert sess.get_inputs()[0].shape[1:] == [1, 28, 28]
    logits = sess.run(None, {"input": np.zeros((2, 1, 28, 28), np.float32)})[0]
    assert logits.shape == (2, 2)


@pytest.mark.parametrize(("args", "message"), [
    (["--classes", "sneaker,dog", "-o", "{tmp}/demo"], "unknown class 'dog'"),
    (["-o", "{tmp}/afile/sub"], "cannot create the output folder"),
])
def test_demo_refuses_bad_classes_and_outputs_before_any_work(tmp_path, capsys, args, message):
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "demo", *[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # refused before training: nothing written


def test_demo_walks_the_whole_path_on_a_small_dataset(tmp_path, capsys, tiny_fashion_dir):
    data = tiny_fashion_dir
    out = tmp_path / "demo"
    code, text, err = run(capsys, "demo", "--epochs", "1", "--width", "0.125", "--data-dir", str(data),
                          "--train-images", "300", "--bench-seconds", "0.05", "--out", str(out))
    assert code == 0, err
    for step in ("1. train", "2. modularize", "4. export", "5. compose", "6. predict", "7. fine-tune", "8. latency"):
        assert step in text
    # One line per epoch (training, then the fine-tune's 2 epochs), no bar redraws.
    assert text.count("epoch   1") == 2 and text.count("epoch   2") == 1 and "\r" not in text + err
    assert "fine-tuned module" in text and "fine-tuned " in text.split("8. latency")[1]
    for name in ("model.pt", "sneaker-bag.onnx", "sneaker.onnx", "bag.onnx", "composed.onnx", "latency.json",
                 "sneaker-bag-finetuned.pt", "sneaker-bag-finetuned.onnx"):
        assert (out / name).is_file()
    assert len(list((out / "images").glob("*.png"))) == 8


def test_library_options_show_as_flags_and_a_missing_extra_names_it(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--out",
                       str(tmp_path / "m.pt"))
    one_line_error(code, err, "allow a download (--data-dir, --download)")
    from tests.conftest import compiler_for

    # serve checks its module files before it needs uvicorn: give it a real one
    (tmp_path / "m.onnx").write_bytes(compiler_for("vgg11").compile(compiler_for("vgg11").select([7, 8]))[0].SerializeToString())
    script = ("import sys; sys.modules['uvicorn'] = None; from mwt.cli import main; "
              f"sys.exit(main(['serve', '{tmp_path / 'm.onnx'}']))")
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("error: this command needs uvicorn, which is not installed; install it with: "
                                     "pip install 'mwt[serve]'")


def test_train_option_defaults_are_the_config_defaults():
    # `mwt train --resume` treats an option left at TrainConfig's default as "not given".
    import inspect

    from mwt.cli.training import train
    from mwt.train_config import TrainConfig

    fields = {"model": "model", "dataset": "dataset", "width": "width", "epochs": "epochs", "recipe": "recipe",
              "batch_size": "batch_size", "lr": "lr", "lr_warmup": "lr_warmup", "weight_decay": "weight_decay", "beta_warmup": "beta_warmup", "gamma_warmup": "gamma_warmup",
              "cost_block": "cost_block", "free_channels": "free_channels", "flops_target": "flops_target", "budget_adapt": "budget_adapt",
              "budget_relax": "budget_relax",
              "budget_by_loss": "budget_by_loss", "coupling_by_loss": "coupling_by_loss",
              "coupling_by_cost": "coupling_by_cost", "teacher": "teacher", "distill": "distill", "temperature": "temperature",
              "similarity": "similarity", "seed": "seed",
              "limit": "train_limit", "image_size": "image_size", "channels": "channels",
              "test_fraction": "test_fraction", "storage": "storage", "strict": "strict"}
    params = inspect.signature(train).parameters
    for option, field in fields.items():
        default = params[option].default
        assert getattr(default, "value", default) == getattr(TrainConfig(), field), option
