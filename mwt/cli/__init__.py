"""The `mwt` command: one root app joining each area's sub-app.

    training   train, modularize, eval          (cli/training.py; needs the `train` extra)
    export     export (also `mwt-export`)       (cli/export.py; `train` extra)
    inference  compose, predict, serve          (cli/inference.py; no torch; `serve` extra to serve)
    bench      bench latency                    (cli/bench.py)
    demo       demo                             (cli/demo.py)

Every area module imports only typer and torch-free registries at import time; heavy libraries
are imported inside the commands, so `mwt predict` never loads torch.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from mwt.cli import bench, demo, export, inference, training
from mwt.cli.entrypoint import exit_process, run_app

app = typer.Typer(
    help="mwt: train modular CNNs (MwT), cut out per-class modules, and run them as compact ONNX files.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    # Plain help text: it reads the same in a terminal, a log and a pipe, and choices never wrap.
    rich_markup_mode=None,
)


@app.callback()
def root(
    model_code: Annotated[Optional[str], typer.Option(
        "--model-code", help="<file.py>:<function> that builds the network of a checkpoint trained with "
        "--model <file.py>:<function>: mwt never imports code a checkpoint names, so every command that loads one "
        "needs this (the same file).")] = None,
) -> None:
    """mwt: train modular CNNs (MwT), cut out per-class modules, and run them as compact ONNX files."""
    if model_code is not None or "mwt.models.user_code" in sys.modules:  # torch only when asked (or loaded already)
        from mwt.models.user_code import load_user_code, provide

        provide(load_user_code(model_code) if model_code is not None else None)  # each command line names its own


app.add_typer(training.app)
app.add_typer(export.app)
app.add_typer(inference.app)
app.add_typer(demo.app)
app.add_typer(bench.app, name="bench")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point of `mwt`."""
    code = run_app(app, argv if argv is not None else sys.argv[1:], prog_name="mwt")
    if argv is None:
        exit_process(code)
    return code
