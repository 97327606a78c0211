"""Progress bars for long loops (tqdm), shown only on a terminal: redrawn bars in a log file or a
pipe are noise, so there the commands print one line per epoch or step instead."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Progress(Generic[T]):
    """An iterable with a tqdm bar on stderr when enabled and stderr is a terminal, and a plain loop otherwise."""

    def __init__(self, items: Iterable[T], *, total: int | None = None, desc: str = "", enable: bool = True) -> None:
        self._items = items
        self._bar: Any = None
        if enable and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(items, total=total, desc=desc, leave=False, dynamic_ncols=True)

    def __iter__(self) -> Iterator[T]:
        if self._bar is None:
            yield from self._items
            return
        try:
            yield from self._bar
        finally:
            self._bar.close()

    def set_postfix(self, **values: str) -> None:
        """Show `values` after the bar (no-op without a bar)."""
        if self._bar is not None:
            self._bar.set_postfix(refresh=False, **values)


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", enable: bool = True) -> Progress[T]:
    """Wrap `items` in a progress bar when `enable`."""
    return Progress(items, total=total, desc=desc, enable=enable)
