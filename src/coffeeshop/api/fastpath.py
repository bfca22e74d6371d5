"""Answer repeated requests from the cache before routing and validation.

A GET whose exact path and query string already passed validation once, and whose cached
entry has the current data version, is answered here with prebuilt bytes and headers; all
else (and every request failing the token check) goes on to the FastAPI app, which validates,
reads, renders and fills the cache. This is what makes the hot path cheap: no routing,
no parameter parsing, no pydantic, no database.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from coffeeshop.api.auth import BearerAuth
from coffeeshop.api.cache import ResponseCache
from coffeeshop.api.metrics import ROUTE_KEY, Metrics
from coffeeshop.api.watcher import VersionWatcher


class CacheMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: ResponseCache,
        watcher: VersionWatcher,
        auth: BearerAuth,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.cache = cache
        self.watcher = watcher
        self.auth = auth
        self.hit = metrics.cache_hit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        entry = self.cache.lookup(scope["path"], scope["query_string"], self.watcher.tag)
        if entry is None:
            await self.app(scope, receive, send)
            return
        authorization = if_none_match = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"accept-encoding":
                accept_encoding = value
            elif name == b"accept" and b"text/csv" in value.lower():
                await self.app(scope, receive, send)  # CSV by content negotiation: the app
                return
        if not self.auth.accepts(authorization):
            await self.app(scope, receive, send)  # the app answers 401
            return
        status, headers, body = entry.reply(if_none_match, accept_encoding)
        scope[ROUTE_KEY] = scope["path"]
        self.hit.inc()
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
