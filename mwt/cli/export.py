"""`mwt export` / `mwt-export`: compile a modularized checkpoint into a compact ONNX module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from mwt.cli.entrypoint import exit_process, run_app
from mwt.cli.options import (ROUNDING_DEFAULT, Align, Classes, DataDir, Download, PadLimit, Rounding, Threshold,
                             choices)
from mwt.core.errors import MwtError
from mwt.core.metadata import GateMode, Precision
from mwt.defaults import DEFAULT_ALIGN, DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from exporter.export import ExportImages
    from mwt.checkpoint import Checkpoint
    from mwt.selection import ModuleSelection

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
    pad_limit: PadLimit = None,
    rounding: Rounding = ROUNDING_DEFAULT,
    force_folded: Annotated[bool, typer.Option(
        "--force-folded", help="Fold gates even where constant gates cannot represent the classes.")] = False,
    precision: Annotated[ExportPrecision, typer.Option(  # type: ignore[valid-type]
        help="fp32; int8 (static QDQ, calibrated on training images of the classes; for CPUs); "
        "fp16 (for GPUs)")] = ExportPrecision("fp32"),
    calibration_images: Annotated[int, typer.Option(
        help="INT8: how many training images of the classes calibrate the activation ranges.")] = 512,
    data_dir: DataDir = None,
    download: Download = False,
    full: Annotated[bool, typer.Option("--full", help="Export the whole modular model instead (all classes).")] = False,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Export the whole model without gates instead: the baseline a module is timed against.")] = False,
) -> None:
    """Compile a per-module ONNX file by physically removing the kernels the classes do not use."""
    from onnxruntime import get_available_providers as available_providers

    from exporter.compile import ModuleCompiler
    from exporter.export import ExportSettings, export_module_file, needed_images, write_module
    from mwt.checkpoint import file_sha256, load_checkpoint
    from mwt.core.atomic import check_writable
    from mwt.core.names import safe_stem
    from mwt.cost import cost_model
    from mwt.selection import ModuleSelection

    if full or plain:
        # the whole model is written as it is: an option that would change the file must not pass unnoticed
        which = "--plain" if plain else "--full"
        conflicting = [name for name, given in (("--full", full and plain), ("--precision", precision.value != "fp32"),
                                                ("--gates", gates is not None), ("--force-folded", force_folded))
                       if given]
        if conflicting:
            raise MwtError(f"{which} writes the whole model as it is (fp32, its own gates): {conflicting[0]} does not "
                           "apply; export a module with --classes alone for that", options=(conflicting[0].lstrip("-").replace("-", "_"),))
        target = out or Path("plain.onnx" if plain else "full.onnx")
        check_writable(target)
        compiler = ModuleCompiler.from_file(checkpoint)
        write_module(compiler.plain_model if plain else compiler.full_model, target)
        print(f"wrote the {'plain' if plain else 'modular'} full model to {target}")
        return
    settings = ExportSettings(gates=gates, precision=Precision(precision.value), force_folded=force_folded,
                              calibration_images=calibration_images)
    ckpt = load_checkpoint(checkpoint)
    # the cost model, probed once for the selection's alignment and the compiler
    cost = cost_model(ckpt.build(), ckpt.spec.input_shape) if ckpt.spec.modular else None
    selection = ModuleSelection.of(ckpt, classes, threshold=threshold, align=align, cost=cost, whole=True,
                                   path=checkpoint, pad_limit=pad_limit, rounding=str(rounding.value))
    # the default name comes from the checkpoint's class names: made safe, it stays in this folder
    target = out or Path(safe_stem(list(selection.names)) + ".onnx")
    check_writable(target)  # before the (slow) torch export
    # the images the export step needs, before the torch export too: missing ones fail fast
    images = load_export_images(ckpt, selection, needed_images(ckpt, selection, settings), settings.precision,
                                data_dir, download)
    if settings.precision is Precision.fp16 and "CUDAExecutionProvider" not in available_providers():
        typer.echo("warning: an FP16 module gains nothing on a CPU (onnxruntime computes it through float32); "
                   "it is meant for GPUs", err=True)
    compiler = ModuleCompiler(ckpt, file_sha256(checkpoint), checkpoint, cost=cost)
    report = export_module_file(compiler, selection, target, settings, images)
    print(report.table())
    print(f"wrote {target}")


def load_export_images(ckpt: Checkpoint, selection: ModuleSelection, splits: set[str], precision: Precision,
                       data_dir: Path | None, download: bool = False) -> ExportImages:
    """The images of the selection's classes the export step asks for, by name; a split that
    cannot be loaded is left out (the step then skips what needs it), except the training images
    INT8 calibrates on, without which there is no module."""
    from exporter.errors import ExportError
    from exporter.export import ExportImages
    from mwt.data import load_named

    names = list(selection.names)
    if len(names) == 1:  # its own class first (label 0), then every other: see ExportImages
        names += [c for c in ckpt.classes if c != names[0]]
    loaded = {}
    for split in sorted(splits):
        try:
            loaded[split] = load_named(ckpt.source, split, names, data_dir, download)
        except MwtError as e:
            if split == "train" and precision is Precision.int8:
                raise ExportError(f"INT8 calibration needs training images of the module's classes, and {e}",
                                  options=e.options) from None
    return ExportImages(**loaded)
def main(argv: list[str] | None = None) -> int:
    """Console-script entry point of `mwt-export` (the same command as `mwt export`)."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    single.command(help=export.__doc__)(export)
    code = run_app(single, argv if argv is not None else sys.argv[1:], prog_name="mwt-export")
    if argv is None:
        exit_process(code)
    return code
