"""The live dashboard at "/": served by the API app, and driven in headless Chromium.

The browser tests use Debian's Chromium (/usr/bin/chromium, installed by
scripts/ensure-chromium.sh) through Playwright's Python package; `playwright install` is never
used. Without that browser they are skipped with the reason, and fail when CI=true.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from coffeeshop.api import ApiSettings, create_app
from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.writer import write_jsonl
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STORES = 12
TOKEN = "dashboard-test-token"
STORE_NAMES = "1=Downtown,2=Harbour,3=Airport"
# The dashboard shows a change in % only from this many receipts on each side (app.js).
MIN_COMPARED_RECEIPTS = 30
# How long the page may take to show something: generous, for a loaded machine (a wait ends
# as soon as its condition holds, so this costs nothing on a quiet one).
SLOW_MS = 120_000


# -- a database with history, and the app serving it on a real port ---------------------------


def sync(url: str, source: Path) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(source), read_ahead=False).run()


def append_live_receipts(url: str, source: Path, count: int, *, seed: int) -> None:
    """New receipts stamped now, some invalid, applied by the sync engine."""
    generator = ReceiptGenerator(seed=seed, stores=STORES, live=True, invalid_share=0.05)
    write_jsonl(source, count, generator=generator)
    sync(url, source)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """An SQLite database synced from 60 days of receipts: (URL, source file)."""
    directory = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{directory / 'analysis.db'}"
    source = directory / "receipts.jsonl"
    now = dt.datetime.now().replace(microsecond=0)
    generator = ReceiptGenerator(
        seed=3,
        stores=STORES,
        start=now.date() - dt.timedelta(days=60),
        days=61,
        until=now,  # the history reaches today, so "today so far" has sales
        update_share=0.01,
        delete_share=0.005,
        invalid_share=0.02,
    )
    write_jsonl(source, 20_000, generator=generator)
    # Today's history alone can be empty (a run soon after midnight, when the shops are
    # quiet): a few receipts stamped now make "today so far" have sales at any hour.
    live = ReceiptGenerator(seed=4, stores=STORES, live=True)
    write_jsonl(source, 50, generator=live)
    sync(url, source)
    return url, source


class LiveServer:
    """The API app under uvicorn, in a thread, on a free port."""

    def __init__(
        self, url: str, *, token: str | None = None, port: int | None = None, **overrides: Any
    ) -> None:
        if port is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        self.port = port
        settings = ApiSettings(
            db=url,
            async_db="",
            api_token=token,
            cors_origins="",
            api_refresh=0.1,
            currency="EUR",
            store_names=STORE_NAMES,
        ).model_copy(update=overrides)
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + SLOW_MS / 1000
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(history: tuple[str, Path]) -> Iterator[LiveServer]:
    with LiveServer(history[0]) as live:
        yield live


# -- the page and its assets, without a browser ----------------------------------------------


def test_the_page_and_its_assets_are_served_and_public_with_a_token(
    history: tuple[str, Path],
) -> None:
    with LiveServer(history[0], token=TOKEN) as live, httpx.Client(base_url=live.base) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'src="dashboard/app.js"' in page.text
        for asset, kind in (
            ("dashboard/app.js", "javascript"),
            ("dashboard/app.css", "text/css"),
            ("dashboard/favicon.svg", "image/svg+xml"),
            ("dashboard/vendor/chart.js/chart.umd.min.js", "javascript"),
            ("dashboard/vendor/chart.js/LICENSE.md", ""),
        ):
            response = client.get(f"/{asset}")
            assert response.status_code == 200, asset
            assert kind in response.headers["content-type"], asset
        assert '<script src="http' not in page.text  # nothing from the internet
        assert client.get("/receipts_summary").status_code == 401  # the data stays protected
        assert client.get("/docs").status_code == 200
        assert "/" not in client.get("/openapi.json").json()["paths"]
        assert client.get("/no/such/page").status_code == 404
        assert client.get("/dashboard/../pyproject.toml").status_code == 404


# -- in the browser -------------------------------------------------------------------------


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (run: bash scripts/ensure-chromium.sh)"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true needs the browser test", pytrace=False)
    print(f"skipping the dashboard browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# The policy the hardened API sends: everything from the page's own origin, nothing inline.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class Problems:
    """Everything that would show as an error in the browser's console, failed requests, and
    every request that left the page's own origin (the offline rule)."""

    def __init__(self, page: Any, origin: str) -> None:
        self.origin = origin
        self.seen: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []
        self._answered_304: set[Any] = set()
        self.not_modified = 0  # responses
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        url = request.url
        self.requests.append(url)
        if not (url.startswith(f"{self.origin}/") or url.startswith(("blob:", "data:"))):
            self.foreign.append(url)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.seen.append(f"console {message.type}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status == 304:
            self._answered_304.add(response.request)
            self.not_modified += 1
        elif response.status >= 400:
            self.seen.append(f"HTTP {response.status}: {response.url}")

    def _failed(self, request: Any) -> None:
        # Chromium reports a 304 to fetch() as a load failure (ERR_ABORTED: no body) on the
        # DevTools protocol, while the page gets the 304 and logs nothing.
        if request in self._answered_304 and request.failure == "net::ERR_ABORTED":
            return
        self.seen.append(f"failed: {request.url} {request.failure}")


def open_page(browser: Any, base: str, **options: Any) -> tuple[Any, Problems]:
    """The dashboard in a new page, served with the strict CSP (added to the page's response,
    so the test holds whatever the API sends itself)."""
    page = browser.new_page(**options)
    problems = Problems(page, base)

    def with_csp(route: Any) -> None:
        response = route.fetch()
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": STRICT_CSP}
        )

    page.route(f"{base}/", with_csp)
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(base) else route.abort(),
    )
    return page, problems


