"""Batch parallelism: a batch cut into slices that run at once, each on its own one-thread session.

onnxruntime parallelizes inside each op: every conv, pool and reorder is split across the intra-op
threads, which wake for it and sleep after it when they may not spin (sessions that take turns, the
server). A small module's ops are short, so those wake-ups are a large share of its run: on a 2-core
Intel Xeon (AVX-512) a pair module ran 1.87 ms at batch 32 on one 2-thread session that does not
spin, 1.46 ms when it spins, and 1.50 ms as two one-thread sessions taking half the batch each (the
plain full model: 4.54, 4.22 and 4.23 ms; docs/results.md, stop 45). Slicing pays one hand-off per
call instead of one per op, and leaves no thread spinning between calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np
import onnxruntime as ort


def slice_bounds(rows: int, slices: int) -> list[tuple[int, int]]:
    """`rows` cut into at most `slices` contiguous, non-empty ranges whose sizes differ by at most one."""
    n = max(1, min(slices, rows))
    edges = [rows * i // n for i in range(n + 1)]
    return list(zip(edges[:-1], edges[1:]))


class SlicedSession:
    """Several one-thread sessions of one model behind the part of `ort.InferenceSession`'s
    interface mwt uses (`run`, `get_inputs`, `get_outputs`, `get_providers`,
    `get_session_options`). Every input and output must be batch-major (an mwt module's are):
    `run` cuts the inputs along axis 0, runs the slices at once (the caller's thread takes the
    first) and joins the outputs along axis 0, so the answer equals one session's."""

    def __init__(self, sessions: Sequence[ort.InferenceSession]) -> None:
        if not sessions:
            raise ValueError("a sliced session needs at least one session")
        self._sessions = list(sessions)
        # onnxruntime releases the GIL while it runs, so Python threads are enough here.
        self._pool = ThreadPoolExecutor(len(sessions) - 1, thread_name_prefix="mwt-slice") if len(sessions) > 1 else None

    @property
    def slices(self) -> int:
        """How many slices a batch is cut into at most (one per session)."""
        return len(self._sessions)

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray],
            run_options: ort.RunOptions | None = None) -> list[np.ndarray]:
        """The outputs for `feeds`, as `ort.InferenceSession.run` returns them."""
        rows = {len(v) for v in feeds.values()}
        if len(rows) != 1:
            raise ValueError(f"every input of a sliced session must hold the same number of rows, got {sorted(rows)}")
        bounds = slice_bounds(rows.pop(), len(self._sessions))
        if len(bounds) == 1 or self._pool is None:
            return self._sessions[0].run(output_names, feeds, run_options)
        parts = [{k: v[a:b] for k, v in feeds.items()} for a, b in bounds]
        futures: list[Future[list[np.ndarray]]] = [
            self._pool.submit(s.run, output_names, part, run_options) for s, part in zip(self._sessions[1:], parts[1:])]
        try:
            first = self._sessions[0].run(output_names, parts[0], run_options)
        finally:
            wait(futures)  # no slice still running once this call returns or raises
        outputs = [first] + [f.result() for f in futures]
        return [np.concatenate(column, axis=0) for column in zip(*outputs)]

    def get_inputs(self) -> list[ort.NodeArg]:
        return self._sessions[0].get_inputs()

    def get_outputs(self) -> list[ort.NodeArg]:
        return self._sessions[0].get_outputs()

    def get_providers(self) -> list[str]:
        return self._sessions[0].get_providers()

    def get_session_options(self) -> ort.SessionOptions:
        """The options of each of its sessions (they share them)."""
        return self._sessions[0].get_session_options()

    def close(self) -> None:
        """Stop the slice threads (the sessions go with the object)."""
        if self._pool is not None:
            self._pool.shutdown()
