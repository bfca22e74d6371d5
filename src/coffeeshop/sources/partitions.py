"""Partitioned reading of a JSONL source: disjoint byte ranges that cover the file once.

A file is cut into N byte ranges at line starts: each nominal cut moves forward to just
after the next newline, so a line belongs to the range where it starts, whatever bytes the
cut fell between (inside a multi-byte character, or between a CR and its LF: neither byte
is a newline, and the line, CR included, goes to the range before). A range is read with the
same line decoder and receipt rules as `sync` (`decode_line`, `parse_events`) and folded
into last-write-wins candidates (see `coffeeshop.core.partials`), positioned by the byte offset
of their line, so a receipt replaced or deleted in a later range ends in its final state.

The file's size is taken when the ranges are planned: what is appended later is not read,
and the position the reconcile reports (and a repair commits) is where the plan ended, in
the format `JsonlSource` resumes from.

Each range carries the planned file's identity: its size, the fingerprint of its first bytes
(as the checkpoint's `head`) and of the bytes just before the range's end. A worker reads the
path on its own machine: before reading, it checks that the file there is at least as long
and has the same fingerprints, else the range fails with `SourceChanged` (one line, naming
the path and the worker) and the run writes nothing. Another file at the same path is caught
by its head or by any range's end; a file missing on a worker is a `ConfigError`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coffeeshop.core.events import Event
from coffeeshop.core.partials import Candidate, Unkeyed, Where, fold, split
from coffeeshop.core.plan import ParsedEvent, parse_events
from coffeeshop.errors import ConfigError, SourceChanged
from coffeeshop.sources.json_text import is_whole_json
from coffeeshop.sources.jsonl import (
    HEAD_BYTES,
    TAIL_BYTES,
    JsonlSource,
    decode_line,
    fingerprint,
)

READ_SIZE = 1 << 20
SCAN_SIZE = 1 << 16
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class FileRange:
    path: str
    index: int
    start: int
    end: int
    size: int  # of the whole file when planned
    head: str  # fingerprint of its first HEAD_BYTES when planned (as a checkpoint's)
    tail: str  # fingerprint of the TAIL_BYTES before `end` when planned

    def reopen(self) -> JsonlSource:
        """The file's source where this range is read (a worker: the same path)."""
        return JsonlSource(self.path)


@dataclass(frozen=True, slots=True)
class FilePlan:
    """The ranges of one file; they hand over where the last one ended (`file_position`)."""

    path: str
    parts: list[FileRange]

    def handover(self, heads: list[RangeOutput]) -> str | None:
        last = heads[-1]
        lines = sum(head.lines for head in heads)
        return file_position(self.path, end=last.end, lines=lines, open_line=last.open_line)


@dataclass(slots=True)
class RangeOutput:
    """What one range read: candidates split into buckets, unreadable input, its line count,
    and (for the last range) where reading stopped and whether the last line had no newline."""

    shards: list[dict[str, Candidate]]
    unkeyed: list[Unkeyed]
    lines: int
    end: int
    open_line: bool