# A phone, as the browser tests hold one.
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}


def ready_page(browser: Any, server: LiveServer, **options: Any) -> tuple[Any, Problems]:
    """The dashboard opened (open_page) and waited for until every panel has data."""
    page, problems = open_page(browser, server.base, **options)
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
    return page, problems


PAINTED = """(id) => {
    const canvas = document.getElementById(id);
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return painted;
}"""
CHART_POINTS = "(id) => Chart.getChart(id).data.datasets.reduce((n, d) => n + d.data.length, 0)"
CHART_LABELS = "(id) => Chart.getChart(id).data.labels"
# One store chosen: the heat map's rows are its seven weekdays.
ONE_STORE_WEEK = """() => document.querySelectorAll('#heatmap [data-weekday]').length === 7
    && document.querySelectorAll('#heatmap [data-store]').length === 0"""
READY = """(stores) =>
    document.querySelectorAll("#heatmap .cell.peak").length === stores
    && document.getElementById("kpi-week").textContent !== "–"
    && document.querySelectorAll("#quarantine-table tbody tr").length > 0
    && !!window.Chart && Chart.getChart("chart-monthly")?.data.datasets.length > 0
    && Chart.getChart("chart-trend")?.data.datasets.length > 0
    && Chart.getChart("chart-products")?.data.datasets.length > 0"""
# What the page shows for an amount: the browser's own currency formatting.
EUROS = "(v) => new Intl.NumberFormat(undefined, {style: 'currency', currency: 'EUR'}).format(v)"


def text(page: Any, selector: str) -> str:
    return str(page.text_content(selector)).strip()


