"""`store_monthly`: sales per store and month, from `cs_store_month`'s receipt counts and
cents (`core.plan.STORE_MONTH`; a month whose count falls to zero disappears)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from coffeeshop.core import plan
from coffeeshop.store import schema
from coffeeshop.store.codec import CHUNK, chunks, money
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import FromState, TableRows
from coffeeshop.store.tables.counted import CountedTable

ROWS = TableRows(schema.store_monthly, "store_monthly", ("month", "store_id"), ("sales",))


class StoreMonthly(FromState):
    field = "store_monthly"
    public = ROWS
    state = CountedTable(plan.STORE_MONTH, schema.store_month)

    def refresh(self, conn: Connection, stmts: Statements, changes: dict[Any, Any]) -> None:
        """Each touched month's sales from its state row; a month without one (its count fell
        to zero) has no public row either."""
        sm = schema.store_month
        keep: list[dict[str, Any]] = []
        gone = set(changes)
        for chunk in chunks(list(changes), CHUNK // 2):
            rows = conn.execute(
                select(sm.c.month, sm.c.store_id, sm.c.cents).where(
                    tuple_(sm.c.month, sm.c.store_id).in_(chunk), sm.c.receipts > 0
                )
            )
            for month, store_id, cents in rows:
                keep.append({"month": month, "store_id": store_id, "sales": money(cents)})
                gone.discard((month, store_id))
        if keep:
            conn.execute(
                stmts.upsert(schema.store_monthly, ("month", "store_id"), set_=("sales",)), keep
            )
        ms = schema.store_monthly
        for chunk in chunks(sorted(gone), CHUNK // 2):
            conn.execute(delete(ms).where(tuple_(ms.c.month, ms.c.store_id).in_(chunk)))
