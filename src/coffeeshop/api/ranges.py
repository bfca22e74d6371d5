"""The owner's questions over any date and hour range, read from the counted tables
(`core/groups.py`): per store and day (`cs_store_day`), per store, day and hour
(`cs_store_day_hour`), units per product, store, day and hour (`cs_product_hour`), and their
coarser companions: per store, month, weekday and hour, units per product of one store by
month and hour, and of the chain by day or month, with or without the hour. A range is
answered as its whole months from a month table plus its edge days (at most 60) from a day
table, in one query, so an answer sums a few thousand rows however long its range, never the
receipts. Money is summed in integer cents and returned as exact two-place decimals; averages
are rounded half-up. Both ends of a range are included: `hour_from=7&hour_to=10` is
07:00–10:59."""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import Integer, Select, cast, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from coffeeshop.api.insights import average, money
from coffeeshop.api.params import (
    LAST_DAY,
    Day,
    Format,
    Month,
    Params,
    RangeParams,
    StoreId,
    as_date,
)
from coffeeshop.store import schema
from coffeeshop.store.dialects import dialect_named

Row = dict[str, Any]
WEEKS = 8  # /day_check compares a day with the same weekday of this many weeks before

Hour = Annotated[int, Field(ge=0, le=23)]
STORE_DAY = schema.COUNTED["store_day"]
STORE_DAY_HOUR = schema.COUNTED["store_day_hour"]
PRODUCT_HOUR = schema.COUNTED["product_hour"]
STORE_MONTH_WEEKDAY_HOUR = schema.COUNTED["store_month_weekday_hour"]
# Units per product: (of one store?, by hour?) -> (its month table, its day table). One
# store's are by hour either way (a question without hours sums them: a few thousand rows,
# cheaper than a table more per item line for the sync to write).
PRODUCT_TABLES = {
    (True, True): (schema.COUNTED["product_month_hour"], PRODUCT_HOUR),
    (True, False): (schema.COUNTED["product_month_hour"], PRODUCT_HOUR),
    (False, True): (
        schema.COUNTED["chain_product_month_hour"],
        schema.COUNTED["chain_product_day_hour"],
    ),
    (False, False): (schema.COUNTED["chain_product_month"], schema.COUNTED["chain_product_day"]),
}


class HourRangeParams(RangeParams):
    hour_from: Hour | None = Field(None, description="First hour of day (0–23, inclusive).")
    hour_to: Hour | None = Field(None, description="Last hour of day (0–23, inclusive).")


class MonthToDateParams(Params):
    month: Month | None = Field(None, description="The month (default: the current month).")
    store_id: StoreId | None = Field(None, description="Only this store.")
    format: Format = "json"


class DayCheckParams(Params):
    day: Day | None = Field(None, description="The day to check (default: yesterday).")
    store_id: StoreId | None = Field(None, description="Only this store (and its total).")
    format: Format = "json"


def _where(query: Select[Any], table: Any, params: RangeParams) -> Select[Any]:
    first, last = as_date(params.day_from), as_date(params.day_to)
    if first is not None:
        query = query.where(table.c.day >= first)
    if last is not None:
        query = query.where(table.c.day <= last)
    return _store_and_hours(query, table, params)


def _store_and_hours(query: Select[Any], table: Any, params: RangeParams) -> Select[Any]:
    if params.store_id is not None:
        query = query.where(table.c.store_id == params.store_id)
    if isinstance(params, HourRangeParams):
        if params.hour_from is not None:
            query = query.where(table.c.hour >= params.hour_from)
        if params.hour_to is not None:
            query = query.where(table.c.hour <= params.hour_to)
    return query


def split(first: dt.date, last: dt.date) -> tuple[list[str], list[dt.date]]:
    """The whole months (YYYY-MM) of first..last, and its days outside them (at most 60:
    the part of a month at either end)."""
    months: list[str] = []
    edges: list[dt.date] = []
    day = first
    while day <= last:
        end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        if day.day == 1 and end <= last:
            months.append(f"{day.year:04d}-{day.month:02d}")
        else:
            end = min(end, last)
            edges.extend(day + dt.timedelta(days=n) for n in range((end - day).days + 1))
        if end >= LAST_DAY:
            break
        day = end + dt.timedelta(days=1)
    return months, edges


async def _span(
    conn: AsyncConnection, params: RangeParams, table: Any
) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]] | None:
    """(the range, the part of it to read): an end not given is the first or last day
    `table` holds within the store and hours of `params`; the part to read ends at the
    months of those days (a range over the whole calendar reads the months that hold data).
    None: no such day in the range."""
    held = []
    for order in (table.c.day, table.c.day.desc()):
        query = _where(select(table.c.day), table, params).order_by(order).limit(1)
        held.append((await conn.execute(query)).scalar())
    held_first, held_last = held
    if held_first is None or held_last is None:
        return None
    first = as_date(params.day_from) or held_first
    last = as_date(params.day_to) or held_last
    read_first = max(first, held_first.replace(day=1))
    month_end = calendar.monthrange(held_last.year, held_last.month)[1]
    read_last = min(last, held_last.replace(day=month_end))
    if read_first > read_last:
        return None
    return (first, last), (read_first, read_last)


