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
from coffeeshop.store.tables.base import FromState, TableRows

ROWS = TableRows(schema.store_monthly, "store_monthly", ("month", "store_id"), ("sales",))
STATE = TableRows(
    schema.store_month,
    "store_month",
    ("month", "store_id"),
    ("receipts", "cents"),
    public=False,
)


class StoreMonthly(FromState):
    field = "store_monthly"
    public = ROWS
    state = STATE

    def changes(self, delta: Delta) -> dict[Any, Any]:
        return {key: (v.receipts, v.cents) for key, v in delta.store_month.items()}

    def refresh(self, conn: Connection, stmts: Statements, changes: dict[Any, Any]) -> None:
        sm = schema.store_month
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
