"""Batch parallelism: one-thread sessions on slices of the batch answer exactly as one session does."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from exporter.compile import ModuleCompiler
from runtime import ComposedClassifier
from runtime.session import Parallelism, SessionSettings, make_session
from runtime.sliced import SlicedSession, slice_bounds
from tests.conftest import random_checkpoint
from tests.local_server import local_server
from tests.test_server import post
from tests.test_runtime import _write


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sliced")
    compiler = ModuleCompiler(random_checkpoint("vgg11", width=0.125, seed=4, frequency_power=2.0), "checkpoint-a")
    return {name: _write(tmp, f"{name}.onnx", compiler.compile(compiler.select(classes))[0])
            for name, classes in {"sneaker": (7,), "bag": (8,), "pair": (7, 8)}.items()}


@pytest.mark.parametrize("rows, slices, expected", [
    (1, 3, [(0, 1)]), (2, 3, [(0, 1), (1, 2)]), (7, 3, [(0, 2), (2, 4), (4, 7)]), (32, 2, [(0, 16), (16, 32)]),
    (5, 1, [(0, 5)]), (0, 2, [(0, 0)])])
def test_slices_cover_the_batch_in_order(rows, slices, expected):
    assert slice_bounds(rows, slices) == expected


def test_a_sliced_session_is_one_thread_sessions(modules):
    session = make_session(str(modules["pair"]), SessionSettings(intra_op_threads=3, parallelism=Parallelism.batch,
                                                                  providers=("CPUExecutionProvider",)))
    assert isinstance(session, SlicedSession) and session.slices == 3
    assert session.get_session_options().intra_op_num_threads == 1
    assert session.get_providers() == ["CPUExecutionProvider"]
    ops = make_session(str(modules["pair"]), SessionSettings(intra_op_threads=3, providers=("CPUExecutionProvider",)))
    assert not isinstance(ops, SlicedSession) and ops.get_session_options().intra_op_num_threads == 3
    # 0 threads: one slice per CPU this process may use
    assert make_session(str(modules["pair"]), SessionSettings(parallelism=Parallelism.batch,
                                                              providers=("CPUExecutionProvider",))).slices >= 1
    session.close()


@pytest.mark.parametrize("mode", ["merged", "sessions", "sessions-parallel"])
@pytest.mark.parametrize("batch", [1, 2, 5, 33])
def test_batch_parallelism_answers_as_one_session(modules, mode, batch):
    parts = [modules["sneaker"], modules["bag"]]
    x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    one = ComposedClassifier.from_files(parts, mode=mode, settings=SessionSettings(intra_op_threads=2))
    sliced = ComposedClassifier.from_files(parts, mode=mode, settings=SessionSettings(
        intra_op_threads=3, parallelism=Parallelism.batch))
    assert all(isinstance(s, SlicedSession) for s in sliced.sessions)
    np.testing.assert_allclose(sliced.predict(x).logits, one.predict(x).logits, atol=1e-5, rtol=0)
    sliced.close()
    one.close()


def test_a_failing_slice_raises_and_the_session_keeps_working(modules):
    session = make_session(str(modules["pair"]), SessionSettings(intra_op_threads=2, parallelism=Parallelism.batch,
                                                                  providers=("CPUExecutionProvider",)))
    x = np.zeros((4, 1, 28, 28), np.float32)
    with pytest.raises(Exception, match="data type"):  # onnxruntime's own error type, from a slice
        session.run(["logits"], {"input": x.astype(np.float64)})
    with pytest.raises(ValueError, match="same number of rows"):
        session.run(["logits"], {"input": x, "other": x[:2]})
    assert session.run(["logits"], {"input": x})[0].shape == (4, 2)
    session.close()


def run_mwt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mwt", *args], capture_output=True, text=True, timeout=120)


def test_predict_with_batch_parallelism_prints_what_ops_prints(modules, tmp_path):
    batch = tmp_path / "batch.npy"
    np.save(batch, np.random.default_rng(3).random((6, 1, 28, 28), dtype=np.float32))
    outs = [run_mwt("predict", str(modules["pair"]), str(batch), "--json", "--threads", "2", "--parallelism", p)
            for p in ("ops", "batch")]
    assert [o.returncode for o in outs] == [0, 0], [o.stderr for o in outs]
    a, b = (json.loads(o.stdout) for o in outs)
    assert [r["label"] for r in a] == [r["label"] for r in b] and len(a) == 6
    bad = run_mwt("predict", str(modules["pair"]), str(batch), "--parallelism", "threads")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "parallelism" in bad.stderr


def test_a_server_with_batch_parallelism_answers_as_the_runtime(modules):
    from tests.hostile_bytes import npy

    clf = ComposedClassifier.from_files([modules["pair"]])
    x = np.random.default_rng(4).random((9, 1, 28, 28), dtype=np.float32)
    with local_server([modules["pair"]], "--threads", "2", "--parallelism", "batch") as s:
        status, body, _ = post(s.url + "/predict", npy(x))
    assert status == 200, body
    np.testing.assert_allclose([p["logits"] for p in body["predictions"]], clf.predict(x).logits, atol=1e-5)
    assert "Traceback" not in s.final_stderr
