"""The API docs (/docs, /redoc) work with no network, and every page is sent with a
Content-Security-Policy and no-framing headers: a real `coffeeshop serve`, real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from test_api_serve import Server
from test_api_support import fill
from test_dashboard import CHROMIUM, CHROMIUM_ARGS, require_chromium


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("api_docs")
    url = f"sqlite:///{directory / 'analysis.db'}"
    fill(url, directory)
    server = Server(directory, "--db", url)
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Offline:
    """A page whose requests beyond 127.0.0.1 are aborted and recorded, with its console
    errors (a Content-Security-Policy violation is one) and failed loads."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.problems: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status} {response.url}")

    def _route(self, route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def close(self) -> None:
        self.context.close()


def test_swagger_ui_works_offline_under_the_policy(served: Server, browser: Any) -> None:
    offline = Offline(browser)
    try:
        offline.page.goto(f"http://127.0.0.1:{served.port}/docs")
        offline.page.wait_for_selector("text=/store_monthly", timeout=20_000)
        offline.page.click("text=/store_monthly")  # open an operation: its parameters render
        offline.page.wait_for_selector("text=month_from", timeout=10_000)
        assert offline.page.locator(".opblock").count() >= 8
    finally:
        offline.close()
    assert offline.outside == []
    assert offline.problems == []


def test_redoc_works_offline_under_the_policy(served: Server, browser: Any) -> None:
    offline = Offline(browser)
    try:
        offline.page.goto(f"http://127.0.0.1:{served.port}/redoc")
        offline.page.wait_for_selector("text=Coffeeshop Analytics API", timeout=20_000)
        heading = offline.page.locator("h2", has_text="Quarantined input, oldest first")
        heading.wait_for(timeout=10_000)  # an operation rendered from the spec
    finally:
        offline.close()
    assert offline.outside == []
    assert offline.problems == []


def test_every_response_has_a_policy_and_forbids_framing(served: Server) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{served.port}") as client:
        for path in ("/", "/docs", "/redoc", "/store_monthly", "/health", "/no/such/page"):
            headers = client.get(path).headers
            policy = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy, path
            assert "default-src 'self'" in policy and "script-src 'self';" in policy, path
            assert "unsafe-eval" not in policy and "http" not in policy, path
            assert headers.get_list("x-frame-options") == ["DENY"], path  # once
            assert headers.get_list("x-content-type-options") == ["nosniff"], path
            assert len(headers.get_list("content-security-policy")) == 1, path
        # Only the docs pages may use inline styles; the dashboard may not.
        assert "'unsafe-inline'" not in client.get("/").headers["content-security-policy"]
        assert "'unsafe-inline'" in client.get("/docs").headers["content-security-policy"]
        cached = client.get("/store_monthly")  # answered by the cache's fast path
        assert cached.headers.get_list("x-frame-options") == ["DENY"]
        etag = cached.headers["etag"]
        unchanged = client.get("/store_monthly", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304
        assert unchanged.headers.get_list("x-frame-options") == ["DENY"]
        assert cached.headers.get_list("x-content-type-options") == ["nosniff"]
        assert unchanged.headers.get_list("x-content-type-options") == ["nosniff"]
        assert "cdn" not in client.get("/docs").text and "http" not in client.get("/redoc").text


def test_a_page_elsewhere_cannot_frame_the_dashboard(served: Server, browser: Any) -> None:
    offline = Offline(browser)
    try:
        offline.page.set_content(
            f'<iframe id="f" src="http://127.0.0.1:{served.port}/"></iframe>',
            wait_until="load",
        )
        frame = offline.page.frame_locator("#f")
        assert frame.locator("#status").count() == 0  # the dashboard never rendered in it
        framed = [f for f in offline.page.frames if f != offline.page.main_frame]
        assert framed and all("Coffeeshop" not in f.title() for f in framed)
    finally:
        offline.close()
    assert any("frame" in problem for problem in offline.problems), offline.problems
