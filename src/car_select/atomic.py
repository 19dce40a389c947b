"""Atomic output: write to a temporary sibling, then rename it onto the target.

A reader of the target sees either the old content or the complete new content, never a partial
file; a failure (or Ctrl-C) part-way leaves the target untouched and removes the temporary.
Every problem with the destination becomes a one-line `CarSelectError("cannot write <path>: ...")`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import CarSelectError
from .outputs import _remove, _replace_dir, _umask, probe_writable

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "check_writable"]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def check_writable(path: str | os.PathLike, *, overwrite: bool = True, directory: bool = False) -> None:
    """Raise CarSelectError unless `path` can be written: call before any expensive work.

    Checks that the parent directory exists and is writable, that `path` is not an existing file
    when `overwrite` is false, and that an existing `path` is of the right kind (a file, or a folder
    when `directory` is true, as for a Hugging Face `save_to_disk` output).
    """
    p = Path(path)
    parent = p.parent
    if not parent.exists():
        raise CarSelectError(f"cannot write {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise CarSelectError(f"cannot write {path}: {parent} is not a directory")
    problem = probe_writable(str(parent))
    if problem:
        raise CarSelectError(f"cannot write {path}: directory {parent} is not writable ({problem})")
    if p.exists() or p.is_symlink():
        if not overwrite:
            raise CarSelectError(f"cannot write {path}: it already exists (pass --overwrite to replace it)")
        if p.is_dir() and not directory:
            raise CarSelectError(f"cannot write {path}: it is a directory")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[str]:
    """Yield a temporary path next to `path`; on success rename it onto `path`, on error delete it.

    With `directory=False` (the default) the temporary is an empty file the caller overwrites; with
    `directory=True` it is an empty folder the caller fills, and an existing folder at `path` is
    replaced as a whole. Exceptions from the body propagate unchanged after the clean-up.
    """
    target = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target) or "output"
    if not os.path.isdir(parent):
        raise CarSelectError(f"cannot write {target}: directory {os.path.dirname(target) or parent} does not exist")
    if not directory and os.path.isdir(target):
        raise CarSelectError(f"cannot write {target}: it is a directory")
    try:
        if directory:
            tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
            os.close(fd)
    except OSError as exc:
        raise CarSelectError(f"cannot write {target}: {_reason(exc)}") from None
    try:
        yield tmp
        if directory:
            os.chmod(tmp, 0o777 & ~_umask())
            _replace_dir(tmp, target)
        else:
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except OSError:
                mode = 0o666 & ~_umask()
            os.chmod(tmp, mode)
            os.replace(tmp, target)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def _os_errors_as_user_errors(target: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # disk full, permission denied, ...
        raise CarSelectError(f"cannot write {target}: {_reason(exc)}") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    target = os.fspath(path)
    with _os_errors_as_user_errors(target), atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(path, text.encode(encoding))
