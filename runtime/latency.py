"""Latency measurement that is fair on a noisy machine: warm-up, then interleaved rounds, medians."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runtime.session import Parallelism, SessionSettings


def side_by_side_settings(threads: int, providers: tuple[str, ...],
                          parallelism: Parallelism = Parallelism.ops) -> SessionSettings:
    """Session settings for candidates timed in turn in one process: threads that do not spin,
    or each session's idle threads take the cores from the next one timed."""
    return SessionSettings(intra_op_threads=threads, providers=providers, spin_wait=False, parallelism=parallelism)


@dataclass(frozen=True)
class Latency:
    """Per-call wall time in milliseconds over `runs` calls."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int


def measure_side_by_side(
    candidates: dict[str, Callable[[], object]], *, warmup: int = 3, min_runs: int = 15, min_seconds: float = 2.0,
    max_runs: int = 300, calls_per_turn: int = 1,
) -> dict[str, Latency]:
    """Time every candidate in interleaved turns, so a slow patch of the machine hits all of them
    alike: each turn calls each candidate `calls_per_turn` times in a row, and every call is a
    sample. Stop once each has `min_runs` samples and `min_seconds` have passed, or at `max_runs`.

    With one call per turn a candidate always follows another one, so it starts each call with the
    others' weights in the caches; several calls per turn time it as a deployment runs it, warm,
    alone on the cores, while still sharing the machine's slow patches with the others."""
    if calls_per_turn < 1:
        raise ValueError(f"calls per turn must be at least 1, got {calls_per_turn}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    start = time.perf_counter()
    runs = 0
    while runs < max_runs and (runs < min_runs or time.perf_counter() - start < min_seconds):
        for name, fn in candidates.items():
            for _ in range(calls_per_turn):
                t = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - t) * 1000)
        runs += calls_per_turn
    out = {}
    for name, values in samples.items():
        deciles = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
        out[name] = Latency(statistics.median(values), deciles[0], deciles[-1], len(values))
    return out


@dataclass(frozen=True)
class LatencyRow:
    """One candidate at one batch size; `speedup` is the baseline's median over this one's."""

    config: str
    batch: int
    median_ms: float
    p90_ms: float
    speedup: float


def compare_latency(
    candidates: dict[str, Callable[[np.ndarray], object]], shape: tuple[int, ...], batches: tuple[int, ...],
    baseline: str, *, min_seconds: float = 2.0, seed: int = 0, calls_per_turn: int = 1,
) -> list[LatencyRow]:
    """Time every candidate on the same random batch of each size, side by side (see
    `measure_side_by_side`, which `calls_per_turn` goes to), and express each as a speedup over
    `baseline`."""
    if baseline not in candidates:
        raise ValueError(f"the baseline '{baseline}' is not among the candidates")
    rng = np.random.default_rng(seed)
    rows = []
    for batch in batches:
        x = rng.random((batch, *shape), dtype=np.float32)
        timings = measure_side_by_side({name: (lambda f=f, x=x: f(x)) for name, f in candidates.items()},
                                       min_seconds=min_seconds, calls_per_turn=calls_per_turn)
        base = timings[baseline].median_ms
        rows += [LatencyRow(name, batch, t.median_ms, t.p90_ms, base / t.median_ms) for name, t in timings.items()]
    return rows