def api(server: LiveServer, path: str) -> Any:
    response = httpx.get(f"{server.base}/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def test_dashboard_shows_every_panel_and_follows_new_receipts(
    browser: Any, server: LiveServer, history: tuple[str, Path], tmp_path: Path
) -> None:
    page, problems = open_page(browser, server.base, viewport={"width": 1440, "height": 900})
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)

    # KPIs: the honest comparisons, in euros with the browser's formatting.
    rows = {r["period"]: r for r in api(server, "sales_comparison")}
    assert rows["today"]["receipts"] > 0  # the history reaches today
    assert text(page, "#kpi-today") == page.evaluate(EUROS, rows["today"]["sales"])
    assert text(page, "#kpi-week") == page.evaluate(EUROS, rows["week_to_date"]["sales"])
    assert text(page, "#kpi-receipts") == f"{rows['week_to_date']['receipts']:,}"
    assert text(page, "#kpi-spend") == page.evaluate(EUROS, rows["week_to_date"]["spend_per_rcpt"])
    assert "€" in text(page, "#kpi-week")
    until = f"until {rows['today']['until_hour']:02d}:59"
    assert until in text(page, "#kpi-today-note")
    assert until in text(page, "#kpi-week-note")  # the same part of last week, said so
    for kpi, (now, before) in (
        ("today", ("today", "same_day_last_week")),
        ("week", ("week_to_date", "same_period_last_week")),
        ("receipts", ("week_to_date", "same_period_last_week")),
    ):
        shown = text(page, f"#kpi-{kpi}-change")
        if min(rows[now]["receipts"], rows[before]["receipts"]) < MIN_COMPARED_RECEIPTS:
            assert shown == "too few receipts to compare", kpi  # soon after midnight, say
        else:
            assert shown.endswith("%"), kpi

    # The charts: data in the chart objects and paint on their canvases.
    for chart in ("chart-trend", "chart-monthly", "chart-products"):
        page.wait_for_function(f"({PAINTED})('{chart}') > 2000", timeout=SLOW_MS)
    assert page.evaluate(CHART_POINTS, "chart-products") == 10
    trend = page.evaluate("Chart.getChart('chart-trend').data.datasets[0].data")
    start = (dt.date.today() - dt.timedelta(days=29)).isoformat()
    assert trend == [r["sales"] for r in api(server, f"daily_sales?day_from={start}")]
    labels = page.evaluate(CHART_LABELS, "chart-monthly")
    assert labels[:3] == ["Downtown", "Harbour", "Airport"] and labels[3] == "Store 4"

    # The heat map shades every (store, hour) with receipts; a click reads one out.
    hours = api(server, "store_hours")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#heatmap .cell[style*=background]').length === n",
        arg=len(hours),
        timeout=SLOW_MS,
    )
    first = hours[0]
    page.click(f"#heatmap [data-store='{first['store_id']}'] .cell[data-hour='{first['hour']}']")
    assert f"{first['receipts']:,} receipts" in text(page, "#heat-readout")

    # Quarantine: counts by field and the latest entries with reason, position and raw text.
    reasons = api(server, "quarantine_reasons?by=field")
    shown = page.query_selector_all("#quarantine-reasons li")
    assert len(shown) == min(8, len(reasons))
    assert text(page, "#quarantine-reasons li:first-child .what") == reasons[0]["reason"]
    total = sum(r["entries"] for r in reasons)
    latest = api(server, f"quarantine?offset={max(0, total - 8)}&limit=8")[::-1]
    cells = page.query_selector_all("#quarantine-table tbody tr")
    assert len(cells) == len(latest)
    assert text(page, "#quarantine-table tbody tr:first-child td.reason") == latest[0]["reason"]
    assert text(page, "#quarantine-table tbody tr:first-child td.where") == latest[0]["position"]
    raw = page.evaluate(
        "async () => (await fetch(document.querySelector('#quarantine-table a.raw').href)).text()"
    )
    assert raw == latest[0]["raw"]
    assert "changes applied" in text(page, "#engine") and "data version" in text(page, "#engine")

    # New receipts arrive: the page follows without a reload, within about a second.
    kpis = {kpi: text(page, kpi) for kpi in ("#kpi-today", "#kpi-week", "#engine")}

    url, source = history
    append_live_receipts(url, source, 400, seed=11)
    page.wait_for_function(
        "(before) => Object.entries(before).every("
        "([id, value]) => document.querySelector(id).textContent.trim() !== value)",
        arg=kpis,
        timeout=SLOW_MS,
    )
    # How fast is the freshness benchmark's business (docs/benchmarks.md), not this test's.
    assert re.fullmatch(r"updated (just now|\d+ s ago)", text(page, "#freshness"))

    page.wait_for_timeout(800)
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    polled = len(problems.requests)
    page.wait_for_timeout(2000)  # nothing changes: only the small pipeline poll goes out
    with page.expect_request(lambda r: r.url.endswith("/pipeline"), timeout=SLOW_MS):
        pass  # and it keeps going out
    quiet = problems.requests[polled:]
    assert 1 <= len(quiet) <= 7 and all(u.endswith("/pipeline") for u in quiet), quiet
    assert problems.seen == []  # no console error, no CSP violation, no failed request
    assert problems.foreign == []  # nothing leaves the machine
    page.close()


