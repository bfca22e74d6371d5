"""Read and validate the source in a child process while the parent applies batches.

Reading JSON and validating receipts is pure CPU work, about half of a batch's cost;
with a second core it overlaps the database transactions instead of waiting for them.
A thread would not help (the GIL), so a forked process runs `source.batches()` and
`parse_events`, and sends each batch through a pipe in a compact tuple form.

Nothing about crash safety changes: positions still commit only in the parent, with
the batches it applied; whatever the child read ahead is simply read again after a
restart. The pipe's buffer bounds how far the child runs ahead. The child stops when
the parent asks, when the parent dies, or at the end of the source.

The child never holds the writer lock (it lets go of its inherited copy at the fork:
`store.lock`), and on Linux it is killed with the parent (`PR_SET_PDEATHSIG`), even when
it is blocked in a source call that no stop request can end (a `getMore` on a dead
network): after a `kill -9` of the parent, a restart takes the lock at once and no
orphaned reader lingers. Elsewhere it notices the parent's death at its next check. (The
kernel sends that signal when the *thread* that forked exits: the reader is started and read
by the thread that runs the engine, which outlives it.)
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import gc
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from coffeeshop import errors
from coffeeshop.core.events import Delete, Skip, Unreadable
from coffeeshop.core.plan import Parsed, ParsedEvent, parse_events
from coffeeshop.core.receipt_codec import (
    NAMESPACE,
    compile_function,
    receipt_from_wire,
    wire_values,
)
from coffeeshop.sources.base import BatchLimits, Source, SourceBatch, StopSignal

log = logging.getLogger("coffeeshop.pipeline.engine")


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """A source batch, validated: what the engine applies in one transaction.

    A batch without a position (`TICK`) carries nothing: the source was quiet a while."""

    position: str | None
    events: list[ParsedEvent]
    behind: int | None = None
    source_time: dt.datetime | None = None


TICK = ReadBatch(None, [])
TICK_SECONDS = 1.0
SIGNAL_GRACE = 1.0  # seconds: a signal to the group may reach the reader before this process


# A valid receipt's event as one flat tuple: ("v", receipt_id, where, its wire values...),
# compiled from the receipt's columns (`core/receipt_codec.py`).
_pack_valid = compile_function(
    "pack_valid", "e, r", f'("v", e.receipt_id, e.where, {wire_values("r")})', NAMESPACE
)
_unpack_valid = compile_function(
    "unpack_valid",
    "t",
    f'Parsed((r := {receipt_from_wire("t", 3)}).key, t[1], r, None, t[2], "")',
    NAMESPACE | {"Parsed": Parsed},
)


def pack(events: list[ParsedEvent]) -> list[tuple[Any, ...]]:
    """Events as plain tuples: several times cheaper to pickle than dataclasses."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, Parsed):
            r = e.receipt
            if r is not None:
                out.append(_pack_valid(e, r))
            else:
                out.append(("i", e.key, e.receipt_id, e.reason, e.where, e.raw))
        elif isinstance(e, Delete):
            out.append(("d", e.key, e.receipt_id, e.where))
        elif isinstance(e, Unreadable):
            out.append(("u", e.reason, e.where, e.raw))
        else:
            out.append(("s", e.note, e.where))
    return out


def unpack(packed: list[tuple[Any, ...]]) -> list[ParsedEvent]:
    out: list[ParsedEvent] = []
    for t in packed:
        kind = t[0]
        if kind == "v":
            out.append(_unpack_valid(t))
        elif kind == "i":
            out.append(Parsed(t[1], t[2], None, t[3], t[4], t[5]))
        elif kind == "d":
            out.append(Delete(key=t[1], receipt_id=t[2], where=t[3]))
        elif kind == "u":
            out.append(Unreadable(reason=t[1], where=t[2], raw=t[3]))
        else:
            out.append(Skip(note=t[1], where=t[2]))
    return out


class _StopWhen:
    """The child's stop signal (a `StopSignal`): the parent asked, the parent is gone, or
    a signal came."""

    def __init__(self, halt: Any, parent: int) -> None:
        self._halt = halt
        self._parent = parent
        self._local = threading.Event()

    def set(self) -> None:
        self._local.set()

    def is_set(self) -> bool:
        return self._local.is_set() or self._halt.is_set() or os.getppid() != self._parent

    def wait(self, timeout: float | None = None) -> bool:
        step = 0.05 if timeout is None else min(0.05, timeout)
        remaining = timeout
        while not self.is_set():
            if remaining is not None and remaining <= 0:
                return False
            self._local.wait(step)
            if remaining is not None:
                remaining -= step
        return True


