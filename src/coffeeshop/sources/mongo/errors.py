"""MongoDB errors: which are worth retrying (and how a retry is logged), which mean the
history is lost; waits that a stop request ends; and one-line descriptions (of an error,
a change, the hosts of a URI)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from coffeeshop.errors import SourceUnavailable
from coffeeshop.redact import mask_text
from coffeeshop.retry import Retrying, RetryPolicy, StopSignal

log = logging.getLogger("coffeeshop.mongo")

MAX_BACKOFF = 60.0
RETRIES_ONCE = 5  # retries of a run that does not follow (`--once`, reconcile)

# Server errors that mean the stream cannot resume from its token.
HISTORY_LOST_CODES = frozenset(
    {136, 280, 286}
)  # CappedPositionLost, ChangeStreamFatalError, …HistoryLost


def history_lost(exc: BaseException) -> bool:
    from pymongo.errors import OperationFailure

    return isinstance(exc, OperationFailure) and exc.code in HISTORY_LOST_CODES


def transient(exc: BaseException) -> bool:
    from pymongo.errors import ConnectionFailure, OperationFailure

    if isinstance(exc, ConnectionFailure):
        return True
    if isinstance(exc, OperationFailure):
        labels = getattr(exc, "_error_labels", None) or set()
        return "ResumableChangeStreamError" in labels or exc.code in (
            6,
            43,  # CursorNotFound: a cursor that sat idle, or a node that restarted
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


def describe(exc: BaseException) -> str:
    """One line naming the error, its code and its message (credentials masked)."""
    code = getattr(exc, "code", None)
    text = mask_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}{f' {code}' if code is not None else ''}: {text}"


def hosts(uri: str) -> str:
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


def where(change: Mapping[str, Any]) -> str:
    stamp = change.get("clusterTime")
    if stamp is not None and hasattr(stamp, "time"):
        when = dt.datetime.fromtimestamp(stamp.time, dt.UTC)
        return f"change at {when:%Y-%m-%dT%H:%M:%SZ} #{stamp.inc}"
    return "change"


def change_time(change: Mapping[str, Any]) -> dt.datetime | None:
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


class Stopped(BaseException):
    """Stop was requested while waiting for the server. A BaseException, so that the
    handlers that retry MongoDB errors (`except Exception`) let it through."""


class MongoRetrying(Retrying):
    """The shared retry policy, for MongoDB: connection failures and the server errors
    of `transient` are retried (a stop request during a wait raises `Stopped`)."""

    def __init__(self, name: str, stop: StopSignal, *, retries: int | None) -> None:
        attempts = None if retries is None else retries + 1
        super().__init__(RetryPolicy(attempts=attempts, max_delay=MAX_BACKOFF), stop)
        self.name = name

    def retryable(self, exc: BaseException) -> bool:
        return transient(exc)

    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        limit = self.retries
        log.warning(
            "MongoDB error, retrying in %.1f s (attempt %d%s): cannot %s on %s: %s",
            delay,
            self.failures,
            f" of {limit}" if limit is not None else "",
            what,
            self.name,
            describe(exc),
        )

    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        if exhausted:
            return SourceUnavailable(
                f"cannot {what} on {self.name} after {self.retries} retries: {describe(exc)}"
            )
        return SourceUnavailable(f"cannot {what} on {self.name}: {describe(exc)}")

    def stopped(self, exc: BaseException, what: str) -> BaseException:
        return Stopped()


def interruptible(action: Callable[[], Any], stop: StopSignal) -> Any:
    """Run a call that may block on server selection (up to its timeout) in a helper
    thread, so that a stop request (Ctrl-C) is answered within a tenth of a second."""
    done = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, action()))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, name="coffeeshop-mongo-call", daemon=True).start()
    while not done.wait(0.1):
        if stop.is_set():
            raise Stopped
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def opened(cursor: Any, stop: StopSignal) -> Iterator[Any]:
    """A cursor's documents; its first batch (the `find`, which waits for server selection
    when the server is unreachable) is fetched so that a stop request ends the wait."""
    documents: list[Iterator[Any]] = []

    def first_batch() -> Any:
        documents.append(iter(cursor))
        return next(documents[0], _END)

    first = interruptible(first_batch, stop)
    if first is _END:
        return
    yield first
    yield from documents[0]


_END = object()
