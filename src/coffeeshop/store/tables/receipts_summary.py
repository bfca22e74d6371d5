"""`receipts_summary`: one row per day, from the running totals (`cs_totals`) and the
per-day sales (`cs_daily`) of this week and last.

A row is written on the day it says (`as_of`): today's row is recomputed whenever a batch
changes the totals, and earlier days' rows stay as the snapshots they were. What of them
reconcile can check is in `SummaryRows.compared`. The first day this database wrote a row is
kept in `cs_meta` (`summary_since`): no engine wrote a row dated before it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from coffeeshop.core import plan
from coffeeshop.core.plan import Delta, SummaryRow, summary_row, week_bounds
from coffeeshop.core.recompute import summary_on
from coffeeshop.store import schema
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import Reference, TableRows
from coffeeshop.store.tables.counted import CountedTable

SUMMARY_COLUMNS = ("spend_per_rcpt", "items_per_rcpt", "this_week_sales", "last_week_sales")
SINCE = "summary_since"  # cs_meta: the first day a summary row was written (ISO date)


def _values(row: SummaryRow) -> tuple[Any, ...]:
    return tuple(getattr(row, column) for column in SUMMARY_COLUMNS)


def _empty(today: dt.date) -> SummaryRow:
    return summary_row(today, receipts=0, cents=0, units=0, daily_cents={})


@dataclass(frozen=True, slots=True)
class SummaryRows(TableRows):
    """`receipts_summary`: today's row, and the past rows that can be checked."""

    def read(self, conn: Connection, today: dt.date | None) -> SummaryRow:
        """The row for `today`, or the latest one (an empty row when there is none)."""
        rs = schema.receipts_summary
        query = select(rs)
        query = query.where(rs.c.as_of == today) if today else query.order_by(rs.c.as_of.desc())
        row = conn.execute(query.limit(1)).first()
        if row is not None:
            return SummaryRow(**row._mapping)
        return _empty(today or dt.date.today())

    def compared(
        self, reference: Reference, stored: dict[Any, Any]
    ) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """Today's row (a missing one reads as the empty row) against the recomputation's; a
        row dated after today, or before the first day this database wrote one, against no
        row; a past row dated after `settled_after` (written since the last commit, from the
        state the tables still hold) against the formula over the recomputation for its day.
        Other past rows are not compared: they hold the receipts as they were that day."""
        today, since, settled = reference.today, reference.since, reference.settled_after
        expected: dict[Any, Any] = {today: _values(reference.tables.summary)}
        actual: dict[Any, Any] = {today: _values(_empty(today))}
        for day, value in stored.items():
            if day >= today or (since is not None and day < since):
                actual[day] = value
            elif settled is not None and day > settled:
                actual[day] = value
                expected[day] = _values(summary_on(day, reference.tables))
        return expected, actual


ROWS = SummaryRows(schema.receipts_summary, "summary", ("as_of",), SUMMARY_COLUMNS, kept=True)
TOTALS = TableRows(schema.totals, "totals", ("id",), ("receipts", "cents", "units"), public=False)
DAILY = CountedTable(plan.DAILY, schema.daily)  # this week's and last week's sales


def since(conn: Connection) -> dt.date | None:
    """The first day this database wrote a summary row (None: not recorded yet)."""
    m = schema.meta
    value = conn.execute(select(m.c.value).where(m.c.name == SINCE)).scalar()
    return None if value is None else dt.date.fromisoformat(value)


def _record_since(conn: Connection, today: dt.date) -> None:
    """Keep `summary_since` the earliest day a row was written. The first write after an
    upgrade adopts the rows already there (the earliest of them, if earlier than today)."""
    m, rs = schema.meta, schema.receipts_summary
    held = since(conn)
    if held is not None and held <= today:
        return
    if held is None:
        earliest = conn.execute(select(func.min(rs.c.as_of))).scalar()
        first = min(today, earliest) if earliest is not None else today
        conn.execute(insert(m).values(name=SINCE, value=first.isoformat()))
    else:
        conn.execute(update(m).where(m.c.name == SINCE).values(value=today.isoformat()))


class ReceiptsSummary:
    field = "summary"
    rows: tuple[TableRows, ...] = (ROWS, TOTALS, *DAILY.rows)

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
        DAILY.add(conn, stmts, delta.sums(plan.DAILY))  # a day whose count is zero goes

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
        _record_since(conn, today)
        return row

    def clear(self, conn: Connection) -> None:
        """The running totals and days go; earlier days' rows stay as the snapshots they were."""
        conn.execute(delete(schema.daily))
        conn.execute(update(schema.totals).values(receipts=0, cents=0, units=0))
