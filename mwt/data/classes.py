"""Class lists as the command line takes them: names (case-insensitive) or indices."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from mwt.core.errors import MwtError


def resolve_classes(names: Sequence[str], spec: str | Sequence[str | int]) -> list[int]:
    """Turn "cat,dog" (names, case-insensitive, or indices; a list of them, ints for indices) into
    class indices, in the order given.

    Raises MwtError for an empty list, unknown names (listing the valid ones), indices out of
    range and duplicates.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [int(s) if isinstance(s, Integral) else s.strip() for s in items]
    items = [s for s in items if s != ""]
    if not items:
        raise MwtError("the class list is empty; name at least one class, e.g. " + ",".join(names[:2]),
                       options=("classes",))
    lookup = {n.lower(): i for i, n in enumerate(names)}
    out: list[int] = []
    for item in items:
        key = str(item).lower()
        if isinstance(item, int):
            if not 0 <= item < len(names):
                raise MwtError(f"class index {item} is out of range: there are {len(names)} classes")
            idx = item
        elif key in lookup:
            idx = lookup[key]
        elif key.isdigit() and int(key) < len(names):
            idx = int(key)
        else:
            raise MwtError(f"unknown class '{item}'; valid classes: {', '.join(names)}")
        if idx in out:
            raise MwtError(f"class '{item}' is named twice in the class list")
        out.append(idx)
    return out
