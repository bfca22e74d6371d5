"""`store_peak_hours`: each store's busiest hour, from `cs_store_hour`'s receipt counts
(`core.plan.STORE_HOUR`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection

from coffeeshop.core import plan
from coffeeshop.core.plan import peak_hour
from coffeeshop.store import schema
from coffeeshop.store.codec import chunks
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import FromState, TableRows
from coffeeshop.store.tables.counted import CountedTable

ROWS = TableRows(
    schema.store_peak_hours, "store_peak_hours", ("store_id",), ("peak_hour", "tx_count")
)


class StorePeakHours(FromState):
    field = "store_peak_hours"
    public = ROWS
    state = CountedTable(plan.STORE_HOUR, schema.store_hour)

    def refresh(self, conn: Connection, stmts: Statements, changes: dict[Any, Any]) -> None:
        sh, ph = schema.store_hour, schema.store_peak_hours
        stores = sorted({store_id for store_id, _ in changes})  # keys: (store_id, hour)

        hours: dict[int, dict[int, int]] = {store_id: {} for store_id in stores}
        for chunk in chunks(stores):
            rows = conn.execute(
                select(sh.c.store_id, sh.c.hour, sh.c.receipts).where(
                    and_(sh.c.store_id.in_(chunk), sh.c.receipts > 0)
                )
            )
            for store_id, hour, count in rows:
                hours[store_id][hour] = count
        peaks: list[dict[str, Any]] = []
        empty: list[int] = []
        for store_id, by_hour in hours.items():
            peak = peak_hour(by_hour)
            if peak is None:
                empty.append(store_id)
            else:
                peaks.append({"store_id": store_id, "peak_hour": peak[0], "tx_count": peak[1]})
        if peaks:
            conn.execute(stmts.upsert(ph, ("store_id",), set_=("peak_hour", "tx_count")), peaks)
        for chunk in chunks(empty):
            conn.execute(delete(ph).where(ph.c.store_id.in_(chunk)))
