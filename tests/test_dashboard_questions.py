"""The owner's five questions of issue 21, answered with the dashboard alone, in Chromium, on
generated demo data (the demo's twelve store profiles and names): the test sets the filters as
the owner would, reads the answer off the page, and holds it to the API and to a count of its
own over the receipts written.

(a) which store is underperforming this month against last month?  (month to date per store)
(b) what sells best at the airport in the morning?                   (top products, store, hours)
(c) was yesterday a normal day?                                        (the yesterday strip)
(d) which hours need more baristas, per store and weekday?            (the heat map, one store)
(e) how does today compare with the same weekday last week?           (the "Sales today" card)
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from test_dashboard import (
    MIN_COMPARED_RECEIPTS,
    SLOW_MS,
    STORES,
    LiveServer,
    api,
    browser,
    open_page,
    sync,
    text,
)

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.options import demo_store_names
from coffeeshop.demo.writer import write_jsonl

__all__ = ["browser"]  # the fixture these tests share

NAMES = dict(pair.split("=", 1) for pair in demo_store_names(STORES).split(","))
STORE_OF = {name: int(store) for store, name in NAMES.items()}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
EUROS = "(v) => new Intl.NumberFormat(undefined, {style: 'currency', currency: 'EUR'}).format(v)"
LOADED = """() => document.querySelectorAll('#mtd-table tbody tr').length > 0
    && document.getElementById('kpi-today').textContent !== '–'
    && document.getElementById('yesterday-verdict').textContent !== '–'
    && Chart.getChart('chart-products')?.data.labels.length > 0
    && document.querySelectorAll('#heatmap .cell').length > 0"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """Twelve stores with the demo's profiles: 70 days up to now (every line a new, valid
    receipt, so the test can count them itself), served with the demo's names in euros."""
    directory = tmp_path_factory.mktemp("chain")
    url = f"sqlite:///{directory / 'analysis.db'}"
    source = directory / "receipts.jsonl"
    now = dt.datetime.now().replace(microsecond=0)
    history = ReceiptGenerator(
        seed=21, stores=STORES, start=now.date() - dt.timedelta(days=69), days=70, until=now
    )
    write_jsonl(source, 40_000, generator=history)
    write_jsonl(source, 60, generator=ReceiptGenerator(seed=22, stores=STORES, live=True))
    sync(url, source)
    with LiveServer(url, store_names=demo_store_names(STORES)) as live:
        yield live, source


