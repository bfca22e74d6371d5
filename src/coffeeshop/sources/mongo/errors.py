"""MongoDB errors: which are worth retrying (and how a retry is logged), which mean the
history is lost; waits that a stop request ends; and one-line descriptions (of an error,
a change, the hosts of a URI)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from coffeeshop.errors import ConfigError, SourceUnavailable
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


def unresolved(exc: BaseException) -> bool:
    """A `mongodb+srv://` name that did not resolve (no such name, no SRV record, no DNS
    server answered): PyMongo raises it as a `ConfigurationError` (at `MongoClient()`, or at
    the first command) whose cause is dnspython's error. Worth retrying like any other
    unreachable server; a malformed srv URI (an IP address, a port, two hosts) has no
    such cause and stays a configuration error."""
    from pymongo.errors import ConfigurationError

    if not isinstance(exc, ConfigurationError):
        return False
    try:
        from dns.exception import DNSException
    except ImportError:  # dnspython missing: PyMongo says so, a configuration error
        return False
    return isinstance(exc.__cause__, DNSException)


def transient(exc: BaseException) -> bool:
    from pymongo.errors import ConnectionFailure, OperationFailure

    if isinstance(exc, ConnectionFailure) or unresolved(exc):
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


# One server's error in a ServerSelectionTimeoutError: "host:port: reason (configured timeouts: …)"
_SERVER_ERROR = re.compile(r"([^\s,]+:\d+): (.+?) \(configured timeouts: [^)]*\)")


def unanswered(text: str) -> str | None:
    """A server-selection timeout in one line, without PyMongo's topology dump: "no server
    answered at 127.0.0.1:1 (connection refused)"; None when `text` is not one."""
    head, sep, _ = text.partition(", Timeout: ")
    if not sep:
        return None
    reasons: dict[str, list[str]] = {}
    for address, reason in _SERVER_ERROR.findall(head):
        reason = re.sub(r"^\[Errno -?\d+\] ", "", reason.strip())
        reasons.setdefault(reason[:1].lower() + reason[1:], []).append(address)
    if not reasons:
        return head[:200]  # "No primary available for writes", "No servers found yet", …
    return "no server answered at " + "; ".join(
        f"{', '.join(sorted(addresses))} ({reason})" for reason, addresses in reasons.items()
    )


def describe(exc: BaseException) -> str:
    """One line naming the error, its code and its message (credentials masked); a server
    selection timeout as the servers that did not answer and why, a name that does not
    resolve as such."""
    from pymongo.errors import ServerSelectionTimeoutError

    if isinstance(exc, ServerSelectionTimeoutError) and (summary := unanswered(str(exc))):
        return mask_text(summary)
    if unresolved(exc):
        return mask_text(f"the name does not resolve (DNS: {str(exc)[:160]})")
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

    def __init__(
        self, name: str, stop: StopSignal, *, retries: int | None, within: float | None = None
    ) -> None:
        attempts = None if retries is None else retries + 1
        policy = RetryPolicy(attempts=attempts, max_delay=MAX_BACKOFF, within=within)
        super().__init__(policy, stop)
        self.name = name

    def retryable(self, exc: BaseException) -> bool:
        return transient(exc)

    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        # Honest timings: the wait, and how long the failed attempt itself took (a server
        # selection waits up to its timeout), so the time between attempts is their sum.
        limit = self.retries
        log.warning(
            "MongoDB error, retrying in %.1f s (attempt %d%s took %.1f s): cannot %s on %s: %s",
            delay,
            self.failures,
            f" of {limit}" if limit is not None else "",
            self.took,
            what,
            self.name,
            describe(exc),
        )

    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        from pymongo.errors import ConfigurationError

        if isinstance(exc, ConfigurationError) and not unresolved(exc):
            return ConfigError(f"cannot use MongoDB source {self.name}: {exc}")
        if exhausted:
            return SourceUnavailable(
                f"cannot {what} on {self.name}: {describe(exc)} (gave up after "
                f"{self.failures - 1} retries, {self.elapsed:.1f} s)"
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
