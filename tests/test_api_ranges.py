"""The range endpoints (`api/ranges.py`) against the reference recomputation, on SQLite,
MariaDB and PostgreSQL: a history with replacements (another store, day, hour or items) and
deletes, synced by the real engine; then the counted tables spoiled and made right by
`reconcile --repair`."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import execute_sql, receipt, reference_tables
from pydantic import BaseModel
from test_api_support import ALL_BACKENDS, TODAY, empty_database, exact, running, state_of, sync

from coffeeshop.api.schemas import DayCheckRow, MonthToDateRow, StoreDailyRow
from coffeeshop.core.recompute import Tables
from coffeeshop.pipeline.facade import reconcile
from coffeeshop.store import Store

pytestmark = pytest.mark.anyio


def history(seed: int = 21) -> list[Any]:
    """Receipts over October and November 2026 in three stores, then replacements and deletes."""
    rng = random.Random(seed)

    def doc(rid: int) -> dict[str, Any]:
        day = dt.date(2026, 10, 1) + dt.timedelta(days=rng.randint(0, 60))
        names = rng.sample(["Latte", "Tea", "Bun", "Crème Brûlée"], rng.randint(1, 3))
        return receipt(
            rid,
            store=rng.randint(1, 3),
            date=day.isoformat(),
            time=f"{rng.randint(6, 21):02d}:{rng.randint(0, 59):02d}",
            total=f"{rng.randint(1, 5000) / 100:.2f}",
            items=[(name, rng.randint(1, 4)) for name in names],
        )

    lines: list[Any] = [doc(rid) for rid in range(1, 301)]
    for rid in rng.sample(range(1, 301), 60):
        lines.append(
            {"operationType": "replace", "documentKey": {"_id": rid}, "fullDocument": doc(rid)}
        )
    for rid in rng.sample(range(1, 301), 40):
        lines.append({"operationType": "delete", "documentKey": {"_id": rid}})
    return lines


LINES = history()
REFERENCE = reference_tables(LINES, TODAY)


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("api_ranges")
    with empty_database(request.param, directory) as url:
        source = directory / "receipts.jsonl"
        sync(url, source, LINES)
        yield url, source


async def get(url: str, path: str) -> Any:
    async with running(url) as client:
        response = await client.get(path)
    assert response.status_code == 200, (path, response.text)
    return exact(response)


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(Decimal("0.01"))


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


# -- the reference answers, computed naively from `Tables` ------------------------------------


def expected_store_daily(ref: Tables, store: int | None, first: dt.date, last: dt.date) -> Any:
    return [
        {"day": d.isoformat(), "store_id": s, "receipts": n, "sales": money(c), "units": u}
        for (d, s), (n, c, u) in sorted(ref.store_day.items())
        if first <= d <= last and store in (None, s)
    ]


def expected_item_sales(ref: Tables, store: int | None, hours: range, span: list[dt.date]) -> Any:
    units: dict[str, int] = {}
    for (d, s, h, product), n in ref.product_hour.items():
        if d in span and h in hours and store in (None, s):
            units[product] = units.get(product, 0) + n
    ranked = sorted(units.items(), key=lambda item: (-item[1], item[0]))
    return [{"product": p, "units": n} for p, n in ranked]


def expected_weekday_hours(ref: Tables, hours: range, span: list[dt.date]) -> Any:
    counts: dict[tuple[int, int, int], int] = {}
    for (d, s, h), (n, _) in ref.store_day_hour.items():
        if d in span and h in hours:
            key = (s, d.isoweekday(), h)
            counts[key] = counts.get(key, 0) + n
    out = []
    for (s, weekday, h), n in sorted(counts.items()):
        such = sum(1 for d in span if d.isoweekday() == weekday)
        out.append(
            {
                "store_id": s,
                "weekday": weekday,
                "hour": h,
                "receipts": n,
                "days": such,
                "average_receipts": half_up(Decimal(n) / such),
            }
        )
    return out


def held_days(ref: Tables, hours: range) -> tuple[dt.date, dt.date]:
    """The first and last day with receipts in `hours`."""
    held = [d for (d, _, h) in ref.store_day_hour if h in hours]
    return min(held), max(held)


def store_sums(ref: Tables, span: list[dt.date]) -> dict[int, tuple[int, int]]:
    sums: dict[int, tuple[int, int]] = {}
    for (d, s), (n, c, _) in ref.store_day.items():
        if d in span:
            held = sums.get(s, (0, 0))
            sums[s] = (held[0] + n, held[1] + c)
    return sums


def check_month_to_date(rows: list[Any], ref: Tables, today: dt.date) -> None:
    """November 2026 (from its 1st to today or its end) against the same days of October."""
    last = min(dt.date(2026, 11, 30), today)
    now = store_sums(ref, days(dt.date(2026, 11, 1), last))
    before = store_sums(ref, days(dt.date(2026, 10, 1), dt.date(2026, 10, last.day)))
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["store_id"] for r in rows} == now.keys() | before.keys()
    pcts = []
    for row in rows:
        n, c = now.get(row["store_id"], (0, 0))
        pn, pc = before.get(row["store_id"], (0, 0))
        assert (row["receipts"], row["sales"]) == (n, money(c))
        assert (row["previous_receipts"], row["previous_sales"]) == (pn, money(pc))
        assert row["change"] == money(c - pc)
        assert row["change_pct"] == (half_up(Decimal(100 * (c - pc)) / pc) if pc else None)
        assert row["so_far"] == (last < dt.date(2026, 11, 30))
        pcts.append(row["change_pct"])
    known = [p for p in pcts if p is not None]
    assert known == sorted(known, reverse=True)


def check_day(rows: list[Any], ref: Tables, day: dt.date) -> None:
    usual = [day - dt.timedelta(weeks=k) for k in range(1, 9)]
    stores = sorted({s for (d, s) in ref.store_day if d in (day, *usual)})
    assert [r["store_id"] for r in rows] == [*stores, None]
    for row in rows:

        def value(d: dt.date, i: int, store: Any = row["store_id"]) -> int:
            return sum(
                v[i] for (dd, s), v in ref.store_day.items() if dd == d and store in (None, s)
            )

        for i, name in ((0, "receipts"), (1, "sales")):
            show = money if name == "sales" else int
            before = [value(d, i) for d in usual]
            assert row[name] == show(value(day, i))
            assert row[f"{name}_min"] == show(min(before))
            assert row[f"{name}_max"] == show(max(before))
            mean = Decimal(sum(before)) / 8
            assert row[f"{name}_mean"] == half_up(mean.scaleb(-2) if name == "sales" else mean)
            outside = not min(before) <= value(day, i) <= max(before)
            assert row[f"{name}_outside"] == outside


async def assert_answers(url: str, ref: Tables) -> None:
    """Every endpoint, over several ranges, equals its reference answer."""
    october, november = (
        days(dt.date(2026, 10, 1), dt.date(2026, 10, 31)),
        days(dt.date(2026, 11, 1), dt.date(2026, 11, 30)),
    )
    whole = days(dt.date(2026, 10, 1), dt.date(2026, 11, 30))
    assert await get(url, "/store_daily") == expected_store_daily(
        ref, None, dt.date.min, dt.date.max
    )
    assert await get(
        url, "/store_daily?store_id=2&day_from=2026-10-15&day_to=2026-11-10"
    ) == expected_store_daily(ref, 2, dt.date(2026, 10, 15), dt.date(2026, 11, 10))
    assert await get(url, "/item_sales") == expected_item_sales(ref, None, range(24), whole)
    assert await get(
        url, "/item_sales?store_id=1&day_from=2026-11-01&day_to=2026-11-30&hour_from=7&hour_to=10"
    ) == expected_item_sales(ref, 1, range(7, 11), november)
    assert await get(
        url, "/store_weekday_hours?day_from=2026-10-01&day_to=2026-10-31&hour_from=12"
    ) == expected_weekday_hours(ref, range(12, 24), october)
    # ragged ranges: whole months from the month tables, edge days from the day tables
    ragged = days(dt.date(2026, 10, 2), dt.date(2026, 11, 29))
    assert await get(
        url, "/item_sales?day_from=2026-10-02&day_to=2026-11-29"
    ) == expected_item_sales(ref, None, range(24), ragged)
    assert await get(
        url, "/item_sales?store_id=3&day_from=2026-10-20&day_to=2026-11-30&hour_to=12"
    ) == expected_item_sales(ref, 3, range(13), days(dt.date(2026, 10, 20), november[-1]))
    assert await get(
        url, "/item_sales?store_id=2&day_from=2026-10-02&day_to=2026-11-29"
    ) == expected_item_sales(ref, 2, range(24), ragged)
    assert (
        await get(url, "/item_sales?day_from=2026-10-31&day_to=2026-11-01&limit=2&offset=1")
        == expected_item_sales(ref, None, range(24), [october[-1], november[0]])[1:3]
    )
    assert await get(
        url, "/store_weekday_hours?day_from=2026-10-02&day_to=2026-11-29&hour_to=15"
    ) == expected_weekday_hours(ref, range(16), ragged)
    # the whole calendar: only the months that hold data are read (not 120,000 of them)
    calendar = "day_from=0002-01-01&day_to=9998-12-31"
    assert await get(url, f"/item_sales?{calendar}") == expected_item_sales(
        ref, None, range(24), whole
    )
    assert await get(url, f"/item_sales?store_id=1&hour_to=9&{calendar}") == expected_item_sales(
        ref, 1, range(10), whole
    )
    first, last = dt.date(2, 1, 1), dt.date(9998, 12, 31)
    weeks, rest = divmod((last - first).days + 1, 7)  # and `rest` days from `first` on

    def such(weekday: int) -> int:
        return weeks + ((weekday - first.isoweekday()) % 7 < rest)

    assert await get(url, f"/store_weekday_hours?store_id=2&{calendar}") == [
        {
            **row,
            "days": such(row["weekday"]),
            "average_receipts": half_up(Decimal(row["receipts"]) / such(row["weekday"])),
        }
        for row in expected_weekday_hours(ref, range(24), whole)
        if row["store_id"] == 2
    ]
    assert await get(url, "/store_weekday_hours?hour_from=20") == expected_weekday_hours(
        ref, range(20, 24), days(*held_days(ref, range(20, 24)))
    )
    async with running(url) as client:
        today = dt.datetime.now(state_of(client).settings.zone()).date()
        response = await client.get("/store_month_to_date?month=2026-11")
    check_month_to_date(exact(response), ref, today)
    check_day(await get(url, "/day_check?day=2026-11-23"), ref, dt.date(2026, 11, 23))
    check_day(await get(url, "/day_check?day=2026-11-30"), ref, dt.date(2026, 11, 30))


async def test_every_range_endpoint_equals_the_reference_recomputation(
    filled: tuple[str, Path],
) -> None:
    url, _ = filled
    assert REFERENCE.store_day and REFERENCE.product_hour  # the history leaves receipts
    await assert_answers(url, REFERENCE)


async def test_after_reconcile_repair_the_answers_are_right_again(
    filled: tuple[str, Path],
) -> None:
    url, source = filled
    with Store(url) as store:
        execute_sql(store, "DELETE FROM cs_store_day WHERE store_id = 2")
        execute_sql(store, "UPDATE cs_product_hour SET units = units + 5")
        execute_sql(store, "UPDATE cs_store_day_hour SET receipts = receipts + 1, cents = 7")
        execute_sql(store, "DELETE FROM cs_chain_product_month_hour WHERE month = '2026-10'")
        execute_sql(store, "UPDATE cs_chain_product_day_hour SET units = units + 1 WHERE hour = 9")
        execute_sql(store, "UPDATE cs_product_month_hour SET units = units + 1 WHERE hour = 9")
        execute_sql(store, "DELETE FROM cs_chain_product_day WHERE product = 'Tea'")
        execute_sql(store, "UPDATE cs_chain_product_month SET units = units * 2")
        weekday = "UPDATE cs_store_month_weekday_hour SET receipts = receipts + 2 WHERE weekday = 3"
        execute_sql(store, weekday)
    spoiled = reconcile(str(source), url)
    assert {
        "cs_store_day",
        "cs_product_hour",
        "cs_store_day_hour",
        "cs_product_month_hour",
        "cs_chain_product_month_hour",
        "cs_chain_product_day_hour",
        "cs_store_month_weekday_hour",
    } <= set(spoiled.counts)
    repaired = reconcile(str(source), url, repair=True)
    assert repaired.repaired
    assert reconcile(str(source), url).total_differences == 0
    await assert_answers(url, REFERENCE)


async def test_csv_has_the_json_fields_as_its_header(filled: tuple[str, Path]) -> None:
    url, _ = filled
    cases: dict[str, type[BaseModel]] = {
        "/store_daily": StoreDailyRow,
        "/store_month_to_date?month=2026-11": MonthToDateRow,
        "/day_check?day=2026-11-23": DayCheckRow,
    }
    async with running(url) as client:
        for path, model in cases.items():
            as_json = (await client.get(path)).json()
            lines = (await client.get(path, headers={"accept": "text/csv"})).text.splitlines()
            assert lines[0].split(",") == list(model.model_fields), path
            assert len(lines) == len(as_json) + 1, path


@pytest.mark.parametrize(
    "path",
    [
        "/store_daily?day_from=2026-11-02&day_to=2026-11-01",
        "/store_daily?hour_from=3",  # no hours per store and day
        "/item_sales?hour_from=11&hour_to=10",
        "/item_sales?hour_to=24",
        "/store_weekday_hours?day_from=2026-13-01",
        "/store_month_to_date?month=2026-13",
        "/store_month_to_date?month=2026-11&day=1",
        "/day_check?day=2026-02-30",
        "/day_check?store_id=-1",
        "/store_daily?limit=0",
    ],
)
async def test_bad_parameters_are_422_naming_the_problem(
    filled: tuple[str, Path], path: str
) -> None:
    url, _ = filled
    async with running(url) as client:
        response = await client.get(path)
    assert response.status_code == 422, (path, response.text)
    assert response.json()["message"]
