"""`mwt-export` (also `mwt export`): compile a modularized checkpoint into a compact ONNX module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mwt.entrypoint import run_app


def export_command(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint (mwt train, then mwt modularize).")],
    classes: Annotated[str, typer.Option(help="The module's classes, by name or index, in output order: 'cat,dog'.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file (default: <classes>.onnx).")] = None,
    threshold: Annotated[float, typer.Option(help="A kernel is retained when its frequency >= this, for any class.")] = 0.9,
    gates: Annotated[str, typer.Option(
        help="'dynamic': keep the pruned mask generators (exact); 'folded': per-kernel constant gates, folded into weights."
    )] = "dynamic",
    align: Annotated[int, typer.Option(
        help="Round each layer's kernel count up to a multiple of N with its next most active kernels "
        "(odd widths run slowly in onnxruntime's CPU kernels); 1 keeps the exact retained set."
    )] = 8,
    full: Annotated[bool, typer.Option("--full", help="Export the unpruned full model instead (a latency baseline).")] = False,
) -> None:
    """Compile a per-module ONNX file by physically removing the kernels the classes do not use."""
    from exporter.compile import GateMode, export_full_model, export_module_file
    from exporter.errors import ExportError
    from mwt.atomic import write_bytes_atomic
    from mwt.checkpoint import file_sha256, load_checkpoint

    if gates not in ("dynamic", "folded"):
        raise ExportError(f"--gates must be 'dynamic' or 'folded', got '{gates}'")
    if full:
        target = out or Path("full.onnx")
        proto = export_full_model(load_checkpoint(checkpoint), file_sha256(checkpoint))
        write_bytes_atomic(target, proto.SerializeToString(deterministic=True))
        print(f"wrote the full model to {target}")
        return
    target = out or Path("-".join(c.strip().lower() for c in classes.split(",") if c.strip()) + ".onnx")
    report = export_module_file(checkpoint, classes, target, threshold=threshold, gates=GateMode(gates), align=align)
    print(report.table())
    print(f"wrote {target}")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command(help=export_command.__doc__)(export_command)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point of `mwt-export`."""
    code = run_app(app, argv if argv is not None else sys.argv[1:], prog_name="mwt-export")
    if argv is None:
        sys.exit(code)
    return code
