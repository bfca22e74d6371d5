"""PostgreSQL: session advisory locks keyed by a hash of the lock's full name."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, text
from sqlalchemy.engine import URL, Connection

from coffeeshop.store.dialects.base import Dialect, advisory_keys, on_conflict_upsert

# SQLSTATEs worth retrying: class 08 (connection exception), serialization failure and
# deadlock (40001, 40P01), lock not available (55P03), too many connections (53300), and the
# server shutting down or starting (57P01 admin shutdown, 57P02 crash, 57P03 cannot connect now).
TRANSIENT_CLASSES = ("08",)
TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03"})
UNKNOWN_DATABASE = "3D000"  # invalid catalog name
_NO_DATABASE = re.compile(r'FATAL:\s+database ".*" does not exist')
_LOST_CONNECTION = (
    "server closed the connection",
    "could not connect",
    "connection refused",
    "connection timeout expired",
    "consuming input failed",
    "the connection is lost",
)


def _sqlstate(orig: BaseException) -> str | None:
    """The SQLSTATE of a driver error (psycopg 3 and 2: `sqlstate` / `pgcode`)."""
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state if isinstance(state, str) else None


class PostgreSQL(Dialect):
    name = "PostgreSQL"
    example = "postgresql://…"
    backends = ("postgresql",)
    aliases = ("postgres",)  # libpq's and Heroku's spelling
    async_drivers = ("psycopg", "psycopg2", "pg8000")
    async_driver = "postgresql+psycopg"
    read_only_statements: ClassVar[tuple[str, ...]] = (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    )
    commit_after_session_setup = True
    bulk_copy = True  # COPY … FROM STDIN, through psycopg (3)
    array_rows = True  # rows by COPY and INSERT … SELECT, key = ANY(array)

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
        state = _sqlstate(orig)
        if state is not None:
            return state.startswith(TRANSIENT_CLASSES) or state in TRANSIENT_STATES
        # No SQLSTATE: the driver lost or never had a connection (refused, reset, closed).
        message = str(orig).lower()
        return any(words in message for words in _LOST_CONNECTION)

    def is_unknown_database(self, orig: BaseException) -> bool:
        state = _sqlstate(orig)
        if state is not None:
            return state == UNKNOWN_DATABASE
        # At connect, psycopg 3 has no SQLSTATE, only the server's FATAL line (3D000's text).
        return _NO_DATABASE.search(str(orig)) is not None

    def is_missing_table(self, orig: BaseException) -> bool:
        return _sqlstate(orig) == "42P01"  # undefined table

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
