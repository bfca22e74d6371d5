"""The one place where a database error becomes this package's: SQLAlchemy's and the
driver's exceptions mapped to `StoreError` (one line, no credential), with whether another
attempt may succeed decided here by the database's dialect, which knows its driver's codes
(MariaDB 1049 unknown database, 2006/2013 connection lost, 1205/1213 lock wait/deadlock;
PostgreSQL 3D000, 08xxx, 40001/40P01; SQLite "database is locked", disk I/O).

Every retry reads that decision (`StoreError.transient`, `errors.is_transient`) and never
looks inside a database error again: the engine's per-batch retries, the Prefect tasks'
`retry_condition_fn`, the Dask tasks. As httpx's `map_exceptions`:

    with mapped_errors(store.dialect, store.describe):
        ...  # any SQLAlchemyError leaves as a StoreError (DatabaseMissing, transient or not)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from coffeeshop.errors import DatabaseMissing, StoreError
from coffeeshop.store.dialects import KNOWN, Dialect

Describe = Callable[[BaseException], str]  # one masked line for a database error

READ_ONLY_HINT = "this command only reads and creates nothing"


def is_transient(exc: BaseException, dialect: Dialect | None = None) -> bool:
    """A database error worth retrying: its connection was invalidated, or `dialect` (the
    store's; None: any known one) classifies the driver's error as transient."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if orig is None:
        return False
    return any(d.is_transient(orig) for d in ((dialect,) if dialect else KNOWN))


def is_unknown_database(exc: BaseException, dialect: Dialect | None = None) -> bool:
    """The server answered, but the database named in the URL does not exist."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return False
    orig = exc.orig
    return any(d.is_unknown_database(orig) for d in ((dialect,) if dialect else KNOWN))


def store_error(
    exc: SQLAlchemyError, dialect: Dialect, describe: Describe, *, read_only: bool = False
) -> StoreError:
    """The `StoreError` for a database error: `DatabaseMissing` for an unknown database
    (never retried), else transient as the dialect says."""
    line = describe(exc)
    if is_unknown_database(exc, dialect):
        return DatabaseMissing(f"{line}; {READ_ONLY_HINT}" if read_only else line)
    return StoreError(line, transient=is_transient(exc, dialect))


@contextlib.contextmanager
def mapped_errors(
    dialect: Dialect, describe: Describe, *, read_only: bool = False
) -> Iterator[None]:
    """Inside: every SQLAlchemy (and driver) error leaves as its `store_error`, the original
    kept as the cause. This package's own errors pass unchanged."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise store_error(exc, dialect, describe, read_only=read_only) from exc


__all__ = ["is_transient", "is_unknown_database", "mapped_errors", "store_error"]
