"""SIGINT and SIGTERM as a request to stop at the next step boundary, so a run can save first."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequest:
    """Within the block, SIGINT and SIGTERM only record that a stop was asked for; the loop stops
    at the next step boundary. Outside the main thread (where handlers cannot go) it does nothing."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._record)
        return self

    def _record(self, signum: int, _frame: object) -> None:
        self.signal = signum

    def __exit__(self, *_: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
