"""Statements a store sends, compiled once per store: its dialect's upserts, and rows handed
straight to the driver (as multi-row literals where the dialect sends those, by COPY on
PostgreSQL), and statements over a list of keys (`in_keys`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from coffeeshop.errors import ConfigError
from coffeeshop.store import literal_sql
from coffeeshop.store.codec import CHUNK
from coffeeshop.store.dialects import Dialect
from coffeeshop.store.row_format import RowFormat

# INSERT … VALUES (…) [ON CONFLICT …]: the VALUES list ends where the conflict clause starts.
_VALUES = re.compile(r"(?s)\A(\s*INSERT\b.+?)\bVALUES\s*\(.*?\)(\s+ON\s+CONFLICT\b.*|\s*)\Z", re.I)


class CopyInsert:
    """PostgreSQL: a batch's rows `COPY`'d into a temporary table shaped like the target
    (made once per session, emptied after each move), then moved by one `INSERT … SELECT …
    [ON CONFLICT …]` from SQLAlchemy's compiled statement. psycopg writes COPY rows in C:
    its executemany sends a statement per row and dumps each value in Python, arrays escape
    each text in Python. The rows of one call must have distinct keys (`ON CONFLICT DO
    UPDATE` touches a row once per statement): a plan's rows are keyed by a dict."""

    def __init__(self, compiled_sql: str, table: str, columns: Sequence[str], quote: Any) -> None:
        match = _VALUES.match(compiled_sql)
        if match is None:
            raise ValueError(f"not an INSERT … VALUES statement: {compiled_sql[:80]}")
        head, tail = match.groups()
        names = ", ".join(quote(c) for c in columns)
        temp = quote(f"cs_copy_{table}")
        self.create = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} (LIKE {quote(table)}) "
            "ON COMMIT DELETE ROWS"
        )
        self.copy = f"COPY {temp} ({names}) FROM STDIN"
        self.move = f"{head}SELECT {names} FROM {temp}{tail}"
        # Emptied after each move too: one transaction may write rows more than once (a
        # rebuild's snapshot, then its catch-up), and each move takes only its own.
        self.empty = f"TRUNCATE {temp}"
        self.columns = tuple(columns)

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
        """`rows` as tuples in `self.columns` order. A driver error leaves as SQLAlchemy's
        `DBAPIError` (as from `exec_driver_sql`), so it is mapped and retried like any."""
        if rows:
            self._copied(conn, lambda copy: [copy.write_row(row) for row in rows])

    def execute_text(self, conn: Connection, text: str) -> None:
        """Rows already written in COPY's text format (`row_format`), in `self.columns`
        order: psycopg sends the text as it is."""
        if text:
            self._copied(conn, lambda copy: copy.write(text))

    def _copied(self, conn: Connection, write: Callable[[Any], Any]) -> None:
        conn.exec_driver_sql(self.create)
        driver = conn.connection.driver_connection
        assert driver is not None  # a connection inside a transaction is checked out
        try:
            with driver.cursor() as cursor, cursor.copy(self.copy) as copy:
                write(copy)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                self.copy,
                None,
                exc,
                conn.dialect.loaded_dbapi.Error,
                connection_invalidated=bool(driver.closed),
                dialect=conn.dialect,
            ) from exc
        conn.exec_driver_sql(self.move)
        conn.exec_driver_sql(self.empty)


