"""The dashboard's honesty about time (issue 21.3): a day or month still running is marked "so
far", a comparison over too few receipts says so instead of ▼ −99.9 %, every day and hour is
the shops' (COFFEESHOP_TIMEZONE), never the browser's; and its layout holds where it broke: all
twelve store names on the monthly chart at 1440 px, the quarantine list on a 390 px phone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_dashboard import (
    MIN_COMPARED_RECEIPTS,
    PHONE,
    SLOW_MS,
    STORES,
    LiveServer,
    api,
    browser,
    history,
    open_page,
    ready_page,
    server,
    sync,
    text,
)

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.options import demo_store_names
from coffeeshop.demo.writer import write_jsonl

__all__ = ["browser", "history", "server"]  # the fixtures these tests share

TOKYO = ZoneInfo("Asia/Tokyo")
FEW = "too few receipts to compare"


def synced_history(directory: Path, *, zone: dt.tzinfo | None, today: int) -> str:
    """A database of 21 days of receipts in `zone` ending last midnight, and `today` receipts
    stamped now: its URL."""
    url = f"sqlite:///{directory / 'analysis.db'}"
    source = directory / "receipts.jsonl"
    now = dt.datetime.now(zone).replace(tzinfo=None, microsecond=0)
    midnight = dt.datetime.combine(now.date(), dt.time())
    past = ReceiptGenerator(
        seed=8,
        stores=STORES,
        start=now.date() - dt.timedelta(days=21),
        days=21,
        until=midnight - dt.timedelta(seconds=1),
        invalid_share=0.02,
        zone=zone,
    )
    write_jsonl(source, 8_000, generator=past)
    live = ReceiptGenerator(seed=9, stores=STORES, live=True, zone=zone)
    write_jsonl(source, today, generator=live)
    sync(url, source)
    return url


def test_today_and_the_current_month_are_marked_so_far(browser: Any, server: LiveServer) -> None:
    page, problems = ready_page(browser, server, viewport={"width": 1440, "height": 900})
    now = dt.datetime.fromisoformat(api(server, "display")["now"])
    labels = page.evaluate("Chart.getChart('chart-trend').data.labels")
    assert labels[-1].endswith("(so far)"), labels[-1]  # the history reaches today
    assert not any("so far" in label for label in labels[:-1])
    assert f"today so far, until {now.hour:02d}:59" in text(page, "#trend-note")
    months = page.evaluate("Chart.getChart('chart-monthly').data.datasets.map((d) => d.label)")
    assert months[-1].endswith(" so far") and not any("so far" in m for m in months[:-1])
    assert "so far" in text(page, "#monthly-note")
    assert problems.seen == []
    page.close()


@pytest.fixture(scope="module")
def quiet_morning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Three weeks of trade and only five receipts today, as just after opening."""
    url = synced_history(tmp_path_factory.mktemp("quiet"), zone=None, today=5)
    with LiveServer(url) as live:
        yield live


def test_a_comparison_over_too_few_receipts_says_so(
    browser: Any, quiet_morning: LiveServer
) -> None:
    page, problems = open_page(browser, quiet_morning.base)
    page.goto(f"{quiet_morning.base}/")
    page.wait_for_function(
        "() => document.getElementById('kpi-today').textContent !== '–'", timeout=SLOW_MS
    )
    rows = {r["period"]: r for r in api(quiet_morning, "sales_comparison")}
    assert rows["today"]["receipts"] == 5
    assert text(page, "#kpi-today-change") == FEW  # not ▼ −99.x %
    assert "5 receipts against" in (page.get_attribute("#kpi-today-change", "title") or "")
    week = (rows["week_to_date"]["receipts"], rows["same_period_last_week"]["receipts"])
    for kpi in ("week", "receipts", "spend", "items"):
        shown = text(page, f"#kpi-{kpi}-change")
        if min(week) < MIN_COMPARED_RECEIPTS:
            assert shown == FEW, kpi
        else:
            assert shown.endswith("%") and "%" in shown, kpi
    assert problems.seen == []
    page.close()


def other_zone(zone: ZoneInfo) -> str:
    """A zone whose date differs from `zone`'s now (25 hours lie between these two)."""
    for candidate in ("Pacific/Pago_Pago", "Pacific/Kiritimati"):
        if dt.datetime.now(ZoneInfo(candidate)).date() != dt.datetime.now(zone).date():
            return candidate
    raise AssertionError("unreachable: the two zones are 25 hours apart")