def test_filters_drive_every_filterable_panel(browser: Any, server: LiveServer) -> None:
    page, problems = open_page(browser, server.base, viewport={"width": 1280, "height": 900})
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
    page.select_option("#filter-store", "3")
    page.wait_for_function(ONE_STORE_WEEK, timeout=SLOW_MS)
    assert page.evaluate(CHART_LABELS, "chart-monthly") == ["Airport"]
    rows = {r["period"]: r for r in api(server, "sales_comparison?store_id=3")}
    page.wait_for_function(
        "(v) => document.getElementById('kpi-week').textContent === v",
        arg=page.evaluate(EUROS, rows["week_to_date"]["sales"]),
    )
    start = (dt.date.today() - dt.timedelta(days=29)).isoformat()
    store_trend = [r["sales"] for r in api(server, f"daily_sales?store_id=3&day_from={start}")]
    page.wait_for_function(
        "(v) => { const d = Chart.getChart('chart-trend').data.datasets[0].data;"
        " return d.length === v.length && d.every((x, i) => x === v[i]); }",
        arg=store_trend,
    )
    assert "Airport" in text(page, "#trend-note")

    # A range of days within one month: the monthly chart shows that month (and says it
    # shows whole months), the trend and the day-based panels keep to the days.
    months = sorted({r["month"] for r in api(server, "store_monthly")})
    first = api(server, "daily_sales?limit=1")[0]["day"]
    assert page.get_attribute("#filter-from", "min") == first
    assert page.input_value("#filter-from") == first  # the default: every day on record
    start = f"{months[1]}-03"
    end = min(dt.date.today(), dt.date.fromisoformat(f"{months[1]}-20"))
    page.fill("#filter-from", start)
    page.fill("#filter-to", end.isoformat())
    page.wait_for_function(
        "(n) => Chart.getChart('chart-monthly').data.datasets.length === n", arg=1
    )
    page.wait_for_function(
        "() => document.getElementById('monthly-note').textContent.includes('whole months')",
        timeout=SLOW_MS,
    )
    page.check("input[name=window][value='90']")
    # Top products and the heat map keep to the store and the days too.
    days = f"store_id=3&day_from={start}&day_to={end}"
    products = api(server, f"item_sales?{days}&limit=10")
    page.wait_for_function(
        "(v) => JSON.stringify(Chart.getChart('chart-products').data.datasets[0].data)"
        " === JSON.stringify(v)",
        arg=[r["units"] for r in products],
        timeout=SLOW_MS,
    )
    assert page.evaluate(CHART_LABELS, "chart-products") == [r["product"] for r in products]
    assert "Airport" in text(page, "#products-note")
    week = api(server, f"store_weekday_hours?{days}")
    shown = page.evaluate(
        "() => [...document.querySelectorAll('#heatmap [data-weekday] .cell')]"
        ".filter((c) => Number(c.dataset.count) > 0)"
        ".map((c) => [Number(c.closest('[data-weekday]').dataset.weekday),"
        " Number(c.dataset.hour), Number(c.dataset.count)])"
    )
    assert sorted(shown) == sorted(
        [r["weekday"], r["hour"], float(r["average_receipts"])] for r in week
    )
    expected = api(server, f"daily_sales?{days}")
    page.wait_for_function(
        "(n) => Chart.getChart('chart-trend').data.labels.length === n", arg=len(expected)
    )
    # Every CSV button follows the filters too.
    assert page.get_attribute("#csv-monthly", "href") == (
        f"store_monthly?store_id=3&month_from={months[1]}&month_to={months[1]}&format=csv"
    )
    page.click("#filter-reset")
    page.wait_for_function(
        "(n) => document.querySelectorAll('#heatmap [data-store]').length === n", arg=STORES
    )
    assert page.input_value("#filter-from") == first  # back to every day on record
    assert problems.seen == [] and problems.foreign == []
    page.close()