class Statements:
    """The statement caches of one store (one engine, one dialect)."""

    def __init__(self, engine: Engine, dialect: Dialect, safe_url: str) -> None:
        self.engine = engine
        self.dialect = dialect
        self.literal_rows = dialect.literal_rows
        # Rows by COPY (`CopyInsert`), keys as one array (`in_keys`): with psycopg (3).
        self.arrays = dialect.array_rows and engine.dialect.driver == "psycopg"
        self.safe_url = safe_url
        self._upserts: dict[Any, Any] = {}
        self._compiled: dict[int, Any] = {}
        self._statement_limit: int | None = None  # literal rows: from max_allowed_packet
        preparer = engine.dialect.identifier_preparer
        self.quote = preparer.quote
        self._marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._markers: dict[int, str] = {}  # `IN (…)` lists of parameters, by length

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
        """Compile once per statement: a `BulkInsert` for literal-row upserts, an
        `CopyInsert` for inserts on PostgreSQL, else (sql, order)."""
        cached = self._compiled.get(id(stmt))
        if cached is None:
            compiled = stmt.compile(dialect=self.engine.dialect)
            if self.literal_rows and "DUPLICATE" in str(compiled):
                cached = literal_sql.BulkInsert(str(compiled), list(compiled.params))
            elif self.arrays and _VALUES.match(str(compiled)):
                columns = list(compiled.params)
                cached = CopyInsert(str(compiled), stmt.table.name, columns, self.quote)
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
        if isinstance(cached, CopyInsert):
            cached.execute(conn, [tuple(row[name] for name in cached.columns) for row in rows])
            return
        sql, order = cached
        if order is not None:
            conn.exec_driver_sql(sql, [tuple(row[name] for name in order) for row in rows])
        else:
            conn.exec_driver_sql(sql, rows)

    def execute_rows(
        self, conn: Connection, stmt: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
    ) -> None:
        """`execute_many` for rows as tuples in `columns` order (no dict per row): they go to
        the driver as they are where the compiled statement takes them in that order."""
        cached = self.compile(stmt)
        if isinstance(cached, CopyInsert) and cached.columns == columns:
            cached.execute(conn, rows)
            return
        if isinstance(cached, tuple) and cached[1] == columns:
            conn.exec_driver_sql(cached[0], rows)
            return
        self.execute_many(conn, stmt, [dict(zip(columns, row, strict=True)) for row in rows])

    def execute_format(
        self,
        conn: Connection,
        stmt: Any,
        rows: RowFormat,
        data: Mapping[Any, Any],
    ) -> None:
        """`execute_many` for the rows `rows` writes from `data` (key -> values), in the
        form the compiled statement takes: literals, COPY text or tuples."""
        if not data:
            return
        cached = self.compile(stmt)
        if isinstance(cached, literal_sql.BulkInsert) and cached.columns == rows.columns:
            cached.execute_rows(conn, rows.literals(data), limit=self.limit(conn))
        elif isinstance(cached, CopyInsert) and cached.columns == rows.columns:
            cached.execute_text(conn, rows.copy_text(data))
        else:
            self.execute_rows(conn, stmt, rows.columns, rows.tuples(data))

    def in_keys(self, conn: Connection, head: str, keys: Sequence[bytes]) -> Iterator[Any]:
        """The results of `head` (a statement ending in a column, like `DELETE FROM t WHERE
        k`) for the values `keys`: `head = ANY(%b)` with one array on PostgreSQL (sent in
        binary: psycopg escapes each value of a text array in Python), `head IN
        (X'…', …)` as literals on MySQL/MariaDB, else `head IN (?, …)` in chunks of `CHUNK`
        parameters, each statement's text built once per length."""
        if not keys:
            return
        if self.arrays:
            yield conn.exec_driver_sql(f"{head} = ANY(%b)", (list(keys),))
        elif self.literal_rows:
            for values in literal_sql.in_list(keys, limit=self.limit(conn)):
                yield conn.exec_driver_sql(f"{head} IN ({values})")
        else:
            for start in range(0, len(keys), CHUNK):
                chunk = tuple(keys[start : start + CHUNK])
                markers = self._markers.get(len(chunk))
                if markers is None:
                    markers = self._markers[len(chunk)] = ",".join([self._marker] * len(chunk))
                yield conn.exec_driver_sql(f"{head} IN ({markers})", chunk)

    def count_in_keys(self, conn: Connection, head: str, keys: Sequence[bytes]) -> int:
        """`in_keys` for a statement that changes rows: how many it changed."""
        return sum(result.rowcount for result in self.in_keys(conn, head, keys))
