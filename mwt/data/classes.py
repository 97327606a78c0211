"""Class lists as the command line takes them: names (case-insensitive) or indices."""

from __future__ import annotations

from mwt.core.errors import MwtError


def resolve_classes(names: list[str], spec: str | list[str]) -> list[int]:
    """Turn "cat,dog" (names, case-insensitive, or indices) into class indices, in the order given.

    Raises MwtError for an empty list, unknown names (listing the valid ones) and duplicates.
    """
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [s.strip() for s in spec]
    items = [s for s in items if s]
    if not items:
        raise MwtError("the class list is empty; name at least one class, e.g. " + ",".join(names[:2]),
                       options=("classes",))
    lookup = {n.lower(): i for i, n in enumerate(names)}
    out: list[int] = []
    for item in items:
        key = item.lower()
        if key in lookup:
            idx = lookup[key]
        elif key.isdigit() and int(key) < len(names):
            idx = int(key)
        else:
            raise MwtError(f"unknown class '{item}'; valid classes: {', '.join(names)}")
        if idx in out:
            raise MwtError(f"class '{item}' is named twice in the class list")
        out.append(idx)
    return out
