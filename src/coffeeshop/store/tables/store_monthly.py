"""`store_monthly`: sales per store and month, from `cs_store_month`'s receipt counts and
cents (a month whose count falls to zero disappears)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import Delta
from coffeeshop.store import schema
from coffeeshop.store.codec import CHUNK, chunks, money
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import TableRows

ROWS = TableRows(schema.store_monthly, "store_monthly", ("month", "store_id"), ("sales",))
STATE = TableRows(
    schema.store_month,
    "store_month",
    ("month", "store_id"),
    ("receipts", "cents"),
    public=False,
)


class StoreMonthly:
    field = "store_monthly"
    rows: tuple[TableRows, ...] = (ROWS, STATE)

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        changes = delta.store_month
        if not changes:
            return
        sm = schema.store_month
        STATE.add(conn, stmts, {key: (v.receipts, v.cents) for key, v in changes.items()})
        keep: list[dict[str, Any]] = []
        gone: list[tuple[str, int]] = []
        for chunk in chunks(list(changes), CHUNK // 2):
            rows = conn.execute(
                select(sm.c.month, sm.c.store_id, sm.c.receipts, sm.c.cents).where(
                    tuple_(sm.c.month, sm.c.store_id).in_(chunk)
                )
            )
            for month, store_id, count, cents in rows:
                if count > 0:
                    keep.append({"month": month, "store_id": store_id, "sales": money(cents)})
                else:
                    gone.append((month, store_id))
        if keep:
            conn.execute(
                stmts.upsert(schema.store_monthly, ("month", "store_id"), set_=("sales",)), keep
            )
        for chunk in chunks(gone, CHUNK // 2):
            for table in (sm, schema.store_monthly):
                conn.execute(
                    delete(table).where(tuple_(table.c.month, table.c.store_id).in_(chunk))
                )

    def clear(self, conn: Connection) -> None:
        conn.execute(delete(schema.store_month))
        conn.execute(delete(schema.store_monthly))
