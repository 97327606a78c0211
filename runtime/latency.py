"""Latency measurement that is fair on a noisy machine: warm-up, then interleaved rounds, medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """Per-call wall time in milliseconds over `runs` calls."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int


def measure_side_by_side(
    candidates: dict[str, Callable[[], object]], *, warmup: int = 3, min_runs: int = 15, min_seconds: float = 2.0,
    max_runs: int = 300,
) -> dict[str, Latency]:
    """Time every candidate in interleaved rounds (each round calls each once, in turn), so a
    slow patch of the machine hits all of them alike; stop after `min_runs` rounds and
    `min_seconds`, or at `max_runs`."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_runs and (rounds < min_runs or time.perf_counter() - start < min_seconds):
        for name, fn in candidates.items():
            t = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t) * 1000)
        rounds += 1
    out = {}
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
        out[name] = Latency(statistics.median(values), deciles[0], deciles[-1], len(values))
    return out
