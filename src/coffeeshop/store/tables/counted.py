"""The maintenance of a counted table (`core/groups.py`), generated from its `Group`: a batch's
sums are added to the rows of their keys (an update or a delete arrives as negative sums, so it
is subtracted exactly), and the rows whose count fell to zero go. Its descriptor (`TableRows`)
serves reconcile, repair and the CLI like every other table's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, delete, tuple_
from sqlalchemy.engine import Connection

from coffeeshop.core.groups import Group
from coffeeshop.core.plan import Delta
from coffeeshop.store.codec import CHUNK, chunks
from coffeeshop.store.row_format import RowFormat
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import TableRows


class CountedTable:
    """One counted table's maintenance (a `PublicTable`: applied with the others, in the
    batch's transaction) and descriptor."""

    def __init__(self, group: Group, table: Table) -> None:
        self.group = group
        self.table = table
        self.field = group.name
        # Its rows as each database takes them, compiled once (a date is sent as ISO text:
        # every database reads it).
        self.format = RowFormat(table, group.key, group.values)
        self.keys = RowFormat(table, group.key, ())  # the key columns alone, encoded alike
        self.rows: tuple[TableRows, ...] = (
            TableRows(table, group.name, group.key, group.values, public=False),
        )

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        self.add(conn, stmts, delta.groups.sums.get(self.group.name, {}))

    def add(
        self, conn: Connection, stmts: Statements, sums: dict[tuple[Any, ...], list[int]]
    ) -> None:
        """Add `sums` (key -> values, signed) to the table; rows whose count is zero go."""
        if not sums:
            return
        upsert = stmts.upsert(self.table, self.group.key, add=self.group.values)
        stmts.execute_format(conn, upsert, self.format, sums)
        lowered = [key for key, values in sums.items() if values[0] < 0]
        if not lowered:
            return
        if not stmts.dialect.row_values_by_key:
            self._drop_zero_rows_by_key(conn, stmts, lowered)
            return
        key = self.group.key
        count = self.table.c[self.group.values[0]]
        keys = tuple_(*(self.table.c[name] for name in key)) if len(key) > 1 else None
        for chunk in chunks(lowered, CHUNK // len(key)):
            match = (
                keys.in_(chunk)
                if keys is not None
                else self.table.c[key[0]].in_([k[0] for k in chunk])
            )
            conn.execute(delete(self.table).where(and_(match, count <= 0)))

    def _drop_zero_rows_by_key(
        self, conn: Connection, stmts: Statements, lowered: list[tuple[Any, ...]]
    ) -> None:
        """The rows of `lowered` whose count is zero, deleted one key at a time
        (`executemany`), so each is found by the primary key, on a database that reads
        `(a, b) IN ((…), …)` by scanning the whole table (SQLite: a cost that grew with the
        history, not the batch)."""

        quote = stmts.quote
        where = " AND ".join(f"{quote(name)} = ?" for name in self.group.key)
        count = quote(self.group.values[0])
        sql = f"DELETE FROM {quote(self.table.name)} WHERE {where} AND {count} <= 0"
        conn.exec_driver_sql(sql, self.keys.tuples(dict.fromkeys(lowered, ())))

    def clear(self, conn: Connection) -> None:
        conn.execute(delete(self.table))
