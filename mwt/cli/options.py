"""Option types shared by several commands, and the range checks every numeric option goes through.

Floats are checked here rather than with click's FloatRange because a range check lets NaN
through (every comparison with NaN is false); these reject NaN and infinity by name. Options the
library checks too (threshold, align) go through the library's own rule (`mwt.defaults`), so
that a bad value fails before any work and the rule is written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mwt.core.errors import MwtError
from mwt.defaults import DEFAULT_ROUNDING, ROUNDINGS, check_align, check_pad_limit, check_threshold
from runtime.session import Parallelism


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[float | None], float | None]:
    """A typer callback: the value must be finite and within [low, high] (open ends where asked)."""

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"must be a finite number, got {value}")
        if low is not None and (value < low or (low_open and value == low)):
            raise typer.BadParameter(f"must be {'>' if low_open else '>='} {low:g}, got {value:g}")
        if high is not None and (value > high or (high_open and value == high)):
            raise typer.BadParameter(f"must be {'<' if high_open else '<='} {high:g}, got {value:g}")
        return value

    return check


def rule(check: Callable[[Any], object]) -> Callable[[Any], Any]:
    """A typer callback that applies one of the library's rules: its MwtError becomes a usage error."""

    def callback(value: Any) -> Any:
        if value is None:
            return value
        try:
            check(value)
        except MwtError as e:
            raise typer.BadParameter(str(e)) from None
        return value

    return callback


def numbers(low: float, high: float) -> Callable[[list[int] | None], list[int] | None]:
    """A typer callback for a repeated integer option: every value within [low, high]."""
    check = number(low, high)

    def check_all(values: list[int] | None) -> list[int] | None:
        for v in values or []:
            check(v)
        return values

    return check_all


def choices(names: object) -> type[Enum]:
    """A string Enum of registry names, so that typer shows and checks them as choices."""
    return Enum("Choice", {str(n): str(n) for n in names}, type=str)  # type: ignore[return-value]


DataDir = Annotated[Optional[Path], typer.Option(
    help="Folder holding a built-in dataset (default: $MWT_DATA, then the Debian Fashion-MNIST path).")]
Download = Annotated[bool, typer.Option(help="Download a built-in dataset into --data-dir if it is missing.")]
Threshold = Annotated[float, typer.Option(
    help="A kernel joins a class's module when its frequency >= this.", callback=rule(check_threshold))]
Align = Annotated[int, typer.Option(
    help="Round each layer's kept kernel count up to a multiple of N with its next most active kernels "
    "(odd widths run slowly in onnxruntime's CPU kernels; --rounding can round down instead); 1 keeps the "
    "exact retained set.",
    callback=rule(check_align))]
PadLimit = Annotated[Optional[float], typer.Option(
    help="Round a layer up to --align only if that adds at most this fraction to the module's FLOPs; a "
    "costlier one keeps its exact width, smaller but off onnxruntime's blocked kernels (e.g. 0.05; "
    "default: round every layer up).", callback=rule(check_pad_limit), show_default=False)]
RoundingChoice = choices(ROUNDINGS)
Rounding = Annotated[RoundingChoice, typer.Option(  # type: ignore[valid-type]
    help="How each layer meets --align: up adds its next most frequent kernels (nothing lost); down drops "
    "its weakest kept kernels, those with the lowest mean gate (smaller and faster, at some accuracy: "
    "check it with mwt eval --all-pairs); nearest moves whichever is fewer.")]
ROUNDING_DEFAULT = RoundingChoice(DEFAULT_ROUNDING)
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
Classes = Annotated[str, typer.Option(help="Classes by name or index, in output order: 'sneaker,bag'.")]
ParallelismOption = Annotated[Parallelism, typer.Option(
    help="How the CPU threads share the work: ops: onnxruntime splits each op across them; batch: each of "
    "--threads one-thread sessions runs a slice of the batch, one hand-off per call instead of one per op "
    "(faster for small modules on few cores; a GPU runs the whole batch in one session).")]
