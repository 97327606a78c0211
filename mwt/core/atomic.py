"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Rules for the file being replaced: its permission bits are kept (a new file gets 0666 less the
umask, as `open` would give it); an output path that is a symbolic link keeps being one: the
file it points to is replaced, as an editor saving through a link does.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from mwt.core.errors import MwtError


class WriteFailed(MwtError):
    """Writing a file failed part-way (ENOSPC, EDQUOT, EIO, ...); `errno` says why."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def _resolve(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    if target.is_symlink():
        try:
            return target.resolve(strict=False)
        except (OSError, RuntimeError):  # a link loop
            raise MwtError(f"cannot write {target}: it is a symbolic link that does not resolve") from None
    return target


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise MwtError unless `path` could be written; checked before long work starts, so a typo
    in an output path does not cost a training run."""
    target = _resolve(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise MwtError(f"cannot write {path}: it is a directory")
    if not parent.is_dir():
        raise MwtError(f"cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise MwtError(f"cannot write {path}: folder {parent} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise MwtError(f"cannot write {path}: the file is not writable")


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    An existing file at `path` is untouched unless the whole write succeeds. An OSError while
    writing (a full disk, a quota) becomes WriteFailed: one line that says the old file is kept.
    """
    check_writable(path)
    target = _resolve(path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise WriteFailed(f"cannot write {path}: {e.strerror}", e.errno) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else _new_file_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:  # a full disk, a quota, an I/O error: one line, and the old file stands
        tmp.unlink(missing_ok=True)
        kept = "; the old file is kept" if target.exists() else ""
        raise WriteFailed(f"cannot write {path}: {e.strerror or e}{kept}", e.errno) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` and move the result onto `path` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write `data` to `path` atomically (WriteFailed, an MwtError, when the disk is full)."""
    write_atomic(path, lambda tmp: tmp.write_bytes(data))