def test_each_panel_downloads_its_table_as_csv(browser: Any, server: LiveServer) -> None:
    page, problems = open_page(browser, server.base, viewport={"width": 1280, "height": 900})
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
    page.select_option("#filter-store", "2")
    page.wait_for_function(ONE_STORE_WEEK, timeout=SLOW_MS)
    for button in (
        "csv-trend",
        "csv-monthly",
        "csv-check",
        "csv-mtd",
        "csv-products",
        "csv-heat",
        "csv-reasons",
        "csv-quarantine",
    ):
        href = page.get_attribute(f"#{button}", "href")
        with page.expect_download() as info:
            page.click(f"#{button}")
        download = info.value
        body = Path(download.path()).read_bytes().decode("utf-8")
        expected = httpx.get(f"{server.base}/{href}")
        assert expected.headers["content-type"].startswith("text/csv")
        assert body == expected.text, button
        assert download.suggested_filename.endswith(".csv")
        assert body.count("\n") >= 2, button  # a header and rows
    for button in ("csv-monthly", "csv-products", "csv-heat", "csv-check"):
        assert "store_id=2" in (page.get_attribute(f"#{button}", "href") or ""), button
    assert problems.seen == [] and problems.foreign == []
    page.close()


def test_dashboard_on_a_phone_taps_the_heat_map(browser: Any, server: LiveServer) -> None:
    page, problems = ready_page(browser, server, **PHONE)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the screen"
    for chart in ("chart-trend", "chart-monthly", "chart-products"):
        assert page.evaluate(f"document.getElementById('{chart}').clientWidth") <= 390
    width = page.evaluate("document.querySelector('#heatmap .cell').getBoundingClientRect().width")
    assert width >= 20, f"heat map cells are {width:.1f} px wide"  # a finger can hit one
    cell = page.query_selector("#heatmap [data-store='5'] .cell[data-hour='8']")
    assert cell is not None
    cell.scroll_into_view_if_needed()
    cell.tap()
    count = next(r["receipts"] for r in api(server, "store_hours?store_id=5") if r["hour"] == 8)
    assert text(page, "#heat-readout") == f"Store 5, 08:00–09:00: {count:,} receipts" or text(
        page, "#heat-readout"
    ).startswith(f"Store 5, 08:00–09:00: {count:,} receipts")
    assert problems.seen == [] and problems.foreign == []
    page.close()


# A radio group is one stop of the Tab key (its options move with the arrow keys).
FOCUSABLE = """() => [...document.querySelectorAll(
    'a[href], button, select, input, [tabindex]:not([tabindex="-1"])')]
    .filter((e) => e.offsetParent !== null && !e.closest('dialog'))
    .map((e) => e.type === 'radio' ? 'radio:' + e.name : e.id || e.getAttribute('href'))"""
ACTIVE = """() => { const e = document.activeElement;
    return e.type === 'radio' ? 'radio:' + e.name : e.id || e.getAttribute('href'); }"""
