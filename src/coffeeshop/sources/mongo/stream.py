"""Streaming: the collection's change stream from a resume token, in batches.

Each batch's position is the resume token after its last change (or, when the stream is
idle, the server's newer post-batch token, saved every `IDLE_COMMIT_SECONDS`). The driver
resumes a broken stream once by itself; after that the stream is opened again from the
position of the last batch handed out, with the shared backoff. A stream that can no
longer resume (error 286 and its kin, or an invalidate / drop / rename event) raises
`SourceHistoryLost`.

Latency: a batch is handed out as soon as the driver holds no more changes of the last
server reply (`buffered(stream) == 0`: the next `try_next` would wait on the network),
not `max_wait` after its first change. Under a steady stream of writes every reply holds a
few changes and an idle reply never comes, so waiting for one (or for `max_wait`) added
that wait to every change; handing out at the end of each reply adds nothing, and while
the database is busy committing, the changes that arrive meanwhile come in the next reply
(or, with the read-ahead process, are merged by it): batches grow with the load.

A change event over 16 MB (an update whose post-image and update description together pass
it) cannot be sent by the server: its getMore fails with BSONObjectTooLarge (10334), and so
would every resume before it. That one event is then read through a second stream from the
same token whose `$project` keeps only its small fields (MongoDB's advice for large events;
no server-version needs, unlike `$changeStreamSplitLargeEvent` of 7.0), and the document is
read by `_id` (as `_looked_up` does): later changes apply on top, so nothing is lost. The
stream is then opened again after that event.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from coffeeshop.core.events import Event, event_from_object
from coffeeshop.core.receipts import display_id
from coffeeshop.errors import SourceHistoryLost
from coffeeshop.retry import StopSignal
from coffeeshop.sources.base import BatchLimits, SourceBatch
from coffeeshop.sources.batching import MicroBatch
from coffeeshop.sources.mongo.errors import (
    MongoRetrying,
    change_time,
    describe,
    history_lost,
    interruptible,
    where,
)
from coffeeshop.sources.mongo.position import position

log = logging.getLogger("coffeeshop.mongo")

END_OF_STREAM = frozenset({"invalidate", "drop", "rename", "dropDatabase"})
TOO_LARGE = 10334  # BSONObjectTooLarge: a change event over 16 MB
# What of a too-large event is read: everything but the document and the update description.
SMALL_FIELDS = [
    {"$project": {"operationType": 1, "documentKey": 1, "clusterTime": 1, "wallTime": 1}}
]
IDLE_COMMIT_SECONDS = 5.0  # how often an idle stream's newer post-batch token is saved


@dataclass(eq=False, repr=False)
class ChangeStream:
    """The change stream of one run: `batches(token)` follows it from `token`."""

    coll: Any
    name: str
    _: KW_ONLY
    full_document: str
    limits: BatchLimits
    follow: bool
    stop: StopSignal
    retrying: MongoRetrying
    verify: Callable[[], None] | None = None  # after a failure, before the stream is reopened
    reconnecting: bool = field(init=False, default=False)
    token: Any = field(init=False, default=None)  # the resume token after the last change read
    yielded: Any = field(init=False, default=None)  # the position of the last batch handed out
    last_commit: float = field(init=False, default=0.0)

    def batches(self, token: Any) -> Iterator[SourceBatch]:
        self.token = self.yielded = token
        self.last_commit = time.monotonic()
        while not self.stop.is_set():
            stream = self._open()
            if stream is None:
                continue
            try:
                yield from self._read(stream)
                return
            except SourceHistoryLost:
                raise
            except _Reopen:
                continue
            except Exception as exc:
                self._check_resumable(exc)
                # Changes read but not yet handed out are dropped and read again: resume
                # from the position of the last batch handed out.
                self.token = self.yielded
                self.reconnecting = True
                self.retrying.failed(exc, "read the change stream")
            finally:
                stream.close()

    def _open(self) -> Any:
        """The stream from `self.token`; None after a failure (backed off: try again)."""
        resume = self.token
        try:
            if self.reconnecting and self.verify is not None:
                interruptible(self.verify, self.stop)  # the same collection and history?
            self.reconnecting = False
            return interruptible(
                lambda: self.coll.watch(
                    full_document=self.full_document,
                    resume_after=resume,
                    max_await_time_ms=max(1, int(self.limits.poll_interval * 1000)),
                    batch_size=self.limits.max_events,
                ),
                self.stop,
            )
        except SourceHistoryLost:
            raise
        except Exception as exc:
            self._check_resumable(exc)
            self.reconnecting = True
            self.retrying.failed(exc, "open the change stream")
            return None

    def _read(self, stream: Any) -> Iterator[SourceBatch]:
        batch = MicroBatch(self.limits)
        newest: dt.datetime | None = None
        while not self.stop.is_set():
            try:
                change = stream.try_next()
            except Exception as exc:
                if getattr(exc, "code", None) != TOO_LARGE:
                    raise
                change = self._too_large()
                self._check_operation(change)
                self.token = change["_id"]
                batch.add(self._event(change))
                yield self._hand_out(batch.take(), change_time(change) or newest)
                raise _Reopen from None  # the failed stream is dead: go on after that event
            if change is None:  # the server answered and we are caught up
                self.retrying.succeeded()
                self.token = stream.resume_token or self.token
                if batch or self._idle_token_due():
                    yield self._hand_out(batch.take(), newest)
                    newest = None
                if not self.follow:
                    return
                continue
            self._check_operation(change)
            self.token = stream.resume_token or change.get("_id") or self.token
            newest = change_time(change) or newest
            if batch.add(self._event(change)) or buffered(stream) == 0:
                yield self._hand_out(batch.take(), newest)
                newest = None
                self.retrying.succeeded()
        if batch:  # stopped with a batch in hand: hand it out
            yield self._hand_out(batch.take(), newest)

    def _idle_token_due(self) -> bool:
        """A newer token without changes is saved now and then (at the end, with --once)."""
        if self.token == self.yielded:
            return False
        return not self.follow or time.monotonic() - self.last_commit >= IDLE_COMMIT_SECONDS

    def _hand_out(self, events: list[Event], newest: dt.datetime | None) -> SourceBatch:
        batch = SourceBatch(events, position("stream", resume=self.token), source_time=newest)
        self.yielded, self.last_commit = self.token, time.monotonic()
        return batch

    def _event(self, change: dict[str, Any]) -> Event:
        if (
            change.get("operationType") == "update"
            and change.get("fullDocument") is None
            and self.full_document == "whenAvailable"
        ):
            change = _looked_up(self.coll, change)
        return event_from_object(change, where=where(change), raw="", literal=True)

    def _check_operation(self, change: dict[str, Any]) -> None:
        operation = change.get("operationType")
        if operation in END_OF_STREAM:
            raise SourceHistoryLost(
                f"the change stream of {self.name} ended with "
                f"{'an' if operation[0] in 'aeiou' else 'a'} {operation!r} event "
                "(the collection was dropped or renamed)"
            )

    def _too_large(self) -> dict[str, Any]:
        """The change after `self.token`, too large to be sent: its small fields, and the
        document as it is now (or its delete when it is gone)."""
        resume = self.token
        with interruptible(
            lambda: self.coll.watch(SMALL_FIELDS, resume_after=resume), self.stop
        ) as small:
            change = None
            while change is None and not self.stop.is_set():
                change = small.try_next()
        if change is None:
            raise _Reopen
        key = (change.get("documentKey") or {}).get("_id")
        log.warning(
            "%s: the %s of _id %s is over 16 MB (BSONObjectTooLarge); reading the document "
            "by _id instead",
            self.name,
            where(change),
            display_id(key, literal=True),
        )
        if change.get("operationType") == "delete":
            return change
        return _looked_up(self.coll, {**change, "operationType": "update"})

    def _check_resumable(self, exc: BaseException) -> None:
        if history_lost(exc):
            raise SourceHistoryLost(
                f"the change stream of {self.name} cannot resume from the checkpoint: "
                f"{describe(exc)} (the oplog no longer holds it)"
            ) from None


class _Reopen(Exception):
    """The stream must be opened again from the position handed out (not a failure)."""


def buffered(stream: Any) -> int | None:
    """How many changes of the last server reply the driver still holds (PyMongo's change
    stream keeps them in its command cursor's deque: `_data` since PyMongo 4.9, name-mangled
    before); None when that cannot be seen (then batches close at `max_wait`)."""
    cursor = getattr(stream, "_cursor", None)
    data = getattr(cursor, "_data", None)
    if data is None:
        data = getattr(cursor, "_CommandCursor__data", None)
    try:
        return len(data) if data is not None else None
    except TypeError:
        return None


def _looked_up(coll: Any, change: dict[str, Any]) -> dict[str, Any]:
    """An update whose post-image is unavailable (`whenAvailable`: not recorded, or
    expired; no delete follows): the document as it is now, or its delete if it is gone.
    Later changes in the stream then apply on top, so the tables end up exact."""
    key = (change.get("documentKey") or {}).get("_id")
    current = coll.find_one({"_id": key})
    if current is None:
        return {**change, "operationType": "delete"}
    return {**change, "operationType": "replace", "fullDocument": current}
