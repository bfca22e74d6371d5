"""Statements a store sends, compiled once per store: its dialect's upserts, and rows handed
straight to the driver (as multi-row literals where the dialect sends those)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.engine import Connection

from coffeeshop.errors import ConfigError
from coffeeshop.store import literal_sql
from coffeeshop.store.dialects import Dialect


class Statements:
    """The statement caches of one store (one engine, one dialect)."""

    def __init__(self, engine: Engine, dialect: Dialect, safe_url: str) -> None:
        self.engine = engine
        self.dialect = dialect
        self.literal_rows = dialect.literal_rows
        self.safe_url = safe_url
        self._upserts: dict[Any, Any] = {}
        self._compiled: dict[int, Any] = {}
        self._statement_limit: int | None = None  # literal rows: from max_allowed_packet

    def upsert(
        self,
        table: Table,
        keys: tuple[str, ...],
        *,
        add: tuple[str, ...] = (),
        set_: tuple[str, ...] = (),
    ) -> Any:
        """INSERT … ON DUPLICATE KEY / ON CONFLICT: `add` columns accumulate, `set_` overwrite."""
        cache_key = (table.name, keys, add, set_)
        stmt = self._upserts.get(cache_key)
        if stmt is None:
            stmt = self._upserts[cache_key] = self.dialect.upsert(table, keys, add, set_)
        return stmt

    def cached(self, name: str, make: Any) -> Any:
        """A statement built once per store under `name` (`make()` builds it)."""
        stmt = self._upserts.get(name)
        if stmt is None:
            stmt = self._upserts[name] = make()
        return stmt

    def limit(self, conn: Connection) -> int:
        """Bytes of literals per multi-row statement on MySQL/MariaDB, from the server's
        max_allowed_packet (read once): every statement the store sends fits the packet."""
        if self._statement_limit is None:
            packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
            if packet < literal_sql.MIN_PACKET:
                raise ConfigError(
                    f"the server of {self.safe_url} has max_allowed_packet = {packet} bytes; "
                    f"coffeeshop needs at least {literal_sql.MIN_PACKET} (4 MiB): set "
                    "max_allowed_packet = 16M in the server's configuration"
                )
            self._statement_limit = literal_sql.statement_limit(packet)
        return self._statement_limit

    def compile(self, stmt: Any) -> Any:
        """Compile once per statement: a `BulkInsert` for literal-row upserts, else
        (sql, order)."""
        cached = self._compiled.get(id(stmt))
        if cached is None:
            compiled = stmt.compile(dialect=self.engine.dialect)
            if self.literal_rows and "DUPLICATE" in str(compiled):
                cached = literal_sql.BulkInsert(str(compiled), list(compiled.params))
            else:
                order = tuple(compiled.positiontup or ()) if compiled.positional else None
                cached = (str(compiled), order)
            self._compiled[id(stmt)] = cached
        return cached

    def execute_many(self, conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
        """executemany straight to the driver, for rows already in driver types.

        The statement is compiled once by SQLAlchemy for this dialect (so MySQL 8 and
        MariaDB each get their own upsert syntax). On MySQL/MariaDB the rows go as one
        multi-row statement of literals (see `literal_sql`); elsewhere the driver's
        executemany gets them without SQLAlchemy's per-row parameter processing.
        """
        cached = self.compile(stmt)
        if isinstance(cached, literal_sql.BulkInsert):
            cached.execute(conn, rows, limit=self.limit(conn))
            return
        sql, order = cached
        if order is not None:
            conn.exec_driver_sql(sql, [tuple(row[name] for name in order) for row in rows])
        else:
            conn.exec_driver_sql(sql, rows)