# WCAG 2.x contrast of every element's own text against the first opaque background behind it.
CONTRAST = """() => {
  const lum = (c) => { const [r, g, b] = c.map((v) => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const bad = [];
  for (const e of document.querySelectorAll('body *')) {
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || e.offsetParent === null || e.closest('dialog, .skip, canvas')) continue;
    const style = getComputedStyle(e);
    if (style.visibility === 'hidden') continue;
    let bg = null;
    for (let p = e; p; p = p.parentElement) {
      const c = rgba(getComputedStyle(p).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) { bg = c.slice(0, 3); break; }
    }
    bg = bg || [255, 255, 255];
    const fg = rgba(style.color).slice(0, 3);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), weight = Number(style.fontWeight);
    const large = size >= 24 || (size >= 18.66 && weight >= 700);
    const what = `${e.className || e.tagName} "${e.textContent.trim().slice(0, 20)}"`;
    if (ratio < (large ? 3 : 4.5)) bad.push(`${what} ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


def test_every_control_is_keyboard_reachable_and_text_has_aa_contrast(
    browser: Any, server: LiveServer
) -> None:
    page, problems = open_page(browser, server.base, viewport={"width": 1280, "height": 900})
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
    wanted = set(page.evaluate(FOCUSABLE))
    assert {"filter-store", "filter-from", "filter-to", "heatmap", "csv-monthly"} <= wanted
    reached = set()
    for _ in range(len(wanted) + 2 * 2 + 5):  # (a day filter's day, month, year: 3 stops)
        page.keyboard.press("Tab")
        reached.add(page.evaluate(ACTIVE))
    assert wanted <= reached, wanted - reached
    # The heat map by keyboard: focus it, move with the arrows, the count is read out.
    page.focus("#heatmap")
    page.keyboard.press("ArrowRight")
    readout = text(page, "#heat-readout")
    assert "receipts" in readout and readout.startswith("Downtown")
    # The trend window by keyboard: the arrow keys move within the radio group.
    page.focus("input[name=window]:checked")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.querySelector('input[name=window]:checked').value") == "90"
    # The store filter by keyboard.
    page.focus("#filter-store")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(ONE_STORE_WEEK, timeout=SLOW_MS)
    assert page.evaluate(CONTRAST) == []
    assert problems.seen == []
    page.close()


def test_dashboard_backs_off_while_the_api_is_away_and_tells_offline_from_no_database(
    browser: Any, history: tuple[str, Path], tmp_path: Path
) -> None:
    live = LiveServer(history[0])
    with live:
        page = browser.new_page()
        requests: list[float] = []
        page.on("request", lambda r: requests.append(time.monotonic()))
        page.goto(f"{live.base}/")
        page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
    # The server is gone: the page says offline and asks less and less often.
    page.wait_for_function(
        "() => document.getElementById('status').dataset.state === 'offline'", timeout=SLOW_MS
    )
    gone = time.monotonic()
    page.wait_for_timeout(8000)
    tries = [t for t in requests if t > gone]
    assert len(tries) <= 5, f"{len(tries)} requests in 8 s while the API is down"
    assert "offline" in text(page, "#freshness")
    page.close()

    # The server answers but its database file is missing: not "offline".
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    with LiveServer(missing) as broken:
        page = browser.new_page()
        page.goto(f"{broken.base}/")
        page.wait_for_function(
            "() => document.getElementById('status').dataset.state === 'unavailable'",
            timeout=SLOW_MS,
        )
        status = text(page, "#freshness")
        assert "database" in status and "offline" not in status, status
        page.close()


def test_dashboard_takes_the_token_from_the_url_fragment(
    browser: Any, history: tuple[str, Path]
) -> None:
    with LiveServer(history[0], token=TOKEN) as live:
        page, problems = open_page(browser, live.base)
        page.goto(f"{live.base}/#token={TOKEN}")
        page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
        assert "token" not in page.url  # kept out of the address bar and the history
        # A download sends the token too.
        with page.expect_download() as info:
            page.click("#csv-products")
        assert Path(info.value.path()).read_text(encoding="utf-8").startswith("product,units")
        assert problems.seen == []
        page.close()

        page = browser.new_page()  # no token: the page asks for one, and then loads
        page.goto(f"{live.base}/")
        page.wait_for_selector("#token-dialog[open]", timeout=SLOW_MS)
        assert page.get_attribute("#status", "data-state") == "locked"
        page.fill("#token-input", TOKEN)
        page.click("#token-form button")
        page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
        page.close()
