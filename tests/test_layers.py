"""Every module's imports obey the layers (see mwt/__init__.py): nothing lower imports anything higher.

Read from the source (any depth in a file, function-level imports too), so a lazy import that
breaks a layer is caught as well as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mwt", "exporter", "runtime")

# Layers lowest first; a module may import its own layer and those listed as below it.
APP = ("mwt.cli", "mwt.module_latency", "mwt.__main__")
ALLOWED = {
    "core": {"core"},
    "runtime": {"core", "runtime"},
    "training": {"core", "runtime", "training"},
    "exporter": {"core", "training", "exporter"},
    "app": {"core", "runtime", "training", "exporter", "app"},
}
# Third-party imports a torch-free layer may never make (at any depth).
TORCH = ("torch", "torchvision", "onnx_graphsurgeon")
TORCH_FREE = {"core", "runtime"}


def layer(module: str) -> str:
    if module == "mwt" or module.startswith("mwt.core"):
        return "core"  # mwt/__init__ holds only the version
    if any(module == a or module.startswith(a + ".") for a in APP):
        return "app"
    return {"mwt": "training", "exporter": "exporter", "runtime": "runtime"}[module.split(".")[0]]


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


def imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
    return found


def violations(root: Path = ROOT) -> list[str]:
    out = []
    for name, path in sorted(modules(root).items()):
        own = layer(name)
        for line, target in imports(name, path):
            top = target.split(".")[0]
            where = f"{path.relative_to(root)}:{line}"
            if top in PACKAGES:
                if layer(target) not in ALLOWED[own]:
                    out.append(f"{where}: {own} layer imports {target} ({layer(target)} layer)")
            elif top in TORCH and own in TORCH_FREE:
                out.append(f"{where}: torch-free {own} layer imports {target}")
            elif top in ("tests", "benchmarks", "cli", "hypothesis"):
                out.append(f"{where}: the library imports {target}, which is not installed with it")
    return out


def test_every_import_obeys_the_layers():
    assert violations() == []


@pytest.mark.parametrize(("module", "expected"), [
    ("mwt.core.errors", "core"), ("mwt", "core"), ("runtime.server", "runtime"), ("mwt.data.folder", "training"),
    ("exporter.compile", "exporter"), ("mwt.cli.export", "app"), ("mwt.module_latency", "app"),
])
def test_layers_are_assigned_as_documented(module, expected):
    assert layer(module) == expected


def test_a_breaking_import_is_reported(tmp_path):
    # The check itself can fail: a lazy import of the runtime in the core, torch in the runtime.
    (tmp_path / "mwt" / "core").mkdir(parents=True)
    (tmp_path / "runtime").mkdir()
    (tmp_path / "exporter").mkdir()
    (tmp_path / "mwt" / "core" / "bad.py").write_text("def f():\n    from runtime.session import SessionSettings\n")
    (tmp_path / "runtime" / "heavy.py").write_text("import torch.nn\n")
    (tmp_path / "exporter" / "fine.py").write_text("from mwt.core import errors\nfrom . import fine\n")
    assert violations(tmp_path) == ["mwt/core/bad.py:2: core layer imports runtime.session (runtime layer)",
                                    "runtime/heavy.py:1: torch-free runtime layer imports torch.nn"]
