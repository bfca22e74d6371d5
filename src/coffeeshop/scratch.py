"""Scratch directories: the temporary files of one run (a repair's snapshot of the source,
a bulk load's files), in the temporary directory (`TMPDIR`).

- **A full disk is one line.** No space left there (`ENOSPC`, a quota, SQLite's "database
  or disk is full") while inside `directory()` raises `ScratchFull`: what is full and what
  to do, exit status 2. The run's transaction, if any, rolls back: nothing changed.
- **Nothing is left for ever.** A run killed with SIGKILL cannot remove its directory. Each
  directory is named `coffeeshop-<kind>-<pid>-<random>` and holds an `flock` on itself as
  long as its run lives (the kernel drops the lock when the process dies, however it dies).
  Each new scratch directory first removes the earlier ones of this user whose lock is free:
  a run still alive (this host's or, on a shared temporary directory, another container's)
  keeps its lock and its files. A directory is locked before it takes its visible name, so
  a new one is never mistaken for a leftover.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from coffeeshop.errors import CoffeeshopError

log = logging.getLogger("coffeeshop.scratch")

PREFIX = "coffeeshop-"
KINDS = ("load", "reconcile")
LEFTOVER = re.compile(rf"{PREFIX}(?:{'|'.join(KINDS)})-[0-9]+-[a-z0-9_]+")
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class ScratchFull(CoffeeshopError):
    """The temporary directory has no space left for a run's scratch files."""


@contextlib.contextmanager
def directory(kind: str) -> Iterator[Path]:
    """A new scratch directory for a run of `kind` ("load", "reconcile"), removed after;
    leftovers of dead runs are removed first. `ScratchFull` when the disk fills up inside."""
    assert kind in KINDS, kind
    root = Path(tempfile.gettempdir())
    with _full_is_one_line(root, kind):
        remove_leftovers(root)
        hidden = Path(tempfile.mkdtemp(prefix=f".{PREFIX}{kind}-", dir=root))
        fd = os.open(hidden, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until this run ends or dies
            path = root / f"{PREFIX}{kind}-{os.getpid()}-{hidden.name.rsplit('-', 1)[-1]}"
            os.rename(hidden, path)
            try:
                yield path
            finally:
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)
            shutil.rmtree(hidden, ignore_errors=True)  # only if the rename never happened


def require_free(what: str, minimum: int) -> None:
    """`ScratchFull` at once when the temporary directory has less than `minimum` bytes
    free: for what writes there out of our hands (`what`, e.g. Prefect's temporary API
    server, whose database migrations need SQLite scratch files), which would otherwise fail
    after minutes with a traceback of its own."""
    root = Path(tempfile.gettempdir())
    free = shutil.disk_usage(root).free
    if free < minimum:
        detail = f"{free:,} bytes free, at least {minimum:,} needed"
        raise ScratchFull(_full(root, what, detail))


def remove_leftovers(root: Path) -> list[Path]:
    """Remove the scratch directories in `root` that no living run holds; return them."""
    removed: list[Path] = []
    size = 0
    for path in sorted(root.glob(f"{PREFIX}*")):
        if LEFTOVER.fullmatch(path.name) is None:
            continue
        bytes_held = _remove_if_abandoned(path)
        if bytes_held is not None:
            removed.append(path)
            size += bytes_held
    if removed:
        log.warning(
            "removed %d temporary director%s left by coffeeshop runs that did not finish "
            "(%s bytes): %s",
            len(removed),
            "y" if len(removed) == 1 else "ies",
            f"{size:,}",
            ", ".join(str(p) for p in removed),
        )
    return removed


def _remove_if_abandoned(path: Path) -> int | None:
    """Remove `path` when it is this user's directory and no process holds its lock; the
    bytes it held, or None when it was kept."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None  # gone already, a symlink, or not a directory: not ours to touch
    try:
        if os.fstat(fd).st_uid != os.getuid():
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a living run holds it
        held = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
        return held
    finally:
        os.close(fd)


@contextlib.contextmanager
def _full_is_one_line(root: Path, kind: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL_ERRNOS:
            raise
        raise ScratchFull(_full(root, kind, exc.strerror or str(exc))) from None
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL:
            raise
        raise ScratchFull(_full(root, kind, str(exc))) from None


def _full(root: Path, kind: str, detail: str) -> str:
    what = {"load": "a bulk load's files", "reconcile": "the reconcile scratch files"}.get(
        kind, kind
    )
    return (
        f"no space left in the temporary directory {root} for {what} ({detail}); nothing "
        "was changed: free space there, or set TMPDIR to a directory on a larger disk"
    )
