"""The four table endpoints and the store × hour grid over databases filled by the real
engine, on SQLite, MariaDB and PostgreSQL (when a server answers): paths, field names, JSON
types, exact values, filters."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from helpers import current_receipts, reference_tables
from test_api_support import ALL_BACKENDS, LINES, TODAY, empty_database, exact, fill, running

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("api_tables")
    with empty_database(request.param, directory) as database:
        fill(database, directory)
        yield database


REFERENCE = reference_tables(LINES, TODAY)


async def get(url: str, path: str) -> Any:
    async with running(url) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return exact(response)


async def test_receipts_summary_has_the_original_fields_one_row_per_synced_day(url: str) -> None:
    rows = await get(url, "/receipts_summary")
    assert [row["as_of"] for row in rows] == ["2026-11-20", "2026-11-25"]
    for row in rows:
        assert list(row) == [
            "as_of",
            "spend_per_rcpt",
            "items_per_rcpt",
            "this_week_sales",
            "last_week_sales",
        ]
        assert all(isinstance(row[k], Decimal) for k in list(row)[1:])  # JSON numbers
    summary = REFERENCE.summary
    assert rows[-1] == {
        "as_of": "2026-11-25",
        "spend_per_rcpt": summary.spend_per_rcpt,
        "items_per_rcpt": summary.items_per_rcpt,
        "this_week_sales": summary.this_week_sales,
        "last_week_sales": summary.last_week_sales,
    }


async def test_store_monthly_rows_equal_the_reference_in_month_then_store_order(url: str) -> None:
    rows = await get(url, "/store_monthly")
    assert all(list(row) == ["month", "store_id", "sales"] for row in rows)
    assert all(type(row["store_id"]) is int and isinstance(row["sales"], Decimal) for row in rows)
    assert {(r["month"], r["store_id"]): r["sales"] for r in rows} == REFERENCE.store_monthly
    assert [(r["month"], r["store_id"]) for r in rows] == sorted(REFERENCE.store_monthly)


async def test_item_performance_lists_best_sellers_first_and_names_exactly(url: str) -> None:
    rows = await get(url, "/item_performance")
    assert all(list(row) == ["item_name", "total_sold"] for row in rows)
    assert all(type(row["total_sold"]) is int for row in rows)
    assert {r["item_name"]: r["total_sold"] for r in rows} == REFERENCE.item_performance
    assert [r["total_sold"] for r in rows] == sorted((r["total_sold"] for r in rows), reverse=True)
    assert {"Latte", "latte", "Crème Brûlée"} <= {r["item_name"] for r in rows}


async def test_store_peak_hours_rows_equal_the_reference(url: str) -> None:
    rows = await get(url, "/store_peak_hours")
    assert all(list(row) == ["store_id", "peak_hour", "tx_count"] for row in rows)
    assert {r["store_id"]: (r["peak_hour"], r["tx_count"]) for r in rows} == dict(
        sorted(REFERENCE.store_peak_hours.items())
    )
    assert [r["store_id"] for r in rows] == sorted(REFERENCE.store_peak_hours)


async def test_store_hours_count_every_current_receipt_by_store_and_hour(url: str) -> None:
    rows = await get(url, "/store_hours")
    assert all(list(row) == ["store_id", "hour", "receipts"] for row in rows)
    expected = Counter((r.store_id, r.hour) for r in current_receipts(LINES))
    assert [(r["store_id"], r["hour"], r["receipts"]) for r in rows] == [
        (store, hour, n) for (store, hour), n in sorted(expected.items())
    ]
    peaks = {r["store_id"]: (r["peak_hour"], r["tx_count"]) for r in rows_of_peaks(rows)}
    assert peaks == dict(REFERENCE.store_peak_hours)  # the grid's maxima are the peak table
    assert {r["store_id"] for r in await get(url, "/store_hours?store_id=2")} == {2}
    assert await get(url, "/store_hours?store_id=99") == []
    assert await get(url, "/store_hours?limit=3&offset=1") == rows[1:4]


def rows_of_peaks(rows: list[dict[str, int]]) -> list[dict[str, int]]:
    """Each store's busiest hour in the grid, the earliest on a tie."""
    best: dict[int, dict[str, int]] = {}
    for row in rows:  # ordered by store, then hour: a later hour must be strictly busier
        store = row["store_id"]
        if store not in best or row["receipts"] > best[store]["tx_count"]:
            best[store] = {"store_id": store, "peak_hour": row["hour"], "tx_count": row["receipts"]}
    return list(best.values())


