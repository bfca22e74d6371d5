"""Reaching a configured MongoDB collection: the client, `hello`, the namespace and the change
stream's start token, each a start-up call retried with the source's backoff
(`coffeeshop.retry` with `errors.MongoRetrying`): for ever while following, for
`ONE_SHOT_WITHIN` s at most otherwise; a stop request (Ctrl-C) ends a wait or an attempt
within a tenth of a second. `MongoConnection` holds the options of a MongoDB source and these
calls; `source.MongoSource` builds the reading on them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from coffeeshop.errors import CoffeeshopError, ConfigError, SourceUnavailable
from coffeeshop.redact import mask_text
from coffeeshop.retry import StopSignal
from coffeeshop.sources.mongo.errors import (
    RETRIES_ONCE,
    MongoRetrying,
    Stopped,
    hosts,
    interruptible,
    transient,
)
from coffeeshop.sources.mongo.history import hello_of, identity, namespace_info
from coffeeshop.sources.mongo.poll import POLL_WINDOW, SWEEP_EVERY, warn_standalone

log = logging.getLogger("coffeeshop.mongo")

FULL_DOCUMENT_MODES = ("updateLookup", "whenAvailable")
SERVER_SELECTION_MS = 3_000  # one attempt's wait for a server; the retries wait longer
ONE_SHOT_WITHIN = 10.0  # seconds: a run that does not follow gives up starting after this

ClientFactory = Callable[[], Any]


class MongoConnection:
    """A MongoDB source's options, its client (made where it is used: PyMongo clients must not
    cross a fork) and its start-up calls."""

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
        wait_for_collection: bool = False,
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
        self.wait_for_collection = wait_for_collection  # else a missing namespace is refused
        self._client_factory = client_factory or self._default_client
        self._hosts = hosts(uri)
        self._client: Any = None
        self._hello_reply: dict[str, Any] = {}
        self._info: dict[str, Any] = {}  # the collection's listCollections entry

    @property
    def name(self) -> str:
        return f"mongodb:{self._hosts}/{self.database}.{self.collection}"

    def _default_client(self) -> Any:
        from pymongo import MongoClient

        # tz_aware=False: datetimes come back as naive UTC, as the receipt parser expects.
        # Options in the URI win: a default is only given where the URI has none.
        options: dict[str, Any] = {"appname": "coffeeshop"}
        if "serverselectiontimeoutms" not in self.uri.lower():
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_MS
        return MongoClient(self.uri, **options)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- start-up ------------------------------------------------------------------------------

    def _connect(self, follow: bool, stop: StopSignal) -> Any:
        """A client; a `mongodb+srv://` name that does not resolve yet is retried like an
        unreachable server, a malformed URI is a configuration error at once."""

        def make() -> Any:
            try:
                return self._client_factory()
            except Exception as exc:  # pymongo.errors.ConfigurationError, InvalidURI, …
                if transient(exc):
                    raise
                raise ConfigError(
                    f"cannot use MongoDB source {self.name}: {mask_text(str(exc))}"
                ) from None

        return self._startup(make, "connect", follow, stop)

    def _supports_streams(self, follow: bool, stop: StopSignal, *, warn: bool = True) -> bool:
        if self.mode != "auto":
            return self.mode == "stream"
        try:
            hello = self._startup(self._hello, "connect", follow, stop)
        except NotImplementedError:  # a test double without server commands: standalone
            hello = {}
        self._hello_reply = hello
        if "setName" in hello or hello.get("msg") == "isdbgrid":
            return True
        if not warn:
            return False
        warn_standalone(self.name, self.poll_window, self.sweep_every)
        return False

    def _hello(self) -> dict[str, Any]:
        return hello_of(self._client)

    def _namespace(self, follow: bool, stop: StopSignal) -> dict[str, str]:
        """The identity of the collection's history; a missing namespace is refused, or
        waited for (`wait_for_collection`)."""
        self._info = namespace_info(
            self._client,
            self.database,
            self.collection,
            name=self.name,
            wait=self.wait_for_collection,
            call=lambda action, what: self._startup(action, what, follow, stop),
            stop=stop,
        )
        return identity(self._info, self._hello_reply)

    def _start_token(self, coll: Any, follow: bool, stop: StopSignal) -> dict[str, Any]:
        """The stream's starting point, taken before the snapshot is read."""

        def take() -> dict[str, Any]:
            with coll.watch(full_document=self.full_document) as stream:
                token = stream.resume_token
            if token is None:
                raise SourceUnavailable(f"{self.name} gave no resume token for a new change stream")
            return dict(token)

        return self._startup(take, "open the change stream", follow, stop)

    # -- failures ------------------------------------------------------------------------------

    def _retrying(
        self, follow: bool, stop: StopSignal, *, within: float | None = None
    ) -> MongoRetrying:
        """The shared backoff: for ever while following (unless `retries` is set), a few
        times otherwise (and, `within`, for at most that many seconds)."""
        retries = self.retries if self.retries is not None else (None if follow else RETRIES_ONCE)
        return MongoRetrying(self.name, stop, retries=retries, within=within)

    def _startup(self, action: Callable[[], Any], what: str, follow: bool, stop: StopSignal) -> Any:
        """A start-up call, retried like the stream (for ever while following); a stop
        request ends it at once, even in the middle of an attempt."""
        if stop.is_set():
            raise Stopped
        within = None if follow else ONE_SHOT_WITHIN
        return self._retrying(follow, stop, within=within).call(
            lambda: interruptible(action, stop),
            what,
            passthrough=(NotImplementedError, CoffeeshopError),
        )
