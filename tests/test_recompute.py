"""The from-scratch recompute and the incremental path's formulas agree, though written apart.

`recompute` is reconcile's reference, so it computes averages, rounding, weeks and the peak
hour with code of its own; these tests hold the two implementations to the same answers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from coffeeshop.core import recompute as reference
from coffeeshop.core.plan import peak_hour, summary_row
from coffeeshop.core.receipts import Receipt

days = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31))


@given(
    today=days,
    receipts=st.integers(min_value=0, max_value=10_000),
    cents=st.integers(min_value=0, max_value=10**14),
    units=st.integers(min_value=0, max_value=10**9),
    daily=st.dictionaries(days, st.integers(min_value=0, max_value=10**12), max_size=40),
)
def test_summary_formulas_agree(
    today: dt.date, receipts: int, cents: int, units: int, daily: dict[dt.date, int]
) -> None:
    incremental = summary_row(today, receipts=receipts, cents=cents, units=units, daily_cents=daily)
    recomputed = reference._summary(today, receipts=receipts, cents=cents, units=units, daily=daily)
    assert recomputed == incremental


@given(st.dictionaries(st.integers(0, 23), st.integers(1, 50), min_size=1))
def test_peak_hour_formulas_agree(by_hour: dict[int, int]) -> None:
    assert reference._busiest(by_hour) == peak_hour(by_hour)


def test_half_cent_rounds_up_and_weeks_cross_the_year() -> None:
    # 2027-01-01 is a Friday in ISO week 2026-W53; last week is 2026-W52 (Dec 21-27).
    today = dt.date(2027, 1, 1)
    daily = {dt.date(2026, 12, 28): 100, dt.date(2026, 12, 27): 7, dt.date(2026, 12, 21): 5}
    row = reference._summary(today, receipts=8, cents=4, units=1, daily=daily)
    assert row.spend_per_rcpt == Decimal("0.01")  # 0.005 per receipt rounds half up
    assert row.items_per_rcpt == Decimal("0.13")  # 0.125 rounds half up
    assert row.this_week_sales == Decimal("1.00")
    assert row.last_week_sales == Decimal("0.12")


def test_tie_goes_to_the_earliest_hour() -> None:
    receipts = [
        Receipt(key=f"r{n}", store_id=1, day=dt.date(2026, 11, 2), hour=h, cents=100, items=())
        for n, h in enumerate((9, 9, 14, 14, 7))
    ]
    tables = reference.recompute(receipts, dt.date(2026, 11, 2))
    assert tables.store_peak_hours == {1: (9, 2)}
