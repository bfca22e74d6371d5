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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from coffeeshop.core.events import Event
from coffeeshop.core.partials import Candidate, Unkeyed, Where, fold, split
from coffeeshop.core.plan import ParsedEvent, parse_events
from coffeeshop.errors import ConfigError, SourceChanged
from coffeeshop.sources.jsonl import JsonlSource, decode_line, is_whole_json

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
    try:
        fd = os.open(resolved, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"source file {resolved} cannot be read: {exc.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        starts = [0]
        for i in range(1, parts):
            start = _line_start(fd, size * i // parts, size)
            if starts[-1] < start < size:
                starts.append(start)
    finally:
        os.close(fd)
    ends = [*starts[1:], size]
    pairs = zip(starts, ends, strict=True)
    return [FileRange(resolved, i, s, e, size) for i, (s, e) in enumerate(pairs)]


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
    fd = os.open(part.path, os.O_RDONLY)
    try:
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
