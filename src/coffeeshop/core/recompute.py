"""Every table the API reads, computed from scratch over a set of current receipts: the
four public tables and the engine's own state they are kept from (`cs_totals`, `cs_daily`,
`cs_store_month`, `cs_store_hour`, which the API also serves).

Pure and deliberately naive: this is the reference that `reconcile` and the tests
hold the incremental engine to. It computes every formula itself (averages and their
rounding, the weeks, the peak hour) with arithmetic of its own, so a rounding or tie-break
bug in the incremental path cannot hide here. It shares only the receipt parser and the
`SummaryRow` record the two results are compared as.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from coffeeshop.core.plan import SummaryRow
from coffeeshop.core.receipts import Receipt


@dataclass(slots=True)
class Tables:
    """The tables as plain values, comparable with `==`: each a mapping of its key columns
    to its value columns (one column: the value itself; several: a tuple), as the table
    descriptors in `coffeeshop.store.tables` read them. `summary` is `receipts_summary`'s
    row for the day it was computed for."""

    summary: SummaryRow
    store_monthly: dict[tuple[str, int], Decimal] = field(default_factory=dict)
    item_performance: dict[str, int] = field(default_factory=dict)
    store_peak_hours: dict[int, tuple[int, int]] = field(default_factory=dict)
    totals: dict[int, tuple[int, int, int]] = field(default_factory=lambda: {1: (0, 0, 0)})
    daily: dict[dt.date, tuple[int, int]] = field(default_factory=dict)  # (receipts, cents)
    store_month: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    store_hour: dict[tuple[int, int], int] = field(default_factory=dict)
    # (day, store_id) -> (receipts, cents, units)
    store_day: dict[tuple[dt.date, int], tuple[int, int, int]] = field(default_factory=dict)
    # (day, store_id, hour) -> (receipts, cents)
    store_day_hour: dict[tuple[dt.date, int, int], tuple[int, int]] = field(default_factory=dict)
    # (day, store_id, hour, product) -> units
    product_hour: dict[tuple[dt.date, int, int, str], int] = field(default_factory=dict)
    # (month, store_id, ISO weekday, hour) -> receipts
    store_month_weekday_hour: dict[tuple[str, int, int, int], int] = field(default_factory=dict)
    # units per product: of one store by month and hour; of every store (the chain) by day,
    # by day and hour, by month, by month and hour
    product_month_hour: dict[tuple[str, int, int, str], int] = field(default_factory=dict)
    chain_product_day: dict[tuple[dt.date, str], int] = field(default_factory=dict)
    chain_product_day_hour: dict[tuple[dt.date, int, str], int] = field(default_factory=dict)
    chain_product_month: dict[tuple[str, str], int] = field(default_factory=dict)
    chain_product_month_hour: dict[tuple[str, int, str], int] = field(default_factory=dict)


def recompute(receipts: Iterable[Receipt], today: dt.date) -> Tables:
    count = cents = units = 0
    daily: dict[dt.date, list[int]] = {}  # [receipts, cents]
    monthly: dict[tuple[str, int], list[int]] = {}  # [receipts, cents]
    items: dict[str, int] = {}
    hours: dict[int, dict[int, int]] = {}
    per_day = _PerDay()
    for receipt in receipts:
        per_day.count(receipt)
        count += 1
        cents += receipt.cents
        day = daily.get(receipt.day)
        if day is None:
            day = daily[receipt.day] = [0, 0]
        day[0] += 1
        day[1] += receipt.cents
        month_key = (receipt.month, receipt.store_id)
        month = monthly.get(month_key)
        if month is None:
            month = monthly[month_key] = [0, 0]
        month[0] += 1
        month[1] += receipt.cents
        for name, quantity in receipt.items:
            units += quantity
            items[name] = items.get(name, 0) + quantity
        store_hours = hours.setdefault(receipt.store_id, {})
        store_hours[receipt.hour] = store_hours.get(receipt.hour, 0) + 1
    peaks = {store_id: _busiest(by_hour) for store_id, by_hour in hours.items()}
    return Tables(
        summary=_summary(
            today,
            receipts=count,
            cents=cents,
            units=units,
            daily={d: day_cents for d, (_, day_cents) in daily.items()},
        ),
        store_monthly={k: Decimal(v).scaleb(-2) for k, (_, v) in monthly.items()},
        item_performance=items,
        store_peak_hours=peaks,
        totals={1: (count, cents, units)},
        daily={d: (n, day_cents) for d, (n, day_cents) in daily.items()},
        store_month={key: (n, month_cents) for key, (n, month_cents) in monthly.items()},
        store_hour={
            (store_id, hour): n
            for store_id, by_hour in hours.items()
            for hour, n in by_hour.items()
        },
        store_day=per_day.by_day,
        store_day_hour=per_day.by_hour,
        product_hour=per_day.by_product,
        store_month_weekday_hour=per_day.by_month_weekday_hour,
        **per_day.units,
    )


@dataclass(slots=True)
class _PerDay:
    """Per store and day (receipts, cents, units), per store, day and hour (receipts, cents),
    per product, store, day and hour (units); per store, month, weekday and hour (receipts);
    units per product in `units` (named as their `Tables` field): each receipt counted where
    it falls (its month as the text YYYY-MM of its day)."""

    by_day: dict[tuple[dt.date, int], tuple[int, int, int]] = field(default_factory=dict)
    by_hour: dict[tuple[dt.date, int, int], tuple[int, int]] = field(default_factory=dict)
    by_product: dict[tuple[dt.date, int, int, str], int] = field(default_factory=dict)
    by_month_weekday_hour: dict[tuple[str, int, int, int], int] = field(default_factory=dict)
    units: dict[str, dict[tuple[Any, ...], int]] = field(
        default_factory=lambda: {name: {} for name in _UNITS}
    )

    def count(self, r: Receipt) -> None:
        n, c, u = self.by_day.get((r.day, r.store_id), (0, 0, 0))
        self.by_day[(r.day, r.store_id)] = (n + 1, c + r.cents, u + sum(q for _, q in r.items))
        n, c = self.by_hour.get((r.day, r.store_id, r.hour), (0, 0))
        self.by_hour[(r.day, r.store_id, r.hour)] = (n + 1, c + r.cents)
        month = f"{r.day.year:04d}-{r.day.month:02d}"
        weekday = (r.day.toordinal() - 1) % 7 + 1  # day 1 (0001-01-01) was a Monday
        slot = (month, r.store_id, weekday, r.hour)
        self.by_month_weekday_hour[slot] = self.by_month_weekday_hour.get(slot, 0) + 1
        for name, quantity in r.items:
            where = (r.day, r.store_id, r.hour, name)
            self.by_product[where] = self.by_product.get(where, 0) + quantity
            keys = {
                "product_month_hour": (month, r.store_id, r.hour, name),
                "chain_product_day": (r.day, name),
                "chain_product_day_hour": (r.day, r.hour, name),
                "chain_product_month": (month, name),
                "chain_product_month_hour": (month, r.hour, name),
            }
            for table, key in keys.items():
                self.units[table][key] = self.units[table].get(key, 0) + quantity


_UNITS: tuple[str, ...] = (
    "product_month_hour",
    "chain_product_day",
    "chain_product_day_hour",
    "chain_product_month",
    "chain_product_month_hour",
)


def summary_on(day: dt.date, tables: Tables) -> SummaryRow:
    """`receipts_summary`'s row for `day` over the receipts whose running totals and days
    `tables` holds: what a row written on `day` from that state must say."""
    receipts, cents, units = tables.totals.get(1, (0, 0, 0))
    daily = {d: day_cents for d, (_, day_cents) in tables.daily.items()}
    return _summary(day, receipts=receipts, cents=cents, units=units, daily=daily)


def _busiest(by_hour: dict[int, int]) -> tuple[int, int]:
    """(hour, receipts) of the busiest hour; max over (count, -hour) takes the earliest tie."""
    count, negative_hour = max((n, -hour) for hour, n in by_hour.items())
    return -negative_hour, count


def _summary(
    today: dt.date, *, receipts: int, cents: int, units: int, daily: dict[dt.date, int]
) -> SummaryRow:
    """Weeks by ISO calendar week (Monday first); averages rounded half-up in integers."""
    this_week = today.isocalendar()[:2]
    last_week = (today - dt.timedelta(days=7)).isocalendar()[:2]
    by_week: dict[tuple[int, int], int] = {}
    for day, day_cents in daily.items():
        week = day.isocalendar()[:2]
        by_week[week] = by_week.get(week, 0) + day_cents
    return SummaryRow(
        as_of=today,
        spend_per_rcpt=_cents(_half_up(cents, receipts)),
        items_per_rcpt=_cents(_half_up(units * 100, receipts)),
        this_week_sales=_cents(by_week.get(this_week, 0)),
        last_week_sales=_cents(by_week.get(last_week, 0)),
    )


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (both ≥ 0); 0 when nothing to divide."""
    if denominator == 0:
        return 0
    return (2 * numerator + denominator) // (2 * denominator)


def _cents(cents: int) -> Decimal:
    return Decimal(f"{cents // 100}.{cents % 100:02d}")
