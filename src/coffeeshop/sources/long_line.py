"""A line longer than `MAX_LINE_BYTES`: never held whole, but skipped to its newline and
quarantined as too long, with its first bytes, its length and its SHA-256 (memory stays
bounded)."""

from __future__ import annotations

import hashlib
from typing import Any

from coffeeshop.core.events import Unreadable
from coffeeshop.core.limits import RAW_KEEP, cut_note

MAX_LINE_BYTES = 16 << 20
# Bytes of a line kept for its quarantined raw text: enough for `RAW_KEEP` characters.
_RAW_BYTES = 4 * RAW_KEEP


def too_long(length: int, digest: Any, head: bytes, *, where: str) -> Unreadable:
    """A line over `MAX_LINE_BYTES`, of which only `head` (its first bytes) was kept."""
    return Unreadable(
        reason=f"line is {length} bytes long, more than {MAX_LINE_BYTES}"
        + cut_note(length, digest.hexdigest()),
        where=where,
        raw=head.decode("utf-8", "backslashreplace")[:RAW_KEEP],
    )


class LongLine:
    """A line past `MAX_LINE_BYTES` being skipped: its first bytes, length and hash so far.
    The last byte is held back from the hash until the next, so a CR before the newline
    is left out, as `decode_line` leaves it out."""

    def __init__(self, where: str, data: bytes) -> None:
        self.where = where
        self.head = data[:_RAW_BYTES]
        self.length = 0
        self.hash = hashlib.sha256()
        self._held = b""
        self.add(data)

    def add(self, data: bytes) -> None:
        if not data:
            return
        self.hash.update(self._held)
        self.hash.update(memoryview(data)[:-1])
        self.length += len(self._held) + len(data) - 1
        self._held = data[-1:]

    def end(self) -> tuple[Unreadable, int]:
        """The quarantine event, and the line's bytes in the file (its CR included)."""
        total = self.length + len(self._held)
        if self._held != b"\r":
            self.hash.update(self._held)
            self.length += len(self._held)
        return too_long(self.length, self.hash, self.head, where=self.where), total
