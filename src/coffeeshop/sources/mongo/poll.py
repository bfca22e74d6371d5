"""Polling a MongoDB collection that has no change stream (a standalone server).

`_id`s are made by clients, so inserts do not land in `_id` order: a slow client, a
retry or a second application server can insert an `_id` below one already read. And
`$gt` compares values of one BSON type only (a string `_id` never matches `$gt` an
ObjectId). So a poll never asks "after the last `_id`"; it re-reads, per BSON type, a
trailing window: every `_id` at or above the highest one of that type seen
`POLL_WINDOW` seconds ago (and every `_id` of a type not seen yet), with one filter,

    {"$nor": [{"_id": {"$lt": low_of_type}}, ...]}

where `$lt` only matches the one type of its bound, so every other type is read whole.
Documents already handed out unchanged are not handed out again (a digest per `_id`
is kept in memory). An insert that lands more than the window after a higher `_id` of
its type was read is found by the sweep: every `SWEEP_EVERY` seconds the whole
collection is read; the sweep also finds updates, and deletes of documents that this
process has read in an earlier sweep. The position keeps the low ends of the window
and the time of the last sweep, so a restart re-reads the window and sweeps when due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from bson import Binary, DatetimeMS, Decimal128, Int64, ObjectId, Timestamp

from coffeeshop.core.events import Event, event_from_object
from coffeeshop.retry import Retrying, StopSignal
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.batching import MicroBatch
from coffeeshop.sources.mongo.codec import document_bytes, encodable, id_bytes, id_of
from coffeeshop.sources.mongo.errors import opened

log = logging.getLogger("coffeeshop.mongo")

POLL_WINDOW = 60.0  # seconds: an insert landing up to this late is read by the next poll
SWEEP_EVERY = 300.0  # seconds between two reads of the whole collection
MAX_MARKS = 8  # window marks per window, kept in the position

wall_clock: Callable[[], float] = time.time  # replaced by tests


def warn_standalone(name: str, window: float, sweep_every: float) -> None:
    """The warning of a source that falls back to polling: what polling sees, and not."""
    log.warning(
        "%s is a standalone server: it has no change streams. Falling back to polling: "
        "new documents (any _id type, in any order) are read within the poll interval; "
        "an insert landing more than %.0f s after a higher _id, updates, and deletes of "
        "documents this run has read, only by a read of the whole collection every "
        "%.0f s; deletes made while no sync runs are NOT seen: run "
        "`coffeeshop reconcile --repair` to pick them up, or run MongoDB as a replica set "
        "(a single node is enough: `mongod --replSet rs0`, then `rs.initiate()`).",
        name,
        window,
        sweep_every,
    )


def type_of(value: Any) -> str | None:
    """The BSON comparison bracket of an `_id` for which a range can be read (`$lt`
    matches that bracket only); None for the rest (null, booleans, MinKey, MaxKey, …),
    which hold a handful of values at most and are read whole by every poll."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal128, Int64)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (bytes, Binary)):
        return "binData"
    if isinstance(value, dt.datetime | DatetimeMS):
        return "date"
    if isinstance(value, Timestamp):
        return "timestamp"
    return None


def window_filter(lows: dict[str, Any]) -> dict[str, Any]:
    """Every document except those below the low end of their type's window."""
    if not lows:
        return {}
    return {"$nor": [{"_id": {"$lt": low}} for _, low in sorted(lows.items())]}


def _digest(doc: dict[str, Any]) -> bytes:
    return hashlib.blake2b(document_bytes(doc), digest_size=8).digest()


@dataclass(eq=False, repr=False)
class Poller:
    """The polling loop of one run. `marks`: (wall time, highest `_id` per type) as read
    at that time, oldest first; `swept`: wall time of the last full read (None: never)."""

    coll: Any
    name: str
    _: KW_ONLY
    marks: list[tuple[float, dict[str, Any]]]
    swept: float | None
    window: float
    sweep_every: float
    retry: Retrying
    # `known`: _id -> digest of what was handed out; `complete`: `known` holds every document
    # (a sweep ran in this process)
    highs: dict[str, Any] = field(init=False)
    known: dict[bytes, bytes] = field(init=False, default_factory=dict)
    complete: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.highs = dict(self.marks[-1][1]) if self.marks else {}

    def position(self) -> dict[str, Any]:
        return {"mode": "poll", "marks": self.marks, "swept": self.swept}

    def lows(self, now: float) -> dict[str, Any]:
        """Per type, the highest `_id` seen at the newest mark older than the window (or at
        the oldest mark): the low end of what this poll reads again."""
        chosen: dict[str, Any] = {}
        for at, highs in self.marks:
            if at > now - self.window and chosen:
                break
            chosen = highs
        return dict(chosen)

    def cycles(self, limits: BatchLimits, follow: bool, stop: StopSignal) -> Iterator[list[Event]]:
        """One list of events per batch; `position()` is up to date when each is handed out."""
        while not stop.is_set():
            now = wall_clock()
            sweep = self.swept is None or now - self.swept >= self.sweep_every
            if sweep:
                log.info("polling %s: reading the whole collection", self.name)
            query = {} if sweep else window_filter(self.lows(now))
            yield from self._scan(query, sweep, limits, stop)
            if stop.is_set() or not follow:
                return
            stop.wait(limits.poll_interval)

    def _scan(
        self, query: dict[str, Any], sweep: bool, limits: BatchLimits, stop: StopSignal
    ) -> Iterator[list[Event]]:
        self.retry.succeeded()
        while True:
            now = wall_clock()
            highs = dict(self.highs)
            seen: set[bytes] = set()
            batch = MicroBatch(limits, timed=False)
            try:
                cursor = self.coll.find(query, sort=[("_id", 1)], batch_size=limits.max_events)
                try:
                    for doc in opened(cursor, stop):
                        doc_id = doc.get("_id")
                        kind = type_of(doc_id)
                        if kind is not None and encodable(doc_id):
                            highs[kind] = doc_id  # sorted: the last one is the highest
                        key, digest = id_bytes(doc_id), _digest(doc)
                        seen.add(key)
                        if self.known.get(key) != digest:
                            self.known[key] = digest
                            if batch.add(
                                event_from_object(doc, where="poll", raw="", literal=True)
                            ):
                                yield batch.take()
                finally:
                    cursor.close()
            except Exception as exc:
                self.retry.failed(exc, "poll")
                continue
            break
        events = batch.take()
        if sweep:
            if self.complete:
                for key in [k for k in self.known if k not in seen]:
                    del self.known[key]
                    gone = id_of(key)
                    change = {"operationType": "delete", "documentKey": {"_id": gone}}
                    events.append(
                        event_from_object(change, where="poll sweep", raw="", literal=True)
                    )
            self.complete = True
            self.swept = round(now, 3)
        self._mark(now, highs)
        yield events

    def _mark(self, now: float, highs: dict[str, Any]) -> None:
        """Record the highest `_id`s read now (the newest mark; older marks are kept about
        `window / MAX_MARKS` seconds apart); keep the marks a restart needs: those inside
        the window and the newest one before it."""
        self.highs = highs
        mark = (round(now, 3), dict(highs))
        if len(self.marks) >= 2 and now - self.marks[-2][0] < self.window / MAX_MARKS:
            self.marks[-1] = mark  # the newest mark moves on; the older ones stay spaced
        else:
            self.marks.append(mark)
        while len(self.marks) > 1 and self.marks[1][0] <= now - self.window:
            self.marks.pop(0)  # the spacing keeps them about MAX_MARKS + 2
