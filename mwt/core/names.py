"""Class names, checked once where they enter, and the file-name stems built from them.

A class name comes from a folder name at train time, or from a checkpoint or a module file
that someone else may have edited. It ends up in file names (`finetune`'s and `export`'s
default outputs, Triton model folders), in `labels.txt` (one class per line), in Triton's
`config.pbtxt` and in `predict`'s table. So every name is held to one rule where it enters
(`check_class_names`): printable text, no control characters (newlines, NUL, escapes), no
line or paragraph separators, no path separators, not "." or "..", at most `MAX_NAME` characters.
File names built from class names go through `safe_stem`, which keeps letters, digits, '-' and
'_' only, so no name, whatever passed the check, can leave the output folder.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from mwt.core.errors import MwtError

MAX_NAME = 200  # characters of one class name
MAX_STEM = 100  # characters of a file-name stem built from class names
# Unicode categories refused in a class name: control and format characters (a bidi override
# can make a name print as another), line and paragraph separators, unassigned and private code points.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


def class_name_problem(name: object) -> str | None:
    """Why `name` cannot be a class name (None when it can)."""
    if not isinstance(name, str):
        return f"{type(name).__name__} is not a name"
    if not name or not name.strip():
        return "an empty name"
    if len(name) > MAX_NAME:
        return f"a name of {len(name)} characters (at most {MAX_NAME})"
    if name in (".", ".."):
        return f"the name '{name}'"
    for ch in name:
        if ch in "/\\":
            return f"a path separator ({ch!r})"
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            return f"the control or format character {ascii(ch)}"
    return None


def check_class_names(names: Sequence[object], where: str) -> list[str]:
    """The names, if each is a valid class name and no two are equal; MwtError naming the first
    bad one otherwise. `where` says where they came from ("checkpoint x.pt", "folder data/")."""
    for name in names:
        problem = class_name_problem(name)
        if problem is not None:
            raise MwtError(f"{where} has a class name {ascii(name)[:60]} that holds {problem}; class names must be "
                           "printable text without control characters or path separators: rename it")
    if len(set(names)) != len(names):
        twice = next(n for n in names if list(names).count(n) > 1)
        raise MwtError(f"{where} lists the class {ascii(twice)[:60]} twice")
    return [str(n) for n in names]


def case_collisions(names: Sequence[str]) -> tuple[str, str] | None:
    """Two names that differ only in case (after Unicode case-folding), or None."""
    seen: dict[str, str] = {}
    for name in names:
        key = unicodedata.normalize("NFKC", name).casefold()
        if key in seen:
            return seen[key], name
        seen[key] = name
    return None


def safe_stem(names: Sequence[str], fallback: str = "module") -> str:
    """A file-name stem from class names: joined with '-', every run of characters other than
    ASCII letters, digits, '-' and '_' replaced by '_', never starting with '-' (it would read
    as an option) and at most MAX_STEM characters (a longer one ends in a digest of the whole,
    so two long lists do not end up with one name)."""
    joined = "-".join(names)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", joined).lstrip("-")
    if len(stem) > MAX_STEM:
        digest = hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        stem = stem[:MAX_STEM - 9] + "_" + digest
    return stem or fallback


def printable(text: str) -> str:
    """`text` with control characters shown as escapes: for echoing a file name in a table,
    where a newline in it would otherwise forge a line."""
    if all(unicodedata.category(ch) not in _REFUSED_CATEGORIES for ch in text):
        return text
    return "".join(ascii(ch)[1:-1] if unicodedata.category(ch) in _REFUSED_CATEGORIES else ch for ch in text)
