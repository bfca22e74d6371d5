"""The MongoDB source: a snapshot of the receipt collection, then its change stream.

Every line that talks to MongoDB is in this module. The order of work is what makes it
gap-free: the change stream's starting point (a resume token) is taken *before* the
snapshot is read, the snapshot is read in `_id` order in bounded batches, and then the
stream opens from that point. Changes made during the snapshot are seen twice (in the
snapshot and in the stream); the engine is idempotent, so that is harmless.

Positions (the checkpoint, committed with each batch) are JSON:

- `{"mode": "snapshot", "resume": TOKEN, "after": ID}`: reading the snapshot; the
  stream will start at TOKEN. A restart reads the snapshot again from the beginning
  (re-applying a receipt changes nothing), then streams from TOKEN.
- `{"mode": "stream", "resume": TOKEN}`: streaming; TOKEN is the resume token after
  the last applied change, or the post-batch token of an idle poll, so a quiet
  collection never falls off the oplog.
- `{"mode": "poll", "after": ID}`: a standalone server has no change streams: new
  documents are polled by `_id` (updates and deletes then need `coffeeshop reconcile`).

The driver resumes a broken stream once by itself; after that this source retries
with exponential backoff, logging each attempt, from the last change it read. A
stream that can no longer resume (error 286, ChangeStreamHistoryLost, or an
invalidate event after a drop or rename) raises `SourceHistoryLost`; the engine
then rebuilds from a fresh snapshot, or stops if told to.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

from coffeeshop.errors import ConfigError, SourceHistoryLost, SourceUnavailable
from coffeeshop.events import Event, event_from_object
from coffeeshop.sources.base import BatchLimits, SourceBatch

log = logging.getLogger("coffeeshop.mongo")

# Server errors that mean the stream cannot resume from its token.
HISTORY_LOST_CODES = frozenset(
    {136, 280, 286}
)  # CappedPositionLost, ChangeStreamFatalError, …HistoryLost
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
        self._client_factory = client_factory or self._default_client
        self._hosts = _hosts(uri)
        self._state: dict[str, Any] | None = None
        self._client: Any = None

    @property
    def name(self) -> str:
        return f"mongodb:{self._hosts}/{self.database}.{self.collection}"

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
        self._client = self._connect()
        coll = self._client[self.database][self.collection]
        streaming = self._supports_streams()
        state = dict(self._state) if self._state is not None else None
        if state is not None:  # the checkpoint holds BSON values as Extended JSON text
            for field in ("resume", "after"):
                if state.get(field) is not None:
                    state[field] = _decode(state[field])
        if state is None:
            if streaming:
                state = {"mode": "snapshot", "resume": self._start_token(coll), "after": None}
            else:
                state = {"mode": "poll", "after": None}
        if state["mode"] in ("snapshot", "stream") and not streaming:
            raise ConfigError(
                f"{self.name} no longer supports change streams (standalone server?), but the "
                "checkpoint is a change stream position; run `coffeeshop reconcile --repair`"
            )
        if state["mode"] == "snapshot":
            resume = state["resume"]
            yield from self._snapshot(coll, resume, limits, stop)
            state = {"mode": "stream", "resume": resume}
            if stop.is_set():
                return
        if state["mode"] == "stream":
            yield from self._stream(coll, state["resume"], limits, follow, stop)
        else:
            yield from self._poll(coll, state.get("after"), limits, follow, stop)

    def _connect(self) -> Any:
        try:
            client = self._client_factory()
        except Exception as exc:  # pymongo.errors.ConfigurationError, InvalidURI, …
            raise ConfigError(f"cannot use MongoDB source {self.name}: {exc}") from None
        return client

    def _supports_streams(self) -> bool:
        if self.mode != "auto":
            return self.mode == "stream"
        try:
            hello = self._with_retries(lambda: self._client.admin.command("hello"), what="connect")
        except NotImplementedError:  # a test double without server commands: standalone
            hello = {}
        if "setName" in hello or hello.get("msg") == "isdbgrid":
            return True
        log.warning(
            "%s is a standalone server: it has no change streams. Falling back to polling new "
            "documents by _id; updates and deletes are NOT seen: run `coffeeshop reconcile` "
            "to pick them up, or run MongoDB as a replica set (a single node is enough: "
            "`mongod --replSet rs0`, then `rs.initiate()`).",
            self.name,
        )
        return False

    def _start_token(self, coll: Any) -> dict[str, Any]:
        """The stream's starting point, taken before the snapshot is read."""

        def take() -> dict[str, Any]:
            with coll.watch(full_document=self.full_document) as stream:
                token = stream.resume_token
            if token is None:
                raise SourceUnavailable(f"{self.name} gave no resume token for a new change stream")
            return dict(token)

        return self._with_retries(take, what="open the change stream")

    def _snapshot(
        self, coll: Any, resume: Any, limits: BatchLimits, stop: threading.Event
    ) -> Iterator[SourceBatch]:
        log.info("reading a snapshot of %s (then streaming changes from before it)", self.name)
        count = 0
        events: list[Event] = []
        last_id: Any = None
        cursor = coll.find({}, sort=[("_id", 1)], batch_size=limits.max_events)
        try:
            for doc in cursor:
                if stop.is_set():
                    return
                last_id = doc.get("_id")
                events.append(event_from_object(doc, where="snapshot", raw=""))
                if len(events) >= limits.max_events:
                    count += len(events)
                    yield SourceBatch(events, _position("snapshot", resume=resume, after=last_id))
                    events = []
        finally:
            cursor.close()
        count += len(events)
        # The last snapshot batch already carries the stream position: once it commits,
        # a restart streams instead of reading the snapshot again.
        yield SourceBatch(events, _position("stream", resume=resume))
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
                stream = coll.watch(
                    full_document=self.full_document,
                    resume_after=token,
                    max_await_time_ms=max(1, int(limits.poll_interval * 1000)),
                    batch_size=limits.max_events,
                )
            except Exception as exc:
                if _history_lost(exc):
                    raise SourceHistoryLost(
                        f"the change stream of {self.name} cannot resume from the checkpoint: "
                        f"{_describe(exc)} (the oplog no longer holds it)"
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
                                events, _position("stream", resume=token), source_time=newest
                            )
                            events, newest = [], None
                            yielded, last_commit = token, time.monotonic()
                        if not follow:
                            return
                        continue
                    operation = change.get("operationType")
                    if operation in END_OF_STREAM:
                        raise SourceHistoryLost(
                            f"the change stream of {self.name} ended with a {operation!r} event "
                            "(the collection was dropped or renamed)"
                        )
                    token = stream.resume_token or change.get("_id") or token
                    newest = _change_time(change) or newest
                    if not events:
                        started = time.monotonic()
                    events.append(event_from_object(change, where=_where(change), raw=""))
                    if (
                        len(events) >= limits.max_events
                        or time.monotonic() - started >= limits.max_wait
                    ):
                        yield SourceBatch(
                            events, _position("stream", resume=token), source_time=newest
                        )
                        events, newest = [], None
                        yielded, last_commit = token, time.monotonic()
                        attempt = 0
                if events:  # stopped with a batch in hand: hand it out
                    yield SourceBatch(events, _position("stream", resume=token), source_time=newest)
                    yielded = token
            except SourceHistoryLost:
                raise
            except Exception as exc:
                if _history_lost(exc):
                    raise SourceHistoryLost(
                        f"the change stream of {self.name} cannot resume from the checkpoint: "
                        f"{_describe(exc)} (the oplog no longer holds it)"
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
        self, coll: Any, after: Any, limits: BatchLimits, follow: bool, stop: threading.Event
    ) -> Iterator[SourceBatch]:
        last_id = after
        attempt = 0
        while not stop.is_set():
            query = {"_id": {"$gt": last_id}} if last_id is not None else {}
            try:
                docs = list(coll.find(query, sort=[("_id", 1)], limit=limits.max_events))
                attempt = 0
            except Exception as exc:
                attempt = self._retry_or_raise(exc, attempt, follow, stop, what="poll")
                continue
            if docs:
                last_id = docs[-1].get("_id")
                events = [event_from_object(doc, where="poll", raw="") for doc in docs]
                yield SourceBatch(events, _position("poll", after=last_id))
                if len(docs) >= limits.max_events:
                    continue  # more are waiting
            if not follow:
                return
            stop.wait(limits.poll_interval)

    # -- failures ------------------------------------------------------------------------------

    def _retry_or_raise(
        self, exc: BaseException, attempt: int, follow: bool, stop: threading.Event, *, what: str
    ) -> int:
        """Back off after a connection failure; raise when it is not one, or when retries end."""
        if not _transient(exc):
            raise SourceUnavailable(f"cannot {what} on {self.name}: {_describe(exc)}") from None
        attempt += 1
        limit = self.retries if self.retries is not None else (None if follow else 5)
        if limit is not None and attempt > limit:
            raise SourceUnavailable(
                f"cannot {what} on {self.name} after {attempt - 1} retries: {_describe(exc)}"
            ) from None
        delay = min(MAX_BACKOFF, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        log.warning(
            "MongoDB error, retrying in %.1f s (attempt %d%s): cannot %s on %s: %s",
            delay,
            attempt,
            f" of {limit}" if limit is not None else "",
            what,
            self.name,
            _describe(exc),
        )
        stop.wait(delay)
        return attempt

    def _with_retries(self, action: Callable[[], Any], *, what: str) -> Any:
        attempt = 0
        stop = threading.Event()
        while True:
            try:
                return action()
            except NotImplementedError:
                raise
            except (SourceUnavailable, SourceHistoryLost):
                raise
            except Exception as exc:
                attempt = self._retry_or_raise(exc, attempt, False, stop, what=what)


# -- helpers -------------------------------------------------------------------------------------


def _position(mode: str, *, resume: Any = None, after: Any = None) -> str:
    state: dict[str, Any] = {"mode": mode}
    if resume is not None:
        state["resume"] = _encode(resume)
    if mode != "stream":
        state["after"] = _encode(after) if after is not None else None
    return json.dumps(state, separators=(",", ":"))


def _encode(value: Any) -> str:
    """A BSON value (resume token, _id) as canonical Extended JSON, inside the position."""
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


def _decode(text: str) -> Any:
    return json_util.loads(text, json_options=CANONICAL_JSON_OPTIONS)


def _hosts(uri: str) -> str:
    """Hosts of a URI, never its credentials."""
    try:
        from pymongo.uri_parser import parse_uri

        nodes = (
            parse_uri(uri, connect_timeout=None)["nodelist"]
            if not uri.startswith("mongodb+srv")
            else []
        )
    except Exception:
        nodes = []
    if nodes:
        return ",".join(f"{host}:{port}" for host, port in nodes)
    rest = uri.split("://", 1)[-1]
    rest = rest.rsplit("@", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0]


def _where(change: Mapping[str, Any]) -> str:
    stamp = change.get("clusterTime")
    if stamp is not None and hasattr(stamp, "time"):
        when = dt.datetime.fromtimestamp(stamp.time, dt.UTC)
        return f"change at {when:%Y-%m-%dT%H:%M:%SZ} #{stamp.inc}"
    return "change"


def _change_time(change: Mapping[str, Any]) -> dt.datetime | None:
    wall = change.get("wallTime")
    if isinstance(wall, dt.datetime):
        return (
            wall.replace(tzinfo=None)
            if wall.tzinfo is None
            else wall.astimezone(dt.UTC).replace(tzinfo=None)
        )
    stamp = change.get("clusterTime")
    if stamp is not None and hasattr(stamp, "time"):
        return dt.datetime.fromtimestamp(stamp.time, dt.UTC).replace(tzinfo=None)
    return None


def _history_lost(exc: BaseException) -> bool:
    from pymongo.errors import OperationFailure

    return isinstance(exc, OperationFailure) and exc.code in HISTORY_LOST_CODES


def _transient(exc: BaseException) -> bool:
    from pymongo.errors import ConnectionFailure, OperationFailure

    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, OperationFailure):
        labels = getattr(exc, "_error_labels", None) or set()
        return "ResumableChangeStreamError" in labels or exc.code in (
            6,
            7,
            89,
            91,
            189,
            262,
            9001,
            10107,
            11600,
            11602,
            13435,
            13436,
        )
    return False


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}{f' {code}' if code is not None else ''}: {text}"


