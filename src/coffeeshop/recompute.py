"""The four tables computed from scratch over a set of current receipts.

Pure and deliberately naive: this is the reference that `reconcile` and the tests
hold the incremental engine to, so it shares none of the engine's delta logic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from coffeeshop.aggregates import SummaryRow, peak_hour, summary_row
from coffeeshop.receipts import Receipt


@dataclass(slots=True)
class Tables:
    """The public tables as plain values, comparable with `==`."""

    summary: SummaryRow
    store_monthly: dict[tuple[str, int], Decimal] = field(default_factory=dict)
    item_performance: dict[str, int] = field(default_factory=dict)
    store_peak_hours: dict[int, tuple[int, int]] = field(default_factory=dict)


def recompute(receipts: Iterable[Receipt], today: dt.date) -> Tables:
    count = cents = units = 0
    daily: dict[dt.date, int] = {}
    monthly: dict[tuple[str, int], int] = {}
    items: dict[str, int] = {}
    hours: dict[int, dict[int, int]] = {}
    for receipt in receipts:
        count += 1
        cents += receipt.cents
        daily[receipt.day] = daily.get(receipt.day, 0) + receipt.cents
        month_key = (receipt.month, receipt.store_id)
        monthly[month_key] = monthly.get(month_key, 0) + receipt.cents
        for name, quantity in receipt.items:
            units += quantity
            items[name] = items.get(name, 0) + quantity
        store_hours = hours.setdefault(receipt.store_id, {})
        store_hours[receipt.hour] = store_hours.get(receipt.hour, 0) + 1
    peaks: dict[int, tuple[int, int]] = {}
    for store_id, by_hour in hours.items():
        peak = peak_hour(by_hour)
        if peak is not None:
            peaks[store_id] = peak
    return Tables(
        summary=summary_row(today, receipts=count, cents=cents, units=units, daily_cents=daily),
        store_monthly={k: Decimal(v).scaleb(-2) for k, v in monthly.items()},
        item_performance=items,
        store_peak_hours=peaks,
    )