def source_batches(
    source: Source, limits: BatchLimits, *, follow: bool, stop: StopSignal
) -> Iterator[SourceBatch]:
    """`source.batches(...)`, with an I/O error of the operating system (a failing disk,
    EIO from a device, a file that vanished under `--follow`) turned into one clear
    `SourceUnavailable` line instead of a traceback. Nothing read after the last
    committed batch is applied, so the checkpoint stays where it was."""
    try:
        yield from source.batches(limits, follow=follow, stop=stop)
    except OSError as exc:
        raise errors.SourceUnavailable(
            f"cannot read the source {source.name}: {exc.strerror or exc}"
            + (f" (errno {exc.errno})" if exc.errno else "")
        ) from None


def _child(
    source: Source,
    limits: BatchLimits,
    follow: bool,
    halt: Any,
    parent: int,
    out: Connection,
    inherited: Connection,
) -> None:
    _die_with(parent)
    # The pipe's read end came along with the fork: close it, so that once the parent
    # closes its own, a write here fails at once instead of waiting forever.
    inherited.close()
    stop = _StopWhen(halt, parent)
    signalled: list[int] = []

    def on_sigterm(signum: int, _frame: Any) -> None:
        # SIGTERM to the process group (systemd, `timeout`) reaches this child with the
        # parent: stop reading like the parent does and say so, rather than vanish under an
        # engine that is finishing its batch. A second one (the parent's `terminate()` of a
        # child stuck in a read) ends it at once: it holds no state worth saving.
        if signalled:
            os._exit(0)
        signalled.append(signum)
        stop.set()

    # The parent handles Ctrl-C and tells the child through `halt`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for batch in source_batches(source, limits, follow=follow, stop=stop):
            payload = (
                batch.position,
                pack(parse_events(batch.events)),
                batch.behind,
                batch.source_time,
            )
            out.send_bytes(pickle.dumps(("batch", payload), protocol=pickle.HIGHEST_PROTOCOL))
        ending = ("signalled", signalled[0]) if signalled else ("done", None)
        out.send_bytes(pickle.dumps(ending))
    except BrokenPipeError:
        return  # the parent went away
    except errors.CoffeeshopError as exc:
        with contextlib.suppress(BrokenPipeError):
            out.send_bytes(pickle.dumps(("error", (type(exc).__name__, str(exc)))))
    except BaseException:
        with contextlib.suppress(BrokenPipeError):
            out.send_bytes(pickle.dumps(("crash", traceback.format_exc())))
    finally:
        out.close()


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux); if the parent is
    already gone (it died before this ran), end now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def read_ahead(
    source: Source, limits: BatchLimits, *, follow: bool, stop: StopSignal
) -> Iterator[ReadBatch]:
    """Yield (position, parsed events) per batch, read and validated in a child process."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    halt = context.Event()
    child = context.Process(
        target=_child,
        args=(source, limits, follow, halt, os.getpid(), send, receive),
        name="coffeeshop-reader",
        daemon=True,
    )
    thresholds = _collect_per_batch(freeze=True)  # before the fork: the child inherits it
    try:
        child.start()
    except BaseException:
        gc.set_threshold(*thresholds)
        raise
    send.close()
    held: ReadBatch | None = None  # received, but too big to merge into the last batch
    try:
        while True:
            idle_since = time.monotonic()
            while held is None and not receive.poll(0.1):
                if stop.is_set():
                    return
                if time.monotonic() - idle_since >= TICK_SECONDS:
                    yield TICK  # let the engine look at the clock while the source is quiet
                    idle_since = time.monotonic()
                if not child.is_alive() and not receive.poll(0):
                    raise RuntimeError(
                        f"the source reader process died (exit code {child.exitcode})"
                    )
            batch, held = (
                (held, None) if held is not None else (_received(receive, child, stop), None)
            )
            if batch is None:
                return
            batch, held, end = _with_queued(batch, receive, child, stop, limits.max_events)
            yield batch
            if end is not None:
                raise end
    except _Ended:
        return
    finally:
        halt.set()
        receive.close()
        _reap(child)
        gc.set_threshold(*thresholds)


# Objects the collector lets pile up in its youngest generation before a pass, while batches
# are read and applied (Python's default is 700). A batch's events, receipts and sums are
# tens of thousands of containers that all live until its commit and are then freed by their
# reference counts: with the default, the collector examines each of them again and again and
# runs a full pass every ten or so of its middle passes, for no garbage (a tenth of the sync's
# CPU, measured). Garbage in cycles is still collected, after at most this many allocations.
YOUNG_OBJECTS = 50_000


def _collect_per_batch(*, freeze: bool) -> tuple[int, int, int]:
    """Tune the cyclic collector for the batch loop; its previous thresholds (to restore).
    `freeze`: before a fork, the objects alive now (the modules, the engine) never need
    collecting: frozen, they keep every full pass short, in this process and in the child."""
    if freeze:
        gc.collect()
        gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_OBJECTS), thresholds[1], thresholds[2])
    return thresholds


class _Ended(Exception):
    """The reader's end, found while merging queued batches (handed on after the merge)."""


