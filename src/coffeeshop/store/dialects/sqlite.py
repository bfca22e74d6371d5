"""SQLite: a file; writers take turns on `flock` and `BEGIN IMMEDIATE`."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, unquote

from sqlalchemy import Engine, Integer, MetaData, Table, cast, event, func
from sqlalchemy.engine import URL, Connection

from coffeeshop.store.dialects.base import Dialect, on_conflict_upsert

# Errors worth retrying: another connection holds the lock past the busy timeout (SQLITE_BUSY,
# SQLITE_LOCKED), or the file system failed a read or write (SQLITE_IOERR: a full or
# unmounted network disk may recover). A missing or corrupt file is not among them.
TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "disk i/o error")


class SQLite(Dialect):
    name = "SQLite"
    example = "sqlite:///FILE"
    backends = ("sqlite",)
    async_drivers = ("pysqlite",)
    async_driver = "sqlite+aiosqlite"
    local_file = True
    file_lock = True  # flock on the database file, released by the kernel with the process
    read_only_statements: ClassVar[tuple[str, ...]] = ("PRAGMA query_only = ON",)
    decimal_as_text = True  # SQLite has no decimal type and would store a binary float
    row_values_by_key = False  # SQLite 3.40 scans the whole table for a row-value IN list

    # A connect cancelled at shutdown leaves aiosqlite's worker thread one reply to hand back:
    # the loop stays alive for it (else "Event loop is closed" there).
    async_dispose_grace = 0.05

    def adapt_schema(self, metadata: MetaData) -> None:
        """A generated key is INTEGER here: only an INTEGER PRIMARY KEY (the rowid) is
        generated."""
        for table in metadata.tables.values():
            column = table.autoincrement_column
            if column is not None:
                column.type = column.type.with_variant(Integer(), *self.backends)

    def file_path(self, url: URL) -> str | None:
        path = url.database
        if not path or path == ":memory:" or "mode=memory" in str(url.query.get("mode", "")):
            return None
        if path.startswith("file:"):
            return unquote(path.removeprefix("file:").split("?", 1)[0]) or None
        return path

    def existing_only(self, url: URL) -> URL:
        """Opened as a URI with `mode=rw`: a missing file is an error, never a new database."""
        path = url.database
        if not path or path == ":memory:" or url.query.get("uri") or path.startswith("file:"):
            return url
        return url.set(database=f"file:{quote(path)}").update_query_dict(
            {"mode": "rw", "uri": "true"}
        )

    def engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": 10.0}}

    def async_engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": 5.0}}

    def configure(self, engine: Engine, *, read_only: bool) -> None:
        """WAL, and BEGIN IMMEDIATE so a writer takes its lock up front (no upgrade
        deadlocks). A read-only store leaves the journal mode alone (setting it writes the
        file)."""

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            if not read_only:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")  # then the engine retries, with backoff
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache (default: 2 MiB)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("coffeeshop_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def upsert(
        self, table: Table, keys: tuple[str, ...], add: tuple[str, ...], set_: tuple[str, ...]
    ) -> Any:
        from sqlalchemy.dialects import sqlite  # imported when first used (import cost)

        return on_conflict_upsert(sqlite.insert(table), table, keys, add, set_)

    def configure_api(self, engine: Engine) -> None:
        """Read-only connections whose transactions the API begins itself (a snapshot)."""

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (a snapshot)
            cursor = dbapi_connection.cursor()
            for statement in ("PRAGMA query_only = ON", "PRAGMA busy_timeout = 5000"):
                cursor.execute(statement)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

    def display_url(self, url: URL) -> str:
        """The path as it was given (a file URL holds no password)."""
        path = unquote((url.database or "").removeprefix("file:"))
        return f"{url.drivername}:///{path}" if path else f"{url.drivername}://"

    def widen_decimals(
        self, conn: Connection, table: str, columns: tuple[str, ...], precision: int
    ) -> None:
        return None  # exact decimals are text here (`decimal_as_text`): nothing to widen

    def char_length(self, column: Any) -> Any:
        return func.length(column)  # length() of text counts characters here

    def iso_weekday(self, column: Any) -> Any:
        # strftime('%w') counts from Sunday = 0 (the date is ISO text here)
        return (cast(func.strftime("%w", column), Integer) + 6) % 7 + 1

    def is_transient(self, orig: BaseException) -> bool:
        message = str(orig).lower()
        return any(words in message for words in TRANSIENT_MESSAGES)

    def is_missing_table(self, orig: BaseException) -> bool:
        return str(orig).startswith("no such table")

    # Migrations need no lock of their own: each step runs in a BEGIN IMMEDIATE transaction,
    # and SQLite's DDL is transactional (the base class's `migration_lock` holds nothing).
