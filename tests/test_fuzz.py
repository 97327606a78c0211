"""Property-based tests of every loader of untrusted input (targets in benchmarks/fuzz.py): any
input ends in one MwtError or a valid result; the server answers 200 or 4xx, never 5xx.

CI runs a small, fixed budget per property ($MWT_FUZZ_EXAMPLES, default 30; the same inputs every
run, so CI does not fail by chance; $MWT_FUZZ_RANDOM=1 draws new ones); `python benchmarks/fuzz.py`
runs many more, drawn afresh."""

from __future__ import annotations

import os

import pytest

from tests.fuzz_targets import properties, run_property, seeds
from tests.local_server import local_server

EXAMPLES = int(os.environ.get("MWT_FUZZ_EXAMPLES", "30"))
RANDOM = os.environ.get("MWT_FUZZ_RANDOM", "") not in ("", "0")


@pytest.fixture(scope="module")
def fuzz_setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    seed = seeds(work)
    (work / "module.onnx").write_bytes(seed["module"])
    with local_server([work / "module.onnx"]) as server:
        yield properties(seed, work, server.url)
        assert "Traceback" not in server.stderr()


@pytest.mark.parametrize("target", ["checkpoint bytes", "checkpoint structure", "module bytes", "module metadata",
                                    "image bytes", "npy bytes", "npy headers", "server body", "class names",
                                    "cache records", "resume checkpoints", "module graphs", "v2 body"])
def test_untrusted_input_keeps_the_contract(fuzz_setup, target):
    run_property(fuzz_setup[target], EXAMPLES, derandomize=not RANDOM)
