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
* no request body: the API only takes GET and HEAD, so a request that announces a body
  (`Transfer-Encoding`, or a `Content-Length` other than 0) is answered `413` and closed
  without its body or chunked trailers being read (they would escape the head limit);
* a send timeout: a connection whose response cannot be written (the client reads nothing,
  so the write buffer stays above its high-water mark) and makes no progress for
  `send_timeout` seconds is aborted, its buffered response dropped, whether or not the
  response was complete (a closing connection with an unread response would otherwise stay
  for ever);
* a connection cap: with `max_connections` open, a new connection closes the connection that
  has waited longest without progress: idle (keep-alive, or still sending its head) or
  stalled on writing to a client that does not read. When every connection is serving a
  request and writing, the new one gets `503` and is closed. The cap stays below the
  process's open-file limit, so accept() never runs out of descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import struct
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
# The key of a function in the app's lifespan state that ends its endless responses (the
# event streams of `coffeeshop.api.events`): called when the server begins to stop.
CLOSE_STREAMS = "coffeeshop.close_streams"
LINGER_SECONDS = 2.0  # after a 431: drop what the client still sends, so it reads the answer


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    request_timeout: float = 10.0
    keep_alive: int = 5
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000
    send_timeout: float = 30.0

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
NO_BODY = _plain(
    b"413 Content Too Large", b"This API takes no request body (GET and HEAD requests only)."
)


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
        self._send_timer: asyncio.TimerHandle | None = None
        self._stalled_since: float | None = None  # since when the write buffer is full
        self._earlier: list[Any] = []  # cycles a pipelined request superseded as `self.cycle`

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
        self._cancel_send_timer()
        # uvicorn tells only the newest request of the connection that it is gone: an earlier
        # one still writing (pipelined requests) would write to the closed transport and log
        # a traceback. Tell every one.
        for cycle in self._earlier:
            if not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self._earlier.clear()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is stopping: end the app's event streams too (uvicorn waits for every
        response, and a stream has no end of its own); other responses finish as usual."""
        close_streams = self.app_state.get(CLOSE_STREAMS)
        if close_streams is not None:
            close_streams()
        super().shutdown()

    def _evict_one(self) -> bool:
        """Close the connection that has gone longest without progress: idle, or stalled on
        writing to a client that does not read (aborted: its unread response is dropped)."""
        oldest: GuardedHttpToolsProtocol | None = None
        oldest_since = 0.0
        for other in self.connections:
            if other is self or not isinstance(other, GuardedHttpToolsProtocol):
                continue
            since = other._no_progress_since()
            if since is not None and (oldest is None or since < oldest_since):
                oldest, oldest_since = other, since
        if oldest is None:
            return False
        if oldest._stalled_since is not None:
            oldest._reset()
        else:
            oldest.transport.close()
        return True

    def _no_progress_since(self) -> float | None:
        """Since when this connection is evictable: stalled on writing, or waiting for a
        request (None: it is serving one, or already closing with nothing left to send)."""
        if self._stalled_since is not None:
            return self._stalled_since
        if self._waiting() and not self.transport.is_closing():
            return self._waiting_since
        return None

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
        if self._lingering:
            return
        self._cancel_request_timer()  # the whole request is in: the rest is up to the app
        self._head_bytes = 0
        self._reading_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._waiting_since = time.monotonic()
            self._arm_request_timer()

    # -- send timeout -----------------------------------------------------------------------

    def pause_writing(self) -> None:
        """The write buffer went over its high-water mark: the client is not reading."""
        super().pause_writing()
        self._stalled_since = time.monotonic()
        self._arm_send_timer()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stalled_since = None
        self._cancel_send_timer()

    def _arm_send_timer(self) -> None:
        self._cancel_send_timer()
        self._send_timer = self.loop.call_later(
            self.limits.send_timeout, self._send_timed_out, self.transport.get_write_buffer_size()
        )

    def _cancel_send_timer(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _send_timed_out(self, buffered_then: int) -> None:
        """No resume within `send_timeout`: go on while the buffer shrank (a slow reader),
        abort when nothing at all was written (a client that reads nothing)."""
        self._send_timer = None
        if self._stalled_since is None:
            return
        buffered = self.transport.get_write_buffer_size()
        if buffered < buffered_then:
            self._arm_send_timer()
            return
        log.info(
            "closed a connection whose client read nothing for %g s (%d bytes unsent)",
            self.limits.send_timeout,
            buffered,
        )
        self._reset()

    def _reset(self) -> None:
        """Drop the connection and what it still had to send, in the kernel too: a plain
        close would leave the unread bytes queued (megabytes per client) until the kernel
        gives up on them, so the socket lingers 0 s, which resets the connection."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    # -- request body -----------------------------------------------------------------------

    def on_body(self, body: bytes) -> None:
        if not self._lingering:
            super().on_body(body)

    def _announces_body(self) -> bool:
        for name, value in self.headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and value.strip().strip(b"0")
            ):
                return True
        return False

    # -- head size --------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._lingering:  # a request pipelined behind a refused one: never served
            return
        if self._announces_body():
            # The parser goes on through the rest of the bytes already received (at most one
            # read's worth); on_body and on_message_complete ignore them, and nothing more is
            # read: the body and any chunked trailers are never buffered.
            self._refuse(NO_BODY, "a request with a body: answered 413")
            return
        previous = self.cycle
        super().on_headers_complete()
        if previous is not None and previous is not self.cycle and not previous.response_complete:
            self._earlier = [c for c in self._earlier if not c.response_complete]
            self._earlier.append(previous)

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
        self._refuse(
            TOO_LARGE, f"a request head over {self.limits.max_header_bytes} bytes: answered 431"
        )

    def _refuse(self, answer: bytes, reason: str) -> None:
        """Send `answer`, then drop what the client still sends for a moment before closing,
        so that it reads the answer instead of a reset."""
        log.warning("%s", reason)
        self._lingering = True
        self._cancel_request_timer()
        self.transport.write(answer)
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
