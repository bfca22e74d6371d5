"""Write generated receipts to a JSONL file: a fixed count (at full speed or at a steady
rate) or live traffic that follows a `TrafficModel` until stopped.

Every write call writes whole lines, so a reader tailing the file sees complete lines only.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from itertools import islice
from random import Random

from coffeeshop.demo.generator import ReceiptGenerator, check_count
from coffeeshop.demo.traffic import TrafficModel, poisson

__all__ = ["write_jsonl", "write_live"]

_CHUNK_LINES = 8192


def write_jsonl(
    path: str | os.PathLike[str],
    count: int,
    *,
    generator: ReceiptGenerator,
    append: bool = True,
    rate: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Write `generator.iter_lines(count)` to `path`, one line each; return the lines written.

    Appends by default (`append=False` truncates first); when appending to a file whose last
    line is unfinished, a newline ends it first so no line of ours is glued to it. Every
    write call writes whole lines, unbuffered, so a reader tailing the file sees complete
    lines only. `rate` (lines per second) writes steadily in small bursts, about 20 a
    second, instead of as fast as possible. Stops early once `stop` is set.
    """
    check_count(count)
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be a positive number of lines per second, got {rate!r}")
    flags = os.O_CREAT | getattr(os, "O_BINARY", 0)
    flags |= os.O_RDWR | os.O_APPEND if append else os.O_WRONLY | os.O_TRUNC
    fd = os.open(path, flags, 0o644)
    lines = generator.iter_lines(count)
    written = 0
    try:
        if append:
            _end_last_line(fd)
        if rate is None:
            while stop is None or not stop.is_set():
                chunk = list(islice(lines, _CHUNK_LINES))
                if not chunk:
                    break
                written += _write_lines(fd, chunk)
        else:
            burst = max(1, min(_CHUNK_LINES, round(rate / 20)))
            started = time.monotonic()
            while True:
                delay = started + written / rate - time.monotonic()
                if stop is not None:
                    if stop.wait(delay) if delay > 0 else stop.is_set():
                        break
                elif delay > 0:
                    time.sleep(delay)
                chunk = list(islice(lines, burst))
                if not chunk:
                    break
                written += _write_lines(fd, chunk)
    finally:
        lines.close()
        os.close(fd)
    return written


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_live(
    path: str | os.PathLike[str],
    *,
    generator: ReceiptGenerator,
    model: TrafficModel,
    stop: threading.Event,
    tick: float = 0.25,
    seed: int | None = None,
    now: Callable[[], dt.datetime] = dt.datetime.now,
) -> int:
    """Append live traffic to `path` until `stop` is set: every `tick` seconds, the receipts
    `model` says arrived meanwhile (with the generator's shares of changes and invalid lines),
    stamped with the current time in the generator's zone. Returns the receipts written.
    `now` (naive wall-clock time in that zone, the model's time) and `stop.wait` are the
    clock: a test runs a simulated day through them."""
    rng = Random(seed)
    written = 0
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o644)
    try:
        _end_last_line(fd)
        last = now()
        while not stop.wait(tick):
            moment = now()
            n = poisson(rng, model.expected(last, moment)) if moment > last else 0
            last = moment
            if n:
                _write_lines(fd, list(generator.iter_lines(n)))
                written += n  # receipts, not lines: changes and invalid lines come on top
    finally:
        os.close(fd)
    return written


def _end_last_line(fd: int) -> None:
    """End an unfinished last line of the file, so no line written after is glued to it."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        _write_all(fd, b"\n")


def _write_lines(fd: int, lines: list[str]) -> int:
    """Write `lines`, each ended by a newline, in one write call; return how many."""
    _write_all(fd, ("\n".join(lines) + "\n").encode("utf-8"))
    return len(lines)
