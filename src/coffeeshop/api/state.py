"""What one running app holds: settings, database, cache, watcher, token check, metrics,
open event streams.

`ApiState.cached` is how a data endpoint answers: from the cache while the data version is
unchanged, else by reading (data version and rows in one snapshot), rendering and storing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from coffeeshop.api import queries
from coffeeshop.api.auth import BearerAuth
from coffeeshop.api.cache import (
    Entry,
    Key,
    ResponseCache,
    VersionTag,
    content_etag,
    make_entry,
)
from coffeeshop.api.database import ReadOnlyDatabase
from coffeeshop.api.events import StreamSlots
from coffeeshop.api.metrics import Metrics
from coffeeshop.api.params import Params
from coffeeshop.api.render import dumps
from coffeeshop.api.settings import ApiSettings
from coffeeshop.api.tables_csv import MEDIA_TYPE as CSV_MEDIA_TYPE
from coffeeshop.api.tables_csv import columns_of, dumps_csv, wants_csv
from coffeeshop.api.watcher import VersionWatcher

Read = Callable[[AsyncConnection], Awaitable[Any]]
P = TypeVar("P", bound=Params)


class ApiState:
    def __init__(self, settings: ApiSettings, database: ReadOnlyDatabase) -> None:
        self.settings = settings
        self.database = database
        self.cache = ResponseCache()
        self.watcher = VersionWatcher(database, self.cache, interval=settings.api_refresh)
        self.auth = BearerAuth(settings.token)
        self.metrics = Metrics()
        self.streams = StreamSlots(settings.api_max_streams)

    async def cached(
        self, request: Request, key: Key, read: Read, *, variant: str = "", alias: bool = True
    ) -> Response:
        """The response for `key`: cached while the data version stands, else read now.

        `variant` tells apart answers that differ at one data version (e.g. by the hour of
        "now"): it goes into the key and the ETag. CSV (`?format=csv` or `Accept: text/csv`)
        is a variant of its own. `alias=False` keeps the raw request out of the fast path,
        for answers that depend on more than the request line."""
        as_csv = wants_csv(request.query_params.get("format"), request.headers.get("accept"))
        if as_csv:
            variant = f"{variant}+csv" if variant else "csv"
            # An Accept header is not part of the request line the fast path looks up.
            alias = alias and request.query_params.get("format") == "csv"
        if variant:
            key = (key, variant)
        columns = columns_of(request.scope["route"].response_model) if as_csv else None
        tag = self.watcher.tag
        entry = self.cache.get(key, tag)
        if entry is None:
            self.metrics.cache_miss.inc()
            entry = await self.cache.get_or_load(
                key, tag, lambda: self._load(read, variant, columns)
            )
        else:
            self.metrics.cache_hit.inc()
        if alias:
            self.cache.alias(request.scope["path"], request.scope["query_string"], key)
        return reply(entry, request)

    async def query(
        self,
        request: Request,
        name: str,
        query: Callable[[AsyncConnection, P], Awaitable[Any]],
        params: P,
    ) -> Response:
        """`query(conn, params)`, cached under `name` and the normalized parameters."""
        return await self.cached(request, (name, params.key()), lambda conn: query(conn, params))

    async def _load(self, read: Read, variant: str = "", columns: list[str] | None = None) -> Entry:
        async def tag_and_rows(conn: AsyncConnection) -> tuple[VersionTag, Any]:
            return await queries.read_tag(conn), await read(conn)

        tag, payload = await self.database.read(tag_and_rows)
        etag = tag.etag if not variant else f'{tag.etag[:-1]}-{variant}"'
        if columns is not None:
            return make_entry(
                dumps_csv(payload, columns),
                etag=etag,
                tag=tag,
                private=self.auth.required,
                media_type=CSV_MEDIA_TYPE,
            )
        return make_entry(dumps(payload), etag=etag, tag=tag, private=self.auth.required)

    def pipeline_status(self) -> dict[str, Any]:
        """The pipeline's state from the watcher's last read (at most one interval old);
        the error of that read when it failed."""
        watcher = self.watcher
        if watcher.error is not None:
            raise type(watcher.error)(str(watcher.error))
        assert watcher.tag is not None and watcher.read_at is not None
        return queries.pipeline_status(
            watcher.tag,
            watcher.sources,
            now=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            checked_at=watcher.read_at,
            database=self.database.safe_url,
        )

    def uncached(self, request: Request, payload: Any) -> Response:
        """A JSON response with a content-derived ETag (for bodies that change with time)."""
        body = dumps(payload)
        entry = make_entry(body, etag=content_etag(body), private=self.auth.required)
        return reply(entry, request)


def reply(entry: Entry, request: Request) -> Response:
    headers = request.headers
    status, raw_headers, body = entry.reply(
        _bytes(headers.get("if-none-match")), _bytes(headers.get("accept-encoding"))
    )
    response = Response(content=body, status_code=status)
    response.raw_headers = list(raw_headers)
    return response


def _bytes(value: str | None) -> bytes | None:
    return value.encode("latin-1", "replace") if value is not None else None