def _with_queued(
    batch: ReadBatch, receive: Connection, child: Any, stop: StopSignal, max_events: int
) -> tuple[ReadBatch, ReadBatch | None, BaseException | None]:
    """`batch` merged with the batches already waiting in the pipe, up to `max_events`
    events: while the parent committed, the reader went on handing out what each server
    reply held, and applying those one transaction each would fall behind. Returns the
    merged batch, the next one when it did not fit (held for the next round), and what
    ended the reader meanwhile (its end, an error), raised after the merged batch."""
    while receive.poll(0):
        try:
            more = _received(receive, child, stop)
        except Exception as exc:
            return batch, None, exc
        if more is None:
            return batch, None, _Ended()
        if len(batch.events) + len(more.events) > max_events:
            return batch, more, None
        batch = ReadBatch(
            more.position,
            batch.events + more.events,
            more.behind,
            more.source_time or batch.source_time,
        )
    return batch, None, None


def _received(receive: Connection, child: Any, stop: StopSignal) -> ReadBatch | None:
    """The reader's next message as a batch, or None at its end (the source is done, or the
    reader stopped on a signal that stops this process too); its errors are raised here."""
    try:
        kind, payload = pickle.loads(receive.recv_bytes())
    except EOFError:
        kind, payload = "signalled", None  # gone without a word: killed
    if kind == "batch":
        position, packed, behind, source_time = payload
        return ReadBatch(position, unpack(packed), behind, source_time)
    if kind == "signalled":
        _reader_stopped(child, stop, payload)
    elif kind == "error":
        name, message = payload
        error_type = getattr(errors, name, errors.CoffeeshopError)
        raise error_type(message)
    elif kind == "crash":
        log.error("the source reader failed:\n%s", payload, extra={"verbatim": True})
        raise RuntimeError("the source reader failed (traceback logged above)")
    return None


def _reap(child: Any) -> None:
    """Wait for the reader to end; terminate it, then kill it, if it does not."""
    child.join(timeout=5)
    if child.is_alive():
        child.terminate()
        child.join(timeout=5)
    if child.is_alive():
        child.kill()
        child.join()


def _reader_stopped(child: Any, stop: StopSignal, signum: int | None) -> None:
    """The reader stopped on a signal (or died): fine when this process is stopping too (a
    signal to the whole group reaches both, this one's handler maybe a moment later), else
    an error: the source would look finished while it is not."""
    if stop.wait(SIGNAL_GRACE):
        return
    child.join(timeout=1)
    cause = f"signal {signal.Signals(signum).name}" if signum else f"exit code {child.exitcode}"
    raise RuntimeError(f"the source reader process stopped ({cause})")


def read_inline(
    source: Source, limits: BatchLimits, *, follow: bool, stop: StopSignal
) -> Iterator[ReadBatch]:
    """The same batches, read in this process (for a single core, or for debugging)."""
    thresholds = _collect_per_batch(freeze=False)
    try:
        for batch in source_batches(source, limits, follow=follow, stop=stop):
            events = parse_events(batch.events)
            yield ReadBatch(batch.position, events, batch.behind, batch.source_time)
    finally:
        gc.set_threshold(*thresholds)
