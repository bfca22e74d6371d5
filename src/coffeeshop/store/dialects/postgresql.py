"""PostgreSQL: session advisory locks keyed by a hash of the lock's full name."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, text
from sqlalchemy.engine import URL, Connection

from coffeeshop.store.dialects.base import Dialect, advisory_keys, on_conflict_upsert


class PostgreSQL(Dialect):
    name = "PostgreSQL"
    backends = ("postgresql",)
    aliases = ("postgres",)  # libpq's and Heroku's spelling
    async_drivers = ("psycopg", "psycopg2", "pg8000")
    async_driver = "postgresql+psycopg"
    read_only_statements: ClassVar[tuple[str, ...]] = (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    )
    commit_after_session_setup = True
    bulk_copy = True  # COPY … FROM STDIN, through psycopg (3)

    def normalize(self, url: URL) -> URL:
        if "+" not in url.drivername:
            url = url.set(drivername="postgresql+psycopg")
        return url

    def upsert(
        self, table: Table, keys: tuple[str, ...], add: tuple[str, ...], set_: tuple[str, ...]
    ) -> Any:
        from sqlalchemy.dialects import postgresql  # imported when first used (import cost)

        return on_conflict_upsert(postgresql.insert(table), table, keys, add, set_)

    def try_writer_lock(self, conn: Connection, name: str) -> tuple[bool, int | None]:
        k1, k2 = advisory_keys(name)
        got = conn.execute(
            text("SELECT pg_try_advisory_lock(:k1, :k2)"), {"k1": k1, "k2": k2}
        ).scalar()
        owner = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        return bool(got), owner

    def holds_writer_lock(self, conn: Connection, name: str, owner: int | None) -> bool:
        k1, k2 = advisory_keys(name)
        row = conn.execute(
            text(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = :pid AND classid = :k1 AND objid = :k2 AND objsubid = 2"
            ),
            {"pid": owner, "k1": k1, "k2": k2},
        ).first()
        return row is not None

    @contextlib.contextmanager
    def migration_lock(self, engine: Engine, name: str) -> Iterator[None]:
        k1, k2 = advisory_keys(name)
        keys = {"k1": k1, "k2": k2}
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k1, :k2)"), keys)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k1, :k2)"), keys)
                conn.commit()

    def is_transient(self, orig: BaseException) -> bool:
        message = str(orig).lower()
        return "server closed the connection" in message or "could not connect" in message

    def is_missing_table(self, orig: BaseException) -> bool:
        return getattr(orig, "sqlstate", None) == "42P01"  # undefined table

    def configure_api(self, engine: Engine) -> None:
        return None  # `async_engine_options` make every transaction read-only at connect

    def async_engine_options(self) -> dict[str, Any]:
        return {
            "isolation_level": "REPEATABLE READ",
            "connect_args": {
                "connect_timeout": 5,
                "options": "-c default_transaction_read_only=on",
            },
        }
