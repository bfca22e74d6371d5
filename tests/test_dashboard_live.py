"""The dashboard's pushed updates (dashboard/live.js over `GET /events`), in Chromium: the page
goes live on the stream, follows a commit, falls back to polling when the stream cannot be
had, and takes the stream again when the server comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_dashboard import (  # noqa: F401  (fixtures)
    READY,
    SLOW_MS,
    STORES,
    LiveServer,
    append_live_receipts,
    browser,
    history,
    open_page,
    text,
)

PUSH_IS = "(state) => document.documentElement.dataset.push === state"
VERSION_SHOWN = (
    "(version) => document.getElementById('engine').textContent.includes("
    "'data version ' + new Intl.NumberFormat().format(version))"
)


def follows_a_commit(page: Any, data: tuple[str, Path], *, seed: int, push: str) -> None:
    """New receipts are committed; the page shows their data version, in the push state
    `push` ("live" or "off") before and after."""
    page.wait_for_function(PUSH_IS, arg=push, timeout=SLOW_MS)
    before = page.evaluate("async () => (await (await fetch('pipeline')).json()).data_version")
    append_live_receipts(data[0], data[1], 50, seed=seed)
    page.wait_for_function(VERSION_SHOWN, arg=int(before) + 1, timeout=SLOW_MS)
    assert page.evaluate("document.documentElement.dataset.push") == push


def test_the_page_goes_live_on_the_stream_and_follows_a_commit(
    browser: Any,  # noqa: F811
    history: tuple[str, Path],  # noqa: F811
) -> None:
    with LiveServer(history[0]) as live:
        page, problems = open_page(browser, live.base)
        page.goto(f"{live.base}/")
        page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
        follows_a_commit(page, history, seed=21, push="live")
        assert sum(url.endswith("/events") for url in problems.requests) == 1  # never reopened
        assert problems.seen == []
        assert problems.foreign == []
        page.close()


def test_without_the_stream_the_page_polls_and_still_follows(
    browser: Any,  # noqa: F811
    history: tuple[str, Path],  # noqa: F811
) -> None:
    with LiveServer(history[0]) as live:
        page = browser.new_page()
        page.route("**/events", lambda route: route.abort())  # a proxy that refuses streams
        page.goto(f"{live.base}/")
        page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
        follows_a_commit(page, history, seed=22, push="off")
        page.close()


def test_the_page_takes_the_stream_again_when_the_server_comes_back(
    browser: Any,  # noqa: F811
    history: tuple[str, Path],  # noqa: F811
) -> None:
    with LiveServer(history[0]) as first:
        port = first.port
        page = browser.new_page()
        page.goto(f"{first.base}/")
        page.wait_for_function(PUSH_IS, arg="live", timeout=SLOW_MS)
    page.wait_for_function(PUSH_IS, arg="off", timeout=SLOW_MS)
    with LiveServer(history[0], port=port):
        follows_a_commit(page, history, seed=23, push="live")
        assert "offline" not in text(page, "#freshness")
        page.close()


def test_the_pushed_counts_are_written_without_asking_pipeline(
    browser: Any,  # noqa: F811
    history: tuple[str, Path],  # noqa: F811
) -> None:
    """The event carries the pipeline state: the engine line follows a commit even when
    /pipeline cannot be reached (the page asks it only when the stream is down)."""
    with LiveServer(history[0]) as live:
        page, _ = open_page(browser, live.base)
        page.goto(f"{live.base}/")
        page.wait_for_function(READY, arg=STORES, timeout=SLOW_MS)
        page.wait_for_function(PUSH_IS, arg="live", timeout=SLOW_MS)
        before = page.evaluate("async () => (await (await fetch('pipeline')).json()).data_version")
        page.route("**/pipeline", lambda route: route.abort())
        append_live_receipts(history[0], history[1], 50, seed=24)
        page.wait_for_function(VERSION_SHOWN, arg=int(before) + 1, timeout=SLOW_MS)
        assert "offline" not in text(page, "#freshness")
        page.close()
