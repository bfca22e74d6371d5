"""Linux inotify over libc (ctypes): a wait that ends when a watched file changes.

`FileWatch.open(path)` watches one file (by its inode: a rename or an unlink is an event of
its own, `IN_MOVE_SELF`, `IN_ATTRIB` for the link count, `IN_DELETE_SELF`). It is None where
inotify cannot be had — another operating system, no libc symbol, the per-user limit of
instances or watches reached (`EMFILE`, `ENOSPC`), a file system without it — and the caller
then polls, as it did before. `wait(timeout)` returns when an event arrived (True, the
events read and dropped: the caller looks at the file itself) or after `timeout` (False).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import sys
from pathlib import Path

log = logging.getLogger("coffeeshop.inotify")

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVE_SELF = 0x800
IN_DELETE_SELF = 0x400
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
# A file that grows, is truncated, renamed, unlinked or deleted.
FILE_CHANGES = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVE_SELF | IN_DELETE_SELF
_READ_SIZE = 64 * 1024


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class FileWatch:
    """An inotify instance with one watch; close it (or use it as a context manager)."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    @classmethod
    def open(cls, path: str | os.PathLike[str], mask: int = FILE_CHANGES) -> FileWatch | None:
        """A watch on `path`, or None where inotify is not available (the reason is logged
        at debug level: polling is the normal fallback, not a fault)."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            log.debug("no inotify instance: %s", os.strerror(ctypes.get_errno()))
            return None
        if _LIBC.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
            code = ctypes.get_errno()
            os.close(fd)
            level = logging.INFO if code == errno.ENOSPC else logging.DEBUG
            log.log(level, "no inotify watch on %s: %s", path, os.strerror(code))
            return None
        return cls(fd, Path(path))

    def wait(self, timeout: float) -> bool:
        """Up to `timeout` seconds for an event; True when one came (all pending ones read)."""
        if not self._poll.poll(max(0, int(timeout * 1000))):
            return False
        try:
            while os.read(self.fd, _READ_SIZE):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> FileWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