def _months_and_days(
    params: RangeParams,
    span: tuple[dt.date, dt.date],
    month_part: tuple[Any, list[Any]],
    day_part: tuple[Any, list[Any]],
) -> Any:
    """A subquery of the rows of `month_part`'s table (its whole months of `span`) and of
    `day_part`'s (the edge days), each (table, columns), with the store and hours of
    `params`: columns of the same names in both, to be summed."""
    months, edges = split(*span)
    parts = []
    for (table, columns), keys, column in (
        (month_part, months, "month"),
        (day_part, edges, "day"),
    ):
        if keys:
            part = select(*columns).where(table.c[column].in_(keys))
            parts.append(_store_and_hours(part, table, params))
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def _page(query: Select[Any], params: RangeParams) -> Select[Any]:
    if params.limit is not None:
        query = query.limit(params.limit)
    return query.offset(params.offset) if params.offset else query


async def store_daily(conn: AsyncConnection, params: RangeParams) -> list[Row]:
    """Receipts, sales and units per store and day with receipts: by day, then store."""
    t = STORE_DAY
    query: Select[Any] = select(t.c.day, t.c.store_id, t.c.receipts, t.c.cents, t.c.units)
    query = _page(_where(query, t, params).order_by(t.c.day, t.c.store_id), params)
    return [
        {
            "day": day,
            "store_id": store_id,
            "receipts": int(n),
            "sales": money(int(cents)),
            "units": int(units),
        }
        for day, store_id, n, cents, units in await conn.execute(query)
    ]


async def item_sales(conn: AsyncConnection, params: HourRangeParams) -> list[Row]:
    """Units per product over the range, best sellers first (ties by name): whole months
    from a month table, edge days from a day table; of one store or of the chain, the
    chain's by hour only for an hour range (`PRODUCT_TABLES`)."""
    hours = params.hour_from is not None or params.hour_to is not None
    month, fine = PRODUCT_TABLES[(params.store_id is not None, hours)]
    spans = await _span(conn, params, fine)
    if spans is None:
        return []
    rows = _months_and_days(
        params,
        spans[1],
        (month, [month.c.product, month.c.units]),
        (fine, [fine.c.product, fine.c.units]),
    )
    units = func.sum(rows.c.units)
    query = select(rows.c.product, units).group_by(rows.c.product)
    query = _page(query.order_by(units.desc(), rows.c.product), params)
    return [{"product": product, "units": int(n)} for product, n in await conn.execute(query)]


async def store_weekday_hours(conn: AsyncConnection, params: HourRangeParams) -> list[Row]:
    """Receipts per store, ISO weekday and hour over the range, and their average per such
    weekday of the range (a range not given ends at the first or last day with receipts):
    whole months from `cs_store_month_weekday_hour`, edge days from `cs_store_day_hour`."""
    spans = await _span(conn, params, STORE_DAY_HOUR)
    if spans is None:
        return []
    span, read = spans
    month, fine = STORE_MONTH_WEEKDAY_HOUR, STORE_DAY_HOUR
    weekday = dialect_named(conn.dialect.name).iso_weekday(fine.c.day)
    rows = _months_and_days(
        params,
        read,
        (
            month,
            [
                month.c.store_id,
                cast(month.c.weekday, Integer).label("weekday"),
                month.c.hour,
                month.c.receipts,
            ],
        ),
        (
            fine,
            [
                fine.c.store_id,
                cast(weekday, Integer).label("weekday"),
                fine.c.hour,
                fine.c.receipts,
            ],
        ),
    )
    receipts = func.sum(rows.c.receipts)
    keys = (rows.c.store_id, rows.c.weekday, rows.c.hour)
    query = select(*keys, receipts).group_by(*keys).order_by(*keys)
    rows_out = []
    for store_id, day_of_week, hour, n in await conn.execute(_page(query, params)):
        days = weekdays_between(*span, int(day_of_week))
        rows_out.append(
            {
                "store_id": store_id,
                "weekday": int(day_of_week),
                "hour": hour,
                "receipts": int(n),
                "days": days,
                "average_receipts": average(int(n), days, cents=False),
            }
        )
    return rows_out


def weekdays_between(first: dt.date, last: dt.date, weekday: int) -> int:
    """How many days of ISO `weekday` (1 = Monday) lie in first..last, both included."""
    if last < first:
        return 0
    start = first + dt.timedelta(days=(weekday - first.isoweekday()) % 7)
    return 0 if start > last else (last - start).days // 7 + 1