def plan_file(path: str | os.PathLike[str], parts: int) -> list[FileRange]:
    """At most `parts` non-empty ranges, each starting at a line start, covering the file."""
    resolved = str(Path(path).expanduser().resolve())
    with _opened(resolved) as fd:
        size = os.fstat(fd).st_size
        starts = [0]
        for i in range(1, parts):
            start = _line_start(fd, size * i // parts, size)
            if starts[-1] < start < size:
                starts.append(start)
        return _ranges(fd, resolved, starts, size)


def ranges_from(path: str, starts: list[int]) -> list[FileRange]:
    """The ranges of the file that begin at `starts` (line starts, the first 0)."""
    with _opened(path) as fd:
        return _ranges(fd, path, starts, os.fstat(fd).st_size)


@contextlib.contextmanager
def _opened(path: str) -> Iterator[int]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"source file {path} cannot be read: {exc.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def _ranges(fd: int, path: str, starts: list[int], size: int) -> list[FileRange]:
    """The ranges, each with the planned file's size and fingerprints (see `check_planned`)."""
    head = fingerprint(fd, 0, min(size, HEAD_BYTES))
    return [
        FileRange(path, i, s, e, size, head, fingerprint(fd, max(0, e - TAIL_BYTES), e))
        for i, (s, e) in enumerate(zip(starts, [*starts[1:], size], strict=True))
    ]


def check_planned(fd: int, part: FileRange) -> None:
    """Refuse to read a range of a file that is not the one planned: on a worker, the path
    may name another file (another copy, an older one, a different mount)."""
    here = f"source file {part.path} on worker {socket.gethostname()}"
    size = os.fstat(fd).st_size
    if size < part.size:
        raise SourceChanged(
            f"{here} is {size} bytes, but the coordinator planned {part.size}: it is not the "
            "coordinator's file; nothing was written"
        )
    if fingerprint(fd, 0, min(part.size, HEAD_BYTES)) != part.head or part.tail != fingerprint(
        fd, max(0, part.end - TAIL_BYTES), part.end
    ):
        raise SourceChanged(
            f"{here} differs from the coordinator's file (its fingerprints do not match): it "
            "is another file at the same path; nothing was written"
        )


def _line_start(fd: int, cut: int, size: int) -> int:
    """The first line start at or after `cut` (`size` when none)."""
    if cut <= 0:
        return 0
    at = cut - 1  # a line starts at `cut` when the byte before it is a newline
    while at < size:
        chunk = os.pread(fd, SCAN_SIZE, at)
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            return at + newline + 1
        at += len(chunk)
    return size


def read_range(part: FileRange, buckets: int) -> RangeOutput:
    """Read, validate and fold one range; candidates are split into `buckets` by key."""
    state = {"lines": 0, "end": part.start, "open": False}
    candidates, unkeyed = fold(_parsed(part, state))
    return RangeOutput(
        split(candidates, buckets), unkeyed, state["lines"], state["end"], bool(state["open"])
    )


def _parsed(part: FileRange, state: dict[str, int]) -> Iterator[tuple[int, Where, ParsedEvent]]:
    try:
        fd = os.open(part.path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(
            f"source file {part.path} cannot be read on worker {socket.gethostname()}: "
            f"{exc.strerror}; every worker needs the coordinator's file at the same path"
        ) from None
    try:
        check_planned(fd, part)
        read_at = offset = part.start
        line = 0
        pending = b""
        while read_at < part.end:
            chunk = os.pread(fd, min(READ_SIZE, part.end - read_at), read_at)
            if not chunk:
                raise SourceChanged(
                    f"source file {part.path} shrank below byte {read_at} while it was read "
                    f"in partitions (it was {part.size} bytes); nothing was changed"
                )
            read_at += len(chunk)
            pieces = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
            pending = pieces.pop()
            positions: list[tuple[int, Where]] = []
            events: list[Event] = []
            for data in pieces:
                start = offset
                offset += len(data) + 1
                line += 1
                if start == 0 and data.startswith(_BOM):
                    data = data[len(_BOM) :]
                event = decode_line(data, where="")
                if event is not None:
                    positions.append((start, (part.index, line, start)))
                    events.append(event)
            for (position, where), parsed in zip(positions, parse_events(events), strict=True):
                yield position, where, parsed
        text = pending[len(_BOM) :] if offset == 0 and pending.startswith(_BOM) else pending
        if pending and is_whole_json(text):
            # The file's last line, without its newline: counted when it is complete JSON,
            # as `sync --once` does; its newline, when it comes, ends this line.
            line += 1
            event = decode_line(text, where="")
            if event is not None:
                yield from (
                    (offset, (part.index, line, offset), parsed) for parsed in parse_events([event])
                )
            offset += len(pending)
            state["open"] = 1
        state["lines"] = line
        state["end"] = offset
    finally:
        os.close(fd)


def file_position(path: str, *, end: int, lines: int, open_line: bool) -> str | None:
    """The position `JsonlSource` would report after reading the file up to `end` (None when
    nothing was read, as a single-process read of an empty file reports)."""
    if end == 0:
        return None
    source = JsonlSource(path)
    source.open(None)
    try:
        # The reader's own fields, set to where the partitions ended, so the fingerprints and
        # the format are exactly the ones `sync` checks when it resumes.
        source._offset, source._line, source._line_open = end, lines, open_line
        return source.position()
    finally:
        source.close()
