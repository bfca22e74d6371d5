"""A range of days answered as whole months from a month table plus edge days from the day
table (`api/ranges.py`) equals the sum of the day table over the range, for random ranges:
month boundaries, single days, ranges inside one month, over a month's end, unbounded ends,
and hour ranges (property tests with hypothesis, on SQLite; `test_api_ranges.py` checks fixed
ragged ranges on every backend)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from test_api_ranges import LINES, REFERENCE, days, expected_item_sales, expected_weekday_hours
from test_api_support import sync

from coffeeshop.api import ranges
from coffeeshop.store.dialects import dialect_named

# The history holds 1 October – 30 November 2026; ranges reach a little beyond both ends.
EARLIEST, LATEST = dt.date(2026, 9, 20), dt.date(2026, 12, 10)
BOUNDARIES = [
    dt.date(2026, 9, 30),
    dt.date(2026, 10, 1),
    dt.date(2026, 10, 31),
    dt.date(2026, 11, 1),
    dt.date(2026, 11, 30),
    dt.date(2026, 12, 1),
]
HELD_FIRST = min(d for d, _ in REFERENCE.store_day)
HELD_LAST = max(d for d, _ in REFERENCE.store_day)


@pytest.fixture(scope="module")
def async_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("ranges_months")
    url = f"sqlite:///{directory / 'analysis.db'}"
    sync(url, directory / "receipts.jsonl", LINES)
    yield str(dialect_named("sqlite").async_url(make_url(url)))


def answer(url: str, query: Any, params: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await query(conn, params)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@st.composite
def day_ranges(draw: st.DrawFn) -> tuple[dt.date | None, dt.date | None]:
    """(first, last), either end possibly open: around month boundaries, single days, inside
    one month, across one or both month ends."""
    day = st.one_of(st.sampled_from(BOUNDARIES), st.dates(EARLIEST, LATEST))
    first = draw(day)
    length = draw(st.one_of(st.just(0), st.integers(1, 30), st.integers(31, 80)))
    last = min(LATEST, first + dt.timedelta(days=length))
    open_end = draw(st.sampled_from(["none", "none", "first", "last", "both"]))
    return (
        None if open_end in ("first", "both") else first,
        None if open_end in ("last", "both") else last,
    )


@st.composite
def hour_ranges(draw: st.DrawFn) -> tuple[int | None, int | None]:
    start = draw(st.one_of(st.none(), st.integers(0, 23)))
    end = draw(st.one_of(st.none(), st.integers(start or 0, 23)))
    return start, end


def query_params(span: Any, hours: Any, store: int | None) -> dict[str, Any]:
    first, last = span
    return {
        "day_from": first and first.isoformat(),
        "day_to": last and last.isoformat(),
        "hour_from": hours[0],
        "hour_to": hours[1],
        "store_id": store,
    }


def hour_span(hours: tuple[int | None, int | None]) -> range:
    return range(hours[0] or 0, (23 if hours[1] is None else hours[1]) + 1)


@settings(max_examples=80, deadline=None)
@given(span=day_ranges(), hours=hour_ranges(), store=st.sampled_from([None, 1, 2, 3]))
def test_item_sales_over_months_and_edge_days_equals_the_day_table(
    async_url: str, span: Any, hours: Any, store: int | None
) -> None:
    params = ranges.HourRangeParams(**query_params(span, hours, store))
    first, last = span[0] or dt.date.min, span[1] or dt.date.max
    covered = days(max(first, HELD_FIRST), min(last, HELD_LAST)) if first <= last else []
    got = answer(async_url, ranges.item_sales, params)
    assert got == expected_item_sales(REFERENCE, store, hour_span(hours), covered)


@settings(max_examples=80, deadline=None)
@given(span=day_ranges(), hours=hour_ranges(), store=st.sampled_from([None, 2]))
def test_weekday_hours_over_months_and_edge_days_equals_the_day_table(
    async_url: str, span: Any, hours: Any, store: int | None
) -> None:
    params = ranges.HourRangeParams(**query_params(span, hours, store))
    hour_range = hour_span(hours)
    held = sorted(
        d for (d, s, h) in REFERENCE.store_day_hour if h in hour_range and store in (None, s)
    )
    first = span[0] or (held[0] if held else None)
    last = span[1] or (held[-1] if held else None)
    expected = []
    if first is not None and last is not None:
        expected = [
            row
            for row in expected_weekday_hours(REFERENCE, hour_range, days(first, last))
            if store in (None, row["store_id"])
        ]
    assert answer(async_url, ranges.store_weekday_hours, params) == expected


@settings(deadline=None)  # a loaded machine took 312 ms for one example (the default: 200)
@given(first=st.dates(dt.date(1999, 1, 1), dt.date(2030, 12, 31)), length=st.integers(0, 800))
def test_a_range_splits_into_whole_months_and_at_most_60_edge_days(
    first: dt.date, length: int
) -> None:
    last = first + dt.timedelta(days=length)
    months, edges = ranges.split(first, last)
    in_months = [d for d in days(first, last) if d.isoformat()[:7] in months]
    assert sorted(in_months + edges) == days(first, last)  # every day once
    for month in months:  # whole: its 1st and its last day are in the range
        start = dt.date.fromisoformat(f"{month}-01")
        end = (start + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)
        assert first <= start and end <= last
    assert len(edges) <= 60
    assert all(e.isoformat()[:7] not in months for e in edges)


def test_a_range_at_the_end_of_the_calendar_splits() -> None:
    months, edges = ranges.split(dt.date(9998, 12, 1), dt.date(9998, 12, 31))
    assert (months, edges) == (["9998-12"], [])
    months, edges = ranges.split(dt.date(9998, 11, 30), dt.date(9998, 12, 31))
    assert (months, edges) == (["9998-12"], [dt.date(9998, 11, 30)])
