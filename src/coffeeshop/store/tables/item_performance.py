"""`item_performance`: units sold per item name (`core.plan.ITEMS`; a name whose total falls
to zero goes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete
from sqlalchemy.engine import Connection

from coffeeshop.core import plan
from coffeeshop.core.plan import Delta
from coffeeshop.store import schema
from coffeeshop.store.codec import chunks
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import TableRows


def _largest_first(item: tuple[Any, Any]) -> tuple[int, str]:
    name, total = item
    return -total, name


ROWS = TableRows(
    schema.item_performance,
    "item_performance",
    ("item_name",),
    ("total_sold",),
    order=_largest_first,
)


class ItemPerformance:
    field = "item_performance"
    rows: tuple[TableRows, ...] = (ROWS,)

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        changes = {product: units for (product,), (units,) in delta.sums(plan.ITEMS).items()}
        if not changes:
            return
        ip = schema.item_performance
        ROWS.add(conn, stmts, changes)
        lowered = [name for name, n in changes.items() if n < 0]
        for chunk in chunks(lowered):
            conn.execute(delete(ip).where(and_(ip.c.item_name.in_(chunk), ip.c.total_sold <= 0)))

    def clear(self, conn: Connection) -> None:
        conn.execute(delete(schema.item_performance))
