"""Connection limits uvicorn does not enforce: request-read timeout, head size, connection cap.

uvicorn's HTTP protocols (httptools and h11) arm a timer only after a response
(`timeout_keep_alive`): a client that connects and sends nothing, or half a request head, holds
its connection and file descriptor for ever, and the head itself is buffered whatever its size
(httptools concatenates a header value chunk by chunk, so a huge header stalls the event
loop). `GuardedHttpToolsProtocol` adds, per connection:

* a request timeout: from connecting (or from the end of the previous response) a client has
  `request_timeout` seconds to send a complete request, else the connection is closed (with
  `408` when part of a request had arrived);
* a head limit: a request line plus headers over `max_header_bytes` is answered `431` and the
  connection closed; the parser never sees more than that many bytes of one head;
* a connection cap: with `max_connections` open, a new connection closes the connection that
  has waited longest without a request in progress (idle keep-alive, or still sending its
  head); when every connection is serving a request, the new one gets `503` and is closed.
  The cap stays below the process's open-file limit, so accept() never runs out of
  descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger("coffeeshop.api")

# Descriptors kept free for everything but client sockets: database connections, log files,
# the event loop's own, a worker's metrics files.
RESERVED_FILES = 64
LINGER_SECONDS = 2.0  # after a 431: drop what the client still sends, so it reads the answer


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    request_timeout: float = 10.0
    keep_alive: int = 5
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000

    def effective_max_connections(self) -> int:
        """`max_connections`, lowered to fit the open-file limit of this process."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        room = soft - RESERVED_FILES if soft > 2 * RESERVED_FILES else soft // 2
        return max(1, min(self.max_connections, room))


def _plain(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


TOO_LARGE = _plain(b"431 Request Header Fields Too Large", b"Request header too large.")
TIMED_OUT = _plain(b"408 Request Timeout", b"The request was not sent in time.")
BUSY = _plain(b"503 Service Unavailable", b"Too many connections.")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (`limits` comes from the config:
    pass `functools.partial(GuardedHttpToolsProtocol, limits=...)` as uvicorn's `http`)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits,
        max_connections: int | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.max_connections = max_connections or limits.effective_max_connections()
        self._head_bytes = 0
        self._reading_head = True
        self._lingering = False
        self._request_timer: asyncio.TimerHandle | None = None
        self._waiting_since = time.monotonic()  # since when no request is in progress

    # -- connection life ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_one():
            log.warning("%d connections open: refusing a new one", len(self.connections) - 1)
            transport.write(BUSY)
            transport.close()
            return
        self._arm_request_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_timer()
        super().connection_lost(exc)

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest with no request in progress."""
        oldest: GuardedHttpToolsProtocol | None = None
        for other in self.connections:
            if (
                other is self
                or not isinstance(other, GuardedHttpToolsProtocol)
                or not other._waiting()
                or other.transport.is_closing()
            ):
                continue
            if oldest is None or other._waiting_since < oldest._waiting_since:
                oldest = other
        if oldest is None:
            return False
        oldest.transport.close()
        return True

    def _waiting(self) -> bool:
        """No request in progress: idle, or still sending a request head."""
        return not self.pipeline and (self.cycle is None or self.cycle.response_complete)

    # -- request timeout --------------------------------------------------------------------

    def _arm_request_timer(self) -> None:
        self._cancel_request_timer()
        self._request_timer = self.loop.call_later(
            self.limits.request_timeout, self._request_timed_out
        )

    def _cancel_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes and not self._lingering:
            self.transport.write(TIMED_OUT)
        self.transport.close()

    def on_message_complete(self) -> None:
        self._cancel_request_timer()  # the whole request is in: the rest is up to the app
        self._head_bytes = 0
        self._reading_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._waiting_since = time.monotonic()
            self._arm_request_timer()

    # -- head size --------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        while data and not self.transport.is_closing():
            if not self._reading_head:
                super().data_received(data)
                return
            room = self.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._reject_head()
                return
            if len(data) <= room:  # the usual case: a whole small request
                self._head_bytes += len(data)
                super().data_received(data)
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)

    def _reject_head(self) -> None:
        """Answer 431, then drop what the client still sends for a moment before closing, so
        that it reads the answer instead of a reset."""
        log.warning("a request head over %d bytes: answered 431", self.limits.max_header_bytes)
        self._lingering = True
        self._cancel_request_timer()
        self.transport.write(TOO_LARGE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def protocol_options(limits: ConnectionLimits) -> dict[str, Any]:
    """uvicorn options that install the guarded protocol with `limits`."""
    import functools

    return {
        "http": functools.partial(
            GuardedHttpToolsProtocol,
            limits=limits,
            max_connections=limits.effective_max_connections(),
        ),
        "timeout_keep_alive": limits.keep_alive,
    }
