"""The MongoDB source: a snapshot of the receipt collection, then its change stream.

Every line that talks to MongoDB is in the `sources.mongo*` modules. The order of work
is what makes it gap-free: the change stream's starting point (a resume token) is taken *before* the
snapshot is read, the snapshot is read in `_id` order in bounded batches, and then the
stream opens from that point. Changes made during the snapshot are seen twice (in the
snapshot and in the stream); the engine is idempotent, so that is harmless.

Positions (the checkpoint, committed with each batch) are described in `mongo_position`:
a snapshot position records the last `_id` read, and a restart continues after it (with
`min()` on the `_id` index, which covers every BSON type that sorts later). A standalone
server has no change streams: it is polled (`mongo_poll`); when a server that was polled
has change streams at a start, the source switches to them through a rebuild (the
stream's start point first, then a fresh read, then the stream).

The driver resumes a broken stream once by itself, and retries a `find` once, but never
a `getMore`; after that this source retries with exponential backoff (capped at 60 s),
logging each attempt, from the last change or `_id` it read: for ever while following,
5 times otherwise. Start-up calls (`hello`, the start token) are retried the same way,
and a stop request (Ctrl-C) ends a wait or an attempt within a tenth of a second. A
stream that can no longer resume (error 286, ChangeStreamHistoryLost, or an
invalidate event after a drop or rename) raises `SourceHistoryLost`; the engine
then rebuilds from a fresh snapshot, or stops if told to.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from coffeeshop.core.events import Event, event_from_object
from coffeeshop.errors import (
    CoffeeshopError,
    ConfigError,
    SourceHistoryLost,
    SourceSwitched,
    SourceUnavailable,
)
from coffeeshop.sources.base import BatchLimits, SourceBatch
from coffeeshop.sources.mongo_errors import (
    Stopped,
    change_time,
    describe,
    history_lost,
    hosts,
    interruptible,
    masked,
    opened,
    transient,
    where,
)
from coffeeshop.sources.mongo_poll import POLL_WINDOW, SWEEP_EVERY, Poller
from coffeeshop.sources.mongo_position import decoded, encode, id_key, poll_position, position
from coffeeshop.sources.mongo_write import write_lines

__all__ = ["MongoSource", "write_lines"]

log = logging.getLogger("coffeeshop.mongo")

END_OF_STREAM = frozenset({"invalidate", "drop", "rename", "dropDatabase"})
FULL_DOCUMENT_MODES = ("updateLookup", "whenAvailable")
IDLE_COMMIT_SECONDS = 5.0  # how often an idle stream's newer post-batch token is saved
MAX_BACKOFF = 60.0

ClientFactory = Callable[[], Any]


class MongoSource:
    def __init__(
        self,
        uri: str,
        *,
        database: str = "coffeeshop",
        collection: str = "receipt",
        full_document: str = "updateLookup",
        mode: str = "auto",
        retries: int | None = None,
        client_factory: ClientFactory | None = None,
        poll_window: float = POLL_WINDOW,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        if full_document not in FULL_DOCUMENT_MODES:
            choices = ", ".join(FULL_DOCUMENT_MODES)
            raise ConfigError(f"full_document must be one of {choices}, got {full_document!r}")
        if mode not in ("auto", "stream", "poll"):
            raise ConfigError(f"mode must be auto, stream or poll, got {mode!r}")
        self.uri = uri
        self.database = database
        self.collection = collection
        self.full_document = full_document
        self.mode = mode
        self.retries = retries  # None: keep retrying while following
        self.poll_window = poll_window
        self.sweep_every = sweep_every
        self._client_factory = client_factory or self._default_client
        self._hosts = hosts(uri)
        self._state: dict[str, Any] | None = None
        self._client: Any = None

    @property
    def name(self) -> str:
        return f"mongodb:{self._hosts}/{self.database}.{self.collection}"

    @property
    def repair_args(self) -> str:
        """The options that name this source on a command line, the password masked."""
        args = f"--source {shlex.quote(masked(self.uri))}"
        if self.database != "coffeeshop":
            args += f" --database {shlex.quote(self.database)}"
        if self.collection != "receipt":
            args += f" --collection {shlex.quote(self.collection)}"
        return args

    def _default_client(self) -> Any:
        from pymongo import MongoClient

        # tz_aware=False: datetimes come back as naive UTC, as the receipt parser expects.
        # Options in the URI win: a default is only given where the URI has none.
        options: dict[str, Any] = {"appname": "coffeeshop"}
        if "serverselectiontimeoutms" not in self.uri.lower():
            options["serverSelectionTimeoutMS"] = 10_000
        return MongoClient(self.uri, **options)

    # -- position ------------------------------------------------------------------------------

    def open(self, position: str | None) -> None:
        """Parse the checkpoint; no I/O here (the client is made where it is used, which
        may be a forked reader process: PyMongo clients must not cross a fork)."""
        if position is None:
            self._state = None
            return
        try:
            state = json.loads(position)
            mode = state["mode"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"the checkpoint of {self.name} is not a MongoDB position: {position[:80]!r}"
            ) from None
        if mode not in ("snapshot", "stream", "poll"):
            raise ConfigError(f"unknown MongoDB checkpoint mode {mode!r}")
        self._state = state

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- reading -------------------------------------------------------------------------------

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: threading.Event
    ) -> Iterator[SourceBatch]:
        try:
            yield from self._batches(limits, follow, stop)
        except Stopped:  # stopped while waiting for the server
            return

    def _batches(
        self, limits: BatchLimits, follow: bool, stop: threading.Event
    ) -> Iterator[SourceBatch]:
        self._client = self._connect()
        coll = self._client[self.database][self.collection]
        streaming = self._supports_streams(follow, stop)
        state = decoded(self._state)
        if streaming and self.full_document == "whenAvailable":
            self._check_post_images(follow, stop)
        if state is None:
            if streaming:
                resume = self._start_token(coll, follow, stop)
                state = {"mode": "snapshot", "resume": resume, "after": None}
            else:
                state = {"mode": "poll", "marks": [], "swept": None}
        if state["mode"] in ("snapshot", "stream") and not streaming:
            raise ConfigError(
                f"{self.name} no longer supports change streams (standalone server?), but the "
                "checkpoint is a change stream position; run `coffeeshop reconcile --repair`"
            )
        if state["mode"] == "poll" and streaming:
            raise SourceSwitched(
                f"{self.name} now has change streams (a replica set): switching from polling "
                "to the change stream; the stream's start point is taken first, then the "
                "collection is read again into fresh tables, then the stream follows"
            )
        if state["mode"] == "snapshot":
            resume = state["resume"]
            yield from self._snapshot(coll, resume, state.get("after"), limits, follow, stop)
            state = {"mode": "stream", "resume": resume}
            if stop.is_set():
                return
        if state["mode"] == "stream":
            yield from self._stream(coll, state["resume"], limits, follow, stop)
        else:
            yield from self._poll(coll, state, limits, follow, stop)

    def _connect(self) -> Any:
        try:
            client = self._client_factory()
        except Exception as exc:  # pymongo.errors.ConfigurationError, InvalidURI, …
            raise ConfigError(f"cannot use MongoDB source {self.name}: {exc}") from None
        return client

    def _supports_streams(self, follow: bool, stop: threading.Event) -> bool:
        if self.mode != "auto":
            return self.mode == "stream"
        try:
            hello = self._startup(self._hello, "connect", follow, stop)
        except NotImplementedError:  # a test double without server commands: standalone
            hello = {}
        if "setName" in hello or hello.get("msg") == "isdbgrid":
            return True
        log.warning(
            "%s is a standalone server: it has no change streams. Falling back to polling: "
            "new documents (any _id type, in any order) are read within the poll interval; "
            "an insert landing more than %.0f s after a higher _id, updates, and deletes of "
            "documents this run has read, only by a read of the whole collection every "
            "%.0f s; deletes made while no sync runs are NOT seen: run "
            "`coffeeshop reconcile --repair` to pick them up, or run MongoDB as a replica set "
            "(a single node is enough: `mongod --replSet rs0`, then `rs.initiate()`).",
            self.name,
            self.poll_window,
            self.sweep_every,
        )
        return False

    def _hello(self) -> dict[str, Any]:
        from pymongo.errors import OperationFailure

        try:
            return dict(self._client.admin.command("hello"))
        except OperationFailure as exc:
            if exc.code != 59:  # CommandNotFound: MongoDB 4.4.0 and 4.4.1 have no `hello`
                raise
            return dict(self._client.admin.command("isMaster"))

    def _check_post_images(self, follow: bool, stop: threading.Event) -> None:
        """`whenAvailable` reads post-images: refuse a collection that does not record them."""
        database = self._client[self.database]
        infos = self._startup(
            lambda: list(database.list_collections(filter={"name": self.collection})),
            "read the collection options",
            follow,
            stop,
        )
        options = (infos[0].get("options") or {}) if infos else {}
        if not (options.get("changeStreamPreAndPostImages") or {}).get("enabled"):
            raise ConfigError(
                f"--full-document whenAvailable needs post-images, but {self.name} does not "
                f'record them: run `db.runCommand({{collMod: "{self.collection}", '
                "changeStreamPreAndPostImages: {enabled: true}})` (MongoDB 6.0+), or use "
                "--full-document updateLookup"
            )

    def _start_token(self, coll: Any, follow: bool, stop: threading.Event) -> dict[str, Any]:
        """The stream's starting point, taken before the snapshot is read."""

        def take() -> dict[str, Any]:
            with coll.watch(full_document=self.full_document) as stream:
                token = stream.resume_token
            if token is None:
                raise SourceUnavailable(f"{self.name} gave no resume token for a new change stream")
            return dict(token)

        return self._startup(take, "open the change stream", follow, stop)

    def _snapshot(
        self,
        coll: Any,
        resume: Any,
        after: Any,
        limits: BatchLimits,
        follow: bool,
        stop: threading.Event,
    ) -> Iterator[SourceBatch]:
        """The collection in `_id` order, after `after` (None: from the start). PyMongo
        retries the `find` but never a `getMore`: a failure while reading goes on after
        the last `_id` read, with `min()` on the `_id` index, which (unlike `$gt`) also
        covers every BSON type that sorts after it."""
        if after is None:
            log.info("reading a snapshot of %s (then streaming changes from before it)", self.name)
        else:
            log.info("continuing the snapshot of %s after _id %s", self.name, encode(after))
        count = 0
        events: list[Event] = []
        last_id: Any = after
        attempt = 0
        while True:
            options: dict[str, Any] = {"sort": [("_id", 1)], "batch_size": limits.max_events}
            if last_id is not None:
                options |= {"hint": [("_id", 1)], "min": [("_id", last_id)]}
            skip = id_key(last_id) if last_id is not None else None  # min() is inclusive
            cursor = coll.find({}, **options)
            try:
                for doc in opened(cursor, stop):
                    if stop.is_set():
                        return
                    doc_id = doc.get("_id")
                    if skip is not None:
                        first, skip = skip, None
                        if id_key(doc_id) == first:
                            continue
                    last_id = doc_id
                    events.append(event_from_object(doc, where="snapshot", raw=""))
                    if len(events) >= limits.max_events:
                        count += len(events)
                        yield SourceBatch(
                            events, position("snapshot", resume=resume, after=last_id)
                        )
                        events = []
                        attempt = 0
                break
            except Exception as exc:
                attempt = self._retry(exc, attempt, follow, stop, "read the snapshot")
            finally:
                cursor.close()
        count += len(events)
        # The last snapshot batch already carries the stream position: once it commits,
        # a restart streams instead of reading the snapshot again.
        yield SourceBatch(events, position("stream", resume=resume))
        log.info("snapshot of %s done: %d document(s)", self.name, count)

    def _stream(
        self,
        coll: Any,
        token: Any,
        limits: BatchLimits,
        follow: bool,
        stop: threading.Event,
    ) -> Iterator[SourceBatch]:
        yielded = token  # the position of the last batch handed out
        last_commit = time.monotonic()
        attempt = 0
        while not stop.is_set():
            try:
                stream = interruptible(
                    lambda resume=token: coll.watch(
                        full_document=self.full_document,
                        resume_after=resume,
                        max_await_time_ms=max(1, int(limits.poll_interval * 1000)),
                        batch_size=limits.max_events,
                    ),
                    stop,
                )
            except Stopped:
                return
            except Exception as exc:
                if history_lost(exc):
                    raise SourceHistoryLost(
                        f"the change stream of {self.name} cannot resume from the checkpoint: "
                        f"{describe(exc)} (the oplog no longer holds it)"
                    ) from None
                attempt = self._retry_or_raise(
                    exc, attempt, follow, stop, what="open the change stream"
                )
                continue
            try:
                events: list[Event] = []
                newest: dt.datetime | None = None
                started = 0.0
                while not stop.is_set():
                    change = stream.try_next()
                    if change is None:  # the server answered and we are caught up
                        attempt = 0
                        token = stream.resume_token or token
                        idle_due = time.monotonic() - last_commit >= IDLE_COMMIT_SECONDS
                        if events or (token != yielded and (idle_due or not follow)):
                            yield SourceBatch(
                                events, position("stream", resume=token), source_time=newest
                            )
                            events, newest = [], None
                            yielded, last_commit = token, time.monotonic()
                        if not follow:
                            return
                        continue
                    operation = change.get("operationType")
                    if operation in END_OF_STREAM:
                        raise SourceHistoryLost(
                            f"the change stream of {self.name} ended with "
                            f"{'an' if operation[0] in 'aeiou' else 'a'} {operation!r} event "
                            "(the collection was dropped or renamed)"
                        )
                    token = stream.resume_token or change.get("_id") or token
                    newest = change_time(change) or newest
                    if not events:
                        started = time.monotonic()
                    if (
                        operation == "update"
                        and change.get("fullDocument") is None
                        and self.full_document == "whenAvailable"
                    ):
                        change = _looked_up(coll, change)
                    events.append(event_from_object(change, where=where(change), raw=""))
                    if (
                        len(events) >= limits.max_events
                        or time.monotonic() - started >= limits.max_wait
                    ):
                        yield SourceBatch(
                            events, position("stream", resume=token), source_time=newest
                        )
                        events, newest = [], None
                        yielded, last_commit = token, time.monotonic()
                        attempt = 0
                if events:  # stopped with a batch in hand: hand it out
                    yield SourceBatch(events, position("stream", resume=token), source_time=newest)
                    yielded = token
            except SourceHistoryLost:
                raise
            except Exception as exc:
                if history_lost(exc):
                    raise SourceHistoryLost(
                        f"the change stream of {self.name} cannot resume from the checkpoint: "
                        f"{describe(exc)} (the oplog no longer holds it)"
                    ) from None
                # Changes read but not yet handed out are dropped and read again: resume
                # from the position of the last batch handed out.
                token = yielded
                attempt = self._retry_or_raise(
                    exc, attempt, follow, stop, what="read the change stream"
                )
            finally:
                stream.close()

    def _poll(
        self,
        coll: Any,
        state: dict[str, Any],
        limits: BatchLimits,
        follow: bool,
        stop: threading.Event,
    ) -> Iterator[SourceBatch]:
        poller = Poller(
            coll,
            self.name,
            marks=state["marks"],
            swept=state["swept"],
            window=self.poll_window,
            sweep_every=self.sweep_every,
            retry=lambda exc, attempt: self._retry(exc, attempt, follow, stop, "poll"),
        )
        for events in poller.cycles(limits, follow, stop):
            yield SourceBatch(events, poll_position(poller.marks, poller.swept))

    # -- failures ------------------------------------------------------------------------------

    def _retry(
        self, exc: BaseException, attempt: int, follow: bool, stop: threading.Event, what: str
    ) -> int:
        """`_retry_or_raise`, then stop here if asked to while waiting."""
        attempt = self._retry_or_raise(exc, attempt, follow, stop, what=what)
        if stop.is_set():
            raise Stopped
        return attempt

    def _retry_or_raise(
        self, exc: BaseException, attempt: int, follow: bool, stop: threading.Event, *, what: str
    ) -> int:
        """Back off after a connection failure; raise when it is not one, or when retries
        end (never while following, unless `retries` is set)."""
        if not transient(exc):
            raise SourceUnavailable(f"cannot {what} on {self.name}: {describe(exc)}") from None
        attempt += 1
        limit = self.retries if self.retries is not None else (None if follow else 5)
        if limit is not None and attempt > limit:
            raise SourceUnavailable(
                f"cannot {what} on {self.name} after {attempt - 1} retries: {describe(exc)}"
            ) from None
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        log.warning(
            "MongoDB error, retrying in %.1f s (attempt %d%s): cannot %s on %s: %s",
            delay,
            attempt,
            f" of {limit}" if limit is not None else "",
            what,
            self.name,
            describe(exc),
        )
        stop.wait(delay)
        return attempt

    def _startup(
        self, action: Callable[[], Any], what: str, follow: bool, stop: threading.Event
    ) -> Any:
        """A start-up call, retried like the stream (for ever while following); a stop
        request ends it at once, even in the middle of an attempt."""
        attempt = 0
        while True:
            if stop.is_set():
                raise Stopped
            try:
                return interruptible(action, stop)
            except (NotImplementedError, Stopped, CoffeeshopError):
                raise
            except Exception as exc:
                attempt = self._retry(exc, attempt, follow, stop, what)


def _looked_up(coll: Any, change: dict[str, Any]) -> dict[str, Any]:
    """An update whose post-image is unavailable (`whenAvailable`: not recorded, or
    expired; no delete follows): the document as it is now, or its delete if it is gone.
    Later changes in the stream then apply on top, so the tables end up exact."""
    key = (change.get("documentKey") or {}).get("_id")
    current = coll.find_one({"_id": key})
    if current is None:
        return {**change, "operationType": "delete"}
    return {**change, "operationType": "replace", "fullDocument": current}
