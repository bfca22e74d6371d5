"""SQLite: a file; writers take turns on `flock` and `BEGIN IMMEDIATE`."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Engine, Table, event
from sqlalchemy.engine import Connection

from coffeeshop.store.dialects.base import Dialect, on_conflict_upsert


class SQLite(Dialect):
    name = "SQLite"
    backends = ("sqlite",)
    async_drivers = ("pysqlite",)
    async_driver = "sqlite+aiosqlite"
    local_file = True
    file_lock = True  # flock on the database file, released by the kernel with the process
    read_only_statements: ClassVar[tuple[str, ...]] = ("PRAGMA query_only = ON",)

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

    def is_transient(self, orig: BaseException) -> bool:
        message = str(orig).lower()
        return "database is locked" in message or "database table is locked" in message

    def is_missing_table(self, orig: BaseException) -> bool:
        return str(orig).startswith("no such table")

    # Migrations need no lock of their own: each step runs in a BEGIN IMMEDIATE transaction,
    # and SQLite's DDL is transactional (the base class's `migration_lock` holds nothing).
