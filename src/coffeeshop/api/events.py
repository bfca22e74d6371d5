"""The event stream of `GET /events`: the data version pushed as Server-Sent Events.

The stream opens with the current version and sends the new one each time the watcher sees it
move (every subscriber waits on the watcher's one shared event: no database read per stream).
An event's data is the body `/pipeline` would give at that moment (the data version, the
totals, per source), from the watcher's last read, so a page shows the new counts without
asking; where that body cannot be had (the database unreadable at the last read) it is the
version alone. A stream sends at most one event every `MIN_GAP` seconds: a change after a
quiet spell goes out at once, changes that follow within the gap go out together at its end,
as the version then current (1,000 receipts/s in 100 commits/s make at most 1/MIN_GAP events
a second per stream, never one per commit).
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

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from coffeeshop.api.cache import VersionTag
from coffeeshop.api.database import DatabaseUnavailable
from coffeeshop.api.render import dumps
from coffeeshop.api.watcher import VersionWatcher

MEDIA_TYPE = "text/event-stream"
HEARTBEAT = 15.0  # seconds between two comment lines on a quiet stream
MIN_GAP = 0.02  # seconds between two events of one stream, at least
RETRY_MS = 2000  # how long a browser's EventSource waits before it reconnects
BUSY_RETRY_AFTER = 30  # seconds, with the 503 of a worker whose streams are all taken
STREAM_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}


Body = Callable[[], dict[str, Any]]  # the event's data (`/pipeline`'s body)


def version_event(tag: VersionTag, body: Body | None = None) -> bytes:
    """One `version` event: its id is the data version; its data `body()` (which carries the
    data version), or the data version alone without it or when it fails."""
    data = b""
    if body is not None:
        try:
            payload = body()
            if payload.get("data_version") == tag.data_version:
                data = dumps(payload)
        except DatabaseUnavailable:
            pass  # the last read failed: the version alone, as the watcher still holds it
    if not data:
        data = json.dumps({"data_version": tag.data_version}, separators=(",", ":")).encode()
    return f"event: version\nid: {tag.data_version}\ndata: ".encode() + data + b"\n\n"


async def version_stream(
    watcher: VersionWatcher,
    closing: Callable[[], bool] = lambda: False,
    heartbeat: float = HEARTBEAT,
    body: Body | None = None,
    gap: float = MIN_GAP,
) -> AsyncGenerator[bytes, None]:
    """The stream's bytes: the retry delay and the version now, then each new version (at
    most one event per `gap` seconds), and a comment line after `heartbeat` quiet seconds.
    Runs until the client goes away (the response is cancelled) or `closing()` is true when
    the watcher wakes it."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    seen: VersionTag | None = None
    sent = -gap
    while True:
        tag = await watcher.moved(seen, heartbeat)
        if closing():
            return
        if tag is None:
            yield b": heartbeat\n\n"
            continue
        wait = sent + gap - time.monotonic()
        if wait > 0:  # the last event went out just now: this one (the latest) at the gap's end
            await asyncio.sleep(wait)
            if closing():
                return
            tag = watcher.tag or tag
        seen, sent = tag, time.monotonic()
        yield version_event(tag, body)


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

    def stream(self, watcher: VersionWatcher, body: Body | None = None) -> AsyncIterator[bytes]:
        """A new stream of `watcher`'s versions (each event's data `body()`), counted, that
        `close_all` ends."""
        return self.hold(version_stream(watcher, lambda: self.closing, body=body))

    async def hold(self, stream: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """`stream`, counted as open from its first byte until it ends or is cancelled."""
        self.open += 1
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.open -= 1
