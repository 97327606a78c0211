"""Class lists as the command line takes them: names or indices."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

from mwt.core.errors import MwtError


def resolve_classes(names: Sequence[str], spec: str | Sequence[str | int]) -> list[int]:
    """Turn "cat,dog" (names or indices; a list of them, ints for indices) into class indices, in
    the order given.

    A name resolves exactly when a class is called that; otherwise case-insensitively, but only
    where one class matches (with classes "Cat" and "cat", "Cat" is the first and "CAT" is an
    error, never a guess). Raises MwtError for an empty list, unknown or ambiguous names (listing
    the valid ones), indices out of range and duplicates.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [int(s) if isinstance(s, Integral) else s.strip() for s in items]
    items = [s for s in items if s != ""]
    if not items:
        raise MwtError("the class list is empty; name at least one class, e.g. " + ",".join(names[:2]),
                       options=("classes",))
    exact = {n: i for i, n in enumerate(names)}
    folded: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        folded.setdefault(n.casefold(), []).append(i)
    out: list[int] = []
    for item in items:
        if isinstance(item, int):
            if not 0 <= item < len(names):
                raise MwtError(f"class index {item} is out of range: there are {len(names)} classes")
            idx = item
        elif len(matches := [exact[item]] if item in exact else folded.get(item.casefold(), [])) == 1:
            idx = matches[0]
        elif matches:
            raise MwtError(f"'{item}' matches the classes {', '.join(repr(names[i]) for i in matches)}, which differ "
                           "only in case; name one exactly")
        elif item.isdigit() and int(item) < len(names):
            idx = int(item)
        else:
            raise MwtError(f"unknown class '{item}'; valid classes: {', '.join(names)}")
        if idx in out:
            raise MwtError(f"class '{item}' is named twice in the class list")
        out.append(idx)
    return out
