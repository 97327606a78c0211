"""A user's own network: `--model path/to/net.py:build`, made modular like torchvision's.

`build(num_classes=..., in_channels=...)` must return an `nn.Module` whose forward returns
logits; `insert_gates` then makes it modular. The checkpoint stores only the function's name and
the file's SHA-256 (as spec args), never a path to import: every later command rebuilds the
network only from the file its own command line names (`--model-code`), and refuses a file whose
contents differ from the one the network was trained with. The file is imported once per
process, when the command line names it: it is the user's own code, run on the user's word.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mwt.core.errors import MwtError, first_line
from mwt.models.gate import Preprocess
from mwt.models.insert_gates import GatedGraph, insert_gates
from mwt.models.spec import ModelSpec
from mwt.registry import CODE_PREFIX, is_code_reference


@dataclass(frozen=True)
class UserCode:
    """The function a command line named, with the file it came from."""

    path: Path
    function: str
    sha256: str
    build: Callable[..., object]

    @property
    def arch(self) -> str:
        """The model name a checkpoint stores for it."""
        return f"{CODE_PREFIX}{self.function}"


_provided: list[UserCode] = []  # at most one: what this process's command line named


def load_user_code(reference: str) -> UserCode:
    """Import the file of 'path/to/net.py:function' and find the function; one MwtError on failure."""
    if not is_code_reference(reference):
        raise MwtError(f"--model-code takes <file.py>:<function>, got '{reference}'")
    file, _, function = reference.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise MwtError(f"--model-code: {path} does not exist" if not path.exists() else f"--model-code: {path} is not a file")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    name = f"mwt_user_code_{sha[:16]}"
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as e:  # the user's file may raise anything while it is imported
        sys.modules.pop(name, None)
        raise MwtError(f"--model-code: importing {path} raised {type(e).__name__}: {first_line(e)}") from None
    build = getattr(module, function, None)
    if not callable(build):
        raise MwtError(f"--model-code: {path} has no function '{function}'")
    return UserCode(path, function, sha, build)


def provide(code: UserCode | None) -> None:
    """Make `code` the user network this process builds (None: forget it)."""
    _provided.clear()
    if code is not None:
        _provided.append(code)


def provided() -> UserCode | None:
    """The user code this process's command line named, if any."""
    return _provided[0] if _provided else None


def code_args(code: UserCode) -> tuple[tuple[str, str], ...]:
    """The spec args that tie a checkpoint to the file it was trained with."""
    return (("sha256", code.sha256),)


def required_code(arch: str, sha256: str | None = None) -> UserCode:
    """The provided code for a `code:` model name, or one MwtError saying what to pass."""
    function = arch[len(CODE_PREFIX):]
    code = provided()
    if code is None:
        raise MwtError(f"this network ({arch}) comes from your own code, which mwt never imports from a checkpoint; "
                       f"pass --model-code <file.py>:{function} (the file it was trained with)")
    if code.function != function:
        raise MwtError(f"this network was built by '{function}', but --model-code names '{code.function}'")
    if sha256 is not None and sha256 != code.sha256:
        raise MwtError(f"--model-code: {code.path} is not the file this network was trained with (its SHA-256 "
                       f"differs); pass that file")
    return code


def build_user(spec: ModelSpec) -> GatedGraph:
    """The modular (or standard) network of a `code:` spec, from the provided code."""
    from mwt.models.torchvision_models import adapt

    code = required_code(spec.arch, dict(spec.args).get("sha256"))  # type: ignore[arg-type]
    what = f"{code.path.name}:{code.function}"
    try:
        net = code.build(num_classes=spec.num_classes, in_channels=spec.in_channels)
    except Exception as e:  # the user's function may raise anything
        raise MwtError(f"{what} raised {type(e).__name__}: {first_line(e)}") from None
    if not isinstance(net, nn.Module):
        raise MwtError(f"{what} returned a {type(net).__name__}, not a torch.nn.Module")
    net = adapt(net, spec, what)
    return insert_gates(net, Preprocess(spec.mean, spec.std, spec.pad), modular=spec.modular,
                        gate_first=spec.gate_first, what=what)
