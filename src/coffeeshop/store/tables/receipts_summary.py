"""`receipts_summary`: one row per day, from the running totals (`cs_totals`) and the
per-day sales (`cs_daily`) of this week and last."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import Delta, SummaryRow, summary_row, week_bounds
from coffeeshop.store import schema
from coffeeshop.store.codec import chunks
from coffeeshop.store.statements import Statements

SUMMARY_COLUMNS = ("spend_per_rcpt", "items_per_rcpt", "this_week_sales", "last_week_sales")


class ReceiptsSummary:
    field = "summary"

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        t = schema.totals
        conn.execute(
            update(t)
            .where(t.c.id == 1)
            .values(
                receipts=t.c.receipts + delta.receipts,
                cents=t.c.cents + delta.cents,
                units=t.c.units + delta.units,
            )
        )
        if delta.daily:
            conn.execute(
                stmts.upsert(schema.daily, ("day",), add=("receipts", "cents")),
                [
                    {"day": d, "receipts": v.receipts, "cents": v.cents}
                    for d, v in delta.daily.items()
                ],
            )
            for chunk in chunks(list(delta.daily)):
                conn.execute(
                    delete(schema.daily).where(
                        and_(schema.daily.c.day.in_(chunk), schema.daily.c.receipts == 0)
                    )
                )

    def write(self, conn: Connection, stmts: Statements, today: dt.date) -> SummaryRow:
        """Write `today`'s row from the running totals (after a batch's delta is applied)."""
        t = schema.totals
        # FOR UPDATE: a batch committing meanwhile waits, so the row is never a batch behind.
        totals = conn.execute(
            select(t.c.receipts, t.c.cents, t.c.units).where(t.c.id == 1).with_for_update()
        ).one()
        first, _, end = week_bounds(today)
        d = schema.daily
        daily = {
            day: cents
            for day, cents in conn.execute(
                select(d.c.day, d.c.cents).where(and_(d.c.day >= first, d.c.day < end))
            )
        }
        row = summary_row(
            today,
            receipts=totals.receipts,
            cents=totals.cents,
            units=totals.units,
            daily_cents=daily,
        )
        conn.execute(
            stmts.upsert(schema.receipts_summary, ("as_of",), set_=SUMMARY_COLUMNS),
            [{"as_of": row.as_of, **{c: getattr(row, c) for c in SUMMARY_COLUMNS}}],
        )
        return row

    def read(self, conn: Connection, today: dt.date | None) -> SummaryRow:
        """The row for `today`, or the latest one (an empty row when there is none)."""
        rs = schema.receipts_summary
        query = select(rs)
        query = query.where(rs.c.as_of == today) if today else query.order_by(rs.c.as_of.desc())
        row = conn.execute(query.limit(1)).first()
        if row is not None:
            return SummaryRow(**row._mapping)
        return summary_row(today or dt.date.today(), receipts=0, cents=0, units=0, daily_cents={})

    def clear(self, conn: Connection) -> None:
        """The running totals and days go; earlier days' rows stay as the snapshots they were."""
        conn.execute(delete(schema.daily))
        conn.execute(update(schema.totals).values(receipts=0, cents=0, units=0))