def shown_change(pct: float | None, counts: tuple[int, int]) -> str:
    """What the page writes for a change (app.js changeOf): "too few receipts" below the
    threshold on either side, else the percentage to one place, halves away from zero (and
    no arrow for what rounds to zero)."""
    if min(counts) < MIN_COMPARED_RECEIPTS:
        return "too few receipts to compare"
    if pct is None:
        return "–"
    if abs(pct) < 0.05:
        return "± 0.0 %"
    size = Decimal(abs(pct)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{'▲ +' if pct >= 0 else '▼ −'}{size} %"


def receipts(source: Path) -> Iterator[dict[str, Any]]:
    with source.open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def test_the_owner_answers_five_questions_from_the_dashboard(
    browser: Any, chain: tuple[LiveServer, Path]
) -> None:
    server, source = chain
    page, problems = open_page(browser, server.base, viewport={"width": 1440, "height": 900})
    page.goto(f"{server.base}/")
    page.wait_for_function(LOADED, timeout=SLOW_MS)
    now = dt.datetime.fromisoformat(api(server, "display")["now"])
    today = now.date()
    money = lambda value: page.evaluate(EUROS, value)  # noqa: E731 - the page's formatting

    # (a) The month to date, ranked by change: the weakest store is the last row.
    month = today.strftime("%Y-%m")
    ranking = api(server, f"store_month_to_date?month={month}")
    rows = page.query_selector_all("#mtd-table tbody tr")
    assert [str(row.query_selector("th").text_content()) for row in rows] == [
        NAMES[str(r["store_id"])] for r in ranking
    ]
    weakest = min(
        (r for r in ranking if r["change_pct"] is not None), key=lambda r: float(r["change_pct"])
    )
    row = page.query_selector(f"#mtd-table tbody tr[data-store='{weakest['store_id']}']")
    assert row is not None
    cells = [str(c.text_content()) for c in row.query_selector_all("td")]
    assert cells[1:3] == [money(weakest["sales"]), money(weakest["previous_sales"])]
    counts = (weakest["receipts"], weakest["previous_receipts"])
    assert cells[3] == shown_change(float(weakest["change_pct"]), counts)
    # ... and those figures are the store's days of this month, summed from /store_daily.
    days = api(server, f"store_daily?store_id={weakest['store_id']}&day_from={month}-01")
    assert sum(float(d["sales"]) for d in days) == pytest.approx(float(weakest["sales"]))

    # (b) At the airport in the morning (07:00-10:59): the best seller and its units.
    page.select_option("#filter-store", str(STORE_OF["Airport"]))
    page.select_option("#products-hour-from", "07")
    page.select_option("#products-hour-to", "10")
    page.wait_for_function(
        "() => document.getElementById('products-note').textContent.includes('07:00–10:59')"
        " && document.getElementById('products-note').textContent.includes('Airport')",
        timeout=SLOW_MS,
    )
    chart = page.evaluate("Chart.getChart('chart-products').data")
    units: Counter[str] = Counter()
    for doc in receipts(source):
        if doc["Store_ID"] == STORE_OF["Airport"] and 7 <= int(doc["transactionTime"][:2]) <= 10:
            for item in doc["items"]:
                units[item["product_name"]] += item["product_quantity"]
    best = units.most_common(1)[0]
    assert (chart["labels"][0], chart["datasets"][0]["data"][0]) == best
    assert chart["datasets"][0]["data"] == sorted(chart["datasets"][0]["data"], reverse=True)

    # ... and this past week only: the day filters (today and the six days before it).
    week_start = today - dt.timedelta(days=6)
    page.fill("#filter-from", week_start.isoformat())
    week: Counter[str] = Counter()
    for doc in receipts(source):
        if (
            doc["Store_ID"] == STORE_OF["Airport"]
            and 7 <= int(doc["transactionTime"][:2]) <= 10
            and doc["transactionDate"] >= week_start.isoformat()
        ):
            for item in doc["items"]:
                week[item["product_name"]] += item["product_quantity"]
    page.wait_for_function(
        "([label, units]) => { const d = Chart.getChart('chart-products').data;"
        " return d.labels[0] === label && d.datasets[0].data[0] === units; }",
        arg=list(week.most_common(1)[0]),
        timeout=SLOW_MS,
    )
    page.click("#filter-reset")  # every day again (and every store)
    assert page.input_value("#filter-from") < week_start.isoformat()
    # The verdict read "Airport: ..." before the reset already: wait for the reset's own
    # answer, else the airport's wait below passes at once and the reset's answer lands after.
    page.wait_for_function(
        "() => document.getElementById('yesterday-verdict').textContent.startsWith('All stores:')",
        timeout=SLOW_MS,
    )
    page.select_option("#filter-store", str(STORE_OF["Airport"]))

    page.wait_for_function(
        "() => document.getElementById('yesterday-verdict').textContent.startsWith('Airport:')",
        timeout=SLOW_MS,
    )

    # (c) Yesterday against its usual weekday, for the airport, then for the whole chain.
    yesterday = today - dt.timedelta(days=1)
    check = api(server, f"day_check?day={yesterday}")
    airport = next(r for r in check if r["store_id"] == STORE_OF["Airport"])
    verdict = text(page, "#yesterday-verdict")
    assert verdict.startswith(f"Airport: {money(airport['sales'])} in {airport['receipts']:,}")
    assert ("within its usual range" in verdict) == (not airport["sales_outside"]), verdict
    receipts_yesterday = sum(
        1
        for doc in receipts(source)
        if doc["Store_ID"] == STORE_OF["Airport"] and doc["transactionDate"] == str(yesterday)
    )
    assert airport["receipts"] == receipts_yesterday

    # (d) Baristas at the airport: the busiest hour of each weekday, off the heat map.
    page.wait_for_function(
        "() => document.querySelectorAll('#heatmap [data-weekday]').length === 7",
        timeout=SLOW_MS,
    )
    hours = api(server, f"store_weekday_hours?store_id={STORE_OF['Airport']}")
    for weekday in range(1, 8):
        cells_of = [r for r in hours if r["weekday"] == weekday]
        busiest = max(cells_of, key=lambda r: (float(r["average_receipts"]), -r["hour"]))
        peak = page.query_selector(f"#heatmap [data-weekday='{weekday}'] .cell.peak")
        assert peak is not None, WEEKDAYS[weekday - 1]
        assert peak.get_attribute("data-hour") == str(busiest["hour"]), WEEKDAYS[weekday - 1]
        peak.click()
        readout = text(page, "#heat-readout")
        assert readout.startswith(f"Airport, {WEEKDAYS[weekday - 1]}s, {busiest['hour']:02d}:00")

    # ... and across the chain on Mondays: each store's row is its average Monday.
    page.select_option("#filter-store", "")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#heatmap [data-store]').length === n",
        arg=STORES,
        timeout=SLOW_MS,
    )
    page.select_option("#heat-weekday", "1")
    mondays = {
        (r["store_id"], r["hour"]): float(r["average_receipts"])
        for r in api(server, "store_weekday_hours")
        if r["weekday"] == 1
    }
    shown = page.evaluate(
        "() => [...document.querySelectorAll('#heatmap [data-store] .cell')]"
        ".filter((c) => Number(c.dataset.count) > 0)"
        ".map((c) => [Number(c.closest('[data-store]').dataset.store),"
        " Number(c.dataset.hour), Number(c.dataset.count)])"
    )
    assert {(store, hour): count for store, hour, count in shown} == mondays
    assert "average Monday" in text(page, "#heat-note")

    # (e) Today against the same weekday last week, for the whole chain.
    rows = {r["period"]: r for r in api(server, "sales_comparison")}
    page.wait_for_function(
        "(v) => document.getElementById('kpi-today').textContent === v",
        arg=money(rows["today"]["sales"]),
        timeout=SLOW_MS,
    )
    mine = sum(
        1 for doc in receipts(source) if doc["transactionDate"] == today.isoformat()
    )  # every receipt of today so far (none is later than now)
    assert rows["today"]["receipts"] == mine
    before = rows["same_day_last_week"]
    today_sales, before_sales = float(rows["today"]["sales"]), float(before["sales"])
    pct = 100 * (today_sales - before_sales) / before_sales if before_sales > 0 else None
    counts = (rows["today"]["receipts"], before["receipts"])
    assert text(page, "#kpi-today-change") == shown_change(pct, counts)
    assert problems.seen == [] and problems.foreign == []
    page.close()
