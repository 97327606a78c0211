"""Defaults shared by the library and the command line, defined once. Needs no torch."""

from __future__ import annotations

from mwt.core.errors import MwtError

# A kernel joins a class's module when its frequency >= this (MwT's default).
DEFAULT_THRESHOLD = 0.9
# Kernel counts are rounded up to a multiple of this by default: onnxruntime's CPU convolutions
# work in channel blocks of 8 (AVX2) or 16 (AVX-512), and odd widths fall out of them.
DEFAULT_ALIGN = 8


def check_threshold(threshold: float) -> None:
    """A threshold must be in (0, 1] (NaN is not)."""
    if not 0 < threshold <= 1:
        raise MwtError(f"threshold must be in (0, 1], got {threshold}")


def check_selection(classes: tuple[int, ...] | list[int], num_classes: int, threshold: float, align: int) -> None:
    """The one check of which module is asked for: each class once and in range, a threshold in
    (0, 1], an alignment in 1..1024."""
    if not classes:
        raise MwtError("the class list is empty")
    if len(set(classes)) != len(classes):
        raise MwtError("a class is named twice in the class list")
    if not all(0 <= c < num_classes for c in classes):
        raise MwtError(f"class indices must be in 0..{num_classes - 1}, got {list(classes)}")
    check_threshold(threshold)
    if not 1 <= align <= 1024:
        raise MwtError(f"align must be in 1..1024, got {align}")
