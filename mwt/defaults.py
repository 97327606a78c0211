"""Defaults shared by the library and the command line, defined once. Needs no torch."""

from __future__ import annotations

from mwt.errors import MwtError

# A kernel joins a class's module when its frequency >= this (MwT's default).
DEFAULT_THRESHOLD = 0.9
# Kernel counts are rounded up to a multiple of this by default: onnxruntime's CPU convolutions
# work in channel blocks of 8 (AVX2) or 16 (AVX-512), and odd widths fall out of them.
DEFAULT_ALIGN = 8


def check_threshold(threshold: float) -> None:
    """A threshold must be in (0, 1] (NaN is not)."""
    if not 0 < threshold <= 1:
        raise MwtError(f"threshold must be in (0, 1], got {threshold}")
