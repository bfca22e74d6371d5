"""The live dashboard at "/": served by the API app, and driven in headless Chromium.

The browser tests use Debian's Chromium (/usr/bin/chromium, installed by
scripts/ensure-chromium.sh) through Playwright's Python package; `playwright install` is never
used. Without that browser they are skipped with the reason, and fail when CI=true.
"""

from __future__ import annotations

import datetime as dt
import os
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
from coffeeshop.engine import Syncer
from coffeeshop.generator import ReceiptGenerator, write_jsonl
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
STORES = 12
TOKEN = "dashboard-test-token"


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
    generator = ReceiptGenerator(
        seed=3,
        stores=STORES,
        start=dt.date.today() - dt.timedelta(days=60),
        days=60,
        update_share=0.01,
        delete_share=0.005,
        invalid_share=0.02,
    )
    write_jsonl(source, 20_000, generator=generator)
    sync(url, source)
    return url, source


class LiveServer:
    """The API app under uvicorn, in a thread, on a free port."""

    def __init__(self, url: str, *, token: str | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        settings = ApiSettings(
            db=url, async_db="", api_token=token, cors_origins="", api_refresh=0.1
        )
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
        deadline = time.monotonic() + 15
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


class Problems:
    """Everything that would show as an error in the browser's console, and failed requests."""

    def __init__(self, page: Any) -> None:
        self.seen: list[str] = []
        self._answered_304: set[Any] = set()
        self.not_modified = 0  # responses
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

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


PAINTED = """(id) => {
    const canvas = document.getElementById(id);
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return painted;
}"""
CHART_POINTS = "(id) => Chart.getChart(id).data.datasets.reduce((n, d) => n + d.data.length, 0)"
READY = """(stores) =>
    document.querySelectorAll("#heatmap .cell.peak").length === stores
    && document.getElementById("kpi-this-week").textContent !== "–"
    && !!window.Chart && Chart.getChart("chart-monthly")?.data.datasets.length > 0
    && Chart.getChart("chart-products")?.data.datasets.length > 0"""


def text(page: Any, selector: str) -> str:
    return str(page.text_content(selector)).strip()


def test_dashboard_draws_the_tables_and_follows_new_receipts(
    browser: Any, server: LiveServer, history: tuple[str, Path]
) -> None:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    problems = Problems(page)
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=10_000)

    # The charts are drawn: data in the chart objects and paint on their canvases.
    for chart in ("chart-monthly", "chart-products"):
        assert page.evaluate(CHART_POINTS, chart) >= 10, chart
        page.wait_for_function(f"({PAINTED})('{chart}') > 2000", timeout=5_000)
    assert page.evaluate(CHART_POINTS, "chart-products") == 10
    assert len(page.query_selector_all("#heatmap [data-store]")) == STORES
    # The heat map shades every (store, hour) with receipts, not only the peaks.
    hours = httpx.get(f"{server.base}/store_hours").json()
    assert len(hours) > 2 * STORES
    page.wait_for_function(
        "(n) => document.querySelectorAll('#heatmap .cell[style*=background]').length === n",
        arg=len(hours),
        timeout=5_000,
    )
    first = hours[0]
    row = page.query_selector(f"#heatmap [data-store='{first['store_id']}']")
    assert row is not None
    title = row.query_selector_all(".cell")[first["hour"]].get_attribute("title") or ""
    assert f"{first['receipts']:,} receipts" in title, title
    for kpi in ("#kpi-spend", "#kpi-items", "#kpi-this-week", "#kpi-last-week"):
        assert any(ch.isdigit() for ch in text(page, kpi)), kpi
    assert text(page, "#kpi-change").endswith("%")
    assert int(text(page, "#kpi-quarantined").replace(",", "").replace("\u202f", "")) > 0
    assert "ago" in text(page, "#freshness") or "just now" in text(page, "#freshness")

    # New receipts arrive: the page follows without a reload, within about a second.
    before = {kpi: text(page, kpi) for kpi in ("#kpi-this-week", "#kpi-applied", "#version")}
    url, source = history
    append_live_receipts(url, source, 400, seed=11)
    committed = time.monotonic()
    page.wait_for_function(
        "(before) => Object.entries(before).every("
        "([id, value]) => document.querySelector(id).textContent.trim() !== value)",
        arg=before,
        timeout=5_000,
    )
    assert time.monotonic() - committed < 2.0  # polled every 0.5 s; the API re-reads at 0.1 s
    assert text(page, "#freshness") in ("updated just now", "updated 1 s ago", "updated 2 s ago")
    assert page.evaluate("document.querySelectorAll('canvas').length") == 2

    page.wait_for_timeout(800)  # let the bars and the highlight of changed numbers settle
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    polled = problems.not_modified
    page.wait_for_timeout(1200)  # two polls or so while nothing changes: the tables are 304s
    assert problems.not_modified - polled >= 4
    assert problems.seen == []  # before closing, which aborts the polls in flight
    page.close()


def test_dashboard_fits_a_phone(browser: Any, server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    problems = Problems(page)
    page.goto(f"{server.base}/")
    page.wait_for_function(READY, arg=STORES, timeout=10_000)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px wider than the screen"
    for chart in ("chart-monthly", "chart-products"):
        assert page.evaluate(f"document.getElementById('{chart}').clientWidth") <= 390
    page.close()
    assert problems.seen == []


def test_dashboard_takes_the_token_from_the_url_fragment(
    browser: Any, history: tuple[str, Path]
) -> None:
    with LiveServer(history[0], token=TOKEN) as live:
        page = browser.new_page()
        problems = Problems(page)
        page.goto(f"{live.base}/#token={TOKEN}")
        page.wait_for_function(READY, arg=STORES, timeout=10_000)
        assert "token" not in page.url  # kept out of the address bar and the history
        assert problems.seen == []
        page.close()

        page = browser.new_page()  # no token: the page asks for one, and then loads
        page.goto(f"{live.base}/")
        page.wait_for_selector("#token-dialog[open]", timeout=5_000)
        assert page.get_attribute("#status", "data-state") == "locked"
        page.fill("#token-input", TOKEN)
        page.click("#token-form button")
        page.wait_for_function(READY, arg=STORES, timeout=10_000)
        page.close()
