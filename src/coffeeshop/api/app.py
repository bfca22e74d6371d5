"""The application factory: `create_app(settings)` builds a fresh app; the async engine and the
data-version watcher start in its lifespan.

Middleware, outermost first: the Host allow-list (`coffeeshop.api.hosts`), HEAD as GET,
request metrics, CORS (when origins are configured), the cache
fast path, which answers repeated requests before FastAPI routes them, then the security
headers (CSP, no framing; cached responses carry them already). The API docs (/docs, /redoc)
are served from vendored assets.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

from coffeeshop import __version__
from coffeeshop.api import errors
from coffeeshop.api.connections import CLOSE_STREAMS
from coffeeshop.api.database import ReadOnlyDatabase, async_url
from coffeeshop.api.deps import require_token
from coffeeshop.api.fastpath import CacheMiddleware
from coffeeshop.api.head import HeadAsGet
from coffeeshop.api.hosts import HostAllowList, HostCheckMiddleware, allowed_names
from coffeeshop.api.metrics import MetricsMiddleware
from coffeeshop.api.routes import (
    events,
    health,
    insights,
    metrics,
    pipeline,
    quarantine,
    ranges,
    store_hours,
    tables,
)
from coffeeshop.api.security import SecurityHeadersMiddleware
from coffeeshop.api.settings import ApiSettings, as_api_settings, load_api_settings
from coffeeshop.api.state import ApiState
from coffeeshop.config import Settings

log = logging.getLogger("coffeeshop.api")

DESCRIPTION = """\
Read-only access to the four analytics tables that `coffeeshop sync` keeps exact, plus the
quarantine and the pipeline's state.

* Money is an exact decimal written as a JSON number with its digits (`12.50`).
* Every data response has an `ETag` derived from the data version; send it back in
  `If-None-Match` to get `304 Not Modified` until the next commit changes the tables.
* With `COFFEESHOP_API_TOKEN` set, the data endpoints want `Authorization: Bearer <token>`;
  `/health` and `/ready` stay open.
* `/quarantine` shows the first 1,000 characters of each rejected input (`raw`), with its whole
  length (`raw_length`); `/quarantine/{entry_id}/raw` streams one entry's whole text.
* A request must arrive whole within 10 s of connecting (else `408`), its head must be at
  most 64 KiB (else `431`), and it has no body (else `413`); a client that reads nothing of
  its response for 30 s is disconnected. These and the connection cap are set by
  `COFFEESHOP_API_*` variables.
* The API answers to localhost, IP addresses and the names of `COFFEESHOP_API_ALLOWED_HOSTS`;
  any other `Host` gets `400` (against DNS rebinding).
"""


def create_app(
    settings: Settings | None = None, *, freeze_gc: bool = False, bind_host: str | None = None
) -> FastAPI:
    """A new API app over `settings.db` (or `ASYNC_SQL_DSN`); nothing connects until it starts.

    `bind_host`: the address it listens on (`serve --host`), a name the Host check allows.

    `freeze_gc` (for a server process, not a test): after startup, move every object alive
    out of the collector's reach (`gc.freeze`), so a full collection scans only what requests
    allocate instead of stalling requests while it scans the whole heap.
    """
    api_settings = as_api_settings(settings) if settings is not None else load_api_settings()
    state = ApiState(api_settings, ReadOnlyDatabase(async_url(api_settings)))
    app = FastAPI(
        title="Coffeeshop Analytics API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(state, api_settings, freeze_gc=freeze_gc),
        middleware=_middleware(state, api_settings, bind_host),
        docs_url=None,  # served below from vendored assets, not from a CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.api = state
    errors.install(app)
    protected = [Depends(require_token)] if state.auth.required else []
    for router in (
        tables.router,
        store_hours.router,
        ranges.router,
        insights.router,
        insights.settings_router,
        quarantine.router,
        pipeline.router,
        events.router,
        metrics.router,
    ):
        app.include_router(router, dependencies=protected)
    app.include_router(health.router)
    _add_pages(app)
    return app


def _lifespan(
    state: ApiState, api_settings: ApiSettings, *, freeze_gc: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[dict[str, Any]]]:
    """Start the async engine and the data-version watcher with the app; stop them after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        state.database.start()
        log.info(
            "serving %s read-only; data version re-read every %.2f s%s",
            state.database.safe_url,
            api_settings.api_refresh,
            "; bearer token required" if state.auth.required else "",
        )
        await state.watcher.refresh()
        state.watcher.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield {CLOSE_STREAMS: lambda: state.streams.close_all(state.watcher)}
        finally:
            await state.watcher.stop()
            await state.database.stop()

    return lifespan


def _middleware(
    state: ApiState, api_settings: ApiSettings, bind_host: str | None
) -> list[Middleware]:
    """The middleware stack, outermost first (see the module's docstring)."""
    allow_list = HostAllowList(allowed_names(api_settings.allowed_host_list, bind_host))
    middleware = [
        Middleware(HostCheckMiddleware, allow_list=allow_list),
        Middleware(HeadAsGet),
        Middleware(MetricsMiddleware, metrics=state.metrics),
    ]
    if api_settings.cors_origin_list:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=api_settings.cors_origin_list,
                allow_methods=["GET"],
                allow_headers=["Authorization", "If-None-Match"],
                expose_headers=["ETag"],
                max_age=600,
            )
        )
    middleware.append(
        Middleware(
            CacheMiddleware,
            cache=state.cache,
            watcher=state.watcher,
            auth=state.auth,
            metrics=state.metrics,
        )
    )
    middleware.append(Middleware(SecurityHeadersMiddleware))  # cached entries have them built in
    return middleware


def _add_pages(app: FastAPI) -> None:
    """The live dashboard and the API docs, from files shipped with the package."""
    # The live dashboard: the page at "/" (public; it asks for the token when one is set) and
    # its assets, the charting library included, under /dashboard/ (nothing from the internet).
    assets = StaticFiles(packages=[("coffeeshop", "dashboard")])
    app.mount("/dashboard", assets, name="dashboard")
    page = f"{assets.all_directories[0]}/index.html"

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    docs = StaticFiles(packages=[("coffeeshop.api", "static")])
    app.mount("/api-docs", docs, name="api-docs")
    docs_directory = docs.all_directories[0]

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> FileResponse:
        return FileResponse(f"{docs_directory}/docs.html", headers={"Cache-Control": "no-cache"})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> FileResponse:
        return FileResponse(f"{docs_directory}/redoc.html", headers={"Cache-Control": "no-cache"})


BIND_HOST_VARIABLE = "COFFEESHOP_API_BIND_HOST"  # set by `serve` for its worker processes


def create_app_from_env() -> FastAPI:
    """For `uvicorn --factory` and worker processes: settings from the environment only."""
    return create_app(
        load_api_settings(), freeze_gc=True, bind_host=os.environ.get(BIND_HOST_VARIABLE)
    )


__all__ = ["ApiSettings", "create_app", "create_app_from_env"]
