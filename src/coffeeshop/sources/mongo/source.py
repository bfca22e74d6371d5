"""The MongoDB source: a snapshot of the receipt collection, then its change stream.

Every line that talks to MongoDB is in the `sources.mongo` package. The order of work
is what makes it gap-free: the change stream's starting point (a resume token) is taken *before* the
snapshot is read, the snapshot is read in `_id` order in bounded batches, and then the
stream opens from that point. Changes made during the snapshot are seen twice (in the
snapshot and in the stream); the engine is idempotent, so that is harmless.

Positions (the checkpoint, committed with each batch) are described in `position`:
a snapshot position records the last `_id` read, and a restart continues after it (with
`min()` on the `_id` index, which covers every BSON type that sorts later). A standalone
server has no change streams: it is polled (`poll`); when a server that was polled
has change streams at a start, the source switches to them through a rebuild (the
stream's start point first, then a fresh read, then the stream).

The driver resumes a broken stream once by itself, and retries a `find` once, but never
a `getMore`; after that this source retries with the shared backoff of `coffeeshop.retry`
(capped at 60 s; `errors.MongoRetrying` says which errors are worth it), logging each
attempt, from the last change or `_id` it read: for ever while following, 5 times
otherwise. Start-up calls (the client, which resolves a `mongodb+srv://` name; `hello`; the
start token) are retried the same way, for a bounded time when not following (`connection`;
`check_reachable` runs first). A stop request (Ctrl-C) ends a wait or an attempt within a
tenth of a second. A stream that can no longer resume (error 286, ChangeStreamHistoryLost, or an
invalidate event after a drop or rename, or a collection or replica set that is not the
checkpoint's: see `history`) raises `SourceHistoryLost`; the engine then rebuilds from a
fresh snapshot, or stops if told to. A namespace that does not exist is refused (or waited
for, `wait_for_collection`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shlex
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from coffeeshop.errors import ConfigError, SourceSwitched
from coffeeshop.redact import mask_url
from coffeeshop.retry import StopSignal
from coffeeshop.sources.base import BatchLimits, SourceBatch
from coffeeshop.sources.mongo.codec import collection
from coffeeshop.sources.mongo.connection import MongoConnection
from coffeeshop.sources.mongo.errors import (
    MongoRetrying,
    Stopped,
)
from coffeeshop.sources.mongo.history import (
    check,
    check_post_images,
    hello_of,
    stamped,
    verify,
    with_identity,
)
from coffeeshop.sources.mongo.poll import Poller
from coffeeshop.sources.mongo.position import decoded, poll_position, position
from coffeeshop.sources.mongo.snapshot import read_snapshot
from coffeeshop.sources.mongo.stream import ChangeStream

if TYPE_CHECKING:
    from coffeeshop.sources.mongo_partitions import CollectionPlan, MongoPart
    from coffeeshop.sources.partitions import RangeOutput

log = logging.getLogger("coffeeshop.mongo")


class MongoSource(MongoConnection):
    """The `Source` of a MongoDB collection: a snapshot, then its change stream (or polls)."""

    _state: dict[str, Any] | None = None  # the checkpoint `open` parsed (None: a new read)

    @property
    def spec(self) -> str:
        return self.uri

    @property
    def repair_args(self) -> str:
        """The options that name this source on a command line, every credential masked
        (`coffeeshop.redact`: the password and secret options such as
        `tlsCertificateKeyFilePassword`)."""
        args = f"--source {shlex.quote(mask_url(self.uri))}"
        if self.database != "coffeeshop":
            args += f" --database {shlex.quote(self.database)}"
        if self.collection != "receipt":
            args += f" --collection {shlex.quote(self.collection)}"
        return args

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

    def describe_position(self, position: str) -> str:
        """How a run goes on from a checkpoint, in words (for the "resuming" line)."""
        mode = json.loads(position).get("mode")
        if mode == "stream":
            return "by streaming changes after the checkpoint's resume token"
        if mode == "snapshot":
            return "by continuing the snapshot after its last _id, then streaming changes"
        return "by polling (a standalone server)"

    # -- partitioned reading -------------------------------------------------------------------

    def start_position(self) -> str:
        """Where the change stream of a read of the whole collection that starts now goes on
        from: its start point, taken now, before the collection is read (as the snapshot's).
        A read in partitions commits it, so the stream continues without a gap; a standalone
        server (no change stream) is refused: its poll positions follow one reader's reads."""
        stop = threading.Event()
        self._client = self._connect(False, stop)
        try:
            current = self._check_partitionable(stop)
            coll = collection(self._client, self.database, self.collection)
            start = position("stream", resume=self._start_token(coll, False, stop))
            return with_identity(start, current)
        finally:
            self.close()

    def check_partitionable(self, stop: StopSignal) -> None:
        """Refuse, before a Prefect server or a Dask cluster start, a server that cannot be
        read in partitions (unreachable, standalone, no such namespace)."""
        self._client = self._connect(False, stop)
        try:
            self._check_partitionable(stop)
        finally:
            self.close()

    def _check_partitionable(self, stop: StopSignal) -> dict[str, str]:
        """A replica set, the namespace there (its history's identity returned), post-images
        when asked for."""
        if not self._supports_streams(False, stop, warn=False):
            raise ConfigError(
                f"{self.name} has no change streams (a standalone server): partitioned "
                "reading needs a replica set; run without --workers/--dask-address/"
                "--backfill-workers"
            )
        current = self._namespace(False, stop)
        if self.full_document == "whenAvailable":
            check_post_images(self._info, self.name, self.collection)
        return current

    def check_reachable(self, stop: StopSignal) -> None:
        """A one-shot run's first step: the server answers (retried, for a bounded time),
        before anything is created in the analysis database."""
        self._client = self._connect(False, stop)
        try:
            self._startup(self._hello, "connect", False, stop)
        except NotImplementedError:  # a test double without server commands
            pass
        finally:
            self.close()

    def plan_partitions(self, parts: int) -> CollectionPlan:
        from coffeeshop.sources.mongo_partitions import plan_partitions

        return plan_partitions(self, parts)

    def read_partition(self, part: MongoPart, buckets: int) -> RangeOutput:
        from coffeeshop.sources.mongo_partitions import read_source_range

        return read_source_range(self, part.id_range, buckets, part.target.history)

    def read_retrying(self, stop: StopSignal) -> MongoRetrying:
        """The retries of a one-shot read (a partition's plan or range): this source's
        errors and backoff, a few times."""
        return self._retrying(False, stop)

    @contextlib.contextmanager
    def collection_handle(self, history: dict[str, str] | None = None) -> Iterator[Any]:
        """The collection, on a client of its own closed afterwards (each partition's reader
        connects by itself: a client never crosses a process). With `history`, it must be
        the collection of that identity (else `SourceHistoryLost`)."""
        client = self._connect(False, threading.Event())
        try:
            if history:
                hello = functools.partial(hello_of, client)
                verify(client, self.database, self.collection, hello, history, self.name)
            yield collection(client, self.database, self.collection)
        finally:
            client.close()

    # -- reading -------------------------------------------------------------------------------

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: StopSignal
    ) -> Iterator[SourceBatch]:
        try:
            yield from self._batches(limits, follow, stop)
        except Stopped:  # stopped while waiting for the server
            return

    def _batches(
        self, limits: BatchLimits, follow: bool, stop: StopSignal
    ) -> Iterator[SourceBatch]:
        self._client = self._connect(follow, stop)
        streaming = self._supports_streams(follow, stop)
        current = self._namespace(follow, stop)
        coll = collection(self._client, self.database, self.collection)
        for batch in self._read(coll, streaming, current, limits, follow, stop):
            yield stamped(batch, current)

    def _read(
        self,
        coll: Any,
        streaming: bool,
        current: dict[str, str],
        limits: BatchLimits,
        follow: bool,
        stop: StopSignal,
    ) -> Iterator[SourceBatch]:
        state = self._starting_state(coll, streaming, follow, stop)
        if self._state is not None:
            check(self.name, self._state.get("history"), current)
        if state["mode"] == "snapshot":
            resume = state["resume"]
            yield from read_snapshot(
                coll,
                self.name,
                resume=resume,
                after=state.get("after"),
                limits=limits,
                stop=stop,
                retrying=self._retrying(follow, stop),
            )
            state = {"mode": "stream", "resume": resume}
            if stop.is_set():
                return
        if state["mode"] == "stream":
            stream = ChangeStream(
                coll,
                self.name,
                full_document=self.full_document,
                limits=limits,
                follow=follow,
                stop=stop,
                retrying=self._retrying(follow, stop),
                verify=lambda: verify(
                    self._client, self.database, self.collection, self._hello, current, self.name
                ),
            )
            log.info("%s: streaming changes", self.name)
            yield from stream.batches(state["resume"])
        else:
            poller = self._poller(coll, state, self._retrying(follow, stop))
            for events in poller.cycles(limits, follow, stop):
                yield SourceBatch(events, poll_position(poller.marks, poller.swept))

    def _starting_state(
        self, coll: Any, streaming: bool, follow: bool, stop: StopSignal
    ) -> dict[str, Any]:
        """Where this run starts: the checkpoint's position, or (none) a new snapshot's
        (the stream's start point taken first) or a new poll's."""
        state = decoded(self._state)
        if streaming and self.full_document == "whenAvailable":
            check_post_images(self._info, self.name, self.collection)
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
        return state

    def _poller(self, coll: Any, state: dict[str, Any], retrying: MongoRetrying) -> Poller:
        """Polls from a poll position's marks (a standalone server: no change streams)."""
        return Poller(
            coll,
            self.name,
            marks=state["marks"],
            swept=state["swept"],
            window=self.poll_window,
            sweep_every=self.sweep_every,
            retry=retrying,
        )
