"""Defaults shared by the library and the command line, and the one rule for each selection and
training setting, defined once. Needs no torch (the CLI checks options with these before loading any)."""

from __future__ import annotations

import math
from numbers import Integral, Real

from mwt.core.errors import MwtError
from mwt.core.metadata import ROUNDINGS

# A kernel joins a class's module when its frequency >= this (MwT's default).
DEFAULT_THRESHOLD = 0.9
# Kernel counts are rounded up to a multiple of this by default: onnxruntime's CPU convolutions
# work in channel blocks of 8 (AVX2) or 16 (AVX-512), and odd widths fall out of them.
DEFAULT_ALIGN = 8
MAX_ALIGN = 1024
# How a stream's kept kernel count meets the alignment (mwt.core.metadata.ROUNDINGS): by default
# up, adding the next most frequent kernels, so nothing the classes use is lost.
DEFAULT_ROUNDING = "up"
# torch's generators take 64-bit seeds; a larger one fails deep inside a run, after the data loads.
MAX_SEED = 2**64 - 1


def finite_number(value: object) -> bool:
    """A real, finite number (bools are not numbers here)."""
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def check_threshold(threshold: float) -> float:
    """A threshold must be a finite number in (0, 1]."""
    if not (math.isfinite(threshold) and 0 < threshold <= 1):
        raise MwtError(f"the threshold must be a finite number in (0, 1], got {threshold}", options=("threshold",))
    return threshold


def check_channel_block(value: int, name: str, option: str) -> int:
    """A channel count to round to (an alignment, a cost block) must be a whole number in 1..MAX_ALIGN."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not 1 <= value <= MAX_ALIGN:
        raise MwtError(f"{name} must be a whole number in 1..{MAX_ALIGN}, got {value}", options=(option,))
    return int(value)


def check_pad_limit(pad_limit: float) -> float:
    """A pad limit (a fraction of a module's FLOPs) must be a finite number >= 0."""
    if isinstance(pad_limit, bool) or not isinstance(pad_limit, Real) or not (math.isfinite(pad_limit) and pad_limit >= 0):
        raise MwtError(f"the pad limit must be a finite number >= 0, got {pad_limit}", options=("pad_limit",))
    return float(pad_limit)


def check_rounding(rounding: str) -> str:
    """A rounding must be one of ROUNDINGS."""
    if rounding not in ROUNDINGS:
        raise MwtError(f"the rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}", options=("rounding",))
    return rounding


def check_seed(seed: int) -> int:
    """A seed must be a whole number in 0..MAX_SEED."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed <= MAX_SEED:
        raise MwtError(f"the seed must be a whole number in 0..{MAX_SEED}, got {seed}", options=("seed",))
    return int(seed)


def check_align(align: int) -> int:
    """An alignment must be a whole number in 1..MAX_ALIGN."""
    return check_channel_block(align, "align", "align")
