"""The owner's endpoints (/daily_sales, /sales_comparison, /quarantine_reasons, /display) and
CSV export, over databases filled by the real engine on SQLite and MariaDB. Every figure is
checked against a from-scratch computation over the source's lines, done here in plain
Python (the current receipts, then sums by day and hour)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import current_receipts, receipt
from test_api_support import BACKENDS, empty_database, exact, running, sync

from coffeeshop.api.settings import load_api_settings
from coffeeshop.core.receipts import Receipt
from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.errors import ConfigError

pytestmark = pytest.mark.anyio

START = dt.date(2026, 11, 2)  # a Monday; 24 days up to Wednesday 2026-11-25
DAYS = 24
AT = dt.datetime(2026, 11, 25, 10, 20)  # Wednesday, 10:20
HAND_MADE: list[Any] = [
    # On the hour boundaries of the comparison: 10:59 counts, 11:00 does not.
    receipt(9001, store=1, date="2026-11-25", time="10:59:59", total="1.05", items=[("A", 1)]),
    receipt(9002, store=1, date="2026-11-25", time="11:00:00", total="2.00", items=[("A", 2)]),
    receipt(9003, store=2, date="2026-11-18", time="10:00", total="3.33", items=[("B", 3)]),
    receipt(9004, store=2, date="2026-11-18", time="23:59", total="4.44", items=[("B", 1)]),
    receipt(9005, store=4, date="2026-11-16", time="07:00", total="5.55", items=[("C", 1)]),
    receipt(9006, store=4, date="2026-11-23", time="00:00", total="6.10", items=[("=SUM", 1)]),
    {"operationType": "delete", "documentKey": {"_id": 9003}},  # gone: not counted
    receipt(9007, store=3, date="2026-11-19", time="09:00", total=-5),  # invalid
]


def source_lines() -> list[Any]:
    generator = ReceiptGenerator(
        seed=12,
        stores=5,
        start=START,
        days=DAYS,
        update_share=0.03,
        delete_share=0.02,
        invalid_share=0.03,
    )
    return [*generator.iter_lines(2500), *HAND_MADE]


LINES = source_lines()
RECEIPTS: list[Receipt] = current_receipts(LINES)


@pytest.fixture(scope="module", params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("api_insights")
    with empty_database(request.param, directory) as database:
        sync(database, directory / "receipts.jsonl", LINES, today=AT.date())
        yield database


async def get(url: str, path: str, **overrides: Any) -> Any:
    async with running(url, **overrides) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return exact(response)


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(Decimal("0.01"))


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- from scratch --------------------------------------------------------------------------------


def expected_daily(store: int | None = None) -> list[dict[str, Any]]:
    days: dict[dt.date, list[int]] = {}
    for r in RECEIPTS:
        if store is None or r.store_id == store:
            acc = days.setdefault(r.day, [0, 0])
            acc[0] += 1
            acc[1] += r.cents
    return [
        {"day": day.isoformat(), "receipts": n, "sales": money(cents)}
        for day, (n, cents) in sorted(days.items())
    ]


def expected_period(first: dt.date, last: dt.date, hour: int, store: int | None) -> dict[str, Any]:
    chosen = [
        r
        for r in RECEIPTS
        if first <= r.day <= last
        and (r.day < last or r.hour <= hour)
        and (store is None or r.store_id == store)
    ]
    n = len(chosen)
    cents = sum(r.cents for r in chosen)
    units = sum(r.units for r in chosen)
    return {
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "until_hour": hour,
        "receipts": n,
        "sales": money(cents),
        "units": units,
        "spend_per_rcpt": half_up(Decimal(cents) / 100 / n) if n else Decimal("0.00"),
        "items_per_rcpt": half_up(Decimal(units) / n) if n else Decimal("0.00"),
    }


# -- daily sales ---------------------------------------------------------------------------------


async def test_daily_sales_equal_a_from_scratch_sum_per_day(url: str) -> None:
    rows = await get(url, "/daily_sales")
    assert rows == expected_daily()
    assert len(rows) == DAYS
    assert all(isinstance(row["sales"], Decimal) for row in rows)


@pytest.mark.parametrize("store", [1, 2, 4])
async def test_daily_sales_of_one_store_and_a_range(url: str, store: int) -> None:
    rows = await get(url, f"/daily_sales?store_id={store}&day_from=2026-11-10&day_to=2026-11-23")
    whole = expected_daily(store)
    assert rows == [r for r in whole if "2026-11-10" <= r["day"] <= "2026-11-23"]
    assert rows  # the range holds receipts of that store


async def test_daily_sales_rejects_a_bad_day(url: str) -> None:
    async with running(url) as client:
        response = await client.get("/daily_sales?day_from=2026-02-30")
        assert response.status_code == 422
        assert "day_from" in response.text


# -- comparisons ---------------------------------------------------------------------------------


@pytest.mark.parametrize("store", [None, 1, 2, 4])
async def test_comparison_puts_the_same_part_of_last_week_beside_this_week(
    url: str, store: int | None
) -> None:
    query = "/sales_comparison?day=2026-11-25&hour=10"
    if store is not None:
        query += f"&store_id={store}"
    rows = await get(url, query)
    by_period = {row.pop("period"): row for row in rows}
    for row in by_period.values():
        row.pop("label")
    week = dt.timedelta(days=7)
    today, monday = AT.date(), dt.date(2026, 11, 23)
    assert by_period == {
        "today": expected_period(today, today, 10, store),
        "same_day_last_week": expected_period(today - week, today - week, 10, store),
        "week_to_date": expected_period(monday, today, 10, store),
        "same_period_last_week": expected_period(monday - week, today - week, 10, store),
    }
    if store is None:
        assert by_period["today"]["receipts"] > 10  # the data really tests something


async def test_comparison_counts_the_current_hour_and_not_the_next(url: str) -> None:
    rows = await get(url, "/sales_comparison?store_id=1&day=2026-11-25&hour=10")
    today = next(r for r in rows if r["period"] == "today")
    later = await get(url, "/sales_comparison?store_id=1&day=2026-11-25&hour=11")
    today_later = next(r for r in later if r["period"] == "today")
    eleven = [r for r in RECEIPTS if r.store_id == 1 and r.day == AT.date() and r.hour == 11]
    assert today_later["receipts"] - today["receipts"] == len(eleven) >= 1


async def test_comparison_defaults_to_now_and_its_etag_follows_the_hour(url: str) -> None:
    async with running(url, timezone="Europe/Paris") as client:
        now = await client.get("/sales_comparison")
        assert now.status_code == 200
        paris = dt.datetime.now(ZoneInfo("Europe/Paris"))
        assert exact(now)[0]["last_day"] == paris.date().isoformat()
        other = await client.get("/sales_comparison?day=2026-11-25&hour=10")
        assert now.headers["etag"] != other.headers["etag"]
        again = await client.get(
            "/sales_comparison", headers={"If-None-Match": now.headers["etag"]}
        )
        assert again.status_code == 304


# -- quarantine by reason ------------------------------------------------------------------------


async def test_quarantine_reasons_count_every_entry(url: str) -> None:
    async with running(url) as client:
        listing = exact(await client.get("/quarantine?limit=1000"))
        assert len(listing) < 1000  # one page holds every entry
        counts = Counter(entry["reason"] for entry in listing)
        latest: dict[str, Any] = {}

        for entry in listing:
            latest[entry["reason"]] = max(latest.get(entry["reason"], 0), entry["id"])
        rows = exact(await client.get("/quarantine_reasons"))
        assert rows == [
            {"reason": reason, "entries": n, "latest_id": latest[reason]}
            for reason, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
        assert sum(counts.values()) > 20
        by_field = exact(await client.get("/quarantine_reasons?by=field"))
        assert sum(r["entries"] for r in by_field) == len(listing)
        assert len(by_field) < len(rows)
        assert all("'" not in r["reason"] for r in by_field if r["reason"] == "Store_ID")
        assert not any("[0]" in r["reason"] for r in by_field)
        assert (await client.get("/quarantine_reasons?by=colour")).status_code == 422


# -- CSV -----------------------------------------------------------------------------------------

CSV_PATHS = [
    "/receipts_summary",
    "/store_monthly?store_id=2",
    "/item_performance",
    "/store_peak_hours",
    "/store_hours",
    "/daily_sales",
    "/sales_comparison?day=2026-11-25&hour=10",
    "/quarantine_reasons",
    "/quarantine?limit=50",
]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as JSON writes them
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@")):
        return f"'{value}"
    return str(value)


@pytest.mark.parametrize("path", CSV_PATHS)
async def test_every_table_comes_as_csv_too(url: str, path: str) -> None:
    sep = "&" if "?" in path else "?"
    async with running(url) as client:
        rows = exact(await client.get(path))
        assert rows, path
        by_param = await client.get(f"{path}{sep}format=csv")
        by_accept = await client.get(path, headers={"Accept": "text/csv"})
        plain_again = await client.get(path)  # the fast path still answers JSON
    assert plain_again.headers["content-type"] == "application/json"
    for response in (by_param, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.text.startswith(",".join(rows[0]) + "\r\n")
        assert parse_csv(response.text) == [
            {key: as_text(value) for key, value in row.items()} for row in rows
        ]
    assert by_param.headers["etag"] != plain_again.headers["etag"]


async def test_csv_defuses_spreadsheet_formulas(url: str) -> None:
    async with running(url) as client:
        text = (await client.get("/item_performance?format=csv")).text
    assert "\r\n'=SUM,1\r\n" in text


async def test_csv_of_an_empty_range_is_a_header_line(url: str) -> None:
    async with running(url) as client:
        response = await client.get("/daily_sales?day_from=2030-01-01&format=csv")
    assert response.text == "day,receipts,sales\r\n"


# -- display settings ----------------------------------------------------------------------------


async def test_display_carries_currency_and_store_names(url: str, tmp_path: Path) -> None:
    body = await get(url, "/display", currency="eur", store_names="1=Downtown, 2 = Harbour ")
    assert body["currency"] == "EUR"
    assert body["store_names"] == {"1": "Downtown", "2": "Harbour"}
    assert dt.datetime.fromisoformat(body["now"])
    names = tmp_path / "stores.json"
    names.write_text(json.dumps({"3": "Airport", "12": "Old Town"}), encoding="utf-8")
    body = await get(url, "/display", store_names=f"@{names}")
    assert body["store_names"] == {"3": "Airport", "12": "Old Town"}
    assert body["currency"] is None


def test_store_names_file_of_lines_and_bad_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = tmp_path / "stores.txt"
    lines.write_text("# id=name\n1=Downtown\n\n7=Station, east\n", encoding="utf-8")
    monkeypatch.setenv("COFFEESHOP_STORE_NAMES", f"@{lines}")
    assert load_api_settings().store_name_map == {1: "Downtown", 7: "Station, east"}
    for env, value, message in (
        ("COFFEESHOP_CURRENCY", "EURO", "COFFEESHOP_CURRENCY: 'EURO' is not an ISO 4217"),
        ("COFFEESHOP_STORE_NAMES", "one=Downtown", "'one' is not a store id"),
        ("COFFEESHOP_STORE_NAMES", "1", "'1' is not ID=NAME"),
        ("COFFEESHOP_STORE_NAMES", f"@{tmp_path / 'missing.json'}", "cannot read"),
    ):
        monkeypatch.setenv(env, value)
        with pytest.raises(ConfigError, match=message):
            load_api_settings()
        monkeypatch.delenv(env)