async def test_money_is_written_with_its_exact_digits(url: str) -> None:
    async with running(url) as client:
        text = (await client.get("/store_monthly")).text
    # Store 1's October: 0.10; store 2's November: 0.20 (not 0.2), store 3's January: 1000000.00
    assert '{"month":"2026-10","store_id":1,"sales":0.10}' in text
    assert '{"month":"2026-11","store_id":2,"sales":0.20}' in text
    assert '{"month":"2026-01","store_id":3,"sales":1000000.00}' in text
    assert not re.search(r"\d\.\d{3,}", text)  # no binary-float noise anywhere


async def test_filters_by_store_and_month_range(url: str) -> None:
    rows = await get(url, "/store_monthly?store_id=1&month_from=2026-01&month_to=2026-10")
    assert rows == [{"month": "2026-10", "store_id": 1, "sales": Decimal("0.10")}]
    assert await get(url, "/store_monthly?month_from=2026-12") == []
    async with running(url) as client:  # a reversed range is a mistake, not an empty answer
        reversed_range = await client.get("/store_monthly?month_from=2026-11&month_to=2026-01")
    assert reversed_range.status_code == 422
    assert "month_from (2026-11) is after month_to (2026-01)" in reversed_range.text
    assert [r["store_id"] for r in await get(url, "/store_peak_hours?store_id=2")] == [2]
    assert await get(url, "/store_peak_hours?store_id=99") == []


async def test_filters_summary_by_date_range(url: str) -> None:
    assert [r["as_of"] for r in await get(url, "/receipts_summary?as_of_from=2026-11-21")] == [
        "2026-11-25"
    ]
    assert [r["as_of"] for r in await get(url, "/receipts_summary?as_of_to=2026-11-20")] == [
        "2026-11-20"
    ]
    both = "/receipts_summary?as_of_from=2026-11-20&as_of_to=2026-11-25"
    assert len(await get(url, both)) == 2


async def test_items_order_by_name_and_pages_with_limit_and_offset(url: str) -> None:
    by_name = await get(url, "/item_performance?order=item_name")
    names = [r["item_name"] for r in by_name]
    # For people: case and accents folded, the exact name breaking a tie; on every database.
    assert names == ["Bagel", "Crème Brûlée", "Espresso", "Latte", "latte", "Tea"]
    everything = await get(url, "/store_monthly")
    pages = [await get(url, f"/store_monthly?limit=2&offset={n}") for n in range(0, 10, 2)]
    assert [row for page in pages for row in page] == everything
    assert await get(url, "/item_performance?limit=2") == (await get(url, "/item_performance"))[:2]


async def test_quarantine_lists_rejected_input_with_its_fields(url: str) -> None:
    rows = await get(url, "/quarantine")
    assert [r["position"].split(" (")[0] for r in rows] == ["line 8", "line 9"]
    for row in rows:
        assert list(row) == [
            "id",
            "receipt_id",
            "reason",
            "source",
            "position",
            "raw",
            "raw_length",
            "raw_truncated",
            "received_at",
        ]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["received_at"])
    assert rows[0]["receipt_id"] == "8" and "total_price" in rows[0]["reason"]
    assert rows[1]["receipt_id"] is None and rows[1]["raw"] == "this line is not JSON"
    assert len(await get(url, "/quarantine?limit=1&offset=1")) == 1
    assert await get(url, "/quarantine?source=elsewhere") == []
