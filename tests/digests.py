"""Module digests from another process: the compiler's output must be byte-identical across
processes (no dict order, hash seed or address in it). One child computes every case, once per
test run (`child_digests` in conftest), since a child pays for importing torch again.

    python -m tests.digests   # prints {case: [digest per gate mode]} as JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from exporter.compile import ModuleCompiler, model_digest
from mwt.core.metadata import GateMode
from tests.synthetic import random_checkpoint

CLASSES = (2, 5)
# case -> (random_checkpoint arguments, the source hash the compiler writes into the metadata), as
# the tests' shared compilers are built (conftest's compiler_for, test_any_cnn's compiler), so the
# in-process side reuses them
CASES: dict[str, tuple[dict, str]] = {
    "resnet18": (dict(arch="resnet18", width=0.125, seed=1), "resnet18-1"),
    "torchvision:mobilenet_v2": (dict(arch="torchvision:mobilenet_v2", width=0.25, seed=1, stem="cifar"),
                                 "tv-mobilenet_v2"),
}


def case_compiler(case: str) -> ModuleCompiler:
    settings, source = CASES[case]
    return ModuleCompiler(random_checkpoint(**settings), source)


def module_digests(compiler: ModuleCompiler) -> list[str]:
    """The digest of the module of CLASSES with each gate mode."""
    return [model_digest(compiler.compile(compiler.select(CLASSES), gates)[0]) for gates in GateMode]


def digests_in_a_child() -> dict[str, list[str]]:
    """Every case's digests, computed by a fresh Python process."""
    out = subprocess.run([sys.executable, "-m", "tests.digests"], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)  # the repository root: `tests` importable
    return json.loads(out.stdout)


if __name__ == "__main__":
    print(json.dumps({case: module_digests(case_compiler(case)) for case in CASES}))
