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

import typer

from mwt.cli import bench, demo, export, inference, training
from mwt.cli.entrypoint import exit_process, run_app

app = typer.Typer(
    help="mwt: train modular CNNs (MwT), cut out per-class modules, and run them as compact ONNX files.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    # Plain help text: it reads the same in a terminal, a log and a pipe, and choices never wrap.
    rich_markup_mode=None,
)
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
