"""Shared helpers of the API tests (this module holds no tests): databases filled by the real
sync engine, and an app running its lifespan behind an httpx client."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from conftest import (
    create_mysql_database,
    create_pg_database,
    drop_mysql_database,
    drop_pg_database,
)
from fastapi import FastAPI
from helpers import receipt, write_lines

from coffeeshop.api import ApiSettings, create_app
from coffeeshop.api.state import ApiState
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

# Two syncs on two days, so receipts_summary holds two daily snapshots.
FIRST_DAY = dt.date(2026, 11, 20)
TODAY = dt.date(2026, 11, 25)  # a Wednesday: this week is 23–29 Nov, last week 16–22 Nov

FIRST_LINES: list[Any] = [
    receipt(1, store=1, date="2026-11-16", time="08:00", total="12.50", items=[("Latte", 2)]),
    receipt(2, store=1, date="2026-10-05", time="08:30", total="0.10", items=[("Espresso", 1)]),
    receipt(3, store=2, date="2026-11-17", time="12:00", total="0.20", items=[("Bagel", 3)]),
    receipt(4, store=2, date="2025-12-31", time="13:00", total="7.25", items=[("Crème Brûlée", 1)]),
]
SECOND_LINES: list[Any] = [
    receipt(5, store=3, date="2026-01-15", time="09:10", total="1000000.00", items=[("latte", 4)]),
    receipt(6, store=1, date="2026-11-24", time="08:45", total="3.30", items=[("Tea", 1)]),
    receipt(7, store=1, date="2026-11-23", time="17:05", total="4.40", items=[("Latte", 1)]),
    receipt(8, store=2, total=-1),  # invalid: quarantined
    "this line is not JSON",  # quarantined
]
LINES = FIRST_LINES + SECOND_LINES


def api_paths(tag: str) -> tuple[str, ...]:
    """The app's GET paths of one OpenAPI tag ("tables", "insights", "pipeline", "health"),
    in the app's order: derived from its routes, so a new endpoint is tested without a list
    to extend by hand. Building the app connects to nothing."""
    spec = create_app(ApiSettings(db="sqlite:///never-opened.db")).openapi()
    paths: dict[str, dict[str, Any]] = spec["paths"]
    return tuple(path for path, ops in paths.items() if tag in ops.get("get", {}).get("tags", ()))


# A value for each path parameter of a GET route (`every_get_path`): entry 1 is the first
# quarantined line of `LINES`.
PATH_SAMPLES = {"entry_id": "1"}


def every_get_path() -> tuple[str, ...]:
    """Every GET path the app answers with a whole body (all tags; not the event stream, which
    never ends), path parameters filled from `PATH_SAMPLES`: derived from the routes, so a new
    endpoint is in every test that asks for "every endpoint". A path parameter without a
    sample fails here, naming it."""
    spec = create_app(ApiSettings(db="sqlite:///never-opened.db")).openapi()
    found = []
    for path, ops in spec["paths"].items():
        get = ops.get("get")
        media = {m for r in (get or {}).get("responses", {}).values() for m in r.get("content", {})}
        if get is None or "text/event-stream" in media:
            continue
        for parameter in get.get("parameters", ()):
            if parameter["in"] == "path":
                name = parameter["name"]
                assert name in PATH_SAMPLES, f"{path}: add a sample {name} to PATH_SAMPLES"
                path = path.replace(f"{{{name}}}", PATH_SAMPLES[name])
        found.append(path)
    return tuple(found)


BACKENDS = ("sqlite", "mariadb")

ALL_BACKENDS = ("sqlite", "mariadb", "postgresql")


@contextlib.contextmanager
def empty_database(kind: str, directory: Path) -> Iterator[str]:
    """The URL of a fresh, empty analysis database of `kind`, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'analysis.db'}"
    elif kind == "mariadb":
        url = create_mysql_database()
        try:
            yield url
        finally:
            drop_mysql_database(url)
    else:
        url = create_pg_database()
        try:
            yield url
        finally:
            drop_pg_database(url)


def sync(url: str, source: Path, lines: list[Any], *, today: dt.date = TODAY) -> None:
    """Append `lines` to the JSONL `source` and apply them with the sync engine."""
    write_lines(source, lines)
    with Store(url) as store:
        Syncer(
            store,
            JsonlSource(source),
            limits=BatchLimits(max_events=1000),
            today=lambda: today,
            read_ahead=False,
        ).run()


def fill(url: str, directory: Path) -> Path:
    """The standard data set, synced on two days; returns the source file."""
    source = directory / "receipts.jsonl"
    sync(url, source, FIRST_LINES, today=FIRST_DAY)
    sync(url, source, SECOND_LINES, today=TODAY)
    return source


def settings(url: str, **overrides: Any) -> ApiSettings:
    """API settings for tests: no token, no CORS, a quick watcher; never from the environment."""
    values: dict[str, Any] = {
        "db": url,
        "async_db": "",
        "api_token": None,
        "cors_origins": "",
        "allowed_hosts": "",
        "api_refresh": 0.02,
        **overrides,
    }
    return ApiSettings(**values)


@contextlib.asynccontextmanager
async def running(url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app over `url`, with the app's lifespan running."""
    app = create_app(settings(url, **overrides))
    async with app.router.lifespan_context(app), client_of(app) as client:
        yield client


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost")


def state_of(client: httpx.AsyncClient) -> ApiState:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: Any = transport.app
    state: ApiState = app.state.api
    return state


def exact(response: httpx.Response) -> Any:
    """The JSON body with numbers as exact Decimals (ints stay ints)."""
    return json.loads(response.text, parse_float=Decimal)


async def wait_for(condition: Any, *, timeout: float = 60.0) -> None:
    """Await `condition()` (an async callable) until it is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.02)
