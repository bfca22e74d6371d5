"""The one interface behind which each database's differences live.

A `Dialect` answers, for one kind of database, every question the store, the engine and
the API would otherwise answer by comparing dialect names: how its URL is completed, how an
engine is set up, how an upsert is written, which lock keeps writers (and migrations) apart,
which errors are worth retrying, which async driver the API uses and how a session is made
read-only. `coffeeshop.store.dialects` maps SQLAlchemy backend names to instances.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, MetaData, Table, event, func
from sqlalchemy.engine import URL, Connection

from coffeeshop.redact import mask_url


class Dialect(ABC):
    """What differs between databases. Subclasses set the class attributes and override the
    methods their database needs; the defaults are what every server database shares."""

    name: ClassVar[str]  # as in messages
    example: ClassVar[str]  # its URL as a user writes it (the message refusing another database)
    backends: ClassVar[tuple[str, ...]]  # the SQLAlchemy backend names it serves
    aliases: ClassVar[tuple[str, ...]] = ()  # other spellings, read as its first backend name
    async_drivers: ClassVar[tuple[str, ...]] = ()  # drivers the API swaps for `async_driver`
    async_driver: ClassVar[str]  # full drivername of the async engine the API uses
    literal_rows: ClassVar[bool] = False  # multi-row statements of literals (see literal_sql)
    array_rows: ClassVar[bool] = False  # rows by COPY, key lists as arrays (`statements`)
    local_file: ClassVar[bool] = False  # one local file, opened by path (no server)
    file_lock: ClassVar[bool] = False  # the writer lock is a lock on the database file
    # Bulk loads (`store.bulk`): from a file the client sends (LOAD DATA LOCAL INFILE), or
    # rows streamed with COPY … FROM STDIN.
    bulk_file: ClassVar[bool] = False
    bulk_copy: ClassVar[bool] = False
    # Session statements that make a connection read-only (`store.access`, the API).
    read_only_statements: ClassVar[tuple[str, ...]] = ()
    commit_after_session_setup: ClassVar[bool] = False
    decimal_as_text: ClassVar[bool] = False  # no exact decimal type: canonical text instead
    # `(a, b) IN ((…), …)` is found by the primary key (False: the database scans the table for
    # it, so rows are deleted by key one at a time: `CountedTable.add`)
    row_values_by_key: ClassVar[bool] = True

    # Seconds the API's event loop stays alive after its engine is disposed (a driver thread
    # may still have a reply to hand back).
    async_dispose_grace: ClassVar[float] = 0.0

    def normalize(self, url: URL) -> URL:
        """Complete a parsed URL with the driver (and options) this package ships with."""
        return url

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of `create_engine` for a store."""
        return {"pool_pre_ping": True}

    def bulk_connect_args(self) -> dict[str, Any]:
        """Driver arguments of a store that bulk-loads (`Store(bulk_load=True)`); none here."""
        return {}

    def upload_window(
        self, dbapi_connection: Any, path: Path
    ) -> contextlib.AbstractContextManager[None]:
        """Around the one statement that loads the file at `path`: the only time the
        server may ask for a file, and only for that one (see `dialects.local_infile`)."""
        raise TypeError(f"{type(self).__name__} has no bulk load from a file")

    def is_bulk_refused(self, orig: BaseException) -> bool:
        """The driver's error `orig` says the server (or driver) refuses a bulk load."""
        return False

    def configure(self, engine: Engine, *, read_only: bool) -> None:
        """Listeners a store's engine needs (pragmas, how transactions begin); none by default."""
        return None

    def make_read_only(self, engine: Engine) -> None:
        """Every new connection of `engine` runs `read_only_statements` (a read-only store)."""
        on_connect_run(engine, self.read_only_statements, commit=self.commit_after_session_setup)

    # -- schema ----------------------------------------------------------------------------------

    def widen_decimals(
        self, conn: Connection, table: str, columns: tuple[str, ...], precision: int
    ) -> None:
        """Make `columns` of `table` exact decimals of `precision` digits (2 after the point)."""
        q = conn.dialect.identifier_preparer.quote
        changes = ", ".join(self.widen_column(q(c), precision) for c in columns)
        conn.exec_driver_sql(f"ALTER TABLE {q(table)} {changes}")

    def widen_column(self, column: str, precision: int) -> str:
        """The ALTER TABLE clause that makes `column` (quoted) a DECIMAL(`precision`, 2)."""
        return f"ALTER COLUMN {column} TYPE NUMERIC({precision}, 2)"

    def char_length(self, column: Any) -> Any:
        """SQL for the length of a text column in characters (not bytes)."""
        return func.char_length(column)

    def iso_weekday(self, column: Any) -> Any:
        """SQL for a DATE column's ISO weekday, 1 = Monday … 7 = Sunday."""
        return func.extract("isodow", column)

    def check_connect_params(self, driver: str, params: Mapping[str, Any], safe_url: str) -> None:
        """Refuse, with one `ConfigError` line, options `driver` would take but fail on later."""
        return None

    @abstractmethod
    def upsert(
        self, table: Table, keys: tuple[str, ...], add: tuple[str, ...], set_: tuple[str, ...]
    ) -> Any:
        """INSERT … ON CONFLICT/DUPLICATE KEY: `add` columns accumulate, `set_` overwrite."""

    # -- locks -----------------------------------------------------------------------------------

    def try_writer_lock(self, conn: Connection, name: str) -> tuple[bool, int | None]:
        """Try once to take the writer lock `name` on `conn`: (taken, the session's id).
        Only for a server database: one with `file_lock` (SQLite) is locked by `store.lock`
        with `flock` and never gets here, so the base has no lock to take."""
        raise TypeError(
            f"{type(self).__name__} must define try_writer_lock (or set file_lock = True)"
        )

    def holds_writer_lock(self, conn: Connection, name: str, owner: int | None) -> bool:
        """Inside a batch transaction: does the session `owner` still hold the writer lock?"""
        return True

    @contextlib.contextmanager
    def migration_lock(self, engine: Engine, name: str) -> Iterator[None]:
        """Held around schema migrations, so processes starting together take turns."""
        yield

    # -- errors ----------------------------------------------------------------------------------

    def is_transient(self, orig: BaseException) -> bool:
        """The driver's error `orig` is worth retrying (the server may be back, a lock free).
        `store.errors.mapped_errors` asks, where a database error becomes a `StoreError`."""
        return False

    def is_unknown_database(self, orig: BaseException) -> bool:
        """The driver's error `orig` says the server answered but the database named in the
        URL does not exist (a permanent `DatabaseMissing`, never retried)."""
        return False

    def is_missing_table(self, orig: BaseException) -> bool:
        """The driver's error `orig` says a table does not exist."""
        return False

    # -- the API ---------------------------------------------------------------------------------

    def async_url(self, url: URL) -> URL:
        """The URL the API's async engine opens (the sync driver swapped for `async_driver`)."""
        driver = url.get_driver_name() if "+" in url.drivername else ""
        if driver in ("", *self.async_drivers):
            url = url.set(drivername=self.async_driver)
        return url

    def async_engine_options(self) -> dict[str, Any]:
        """Keyword arguments of `create_async_engine` for the API, beside the pool's."""
        return {}

    def configure_api(self, engine: Engine) -> None:
        """Listeners that make the API's async engine (its `sync_engine`) read-only: by
        default `read_only_statements` on each new connection."""
        self.make_read_only(engine)

    def adapt_schema(self, metadata: MetaData) -> None:
        """What this database needs of the tables of `metadata` that the portable schema
        (`store/schema.py`) does not say: a type variant for it, a sequence, a DDL event run
        for it only (`execute_if(dialect=…)`). Called for every known dialect once the schema
        is declared; nothing by default."""
        return None

    def file_path(self, url: URL) -> str | None:
        """The local file of a `local_file` database's URL (None: a server, or in memory)."""
        return None

    def existing_only(self, url: URL) -> URL:
        """`url` opened so that connecting never creates the database (read-only access). A
        server's database is never created by connecting: `url` as it is."""
        return url

    def display_url(self, url: URL) -> str:
        """`url` for logs and the API's /pipeline, with no password (nor secret option)."""
        return mask_url(url)


def on_connect_run(engine: Engine, statements: tuple[str, ...], *, commit: bool = False) -> None:
    """Run `statements` on every new DBAPI connection of `engine` (then commit, if asked)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        if commit:
            dbapi_connection.commit()


def on_conflict_upsert(
    ins: Any, table: Table, keys: tuple[str, ...], add: tuple[str, ...], set_: tuple[str, ...]
) -> Any:
    """`INSERT … ON CONFLICT (keys) DO UPDATE` (SQLite and PostgreSQL spell it alike); `ins`
    is the dialect's own `insert(table)`."""
    return ins.on_conflict_do_update(
        index_elements=list(keys),
        set_={
            **{c: table.c[c] + ins.excluded[c] for c in add},
            **{c: ins.excluded[c] for c in set_},
        },
    )


def advisory_keys(name: str) -> tuple[int, int]:
    """Two non-negative int4 keys derived from all of `name` (the two-key form maps plainly
    onto pg_locks)."""
    digest = hashlib.sha256(name.encode()).digest()
    return (
        int.from_bytes(digest[:4], "big") & 0x7FFFFFFF,
        int.from_bytes(digest[4:8], "big") & 0x7FFFFFFF,
    )