def test_days_and_hours_are_the_shops_zone_not_the_browsers(browser: Any, tmp_path: Path) -> None:
    url = synced_history(tmp_path, zone=TOKYO, today=60)
    with LiveServer(url, timezone="Asia/Tokyo") as live:
        context = browser.new_context(timezone_id=other_zone(TOKYO))
        page, problems = open_page(context, live.base)
        page.goto(f"{live.base}/")
        page.wait_for_function(
            "() => document.getElementById('kpi-today').textContent !== '–'"
            " && Chart.getChart('chart-trend')?.data.labels.length > 0",
            timeout=SLOW_MS,
        )
        display = api(live, "display")
        tokyo_now = dt.datetime.fromisoformat(display["now"])
        assert display["timezone"] == "Asia/Tokyo"
        clock = text(page, "#clock")
        assert clock.endswith("· Asia/Tokyo") and str(tokyo_now.day) in clock, clock
        rows = {r["period"]: r for r in api(live, "sales_comparison")}
        assert rows["today"]["last_day"] == tokyo_now.date().isoformat()
        assert rows["today"]["receipts"] >= 60  # stamped in Tokyo: today's for the API too
        shown = text(page, "#kpi-today")
        assert shown == page.evaluate(
            "(v) => new Intl.NumberFormat(undefined, {style: 'currency', currency: 'EUR'})"
            ".format(v)",
            rows["today"]["sales"],
        )
        # The trend ends on Tokyo's today, marked so far, however the browser's clock reads.
        days = api(live, f"daily_sales?day_from={tokyo_now.date() - dt.timedelta(days=29)}")
        assert days[-1]["day"] == tokyo_now.date().isoformat()
        trend = page.evaluate("Chart.getChart('chart-trend').data")
        assert trend["datasets"][0]["data"] == [d["sales"] for d in days]
        assert trend["labels"][-1].endswith("(so far)")
        assert problems.seen == []
        context.close()


@pytest.fixture(scope="module")
def demo_names(history: tuple[str, Path]) -> Iterator[LiveServer]:
    """The history served with the demo's twelve store names (the longest is two words)."""
    with LiveServer(history[0], store_names=demo_store_names(STORES)) as live:
        yield live


# Every tick label of the monthly chart, and whether each fits its own slot of the axis.
MONTHLY_TICKS = """() => {
  const chart = Chart.getChart('chart-monthly'), scale = chart.scales.x;
  const ctx = chart.ctx;
  ctx.save();
  ctx.font = Chart.helpers.toFont(scale.options.ticks.font).string;
  const slot = scale.width / scale.ticks.length;
  const labels = scale.ticks.map((t) => t.label);
  const widest = labels.map((l) => Math.max(...[].concat(l).map((s) => ctx.measureText(s).width)));
  ctx.restore();
  return { labels: labels.map((l) => [].concat(l).join(' ')), rotation: scale.labelRotation,
           slot, widest: Math.max(...widest) };
}"""


def test_all_twelve_store_names_stand_on_the_monthly_chart_at_1440(
    browser: Any, demo_names: LiveServer
) -> None:
    page, problems = ready_page(browser, demo_names, viewport={"width": 1440, "height": 900})
    names = [name.split("=", 1)[1] for name in demo_store_names(STORES).split(",")]
    ticks = page.evaluate(MONTHLY_TICKS)
    assert ticks["labels"] == names  # none skipped
    assert ticks["rotation"] == 0  # upright
    assert ticks["widest"] < ticks["slot"], ticks  # no name runs into the next
    assert problems.seen == []
    page.close()


def test_the_quarantine_list_reads_on_a_phone(browser: Any, server: LiveServer) -> None:
    page, problems = ready_page(browser, server, **PHONE)
    rows = page.evaluate(
        """() => { const box = document.querySelector('#panel-quarantine .tablescroll');
        const edge = box.getBoundingClientRect().right;
        return { overflow: box.scrollWidth - box.clientWidth,
                 rows: [...box.querySelectorAll('tbody tr')].map((r) => ({
                   height: r.getBoundingClientRect().height,
                   cut: [...r.cells].filter((c) => c.getBoundingClientRect().right > edge + 0.5)
                     .map((c) => c.className) })) }; }"""
    )
    assert rows["overflow"] <= 0, rows  # nothing to scroll sideways for
    assert rows["rows"] and all(r["cut"] == [] for r in rows["rows"]), rows
    tallest = max(r["height"] for r in rows["rows"])
    assert tallest <= 160, f"a quarantine entry is {tallest:.0f} px tall"  # 237 px before
    # Every part of an entry is still there: its number, reason, place and input.
    first = page.query_selector("#quarantine-table tbody tr")
    assert first is not None
    assert all(first.query_selector(f"td.{part}") for part in ("id", "reason", "where", "input"))
    assert problems.seen == []
    page.close()
