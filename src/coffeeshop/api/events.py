"""The event stream of `GET /events`: the data version pushed as Server-Sent Events.

The stream opens with the current version and sends the new one each time the watcher sees it
move (every subscriber waits on the watcher's one shared event: no database read per stream).
A comment line every `HEARTBEAT` seconds keeps proxies from closing a quiet stream and lets
the server notice a client that went away. The token check, the Host allow-list and the
connection limits apply as to any request; at most `COFFEESHOP_API_MAX_STREAMS` streams are
open per worker (more get `503` with `Retry-After`, and the dashboard polls instead), so
streams never take every connection. A HEAD request gets the headers only.

A stream never ends by itself, and uvicorn waits for every response before it stops: so the
server's shutdown ends the streams (the guarded protocol calls `CLOSE_STREAMS`, a function
the app's lifespan puts in its state), and `serve` stops with dashboards open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable

from coffeeshop.api.cache import VersionTag
from coffeeshop.api.watcher import VersionWatcher

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = 15.0  # seconds between two comment lines on a quiet stream
RETRY_MS = 2000  # how long a browser's EventSource waits before it reconnects
BUSY_RETRY_AFTER = 30  # seconds, with the 503 of a worker whose streams are all taken
STREAM_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


def version_event(tag: VersionTag) -> bytes:
    """One `version` event: its id and data are the data version."""
    data = json.dumps({"data_version": tag.data_version}, separators=(",", ":"))
    return f"event: version\nid: {tag.data_version}\ndata: {data}\n\n".encode()


async def version_stream(
    watcher: VersionWatcher,
    closing: Callable[[], bool] = lambda: False,
    heartbeat: float = HEARTBEAT,
) -> AsyncGenerator[bytes, None]:
    """The stream's bytes: the retry delay and the version now, then each new version, and
    a comment line after `heartbeat` quiet seconds. Runs until the client goes away (the
    response is cancelled) or `closing()` is true when the watcher wakes it."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    seen: VersionTag | None = None
    while True:
        tag = await watcher.moved(seen, heartbeat)
        if closing():
            return
        if tag is None:
            yield b": heartbeat\n\n"
            continue
        seen = tag
        yield version_event(tag)


class StreamSlots:
    """How many event streams this worker has open, against its cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0
        self.closing = False  # the server is stopping: streams end, none start

    def close_all(self, watcher: VersionWatcher) -> None:
        """End every open stream (at its next wake-up, which this causes)."""
        self.closing = True
        watcher.wake()

    def stream(self, watcher: VersionWatcher) -> AsyncIterator[bytes]:
        """A new stream of `watcher`'s versions, counted, that `close_all` ends."""
        return self.hold(version_stream(watcher, lambda: self.closing))

    async def hold(self, stream: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """`stream`, counted as open from its first byte until it ends or is cancelled."""
        self.open += 1
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.open -= 1