# -- writing (the generator's MongoDB target) ----------------------------------------------------


def write_lines(
    uri: str,
    lines: Iterator[str],
    *,
    database: str = "coffeeshop",
    collection: str = "receipt",
    rate: float | None = None,
    stop: threading.Event | None = None,
    client_factory: ClientFactory | None = None,
) -> int:
    """Apply generated JSONL lines to a collection: documents are inserted (`insert_many`
    in chunks, or steadily at `rate` lines per second), change events become
    `replace_one` / `delete_one`, in order. Returns the lines applied."""
    from pymongo import MongoClient

    client = (client_factory or (lambda: MongoClient(uri, serverSelectionTimeoutMS=10_000)))()
    coll = client[database][collection]
    pending: list[dict[str, Any]] = []
    applied = 0
    chunk = 1000 if rate is None else max(1, min(1000, round(rate / 20)))
    started = time.monotonic()

    def flush() -> None:
        if pending:
            coll.insert_many(pending, ordered=True)
            pending.clear()

    try:
        for line in lines:
            if stop is not None and stop.is_set():
                break
            obj = json_util.loads(line)
            operation = obj.get("operationType")
            if operation is None:
                pending.append(obj)
            else:
                flush()
                key = obj["documentKey"]["_id"]
                if operation == "delete":
                    coll.delete_one({"_id": key})
                else:
                    coll.replace_one({"_id": key}, obj["fullDocument"], upsert=True)
            applied += 1
            if len(pending) >= chunk:
                flush()
            if rate is not None:
                delay = started + applied / rate - time.monotonic()
                if delay > 0:
                    flush()
                    if stop is not None:
                        stop.wait(delay)
                    else:
                        time.sleep(delay)
        flush()
    except Exception as exc:
        if _transient(exc) or exc.__class__.__module__.startswith("pymongo"):
            raise SourceUnavailable(f"cannot write to {_hosts(uri)}: {_describe(exc)}") from None
        raise
    finally:
        client.close()
    return applied
