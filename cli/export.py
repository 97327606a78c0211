"""`mwt export` / `mwt-export`: compile a modularized checkpoint into a compact ONNX module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.entrypoint import exit_process, run_app
from cli.options import Align, Classes, Threshold
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_THRESHOLD
from runtime.metadata import GateMode

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command("export")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint (mwt train, then mwt modularize).")],
    classes: Classes,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file (default: <classes>.onnx).")] = None,
    threshold: Threshold = DEFAULT_THRESHOLD,
    gates: Annotated[GateMode, typer.Option(
        help="dynamic: keep the pruned mask generators (exact); folded: per-kernel constant gates, folded "
        "into the weights (no generators, approximate).")] = GateMode.dynamic,
    align: Align = DEFAULT_ALIGN,
    force_folded: Annotated[bool, typer.Option(
        "--force-folded", help="Fold gates even where constant gates cannot represent the classes.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Export the whole modular model instead (all classes).")] = False,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Export the whole model without gates instead: the baseline a module is timed against.")] = False,
) -> None:
    """Compile a per-module ONNX file by physically removing the kernels the classes do not use."""
    from exporter.compile import ExportOptions, ModuleCompiler, export_module_file
    from mwt.atomic import check_writable, write_bytes_atomic

    if full or plain:
        target = out or Path("plain.onnx" if plain else "full.onnx")
        check_writable(target)
        compiler = ModuleCompiler.from_file(checkpoint)
        proto = compiler.plain_model if plain else compiler.full_model
        write_bytes_atomic(target, proto.SerializeToString(deterministic=True))
        print(f"wrote the {'plain' if plain else 'modular'} full model to {target}")
        return
    target = out or Path("-".join(c.strip().lower() for c in classes.split(",") if c.strip()) + ".onnx")
    check_writable(target)
    compiler = ModuleCompiler.from_file(checkpoint)
    options = ExportOptions(compiler.resolve(classes), threshold=threshold, gates=gates, align=align,
                            force_folded=force_folded)
    report = export_module_file(compiler, options, target)
    print(report.table())
    print(f"wrote {target}")


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point of `mwt-export` (the same command as `mwt export`)."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    single.command(help=export.__doc__)(export)
    code = run_app(single, argv if argv is not None else sys.argv[1:], prog_name="mwt-export")
    if argv is None:
        exit_process(code)
    return code
