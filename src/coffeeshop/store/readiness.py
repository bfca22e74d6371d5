"""`serve`'s start-up check: the database it will read exists and has the coffeeshop tables.

The API only reads and never creates anything, so a typo in `--db` would otherwise give a
server that answers 503 forever. At start-up:

* a missing SQLite file, an unknown database on the server, or a database without the
  coffeeshop tables is one line and exit 2 — or, with `serve --wait S`, waited for up to S
  seconds (for a first `sync` started at the same time, which creates them);
* a bad option in the URL is one line and exit 2;
* a database that does not answer (down, refused, a wrong password) is logged and the server
  starts anyway: it answers 503 with the reason until the database answers, as it does
  when the database goes away later — except while waiting for the tables, when a failure
  that may pass (`StoreError.transient`: the first sync holds the new SQLite file locked
  while it creates them) is waited out too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from coffeeshop.errors import ConfigError, DatabaseMissing, StoreError
from coffeeshop.store.database import Store
from coffeeshop.store.dialects import dialect_named
from coffeeshop.store.url import normalize_url

log = logging.getLogger("coffeeshop.api")

POLL_SECONDS = 0.5


def sync_url_of(async_url: str) -> URL | None:
    """The URL a sync driver reads `ASYNC_SQL_DSN`'s database with (None: not a URL)."""
    try:
        url = make_url(async_url)
    except (ArgumentError, ValueError):
        return None
    backend = url.get_backend_name()
    try:
        dialect_named(backend)
    except KeyError:
        return None
    # The bare backend name: the dialect picks the sync driver this package ships with.
    return normalize_url(url.set(drivername=backend).render_as_string(hide_password=False))


def check_readable(
    db: str,
    *,
    async_db: str | None = None,
    wait: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Raise `DatabaseMissing` (after `wait` seconds) or `ConfigError` as described above;
    return when the API can start. `async_db`: `ASYNC_SQL_DSN` when the API uses it."""
    url: str | URL = db
    if async_db:
        converted = sync_url_of(async_db)
        if converted is None:
            return  # the API reports its own URL's problem
        url = converted
    deadline = time.monotonic() + wait
    waiting = False
    while True:
        try:
            with Store(url, read_only=True) as store:
                store.require_schema()
            if waiting:
                log.info("the database has its tables now; starting")
            return
        except DatabaseMissing as exc:
            if time.monotonic() >= deadline:
                raise
            if not waiting:
                log.info("%s; waiting up to %.0f s for it (--wait)", exc, wait)
                waiting = True
            sleep(POLL_SECONDS)
        except ConfigError:
            if async_db:
                return  # an option only the async driver knows: the API checks its own URL
            raise
        except StoreError as exc:
            if waiting and exc.transient and time.monotonic() < deadline:
                sleep(POLL_SECONDS)  # the first sync is creating the tables
                continue
            log.warning("%s; starting anyway: the API answers 503 until it can read", exc)
            return
