"""Read-only, asynchronous access to the analysis database.

The URL comes from `ASYNC_SQL_DSN`, or is derived from the sync one (`--db`/`SQL_DSN`) by
swapping in the async driver. Every connection is made read-only where the database allows it
(SQLite `query_only` and `mode=rw`, so a missing file is an error and never created;
`SET SESSION TRANSACTION READ ONLY` on MySQL/MariaDB; `default_transaction_read_only` on
PostgreSQL), and each request reads inside one transaction, so the data version and the rows it
reads come from the same snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from coffeeshop.config import Settings
from coffeeshop.errors import ConfigError, StoreError
from coffeeshop.store import normalize_url
from coffeeshop.store.access import refuse_hard_links
from coffeeshop.store.dialects import dialect_named, dialect_of
from coffeeshop.store.url import describe_error

log = logging.getLogger("coffeeshop.api")

T = TypeVar("T")


class DatabaseUnavailable(StoreError):
    """The database could not answer a read (unreachable, refused, no schema, too slow)."""


class SchemaMissing(DatabaseUnavailable):
    """The database has no coffeeshop tables (never synced nor upgraded)."""


class _StaleConnection(Exception):
    """A pooled connection turned out dead (the server restarted or closed it)."""


def async_url(settings: Settings) -> URL:
    """The async URL: `ASYNC_SQL_DSN` when set, else the sync URL with the async driver
    (mysql+pymysql -> mysql+asyncmy, sqlite -> sqlite+aiosqlite, postgresql -> +psycopg).
    The original deployment's `mysql+aiomysql://` is served through asyncmy too."""
    if settings.async_db:
        try:
            url = make_url(settings.async_db)
        except (ArgumentError, ValueError):
            raise ConfigError(
                "ASYNC_SQL_DSN is not a database URL "
                "(expected e.g. mysql+asyncmy://user@host:3306/db)"
            ) from None
    else:
        url = normalize_url(settings.db)
    dialect = dialect_of(url)  # one line naming the databases supported, for any other
    url = dialect.async_url(url)
    if not dialect.local_file:
        return url
    refuse_hard_links(url, dialect.display_url(url))
    return dialect.existing_only(url)


def display_url(url: URL) -> str:
    """The URL for logs and /pipeline: password hidden, an SQLite path as it was given."""
    return dialect_named(url.get_backend_name()).display_url(url)


class ReadOnlyDatabase:
    """An async engine that only reads. `start()` creates it (in the app's lifespan)."""

    def __init__(self, url: URL, *, timeout: float = 10.0) -> None:
        self.url = url
        self.dialect = dialect_named(url.get_backend_name())
        self.safe_url = self.dialect.display_url(url)
        self.timeout = timeout
        self._engine: AsyncEngine | None = None
        try:
            url.get_dialect().import_dbapi()
        except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
            raise ConfigError(f"no async driver for {self.safe_url}: {exc}") from None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database is not started (is the app's lifespan running?)")
        return self._engine

    def start(self) -> None:
        if self._engine is not None:
            return
        # No pre-ping and no reset-on-return: each is a round trip per request that misses the
        # cache. A connection that died is found by its first statement: SQLAlchemy then drops
        # the whole pool, and `read` retries once on a fresh connection. Every transaction is
        # ended by `snapshot` itself, so there is nothing to reset.
        kwargs: dict[str, Any] = {
            "pool_size": 5,
            "max_overflow": 10,
            "pool_timeout": self.timeout,
            "pool_recycle": 1800,
            "pool_reset_on_return": None,
        }
        kwargs.update(self.dialect.async_engine_options())
        try:
            engine = create_async_engine(self.url, **kwargs)
        except (ArgumentError, TypeError) as exc:
            raise ConfigError(f"bad database URL {self.safe_url}: {exc}") from None
        self.dialect.configure_api(engine.sync_engine)
        self._engine = engine

    async def stop(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            if self.dialect.async_dispose_grace:
                await asyncio.sleep(self.dialect.async_dispose_grace)

    async def read(self, action: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """`action` inside one snapshot, retried once when the pooled connection was dead."""
        try:
            async with self.snapshot(retryable=True) as conn:
                return await action(conn)
        except _StaleConnection:
            async with self.snapshot() as conn:
                return await action(conn)

    @asynccontextmanager
    async def snapshot(self, *, retryable: bool = False) -> AsyncIterator[AsyncConnection]:
        """One read transaction (one consistent snapshot); database failures and timeouts
        become `DatabaseUnavailable`, with no password in the message."""
        try:
            async with asyncio.timeout(self.timeout):
                async with self.engine.connect() as conn, conn.begin():
                    yield conn
        except DBAPIError as exc:
            if retryable and exc.connection_invalidated:
                raise _StaleConnection from None
            if exc.orig is not None and self.dialect.is_missing_table(exc.orig):
                raise SchemaMissing(describe_error(exc, self.safe_url)) from None
            raise DatabaseUnavailable(describe_error(exc, self.safe_url)) from None
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(describe_error(exc, self.safe_url)) from None
        except (OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise DatabaseUnavailable(f"cannot use database {self.safe_url}: {detail}") from None
