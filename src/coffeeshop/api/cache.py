"""Rendered responses kept in memory, tagged with the data version they were read at.

The data version (`cs_state.data_version`) is bumped by every commit that changes the tables,
so a response rendered at version V stays right until the version moves: its ETag is derived
from the version (and the time it changed, so a rebuilt database that counts from zero again
never matches an old tag). An entry is served only while its tag is the current one.

Two maps: `key` (endpoint, normalized parameters) -> `Entry`, and the raw request
(path, query string) -> key, recorded only after the request passed validation. The second
lets a repeated request be answered before routing and validation (see `fastpath`).
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import gzip
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import NamedTuple

from coffeeshop.api.security import SECURITY_HEADERS

API_REVISION = "cs2"  # bump when the JSON of an endpoint changes shape, so old ETags never match
GZIP_MIN_BYTES = 1024
# Bodies are compressed at level 1 (on the event loop): most of level 6's saving on JSON at a
# small fraction of its CPU time.

Headers = list[tuple[bytes, bytes]]
Key = Hashable


class VersionTag(NamedTuple):
    data_version: int
    changed_at: dt.datetime

    @property
    def etag(self) -> str:
        changed = self.changed_at
        if changed.tzinfo is None:  # stored as naive UTC
            changed = changed.replace(tzinfo=dt.UTC)
        return f'W/"{API_REVISION}-{self.data_version}-{int(changed.timestamp()):x}"'


def content_etag(body: bytes) -> str:
    """A weak ETag from the content itself, for responses not tied to the data version."""
    return f'W/"{API_REVISION}-{hashlib.blake2b(body, digest_size=8).hexdigest()}"'


@dataclass(frozen=True, slots=True)
class Entry:
    """One rendered response and the header lists to send it with, built once."""

    tag: VersionTag | None
    body: bytes
    etag: bytes
    ok_headers: Headers
    gzip_body: bytes | None = None
    gzip_headers: Headers = field(default_factory=list)
    not_modified_headers: Headers = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzip_body or b"")

    def reply(
        self, if_none_match: bytes | None, accept_encoding: bytes | None
    ) -> tuple[int, Headers, bytes]:
        """(status, headers, body): 304 when `If-None-Match` matches, gzip when accepted."""
        if if_none_match is not None and etag_matches(if_none_match, self.etag):
            return 304, self.not_modified_headers, b""
        if self.gzip_body is not None and accepts_gzip(accept_encoding):
            return 200, self.gzip_headers, self.gzip_body
        return 200, self.ok_headers, self.body


def make_entry(
    body: bytes,
    *,
    etag: str,
    tag: VersionTag | None = None,
    private: bool = False,
    media_type: str = "application/json",
) -> Entry:
    cache_control = b"private, no-cache" if private else b"no-cache"
    common: Headers = [
        (b"etag", etag.encode("ascii")),
        (b"cache-control", cache_control),
        (b"vary", b"Accept-Encoding"),
        *SECURITY_HEADERS,  # built in: the fast path answers before the middleware that adds them
    ]
    typed: Headers = [(b"content-type", media_type.encode("ascii"))]  # (nosniff: SECURITY_HEADERS)
    squeezed = (
        gzip.compress(body, compresslevel=1, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    )
    return Entry(
        tag=tag,
        body=body,
        etag=etag.encode("ascii"),
        ok_headers=[(b"content-length", str(len(body)).encode()), *typed, *common],
        gzip_body=squeezed,
        gzip_headers=(
            [
                (b"content-length", str(len(squeezed)).encode()),
                (b"content-encoding", b"gzip"),
                *typed,
                *common,
            ]
            if squeezed is not None
            else []
        ),
        not_modified_headers=common,
    )


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag equal once `W/` is dropped."""
    value = if_none_match.strip()
    if value == b"*":
        return True
    opaque = etag.removeprefix(b"W/")
    return any(part.strip().removeprefix(b"W/") == opaque for part in value.split(b","))


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    if not accept_encoding:
        return False
    for item in accept_encoding.lower().split(b","):
        coding, _, params = item.partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            q = params.replace(b" ", b"").removeprefix(b"q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


class ResponseCache:
    """Rendered responses by key, at most `max_entries` and `max_bytes` (least recently used
    go first), with one load at a time per key (concurrent misses wait for it)."""

    def __init__(
        self, *, max_entries: int = 1024, max_bytes: int = 64 << 20, max_aliases: int = 8192
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_aliases = max_aliases
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._aliases: OrderedDict[tuple[str, bytes], Key] = OrderedDict()
        self._loading: dict[Key, asyncio.Future[Entry]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: Key, tag: VersionTag | None) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or tag is None or entry.tag != tag:
            return None
        self._entries.move_to_end(key)
        return entry

    def lookup(self, path: str, query: builtins.bytes, tag: VersionTag | None) -> Entry | None:
        """The current entry for a raw request seen before, else None."""
        key = self._aliases.get((path, query))
        return None if key is None else self.get(key, tag)

    def alias(self, path: str, query: builtins.bytes, key: Key) -> None:
        """Remember that this raw request passed validation and means `key`."""
        raw = (path, query)
        if raw in self._aliases:
            return
        self._aliases[raw] = key
        if len(self._aliases) > self.max_aliases:
            self._aliases.popitem(last=False)

    def put(self, key: Key, entry: Entry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        if entry.size > self.max_bytes:
            return
        self._entries[key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def retain(self, tag: VersionTag) -> None:
        """Drop every entry of another version (they can never be served again)."""
        for key in [k for k, e in self._entries.items() if e.tag != tag]:
            self._bytes -= self._entries.pop(key).size

    async def get_or_load(
        self, key: Key, tag: VersionTag | None, load: Callable[[], Awaitable[Entry]]
    ) -> Entry:
        """The current entry, or the result of `load()` (stored); concurrent callers for one
        key share a single load, which a disconnecting caller does not cancel."""
        entry = self.get(key, tag)
        if entry is not None:
            return entry
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            pending.add_done_callback(_retrieve)
            self._loading[key] = pending
        return await asyncio.shield(pending)

    async def _load(self, key: Key, load: Callable[[], Awaitable[Entry]]) -> Entry:
        try:
            entry = await load()
            self.put(key, entry)
            return entry
        finally:
            del self._loading[key]


def _retrieve(future: asyncio.Future[Entry]) -> None:
    """Mark a failed load's error as seen even when every waiter has gone."""
    if not future.cancelled():
        future.exception()
