"""Shared fixtures: tiny real models and checkpoints (random weights, random kernel frequencies)."""

from __future__ import annotations

import os

# One torch thread for the suite and every child it starts (set before torch is imported): on a
# 2-core machine a 2-thread parent and its 2-thread children spin-wait on each other. Measured on
# fresh clones on M3 (2 cores): 688 s with torch's default of 2 threads (partly beside a training
# run), 252 s with 1 on the quiet machine. A value the caller sets wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tests.children  # noqa: E402,F401  (first: it turns gRPC's fork handlers off before grpc loads)

import contextlib
import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from filelock import FileLock

from exporter.compile import ModuleCompiler
from mwt.checkpoint import save_checkpoint
from mwt.models import ModelSpec
from mwt.registry import DATASETS
from tests.synthetic import random_checkpoint

FASHION = DATASETS["fashion-mnist"]


class _OneThreadSession(ort.InferenceSession):
    """An onnxruntime session on one intra-op thread unless its options ask for more: the suite
    runs one pytest-xdist worker per core, and onnxruntime's default (a spinning thread per core)
    in each worker made them wait on each other. Measured on M3 (2 cores, quiet), one pair of
    runs: 112.9 s with onnxruntime's default, 95.4 s with one thread. Children keep the default."""

    def __init__(self, path_or_bytes, sess_options=None, *args, **kwargs) -> None:  # noqa: ANN001
        if sess_options is None:
            sess_options = ort.SessionOptions()
        if sess_options.intra_op_num_threads == 0:
            sess_options.intra_op_num_threads = 1
        super().__init__(path_or_bytes, sess_options, *args, **kwargs)


ort.InferenceSession = _OneThreadSession  # type: ignore[misc]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the `mwt` command in-process: (exit code, stdout, stderr)."""
    from mwt.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def tiny_spec(arch: str = "vgg16", width: float = 0.125, modular: bool = True, gate_first: bool = False) -> ModelSpec:
    return ModelSpec(arch, 10, 1, (28, 28), width, modular, FASHION.mean, FASHION.std, FASHION.pad, gate_first=gate_first)


@pytest.fixture(scope="session")
def shared_checkpoint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A modularized random VGG16 checkpoint on disk, shared by tests that only read it."""
    path = tmp_path_factory.mktemp("shared") / "model.pt"
    save_checkpoint(random_checkpoint("vgg16"), path)
    return path


@pytest.fixture
def checkpoint_file(tmp_path: Path, shared_checkpoint_file: Path) -> Path:
    """A private copy of the shared checkpoint (tests may change or damage it)."""
    path = tmp_path / "model.pt"
    path.write_bytes(shared_checkpoint_file.read_bytes())
    return path


_COMPILERS: dict[tuple[str, int], ModuleCompiler] = {}


def compiler_for(arch: str, seed: int = 1) -> ModuleCompiler:
    """One compiler (one torch export) per random checkpoint, shared across tests."""
    key = (arch, seed)
    if key not in _COMPILERS:
        _COMPILERS[key] = ModuleCompiler(random_checkpoint(arch, width=0.125, seed=seed), source_sha256=f"{arch}-{seed}")
    return _COMPILERS[key]


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write `array` as an IDX file of unsigned bytes (gzipped, as Debian ships Fashion-MNIST)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def tiny_fashion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Fashion-MNIST-shaped folder of random images: 300 training and 100 test samples."""
    rng = np.random.default_rng(0)
    data = tmp_path_factory.mktemp("tiny-fashion")
    for split, n in (("train", 300), ("t10k", 100)):
        write_idx(data / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(data / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return data


def run_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this test run that every pytest-xdist worker sees (a worker's base temp is one
    folder of the run's): for what is made once per run under a FileLock, so that one worker
    makes it while the others wait, instead of making it beside it on the same cores."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def child_digests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The module digests of every case in tests/digests.py, computed once per run by a child."""
    from tests.digests import digests_in_a_child

    shared = run_folder(tmp_path_factory, "digests")
    saved = shared / "digests.json"
    with FileLock(shared / "lock"):
        if not saved.exists():
            saved.write_text(json.dumps(digests_in_a_child()))
    return json.loads(saved.read_text())


@dataclass(frozen=True)
class TrainedRun:
    """What `mwt train` and `mwt modularize` made and said, once per test session."""

    checkpoint: Path  # modularized
    log: Path  # the epoch log `mwt train` wrote beside it
    modularize_out: str  # what `mwt modularize` printed


TRAINED_IMAGES = 2048


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A small modular VGG11 trained through the CLI for 2 epochs on the first 2,048 real
    Fashion-MNIST images and modularized on them: the one trained model the end-to-end, export,
    serving and client tests share (tests that change it work on a copy)."""
    from mwt.cli import main

    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    shared = run_folder(tmp_path_factory, "trained")
    path, said = shared / "trained.pt", shared / "modularize.txt"
    with FileLock(shared / "lock"):  # trained once for the whole run: other workers wait for it
        if not said.exists():
            assert main(["train", "--model", "vgg11", "--width", "0.125", "--epochs", "2", "--limit",
                         str(TRAINED_IMAGES), "--batch-size", "64", "--lr", "0.02", "--seed", "3", "--device", "cpu",
                         "--out", str(path), "-q"]) == 0
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["modularize", str(path), "--limit", str(TRAINED_IMAGES), "-q"]) == 0
            said.write_text(out.getvalue())
    return TrainedRun(path, path.with_suffix(".jsonl"), said.read_text())


@pytest.fixture(scope="session")
def trained_checkpoint_file(trained_run: TrainedRun) -> Path:
    """The shared trained and modularized checkpoint (read it; copy it to change it)."""
    return trained_run.checkpoint


def fashion_mnist_available() -> bool:
    from mwt.data import load_split

    try:
        load_split("fashion-mnist", "test")
    except Exception:
        return False
    return True


needs_fashion_mnist = pytest.mark.skipif(
    not fashion_mnist_available(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
