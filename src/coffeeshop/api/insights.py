"""What the owner's dashboard reads beyond the four tables: daily sales, honest period
comparisons and the quarantine by reason, computed exactly from the engine's own state.

* Daily sales come from `cs_daily` (one row per day, kept by every batch), or, for one store,
  from the current receipts (`cs_receipts`) of that store.
* A comparison puts a period of this week next to **the same part** of last week: week to date
  (Monday up to now) against Monday up to the same weekday and hour a week ago, and today so
  far against the same weekday last week up to the same hour. Receipts carry their hour of day,
  so "up to now" means "up to the end of the current hour" on both sides.
* Money is summed in integer cents and returned as exact two-place decimals; averages are
  rounded half-up, like `receipts_summary`.

The `receipts_summary` table keeps its original meaning; none of this changes it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import Field
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from coffeeshop.api.params import (
    Day,
    Format,
    Limit,
    Offset,
    Params,
    RangeParams,
    StoreId,
    as_date,
)
from coffeeshop.core.receipt_codec import date_of, day_number, decode_lines
from coffeeshop.store import schema

Row = dict[str, Any]
CENT = Decimal("0.01")


DailySalesParams = RangeParams  # a range of days, of all stores or one


class ComparisonParams(Params):
    store_id: StoreId | None = Field(None, description="Only this store.")
    day: Day | None = Field(
        None, description="Compare as of this local date (default: today in COFFEESHOP_TIMEZONE)."
    )
    hour: int | None = Field(
        None,
        ge=0,
        le=23,
        description="... up to the end of this hour (default: the current hour; 23 with a "
        "`day` alone).",
    )
    format: Format = "json"


class ReasonParams(Params):
    by: str = Field(
        "reason",
        pattern="^(reason|field)$",
        description="`reason`: the exact text; `field`: the part before the first colon "
        "(e.g. `Store_ID`, `items[].product_name`), so `got 'store-1'` and `got 'store-2'` "
        "count together.",
    )
    limit: Limit = None
    offset: Offset = 0
    format: Format = "json"


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(CENT)


def average(total: int, count: int, *, cents: bool) -> Decimal:
    if count == 0:
        return Decimal("0.00")
    value = Decimal(total) / Decimal(count)
    if cents:
        value = value.scaleb(-2)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# -- daily sales ---------------------------------------------------------------------------------


async def daily_sales(conn: AsyncConnection, params: DailySalesParams) -> list[Row]:
    """Receipts and sales per day with receipts, oldest first."""
    first, last = as_date(params.day_from), as_date(params.day_to)
    if params.store_id is None:
        d = schema.daily
        query = select(d.c.day, d.c.receipts, d.c.cents).where(d.c.receipts > 0).order_by(d.c.day)
        if first is not None:
            query = query.where(d.c.day >= first)
        if last is not None:
            query = query.where(d.c.day <= last)
    else:
        r = schema.receipts
        query = (
            select(r.c.day, func.count().label("receipts"), func.sum(r.c.cents).label("cents"))
            .where(r.c.store_id == params.store_id)
            .group_by(r.c.day)
            .order_by(r.c.day)
        )
        if first is not None:
            query = query.where(r.c.day >= day_number(first))
        if last is not None:
            query = query.where(r.c.day <= day_number(last))
    if params.limit is not None:
        query = query.limit(params.limit)
    if params.offset:
        query = query.offset(params.offset)
    rows = (await conn.execute(query)).all()
    return [
        {
            "day": day if isinstance(day, dt.date) else date_of(int(day)),
            "receipts": int(receipts),
            "sales": money(int(cents)),
        }
        for day, receipts, cents in rows
    ]


# -- comparisons ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    name: str
    label: str
    first: dt.date
    last: dt.date  # its receipts count in full before this day, up to `until_hour` on it
    until_hour: int


def periods(at: dt.datetime) -> list[Period]:
    """The four periods compared at local time `at`: this week and today so far, and the same
    spans a week earlier."""
    today = at.date()

    def back(day: dt.date, days: int) -> dt.date:  # no error before year 1: an empty span
        return day - dt.timedelta(days=days) if day.toordinal() > days else dt.date.min

    monday = back(today, today.weekday())
    hour = at.hour
    return [
        Period("today", "today so far", today, today, hour),
        Period(
            "same_day_last_week",
            "same weekday last week, same hours",
            back(today, 7),
            back(today, 7),
            hour,
        ),
        Period("week_to_date", "this week so far (Monday to now)", monday, today, hour),
        Period(
            "same_period_last_week",
            "the same days and hours of last week",
            back(monday, 7),
            back(today, 7),
            hour,
        ),
    ]


async def sales_comparison(
    conn: AsyncConnection, at: dt.datetime, store_id: int | None
) -> list[Row]:
    """Receipts, sales, units and averages of each of `periods(at)`, from the current receipts."""
    spans = periods(at)
    r = schema.receipts
    first = min(p.first for p in spans)
    last = max(p.last for p in spans)
    partial = [day_number(p.last) for p in spans]
    query = select(r.c.day, r.c.hour, r.c.cents, r.c.lines).where(
        and_(
            r.c.day >= day_number(first),
            r.c.day <= day_number(last),
            # the last day of each period counts up to the current hour only
            or_(r.c.day.not_in(partial), r.c.hour <= at.hour),
        )
    )
    if store_id is not None:
        query = query.where(r.c.store_id == store_id)
    # Per day: receipts, cents, units (the lines are JSON [[name, quantity], ...]).
    per_day: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    # One result of bounded size: two weeks of receipts.
    for day, _hour, cents, lines in await conn.execute(query):
        acc = per_day[int(day)]
        acc[0] += 1
        acc[1] += int(cents)
        acc[2] += sum(int(quantity) for _name, quantity in decode_lines(lines))
    out = []
    for p in spans:
        receipts = cents = units = 0
        day = p.first
        while day <= p.last:
            totals = per_day.get(day_number(day))
            if totals is not None:
                receipts += totals[0]
                cents += totals[1]
                units += totals[2]
            day += dt.timedelta(days=1)
        out.append(
            {
                "period": p.name,
                "label": p.label,
                "first_day": p.first,
                "last_day": p.last,
                "until_hour": p.until_hour,
                "receipts": receipts,
                "sales": money(cents),
                "units": units,
                "spend_per_rcpt": average(cents, receipts, cents=True),
                "items_per_rcpt": average(units, receipts, cents=False),
            }
        )
    return out


# -- quarantine by reason ------------------------------------------------------------------------


async def quarantine_reasons(conn: AsyncConnection, params: ReasonParams) -> list[Row]:
    """Entries per reason (or per field), most frequent first; with the newest entry's id."""
    q = schema.quarantine
    query = select(
        q.c.reason, func.count().label("entries"), func.max(q.c.id).label("latest_id")
    ).group_by(q.c.reason)
    groups: dict[str, list[int]] = {}
    for reason, entries, latest in (await conn.execute(query)).all():
        name = str(reason)
        if params.by == "field":
            head, sep, _ = name.partition(":")
            # items[0].product_name and items[3].product_name: one field, items[].product_name
            name = re.sub(r"\[\d+\]", "[]", head.strip()) if sep else name
        acc = groups.setdefault(name, [0, 0])
        acc[0] += int(entries)
        acc[1] = max(acc[1], int(latest))
    ordered = sorted(groups.items(), key=lambda item: (-item[1][0], item[0]))
    rows = [
        {"reason": name, "entries": entries, "latest_id": latest}
        for name, (entries, latest) in ordered
    ]
    end = None if params.limit is None else params.offset + params.limit
    return rows[params.offset : end]
