"""`GET /events`: the data version pushed as Server-Sent Events, from a real `serve` process."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import receipt
from test_api_serve import Server, served  # noqa: F401  (a fixture)
from test_api_support import TODAY, sync

from coffeeshop.api.cache import VersionTag
from coffeeshop.api.database import DatabaseUnavailable
from coffeeshop.api.events import RETRY_MS, StreamSlots, version_stream

TOKEN = "events-test-token"
DEADLINE = 120.0  # seconds: generous, for a busy machine
STAMP = dt.datetime(2026, 11, 25, 12, 0)


class EventReader:
    """The events of one open stream, read line by line with a generous deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next_event(self, until: float | None = None) -> dict[str, str]:
        """The next event's fields (comment lines skipped: the heartbeat); with `until` (a
        `time.monotonic()`), fails at the first heartbeat after it."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                assert until is None or time.monotonic() < until, "no event by the deadline"
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise AssertionError(f"the stream ended; last fields {fields}")

    def next_version(self, until: float | None = None) -> int:
        while True:
            event = self.next_event(until)
            if event.get("event") == "version":
                assert event["id"] == str(json.loads(event["data"])["data_version"])
                return int(event["id"])


def client(port: int, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=httpx.Timeout(DEADLINE)
    )


def sell(url: str, tmp_path: Path, number: int) -> None:
    """One more receipt, applied by the real sync engine (a commit that moves the version)."""
    line = receipt(100 + number, store=1, date="2026-11-25", time="10:00", total="2.50")
    sync(url, tmp_path / "receipts.jsonl", [line], today=TODAY)


@pytest.fixture
def token_server(served: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:  # noqa: F811
    start, _ = served
    monkeypatch.setenv("COFFEESHOP_API_TOKEN", TOKEN)
    monkeypatch.setenv("COFFEESHOP_API_MAX_STREAMS", "2")
    yield start()


def test_a_commit_is_pushed_to_an_open_stream(
    served: tuple[Any, str],  # noqa: F811
    token_server: Server,
    tmp_path: Path,
) -> None:
    _, url = served
    with client(token_server.port) as http, http.stream("GET", "/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in response.headers["cache-control"]
        reader = EventReader(response)
        first = reader.next_version()
        sell(url, tmp_path, 1)
        assert reader.next_version() > first
        sell(url, tmp_path, 2)
        second = reader.next_version()
        assert second > first + 1
    # A client that reconnects gets the current version at once.
    with client(token_server.port) as http, http.stream("GET", "/events") as response:
        assert EventReader(response).next_version() == second


def test_the_stream_wants_the_token_and_an_allowed_host(token_server: Server) -> None:
    with client(token_server.port, token=None) as http:
        assert http.get("/events").status_code == 401
    with client(token_server.port, token="wrong") as http:
        assert http.get("/events").status_code == 401
    with client(token_server.port) as http:
        assert http.get("/events", headers={"Host": "evil.example"}).status_code == 400
        assert http.get("/events?since=3").status_code == 422  # unknown parameters
        head = http.head("/events")  # headers only, at once
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/event-stream")


def test_streams_past_the_cap_get_503_and_a_freed_slot_is_taken_again(
    token_server: Server,
) -> None:
    with client(token_server.port) as http:
        with http.stream("GET", "/events") as one, http.stream("GET", "/events") as two:
            readers = EventReader(one), EventReader(two)  # (a dropped reader closes its stream)
            version = readers[0].next_version()
            assert readers[1].next_version() == version
            third = http.get("/events")
            assert third.status_code == 503
            assert int(third.headers["retry-after"]) > 0
        # Both closed: the server notices and frees their slots (within the deadline).
        deadline = time.monotonic() + DEADLINE
        while True:
            with http.stream("GET", "/events") as again:
                if again.status_code == 200:
                    assert EventReader(again).next_version() == version
                    break
            assert time.monotonic() < deadline, "the closed streams kept their slots"
            time.sleep(0.2)
    assert token_server.stop()
    assert "Traceback" not in token_server.output()


class FakeWatcher:
    """A watcher whose version moves when the test says so."""

    def __init__(self) -> None:
        self.tag: VersionTag | None = VersionTag(7, STAMP)
        self.changed = asyncio.Event()

    async def moved(self, seen: VersionTag | None, timeout: float) -> VersionTag | None:
        if self.tag != seen:
            return self.tag
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return None
        self.changed.clear()
        return self.tag


def test_a_quiet_stream_sends_heartbeats_between_versions() -> None:
    async def run() -> list[bytes]:
        watcher = FakeWatcher()
        stream = version_stream(watcher, heartbeat=0.01)  # type: ignore[arg-type]
        chunks = [await anext(stream), await anext(stream), await anext(stream)]
        watcher.tag = VersionTag(8, STAMP)
        watcher.changed.set()
        while (chunk := await anext(stream)) == b": heartbeat\n\n":
            pass
        chunks.append(chunk)
        await stream.aclose()
        return chunks

    chunks = asyncio.run(run())
    assert chunks[0] == f"retry: {RETRY_MS}\n\n".encode()
    assert chunks[1] == b'event: version\nid: 7\ndata: {"data_version":7}\n\n'
    assert chunks[2] == b": heartbeat\n\n"
    assert chunks[3] == b'event: version\nid: 8\ndata: {"data_version":8}\n\n'


def test_an_event_carries_the_pipeline_body_or_the_version_alone() -> None:
    """The page writes the counts an event carries without asking /pipeline; when the last
    read of the database failed, the event still says the version."""
    bodies: list[Any] = [
        {"data_version": 7, "totals": {"applied": 12, "behind": None}},
        DatabaseUnavailable("the database is away"),
    ]

    def body() -> dict[str, Any]:
        answer = bodies.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run() -> list[bytes]:
        watcher = FakeWatcher()
        stream = version_stream(watcher, heartbeat=60, body=body, gap=0)  # type: ignore[arg-type]
        chunks = [await anext(stream), await anext(stream)]
        watcher.tag = VersionTag(8, STAMP)
        watcher.changed.set()
        chunks.append(await anext(stream))
        await stream.aclose()
        return chunks

    chunks = asyncio.run(run())
    assert chunks[1] == (
        b'event: version\nid: 7\ndata: {"data_version":7,"totals":{"applied":12,"behind":null}}\n\n'
    )
    assert chunks[2] == b'event: version\nid: 8\ndata: {"data_version":8}\n\n'


def test_versions_within_the_gap_go_out_as_one_event_the_latest() -> None:
    """1,000 receipts/s in many commits never make one event per commit: after an event,
    the versions of the next `gap` seconds go out as one, the version then current."""

    async def run() -> tuple[list[bytes], float]:
        watcher = FakeWatcher()
        stream = version_stream(watcher, heartbeat=60, gap=0.5)  # type: ignore[arg-type]
        await anext(stream)  # retry
        await anext(stream)  # 7, at once
        started = time.monotonic()
        next_event = asyncio.ensure_future(anext(stream))
        for version in (8, 9, 10):
            watcher.tag = VersionTag(version, STAMP)
            watcher.changed.set()
            await asyncio.sleep(0.01)
        chunk = await next_event
        await stream.aclose()
        return [chunk], time.monotonic() - started

    chunks, waited = asyncio.run(run())
    assert chunks == [b'event: version\nid: 10\ndata: {"data_version":10}\n\n']
    assert waited >= 0.4  # it waited for the gap's end (no upper bound: a busy machine)


def test_slots_count_a_stream_until_it_is_closed() -> None:
    async def run() -> list[int]:
        slots = StreamSlots(cap=1)
        watcher = FakeWatcher()
        held = slots.hold(version_stream(watcher, heartbeat=60))  # type: ignore[arg-type]
        counts = [slots.open]
        await anext(held)
        counts.append(slots.open)
        await held.aclose()
        counts.append(slots.open)
        return counts

    assert asyncio.run(run()) == [0, 1, 0]


def test_serve_stops_on_sigterm_with_a_stream_open(token_server: Server) -> None:
    """uvicorn waits for every response before it stops: an endless stream must not hold
    the shutdown (a dashboard left open while the server restarts)."""
    with client(token_server.port) as http, http.stream("GET", "/events") as response:
        reader = EventReader(response)
        reader.next_version()
        assert token_server.stop()  # within its 60 s wait
        with pytest.raises(AssertionError, match="the stream ended"):
            reader.next_event()
    assert "Traceback" not in token_server.output()
