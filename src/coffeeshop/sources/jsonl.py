"""A file of MongoDB Extended JSON, one document or change event per line (`mongoexport`'s format).

The position is the byte offset after the last applied line, with fingerprints of
the file's first bytes and of the bytes just before the offset: a file that was
truncated, rewritten or replaced under a checkpoint is detected, never misread.

Following the file, the reader sleeps until the operating system says it changed (inotify
on Linux: growth, truncation, rename, unlink), looking at the stop signal every
`WATCH_SLICE` seconds; without inotify it looks every `poll_interval` seconds, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from coffeeshop.core.events import Event, Unreadable, event_from_object
from coffeeshop.core.limits import RAW_KEEP, cap_reason, cut_note
from coffeeshop.errors import ConfigError, SourceChanged
from coffeeshop.inotify import FileWatch
from coffeeshop.retry import StopSignal
from coffeeshop.sources.base import BatchLimits, PartitionPlan, SourceBatch
from coffeeshop.sources.batching import MicroBatch
from coffeeshop.sources.fast_receipt import usual_receipt_line
from coffeeshop.sources.json_text import BadJson, is_whole_json, read_json
from coffeeshop.sources.long_line import _RAW_BYTES, MAX_LINE_BYTES, LongLine, too_long

if TYPE_CHECKING:
    from coffeeshop.sources.partitions import RangeOutput

HEAD_BYTES = 1024
WATCH_SLICE = 0.25  # seconds between two looks at the stop signal while inotify waits
TAIL_BYTES = 64
READ_SIZE = 1 << 20
_BOM = b"\xef\xbb\xbf"


def decode_line(data: bytes, *, where: str) -> Event | None:
    """One line of the file to an event; None for a blank line."""
    if data.endswith(b"\r"):
        data = data[:-1]
    if not data.strip():
        return None
    if len(data) > MAX_LINE_BYTES:
        return too_long(len(data), hashlib.sha256(data), data[:_RAW_BYTES], where=where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _unreadable(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at column {exc.start + 1}", where, data
        )
    usual = usual_receipt_line(text, where)
    if usual is not None:
        return usual
    try:
        obj = read_json(text)
    except BadJson as exc:
        return _unreadable(f"invalid JSON: {exc.reason}", where, data, text)
    event = event_from_object(obj, where=where, raw=text)
    if isinstance(event, Unreadable) and len(text) > RAW_KEEP:
        return _unreadable(event.reason, where, data, text)
    return event


def _unreadable(reason: str, where: str, data: bytes, text: str | None = None) -> Unreadable:
    """A line kept in quarantine: its text, or its first `RAW_KEEP` characters with the line's
    length and the SHA-256 of its bytes (as in the file: `sha256sum` of the line agrees)."""
    reason = cap_reason(reason)
    raw = text if text is not None else data[:_RAW_BYTES].decode("utf-8", "backslashreplace")
    if len(raw) <= RAW_KEEP and (text is not None or len(data) <= _RAW_BYTES):
        return Unreadable(reason=reason, where=where, raw=raw)
    note = cut_note(len(data), hashlib.sha256(data).hexdigest())
    return Unreadable(reason=reason + note, where=where, raw=raw[:RAW_KEEP])


def fingerprint(fd: int, start: int, end: int) -> str:
    """The fingerprint a position keeps of bytes `start`..`end` of a file."""
    data = os.pread(fd, end - start, start) if end > start else b""
    return hashlib.sha256(data).hexdigest()[:32]


class JsonlSource:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser().resolve()
        self._offset = 0
        self._line = 0
        self._fd: int | None = None
        self._ino: int | None = None
        self._watch: FileWatch | None = None  # inotify on the file, while following
        self._line_open = False
        # The read in progress (set by `batches`):
        self._read_at = 0  # where the next read starts
        self._pending = b""  # bytes of a line whose newline has not arrived yet
        self._long: LongLine | None = None  # a line over MAX_LINE_BYTES being skipped
        self._handed_out = 0  # the offset of the last batch handed out

    @property
    def name(self) -> str:
        return f"jsonl:{self.path}"

    @property
    def spec(self) -> str:
        return str(self.path)

    @property
    def repair_args(self) -> str:
        return f"--source {shlex.quote(str(self.path))}"

    # -- partitioned reading: byte ranges at line starts (`sources.partitions`) --------------

    def check_partitionable(self, stop: StopSignal) -> None:
        """A file that opened can be read in ranges: nothing more to check."""

    def plan_partitions(self, parts: int) -> PartitionPlan:
        from coffeeshop.sources import partitions

        return partitions.FilePlan(str(self.path), partitions.plan_file(self.path, parts))

    def read_partition(self, part: Any, buckets: int) -> RangeOutput:
        from coffeeshop.sources import partitions

        return partitions.read_range(part, buckets)

    # -- position --------------------------------------------------------------------------------

    def open(self, position: str | None) -> None:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise ConfigError(f"source file {self.path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"source {self.path} is a directory, not a JSONL file") from None
        except PermissionError:
            raise ConfigError(
                f"source file {self.path} is not readable (permission denied)"
            ) from None
        stat = os.fstat(self._fd)
        if not S_ISREG(stat.st_mode):
            self.close()
            raise ConfigError(
                f"source {self.path} is not a regular file (a FIFO, device or socket): "
                "write the receipts to a file"
            )
        os.set_blocking(self._fd, True)
        self._ino = stat.st_ino
        if position is None:
            self._offset, self._line, self._line_open = 0, 0, False
            return
        saved = json.loads(position)
        offset, line = int(saved["offset"]), int(saved["line"])
        where = f"byte {offset} (line {line})"
        if stat.st_size < offset:
            raise SourceChanged(
                f"source file {self.path} is {stat.st_size} bytes, shorter than the committed "
                f"position at {where}: it was truncated or replaced. Nothing was read. Run "
                "`coffeeshop reconcile --repair` to rebuild the tables from the file as it is now."
            )
        if saved.get("head") != self._digest(0, min(offset, HEAD_BYTES)) or saved.get(
            "tail"
        ) != self._digest(max(0, offset - TAIL_BYTES), offset):
            raise SourceChanged(
                f"source file {self.path} no longer matches the committed position at {where}: "
                "its content before that point changed, so it was rewritten or replaced. Nothing "
                "was read. Run `coffeeshop reconcile --repair` to rebuild the tables from the "
                "file as it is now."
            )
        self._offset, self._line = offset, line
        self._line_open = bool(saved.get("open", False))

    def position(self) -> str:
        return json.dumps(
            {
                "offset": self._offset,
                "line": self._line,
                "head": self._digest(0, min(self._offset, HEAD_BYTES)),
                "tail": self._digest(max(0, self._offset - TAIL_BYTES), self._offset),
                "open": self._line_open,
            },
            separators=(",", ":"),
        )

    def _behind(self) -> int:
        """Bytes of the file past the position: how far the reader is behind the writer."""
        assert self._fd is not None
        return max(0, os.fstat(self._fd).st_size - self._offset)

    def _digest(self, start: int, end: int) -> str:
        assert self._fd is not None
        return fingerprint(self._fd, start, end)

    # -- reading ---------------------------------------------------------------------------------

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: StopSignal
    ) -> Iterator[SourceBatch]:
        assert self._fd is not None, "open() first"
        fd = self._fd
        self._read_at = self._offset
        self._pending = b""
        self._long = None
        self._handed_out = self._offset
        batch = MicroBatch(limits)
        if follow and self._watch is None:  # before the first read: no write is missed
            self._watch = FileWatch.open(self.path)
        while not stop.is_set():
            chunk = os.pread(fd, READ_SIZE, self._read_at)
            if chunk:
                self._read_at += len(chunk)
                for event in self._chunk_events(chunk):
                    if batch.add(event):
                        yield self._hand_out(batch)
                continue
            # End of the data written so far.
            if not follow and self._pending:
                last = self._complete_last_line(self._pending)
                if last is not None:
                    batch.add(last)
                    self._pending = b""
            if batch or self._offset != self._handed_out:  # (blank lines move it too)
                yield self._hand_out(batch)
            if not follow:
                return
            self._check_still_same_file()
            if self._watch is None:
                stop.wait(limits.poll_interval)
            else:
                self._watch.wait(WATCH_SLICE)  # until the file changes (or the slice ends)

    def _hand_out(self, batch: MicroBatch) -> SourceBatch:
        self._handed_out = self._offset
        return SourceBatch(batch.take(), self.position(), behind=self._behind())

    def _chunk_events(self, chunk: bytes) -> Iterator[Event]:
        """The events of the lines that `chunk`, the next bytes read, completes; the
        position is past each line when its event is handed on."""
        if self._long is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._long.add(chunk)
                return
            self._long.add(chunk[:newline])
            yield self._end_long_line(self._long)
            chunk = chunk[newline + 1 :]
        pending = self._pending
        lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        self._pending = lines.pop()
        for data in lines:
            event = self._line_event(data)
            if event is not None:
                yield event
        if len(self._pending) > MAX_LINE_BYTES + 1:  # (+1: a CR before the newline)
            number = self._line if self._line_open else self._line + 1
            where = f"line {number} (byte {self._offset})"
            self._long, self._pending = LongLine(where, self._pending), b""

    def _line_event(self, data: bytes) -> Event | None:
        """A line read whole (without its newline): the position moves past it; its event
        (None for a blank line)."""
        start = self._offset
        self._offset += len(data) + 1
        if self._line_open:  # the rest of a line already applied without newline
            self._line_open = False
            if not data.strip():
                return None
        else:
            self._line += 1
        where = f"line {self._line} (byte {start})"
        if start == 0 and data.startswith(_BOM):
            data = data[len(_BOM) :]
        return decode_line(data, where=where)

    def _end_long_line(self, long: LongLine) -> Event:
        """The newline of a line over `MAX_LINE_BYTES` arrived: its quarantine event."""
        too_long_line, size = long.end()
        self._long = None
        self._offset += size + 1
        if self._line_open:  # it continued a line already counted
            self._line_open = False
        else:
            self._line += 1
        return too_long_line

    def _complete_last_line(self, data: bytes) -> Event | None:
        """With --once, a last line without a newline counts only when it is complete JSON."""
        text = data[len(_BOM) :] if self._offset == 0 and data.startswith(_BOM) else data
        if not is_whole_json(text):
            return None
        self._line += 1
        where = f"line {self._line} (byte {self._offset})"
        self._offset += len(data)
        self._line_open = True  # its newline, when it comes, ends this line, not a new one
        return decode_line(text, where=where)

    def _check_still_same_file(self) -> None:
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size < self._offset:
            raise SourceChanged(
                f"source file {self.path} was truncated to {size} bytes while being followed "
                f"(position was byte {self._offset}, line {self._line}); stopping. Run "
                "`coffeeshop reconcile --repair` to rebuild the tables from the file as it is now."
            )
        try:
            ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            ino = None
        if ino != self._ino:
            raise SourceChanged(
                f"source file {self.path} was replaced or removed while being followed "
                f"(position was byte {self._offset}, line {self._line}); stopping. Restart "
                "sync to check the new file against the checkpoint."
            )

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JsonlSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
