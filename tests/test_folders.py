"""Bring your own data: image folders (real PNG and JPEG files drawn here), the decode cache,
streaming, one preprocessing for training and inference, local CIFAR-10/SVHN copies, bad data."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mwt.cli import main
from mwt.checkpoint import load_checkpoint
from mwt.data import load_dataset, load_split
from mwt.data.source import DataSource
from runtime import ComposedClassifier
from mwt.core.images import load_inputs

SHAPES = ("circle", "square", "cross")


def draw(shape: str, size: int, rgb: bool, rng: np.random.Generator) -> Image.Image:
    """A shape on a noisy background: different sizes, grayscale or colour."""
    noise = rng.integers(0, 60, (size, size, 3) if rgb else (size, size), dtype=np.uint8)
    img = Image.fromarray(noise, "RGB" if rgb else "L")
    d = ImageDraw.Draw(img)
    m = size // 5
    fill = (255, int(rng.integers(100, 255)), 0) if rgb else 255
    if shape == "circle":
        d.ellipse([m, m, size - m, size - m], fill=fill)
    elif shape == "square":
        d.rectangle([m, m, size - m, size - m], fill=fill)
    else:
        d.line([m, m, size - m, size - m], fill=fill, width=max(2, size // 8))
        d.line([m, size - m, size - m, m], fill=fill, width=max(2, size // 8))
    return img


def make_folder(root: Path, per_class: int = 24, seed: int = 0, splits: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    for split in (("train", "test") if splits else ("",)):
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class if split != "test" else per_class // 3):
                img = draw(shape, int(rng.integers(20, 41)), bool(i % 3 == 0), rng)
                img.save(folder / f"{i}.{'jpg' if i % 4 == 0 else 'png'}")
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("MWT_CACHE", str(path))
    return path


@pytest.fixture
def shapes(tmp_path) -> Path:
    return make_folder(tmp_path / "shapes")


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def cache_entries(cache: Path) -> dict[str, float]:
    """The decoded-image cache's entries and their modification times: a decode writes one."""
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob("*.npy")}


