"""The export step around the compiler: what needs images, given them, and the file written.

`export_module` compiles a selection (`ModuleCompiler.compile`, pure), guards folded gates with
training images of the module's classes, lowers the module to its precision (INT8 calibrates on
those images) and measures a lowered module's accuracy against FP32 on their test images. It
loads nothing: the caller (the CLI) loads the images `needed_images` names and passes them in;
what is missing is skipped with a warning, or refused where the module cannot be made without.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx

from exporter.compile import ModuleCompiler, default_gates, trained_for_reuse
from exporter.errors import ExportError
from exporter.precision import calibration_images, lower
from exporter.report import ExportReport, FoldedCheck
from mwt.checkpoint import Checkpoint
from mwt.core.errors import MwtWarning
from mwt.core.metadata import GateMode, Precision
from mwt.data import AnySplit
from mwt.selection import ModuleSelection, modularization_of

# A folded module whose accuracy on its classes' training images falls more than this below the
# dynamic module's is refused unless forced: folded gates collapsed some trained modules to chance
# while others lost nothing, and no statistic of the gates told them apart (docs/results.md).
FOLDED_DROP_LIMIT = 0.05
FOLDED_CHECK_IMAGES = 1024
MAX_CALIBRATION_IMAGES = 100_000


@dataclass(frozen=True)
class ExportSettings:
    """How to export a selected module (which module: a ModuleSelection)."""

    gates: GateMode | None = None  # None: the compiler's default for the checkpoint
    precision: Precision = Precision.fp32
    force_folded: bool = False  # fold gates even where the guard finds constants cannot represent the classes
    calibration_images: int = 512  # INT8: training images of the module's classes for the activation ranges

    def __post_init__(self) -> None:
        if self.precision is Precision.mixed:
            raise ExportError("a module is exported at one precision: fp32, fp16 or int8", options=("precision",))
        if not 1 <= self.calibration_images <= MAX_CALIBRATION_IMAGES:
            raise ExportError(f"the calibration image count must be in 1..{MAX_CALIBRATION_IMAGES}, got "
                              f"{self.calibration_images}", options=("calibration_images",))


@dataclass(frozen=True)
class ExportImages:
    """Images of the module's classes for the export step, labelled 0..k-1 in the selection's
    order (as `mwt.data.load_named` gives them); None where they are not at hand. A one-class
    module gets images of every class, its own labelled 0: it is checked by how its one logit
    ranks them (`mwt.evaluate.one_class_separation`), and in a composition it sees them all."""

    train: AnySplit | None = None  # the folded-gates guard and INT8 calibration
    test: AnySplit | None = None  # a lowered module's accuracy against FP32


def _guarded(ckpt: Checkpoint, selection: ModuleSelection, settings: ExportSettings) -> bool:
    """Whether the folded-gates guard runs: folded gates on a gated module, not forced."""
    gates = settings.gates or default_gates(ckpt)
    return gates is GateMode.folded and selection.gated and not settings.force_folded


def needed_images(ckpt: Checkpoint, selection: ModuleSelection, settings: ExportSettings) -> set[str]:
    """The splits ("train", "test") `export_module` would use with these settings (known before
    the compiler's torch export, so that missing images fail fast)."""
    needed = set()
    if _guarded(ckpt, selection, settings) or settings.precision is Precision.int8:
        needed.add("train")
    if settings.precision is not Precision.fp32:
        needed.add("test")
    return needed


def check_folded(ckpt: Checkpoint, selection: ModuleSelection, train: AnySplit) -> FoldedCheck:
    """Accuracy of the module with dynamic and with folded gates (PyTorch simulations) on up to
    FOLDED_CHECK_IMAGES of `train` (a seeded sample; images of the selection's classes); for a
    one-class module, its separation on images of every class (see `ExportImages`)."""
    from mwt.evaluate import accuracy, separation
    from mwt.modularize import folded_gate_values, frozen_gates, retain_only

    images = train.sample(FOLDED_CHECK_IMAGES, seed=0).materialize()
    model = ckpt.build()
    columns = selection.indices
    one_class = len(columns) == 1

    def score() -> float:
        return separation(model, images, columns[0]) if one_class else accuracy(model, images, columns=columns)

    with retain_only(model, selection.kept):
        dynamic = score()
        values = folded_gate_values(modularization_of(ckpt), columns, selection.kept)
        with frozen_gates(model, values):
            folded = score()
    return FoldedCheck(dynamic, folded, len(images), "separation" if one_class else "accuracy")


def guard_folded(ckpt: Checkpoint, selection: ModuleSelection, train: AnySplit | None) -> FoldedCheck | None:
    """Refuse folded gates that lose accuracy on `train`; warn (and return None) without it,
    except for a checkpoint trained for reuse, whose folded modules are what it was trained as."""
    names = ", ".join(selection.names)
    if train is None and trained_for_reuse(ckpt):
        return None
    if train is None:
        warnings.warn(MwtWarning(f"folded gates for {names} were not checked (no training images of them at hand); "
                                 "folding has collapsed trained modules to chance: check this module's accuracy",
                                 options=("data_dir",)), stacklevel=3)
        return None
    check = check_folded(ckpt, selection, train)
    if check.folded_acc < check.dynamic_acc - FOLDED_DROP_LIMIT:
        scored = (f"on {check.images} of their training images the folded module is right "
                  f"{100 * check.folded_acc:.1f}% of the time against {100 * check.dynamic_acc:.1f}% with dynamic gates"
                  if check.measure == "accuracy" else
                  f"on {check.images} training images of every class the folded module's logit ranks its class's images "
                  f"above the others' in {100 * check.folded_acc:.1f}% of pairs against {100 * check.dynamic_acc:.1f}% "
                  "with dynamic gates")
        raise ExportError(f"folded gates cannot represent {names}: {scored}; keep dynamic gates, fine-tune a gate-free "
                          "module (mwt finetune), or force folding", options=("force_folded",))
    return check


def export_module(compiler: ModuleCompiler, selection: ModuleSelection, settings: ExportSettings = ExportSettings(),
                  images: ExportImages = ExportImages()) -> tuple[onnx.ModelProto, ExportReport]:
    """The module of `selection` at its precision, and its report (see the module docstring).

    Folded gates are checked against dynamic ones on `images.train` before compiling (unless
    forced); INT8 needs `images.train` to calibrate on; a lowered module's accuracy beside the
    FP32 one's is measured on `images.test` where given.
    """
    from mwt.evaluate import module_accuracy, module_separation

    check = guard_folded(compiler.ckpt, selection, images.train) if _guarded(compiler.ckpt, selection, settings) else None
    model, report = compiler.compile(selection, settings.gates)
    report.folded_check = check
    if settings.precision is not Precision.fp32:
        calibration = None
        if settings.precision is Precision.int8:
            if images.train is None:
                raise ExportError("INT8 calibration needs training images of the module's classes",
                                  options=("data_dir",))
            # on the module's classes' images (metadata records them), a one-class module's own among every class's
            own = images.train.where([0]) if len(selection.indices) == 1 else images.train
            calibration = calibration_images(own, settings.calibration_images)
        lowered = lower(model, settings.precision, calibration)
        if images.test is not None:
            scored = {"fp32": model, settings.precision.value: lowered}
            if len(selection.indices) == 1:
                report.accuracy, report.accuracy_measure = module_separation(scored, images.test), "separation"
            else:
                report.accuracy = module_accuracy(scored, images.test, selection.indices)
        model, report.precision = lowered, settings.precision
    return model, report


def write_module(model: onnx.ModelProto, out: str | Path) -> int:
    """Write a module's deterministic serialization to `out` atomically; returns its size in bytes."""
    from mwt.core.atomic import write_bytes_atomic

    data = model.SerializeToString(deterministic=True)
    write_bytes_atomic(out, data)
    return len(data)


def export_module_file(compiler: ModuleCompiler, selection: ModuleSelection, out: str | Path,
                       settings: ExportSettings = ExportSettings(), images: ExportImages = ExportImages()
                       ) -> ExportReport:
    """`export_module`, written to `out` atomically (nothing is written when it fails)."""
    model, report = export_module(compiler, selection, settings, images)
    report.file_bytes = write_module(model, out)
    return report
