"""`item_performance`: units sold per item name (a name whose total falls to zero goes)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import Delta
from coffeeshop.store import schema
from coffeeshop.store.codec import chunks
from coffeeshop.store.statements import Statements


class ItemPerformance:
    field = "item_performance"

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        changes = delta.items
        if not changes:
            return
        ip = schema.item_performance
        conn.execute(
            stmts.upsert(ip, ("item_name",), add=("total_sold",)),
            [{"item_name": name, "total_sold": n} for name, n in changes.items()],
        )
        lowered = [name for name, n in changes.items() if n < 0]
        for chunk in chunks(lowered):
            conn.execute(delete(ip).where(and_(ip.c.item_name.in_(chunk), ip.c.total_sold <= 0)))

    def read(self, conn: Connection, today: dt.date | None) -> dict[str, int]:
        ip = schema.item_performance
        return {n: v for n, v in conn.execute(select(ip.c.item_name, ip.c.total_sold))}

    def clear(self, conn: Connection) -> None:
        conn.execute(delete(schema.item_performance))
