"""`mwt export` / `mwt-export`: compile a modularized checkpoint into a compact ONNX module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from mwt.cli.entrypoint import exit_process, run_app
from mwt.cli.options import Align, Classes, DataDir, Threshold, choices
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_THRESHOLD
from mwt.core.metadata import GateMode, Precision

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
ExportPrecision = choices([p.value for p in Precision if p is not Precision.mixed])


@app.command("export")
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A modularized checkpoint (mwt train, then mwt modularize).")],
    classes: Classes,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output file (default: <classes>.onnx).")] = None,
    threshold: Threshold = DEFAULT_THRESHOLD,
    gates: Annotated[Optional[GateMode], typer.Option(
        help="dynamic: keep the pruned mask generators (exact); folded: per-kernel constant gates, folded "
        "into the weights (no generators). Default: folded for a checkpoint trained with the reuse recipe "
        "(a data-free gate-free module, as it was trained), else dynamic.", show_default=False)] = None,
    align: Align = DEFAULT_ALIGN,
    force_folded: Annotated[bool, typer.Option(
        "--force-folded", help="Fold gates even where constant gates cannot represent the classes.")] = False,
    precision: Annotated[ExportPrecision, typer.Option(  # type: ignore[valid-type]
        help="fp32; int8 (static QDQ, calibrated on training images of the classes; for CPUs); "
        "fp16 (for GPUs)")] = ExportPrecision("fp32"),
    calibration_images: Annotated[int, typer.Option(
        help="INT8: how many training images of the classes calibrate the activation ranges.", min=1,
        max=100_000)] = 512,
    data_dir: DataDir = None,
    full: Annotated[bool, typer.Option("--full", help="Export the whole modular model instead (all classes).")] = False,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Export the whole model without gates instead: the baseline a module is timed against.")] = False,
) -> None:
    """Compile a per-module ONNX file by physically removing the kernels the classes do not use."""
    from onnxruntime import get_available_providers as available_providers

    from exporter.compile import ExportOptions, ModuleCompiler, default_gates, export_module_file
    from mwt.core.atomic import check_writable, write_bytes_atomic
    from mwt.checkpoint import file_sha256, load_checkpoint
    from mwt.core.names import safe_stem
    from mwt.data import resolve_classes

    if full or plain:
        target = out or Path("plain.onnx" if plain else "full.onnx")
        check_writable(target)
        compiler = ModuleCompiler.from_file(checkpoint)
        proto = compiler.plain_model if plain else compiler.full_model
        write_bytes_atomic(target, proto.SerializeToString(deterministic=True))
        print(f"wrote the {'plain' if plain else 'modular'} full model to {target}")
        return
    ckpt = load_checkpoint(checkpoint)
    indices = tuple(resolve_classes(ckpt.classes, classes))
    # the default name comes from the checkpoint's class names: made safe, it stays in this folder
    target = out or Path(safe_stem([ckpt.classes[i] for i in indices]) + ".onnx")
    check_writable(target)  # before the (slow) torch export
    compiler = ModuleCompiler(ckpt, file_sha256(checkpoint))
    precision = Precision(precision.value)
    options = ExportOptions(indices, threshold=threshold, gates=gates or default_gates(ckpt), align=align,
                            force_folded=force_folded, precision=precision, calibration_images=calibration_images)
    if precision is Precision.fp16 and "CUDAExecutionProvider" not in available_providers():
        typer.echo("warning: an FP16 module gains nothing on a CPU (onnxruntime computes it through float32); "
                   "it is meant for GPUs", err=True)
    report = export_module_file(compiler, options, target, data_dir=data_dir)
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
