"""How a `Store` connects: checking the URL's driver options up front, and read-only access.

Read-only access (`Store(url, read_only=True)`) is for the commands that only look:
`tables`, `quarantine`, `reconcile` without `--repair`, and the start-up check of `serve`.
It never creates anything: an SQLite file is opened with `mode=rw` (a missing file is an
error, not a new empty database) and no journal-mode change; every connection is made
read-only (`PRAGMA query_only`, `SET SESSION TRANSACTION READ ONLY`, PostgreSQL's
`default_transaction_read_only`); and `require_schema` refuses a database without the
coffeeshop tables instead of creating them.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SAWarning

from coffeeshop.errors import ConfigError, DatabaseMissing
from coffeeshop.redact import mask_text
from coffeeshop.store.dialects import Dialect, dialect_of

# Errors a driver raises for a bad option before it talks to the server (an unknown keyword,
# a value of the wrong type, an unknown character set): configuration, not an outage.
OPTION_ERRORS = (TypeError, ValueError, AttributeError, LookupError)


def refuse_hard_links(url: URL, safe_url: str) -> None:
    """Refuse an SQLite file that has more than one name (hard links). SQLite keeps the
    write-ahead log and its index (`-wal`, `-shm`) next to the name it was opened by, so a
    reader through one name does not see what a writer commits through another (stale
    figures, silently), and two writers through two names can corrupt the file."""
    path = dialect_of(url).file_path(url)
    if path is None:
        return
    try:
        links = os.stat(Path(path).expanduser()).st_nlink
    except OSError:
        return  # missing or unreadable: reported when it is opened
    if links > 1:
        raise ConfigError(
            f"database {safe_url}: the file {path} has {links} names (hard links), and SQLite "
            "keeps its write-ahead log per name, so readers through one name miss what is "
            "written through another; use one name (copy the file instead of linking it)"
        )


def create_checked_engine(
    url: URL, safe_url: str, *, read_only: bool, bulk_load: bool = False
) -> Engine:
    """`create_engine` for a store, with every bad driver option in the URL reported as one
    `ConfigError` line (never a traceback): `?connect_timeout=abc`, `?unknownarg=1`,
    `?charset=bogus`, or an SQLite option the driver would silently ignore. `bulk_load`:
    with the driver arguments the dialect's bulk path needs."""
    dialect = dialect_of(url)
    if dialect.local_file:
        refuse_hard_links(url, safe_url)
    if read_only:
        url = dialect.existing_only(url)
    options = dialect.engine_options()
    if bulk_load and not read_only:
        connect_args = {**options.get("connect_args", {}), **dialect.bulk_connect_args()}
        options = {**options, "connect_args": connect_args}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", SAWarning)  # "query string argument(s) ... ignored"
            engine = create_engine(url, **options)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(f"no driver for {safe_url}: {exc}") from None
    except (SAWarning, ArgumentError, *OPTION_ERRORS) as exc:
        raise bad_option(safe_url, exc) from None
    _check_driver_options(engine, dialect, safe_url)
    if read_only:
        dialect.make_read_only(engine)
    dialect.configure(engine, read_only=read_only)
    return engine


def _check_driver_options(engine: Engine, backend: Dialect, safe_url: str) -> None:
    """Options the driver's `connect()` would refuse with a bare Python exception."""
    dialect = engine.dialect
    try:
        _args, params = dialect.create_connect_args(engine.url)
    except OPTION_ERRORS as exc:
        raise bad_option(safe_url, exc) from None
    dbapi = dialect.loaded_dbapi
    connect = getattr(dbapi, "connect", None)
    try:
        signature = inspect.signature(connect) if connect is not None else None
    except (TypeError, ValueError):  # a built-in without a signature (sqlite3)
        signature = None
    if signature is not None and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    ):
        unknown = sorted(set(params) - set(signature.parameters))
        if unknown:
            raise ConfigError(
                f"unknown option {', '.join(repr(u) for u in unknown)} in the database URL "
                f"{safe_url} (the {dialect.driver} driver does not take it)"
            )
    backend.check_connect_params(dialect.driver, params, safe_url)


def missing_database(url: URL, safe_url: str) -> DatabaseMissing | None:
    """A `DatabaseMissing` error when `url` names an SQLite file that does not exist."""
    path = dialect_of(url).file_path(url)
    if path is None or Path(path).expanduser().exists():
        return None
    return DatabaseMissing(
        f"database {safe_url} does not exist (the file {path} is missing); this command only "
        "reads and creates nothing: check --db / SQL_DSN, or run `coffeeshop sync` first"
    )


def bad_option(safe_url: str, exc: BaseException, *secrets: str) -> ConfigError:
    """One line for an option of the URL that SQLAlchemy or the driver refused."""
    text = str(exc).strip()
    detail = text.splitlines()[0] if text else type(exc).__name__
    return ConfigError(f"bad option in the database URL {safe_url}: {mask_text(detail, *secrets)}")