def test_the_whole_path_on_an_image_folder(tmp_path, capsys, cache, shapes):
    before = snapshot(shapes)
    ckpt = tmp_path / "shapes.pt"
    assert main(["train", "--dataset", str(shapes), "--model", "vgg11", "--width", "0.125", "--epochs", "2",
                 "--batch-size", "16", "--lr", "0.02", "--out", str(ckpt), "-q"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "of 3x32x32, 3 classes" in out  # mixed sizes -> 32x32, some RGB -> 3 channels
    decoded = cache_entries(cache)
    assert len(decoded) == 1
    model = load_checkpoint(ckpt)
    assert model.classes == sorted(SHAPES)  # folder names, sorted
    assert model.spec.input_shape == (3, 32, 32) and model.source.image_size == (32, 32)

    assert main(["modularize", str(ckpt), "-q"]) == 0, capsys.readouterr().err
    assert cache_entries(cache) == decoded  # the second load read the cache: nothing decoded, nothing written
    module = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "--classes", "circle,cross", "-o", str(module), "--align", "1"]) == 0
    assert main(["compose", str(module), "-o", str(tmp_path / "c.onnx")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c.onnx"), str(shapes / "circle"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24 and all(r["label"] in ("circle", "cross") for r in rows)
    assert snapshot(shapes) == before  # nothing written to the user's data folder


def test_a_moved_folder_is_found_through_data_dir_and_a_limit_that_drops_classes_is_said(tmp_path, capsys, cache,
                                                                                           shapes):
    ckpt = tmp_path / "m.pt"
    # an image folder lists its images class by class: the first 20 are all circles (and one cross)
    assert main(["train", "--dataset", str(shapes), "--model", "vgg11", "--width", "0.0625", "--epochs", "1",
                 "--limit", "20", "--out", str(ckpt), "-q"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "--limit 20 leaves no training image of square (it takes the first 20" in warned[0], warned
    # a module read off no images of its class would be its most active kernels: refused, and nothing written
    before = ckpt.read_bytes()
    assert main(["modularize", str(ckpt), "--limit", "20", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no training image of square" in err[0] and ckpt.read_bytes() == before, err
    moved = tmp_path / "moved"
    shapes.rename(moved)
    assert main(["modularize", str(ckpt), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"the image folder {shapes} is not there" in err[0] and "--data-dir" in err[0], err
    assert main(["modularize", str(ckpt), "--data-dir", str(moved), "-q"]) == 0
    assert main(["eval", str(ckpt), "--classes", "circle,square", "--data-dir", str(moved)]) == 0
    assert main(["eval", str(ckpt), "--classes", "circle,square", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "the image folder" in capsys.readouterr().err


def test_a_test_fraction_that_holds_out_nothing_is_refused(tmp_path, capsys, cache, shapes):
    out = tmp_path / "m.pt"
    code = main(["train", "--dataset", str(shapes), "--test-fraction", "0.01", "--epochs", "1", "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "holds out no image" in err[0] and not out.exists(), err


def test_predict_sees_an_image_exactly_as_training_did(tmp_path, capsys, cache, shapes):
    ckpt = tmp_path / "m.pt"
    assert main(["train", "--dataset", str(shapes), "--model", "vgg11", "--width", "0.125", "--epochs", "1",
                 "--out", str(ckpt), "-q"]) == 0
    assert main(["modularize", str(ckpt), "-q"]) == 0
    module = tmp_path / "all.onnx"
    assert main(["export", str(ckpt), "--classes", ",".join(sorted(SHAPES)), "--align", "1", "-o", str(module)]) == 0
    files = sorted((shapes / "square").iterdir())[:6]
    capsys.readouterr()
    assert main(["predict", str(module), *map(str, files), "--json", "--top", "3"]) == 0
    answered = json.loads(capsys.readouterr().out)
    # Training decodes a file through the same function: stream the folder and take these files.
    source = load_checkpoint(ckpt).source
    streamed = load_dataset(DataSource(**{**source.to_dict(), "image_size": source.image_size, "storage": "stream"}),
                            show_progress=False)
    paths = list(np.concatenate([streamed.train.paths, streamed.test.paths]))
    split = streamed.train if str(files[0]) in list(streamed.train.paths) else streamed.test
    rows = torch.tensor([list(split.paths).index(str(f)) for f in files if str(f) in list(split.paths)])
    images = split.take(rows).materialize().images
    batch, _ = load_inputs([f for f in files if str(f) in list(split.paths)], ComposedClassifier.from_files([module]).input_spec)
    assert torch.equal(torch.from_numpy(batch), images) and len(paths) == 72
    with torch.no_grad():
        logits = load_checkpoint(ckpt).build()(torch.from_numpy(batch.astype(np.float32) / 255))[0]
    expected = torch.softmax(logits, 1).numpy()
    got = np.array([[r["probabilities"][c] for c in sorted(SHAPES)] for r in answered
                    if r["input"] in {f.name for f in files if str(f) in list(split.paths)}])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_streaming_and_in_memory_give_the_same_batches(cache, shapes):
    memory = load_dataset(DataSource(str(shapes), storage="memory"), show_progress=False)
    stream = load_dataset(DataSource(str(shapes), storage="stream"), show_progress=False)
    assert memory.info == stream.info or memory.info.classes == stream.info.classes
    assert len(memory.train) == len(stream.train) and len(memory.test) == len(stream.test)
    order = torch.randperm(len(memory.train), generator=torch.Generator().manual_seed(3))
    a = list(memory.train.batches(order, 10, generator=torch.Generator().manual_seed(5), augment="crop-flip"))
    b = list(stream.train.batches(order, 10, generator=torch.Generator().manual_seed(5), augment="crop-flip"))
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_explicit_train_and_test_folders(cache, tmp_path):
    data = load_dataset(str(make_folder(tmp_path / "split", splits=True)), show_progress=False)
    assert len(data.train) == 3 * 24 and len(data.test) == 3 * 8
    assert data.source.image_size == (32, 32) and data.info.channels == 3


def test_common_size_and_grayscale_are_detected(cache, tmp_path):
    root = tmp_path / "gray"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((20, 24), 40 * i, np.uint8)).save(root / name / f"{i}.png")
    data = load_dataset(str(root), show_progress=False)
    assert data.info.channels == 1 and data.info.size == (20, 24)


@pytest.mark.parametrize("make, message", [
    (lambda r: (r / "a").mkdir(parents=True) or (r / "b").mkdir() or Image.new("L", (8, 8)).save(r / "a" / "x.png"),
     "class folder"),
    (lambda r: (r / "only").mkdir(parents=True) or Image.new("L", (8, 8)).save(r / "only" / "x.png"), "two or more"),
    (lambda r: (r / "train" / "a").mkdir(parents=True) or (r / "train" / "b").mkdir(), "no test/ or val/"),
])
def test_bad_folders_get_one_line(tmp_path, capsys, cache, make, message):
    root = tmp_path / "data"
    make(root)
    code = main(["train", "--dataset", str(root), "--epochs", "1", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "m.pt").exists()


def test_undecodable_files_are_skipped_or_refused(tmp_path, capsys, cache, shapes):
    (shapes / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (shapes / "square" / "notes.txt").write_text("not an image, ignored")
    (shapes / "cross" / "loop").symlink_to(shapes / "cross")  # a link loop is read once
    from mwt.core.errors import MwtWarning

    with pytest.warns(MwtWarning, match="skipped 1 file"):
        data = load_dataset(str(shapes), show_progress=False)
    assert len(data.train) + len(data.test) == 3 * 24
    code = main(["train", "--dataset", str(shapes), "--strict", "--epochs", "1", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "broken.png" in err and len(err.splitlines()) == 1


def test_local_cifar10_and_svhn_copies_without_download(tmp_path):
    rng = np.random.default_rng(0)
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    for name, n in [*((f"data_batch_{i}", 6) for i in range(1, 6)), ("test_batch", 4)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        (cifar / name).write_bytes(pickle.dumps(batch))
    train = load_split("cifar10", "train", tmp_path)
    assert train.images.shape == (30, 3, 32, 32) and len(load_split("cifar10", "test", tmp_path)) == 4

    import scipy.io

    for split, n in (("train", 7), ("test", 3)):
        labels = rng.integers(1, 11, (n, 1))  # SVHN writes the digit 0 as 10
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                                            "y": labels})
    svhn = load_split("svhn", "train", tmp_path)
    assert svhn.images.shape == (7, 3, 32, 32) and int(svhn.labels.max()) <= 9


def test_a_cifar_batch_with_code_in_it_is_refused(tmp_path):
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch /tmp/mwt-cifar-pwned",))

    (cifar / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}))
    from mwt.core.errors import MwtError

    with pytest.raises(MwtError, match="not a CIFAR-10 batch file"):
        load_split("cifar10", "test", tmp_path)
    assert not Path("/tmp/mwt-cifar-pwned").exists()


def test_a_changed_folder_is_decoded_again(cache, shapes):
    source = DataSource(str(shapes), image_size=(24, 24))
    first = load_dataset(source, show_progress=False)
    decoded = cache_entries(cache)
    load_dataset(source, show_progress=False)
    assert len(decoded) == 1 and cache_entries(cache) == decoded  # the second load read the cache
    draw("circle", 30, False, np.random.default_rng(9)).save(shapes / "circle" / "new.png")
    again = load_dataset(source, show_progress=False)
    assert len(cache_entries(cache)) == 2  # a new file: the cache no longer matches, the folder is decoded again
    assert len(again.train) + len(again.test) == len(first.train) + len(first.test) + 1