def month_span(month: str, today: dt.date) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    """(first, last, previous first, previous last): the month from its 1st to today (or its
    end), and the same days of the month before (its end, if it is shorter)."""
    year, number = int(month[:4]), int(month[5:])
    first = dt.date(year, number, 1)
    end = dt.date(year, number, calendar.monthrange(year, number)[1])
    last = min(end, today)
    previous_first = (first - dt.timedelta(days=1)).replace(day=1)
    previous_end = first - dt.timedelta(days=1)
    days = max(0, (last - first).days + 1)
    previous_last = min(previous_end, previous_first + dt.timedelta(days=days - 1))
    return first, last, previous_first, previous_last


async def _per_store(
    conn: AsyncConnection, first: dt.date, last: dt.date, store_id: int | None
) -> dict[int, tuple[int, int]]:
    t = STORE_DAY
    query = (
        select(t.c.store_id, func.sum(t.c.receipts), func.sum(t.c.cents))
        .where(t.c.day >= first, t.c.day <= last)
        .group_by(t.c.store_id)
    )
    if store_id is not None:
        query = query.where(t.c.store_id == store_id)
    return {s: (int(n), int(c)) for s, n, c in await conn.execute(query)}


async def store_month_to_date(
    conn: AsyncConnection, params: MonthToDateParams, today: dt.date
) -> list[Row]:
    """Per store: the month so far against the same days of the month before, ranked by the
    change in sales (in percent, largest first; stores without earlier sales last)."""
    month = params.month or today.isoformat()[:7]
    first, last, previous_first, previous_last = month_span(month, today)
    now = await _per_store(conn, first, last, params.store_id) if last >= first else {}
    before = await _per_store(conn, previous_first, previous_last, params.store_id)
    rows = []
    for store_id in sorted(now.keys() | before.keys()):
        receipts, cents = now.get(store_id, (0, 0))
        previous_receipts, previous_cents = before.get(store_id, (0, 0))
        rows.append(
            {
                "store_id": store_id,
                "rank": 0,  # set below, once sorted
                "month": month,
                "day_from": first,
                "day_to": max(first, last),
                "so_far": last < first.replace(day=calendar.monthrange(first.year, first.month)[1]),
                "receipts": receipts,
                "sales": money(cents),
                "previous_day_from": previous_first,
                "previous_day_to": previous_last,
                "previous_receipts": previous_receipts,
                "previous_sales": money(previous_cents),
                "change": money(cents - previous_cents),
                "change_pct": _percent(cents - previous_cents, previous_cents),
            }
        )
    rows.sort(key=_by_change)
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _percent(change: int, base: int) -> Decimal | None:
    if base == 0:
        return None
    return (Decimal(change * 100) / Decimal(base)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _by_change(row: Row) -> tuple[int, Decimal, int]:
    pct = row["change_pct"]
    return (1, Decimal(0), row["store_id"]) if pct is None else (0, -pct, row["store_id"])


async def day_check(conn: AsyncConnection, params: DayCheckParams, today: dt.date) -> list[Row]:
    """Per store, then in total (store_id null): the day's receipts and sales against the same
    weekday of the `WEEKS` weeks before (mean, min, max; a day without receipts counts 0),
    and whether the day falls outside that range."""
    day = as_date(params.day) or today - dt.timedelta(days=1)
    usual = [day - dt.timedelta(weeks=k) for k in range(1, WEEKS + 1)]
    t = STORE_DAY
    query = select(t.c.store_id, t.c.day, t.c.receipts, t.c.cents).where(t.c.day.in_([day, *usual]))
    if params.store_id is not None:
        query = query.where(t.c.store_id == params.store_id)
    by_store: dict[Any, dict[dt.date, tuple[int, int]]] = defaultdict(dict)
    total: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for store_id, when, n, cents in await conn.execute(query):
        by_store[store_id][when] = (int(n), int(cents))
        total[when][0] += int(n)
        total[when][1] += int(cents)
    by_store[None] = {when: (n, c) for when, (n, c) in total.items()}
    stores = sorted(s for s in by_store if s is not None)
    return [_checked(s, day, usual, by_store[s], day >= today) for s in [*stores, None]]


def _checked(
    store_id: int | None,
    day: dt.date,
    usual: list[dt.date],
    values: dict[dt.date, tuple[int, int]],
    so_far: bool,
) -> Row:
    row: Row = {"store_id": store_id, "day": day, "so_far": so_far, "weeks": len(usual)}
    for i, name in enumerate(("receipts", "sales")):
        value = values.get(day, (0, 0))[i]
        before = [values.get(d, (0, 0))[i] for d in usual]
        cents = name == "sales"
        show = money if cents else int
        row[name] = show(value)
        row[f"{name}_mean"] = average(sum(before), len(before), cents=cents)
        row[f"{name}_min"] = show(min(before))
        row[f"{name}_max"] = show(max(before))
        row[f"{name}_outside"] = not min(before) <= value <= max(before)
    return row
