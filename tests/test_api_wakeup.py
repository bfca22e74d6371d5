"""The API hears of a commit from the writer (`store.signal`, `api.wakeup`): PostgreSQL
NOTIFY, the signal file by inotify for SQLite and MariaDB; polling where neither comes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
from test_api_events import EventReader, client, sell
from test_api_serve import Server
from test_api_support import fill

from coffeeshop.api import watcher as watcher_module
from coffeeshop.api.cache import ResponseCache, VersionTag
from coffeeshop.api.wakeup import Wakeup
from coffeeshop.api.watcher import SIGNALLED_INTERVAL, VersionWatcher
from coffeeshop.inotify import FileWatch
from coffeeshop.store import Store
from coffeeshop.store.signal import signal_path

# The API re-reads the version only every minute unless told: a commit that reaches an open
# stream well within that minute was pushed.
POLL_EVERY = "60"
PUSH_DEADLINE = 30.0  # (+ up to one 15 s heartbeat: under POLL_EVERY)


def test_a_commit_reaches_the_stream_by_the_writer_signal_not_by_polling(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(db_url, tmp_path)
    monkeypatch.setenv("COFFEESHOP_API_REFRESH", POLL_EVERY)
    monkeypatch.setenv("COFFEESHOP_API_TOKEN", "t")
    server = Server(tmp_path, "--db", db_url)
    try:
        server.wait_until_up()
        with client(server.port, token="t") as http, http.stream("GET", "/events") as response:
            reader = EventReader(response)
            first = reader.next_version()
            sell(db_url, tmp_path, 1)
            # The new version by the deadline (checked at each 15 s heartbeat) was pushed:
            # polling would take POLL_EVERY seconds.
            assert reader.next_version(until=time.monotonic() + PUSH_DEADLINE) > first
        assert server.stop()
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert "Traceback" not in server.output()


def test_the_signal_file_is_touched_after_a_commit_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    fill(url, tmp_path)
    path = signal_path(Store(url).url)
    assert path is not None and path.exists()
    with FileWatch.open(path) as watch:  # type: ignore[union-attr]
        with Store(url) as store, pytest.raises(RuntimeError), store.writer.begin() as conn:
            from coffeeshop.store import checkpoint

            checkpoint.bump_data_version(conn)
            raise RuntimeError("rolled back")
        assert watch.wait(0) is False  # a rollback signals nothing
        sell(url, tmp_path, 1)
        deadline = time.monotonic() + 60
        while not watch.wait(1.0):
            assert time.monotonic() < deadline, "no signal after a commit"


def test_a_lost_connection_rolls_back_as_without_the_signal(tmp_path: Path) -> None:
    """A transaction whose connection was lost (invalidated) rolls back with no other error:
    the signal's rollback hook read `conn.info`, which reconnects, so it raised "Can't
    reconnect until invalid transaction is rolled back", a permanent error in place of the
    transient disconnect (sync died under dropped MariaDB connections instead of retrying)."""
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    with Store(url) as store:
        store.upgrade()
        with store.writer.connect() as conn:
            conn.begin()
            from coffeeshop.store import checkpoint

            checkpoint.bump_data_version(conn)
            conn.invalidate()  # as SQLAlchemy does on a disconnect
            conn.rollback()
        with store.writer.connect() as conn:  # and the pool goes on
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1


class FakeDatabase:
    def __init__(self) -> None:
        self.version = 1

    async def read(self, _: Any) -> tuple[VersionTag, list[Any]]:
        return VersionTag(self.version, dt.datetime(2026, 12, 7)), []


class AliveWakeup(Wakeup):
    alive = True


def test_signals_slow_the_polling_and_an_unsignalled_change_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watcher_module, "SIGNALLED_INTERVAL", 0.5)  # the test's patience

    async def run() -> list[tuple[bool, float]]:
        database = FakeDatabase()
        watcher = VersionWatcher(
            database,  # type: ignore[arg-type]
            ResponseCache(),
            interval=0.01,
            wakeup=AliveWakeup(),
        )
        await watcher.refresh()
        seen = [(watcher.trusted, watcher.next_interval())]
        watcher.start()
        database.version = 2
        watcher.signal()  # the writer's word: trusted, polled slowly
        while watcher.tag is None or watcher.tag.data_version != 2:
            await asyncio.sleep(0.01)
        seen.append((watcher.trusted, watcher.next_interval()))
        database.version = 3  # a commit nobody signalled, found by the safety read
        while watcher.tag.data_version != 3:
            await asyncio.sleep(0.05)
        seen.append((watcher.trusted, watcher.next_interval()))
        await watcher.stop()
        return seen

    assert asyncio.run(run()) == [
        (False, 0.01),
        (True, 0.5),
        (False, 0.01),
    ]


def test_without_a_wakeup_the_watcher_polls_at_its_interval(tmp_path: Path) -> None:
    watcher = VersionWatcher(FakeDatabase(), ResponseCache(), interval=0.05)  # type: ignore[arg-type]
    watcher.signal()
    assert watcher.next_interval() == 0.05  # signals without a live wake-up change nothing
    assert os.path.basename(str(signal_path(Store(f"sqlite:///{tmp_path}/x.db").url))) == (
        "x.db-signal"
    )


class StartingWakeup(AliveWakeup):
    async def start(self, wake: Any) -> bool:
        return True


def test_a_wakeup_that_starts_is_trusted_before_its_first_signal() -> None:
    """An idle server (no commit since it started) reads the version at the slow safety
    interval, not 20 times a second: the wake-up is trusted from its start, until a read
    finds a change it did not signal."""

    async def run() -> list[tuple[bool, float]]:
        watcher = VersionWatcher(
            FakeDatabase(),  # type: ignore[arg-type]
            ResponseCache(),
            interval=0.05,
            wakeup=StartingWakeup(),
        )
        await watcher.start_wakeup()
        return [(watcher.trusted, watcher.next_interval())]

    assert asyncio.run(run()) == [(True, SIGNALLED_INTERVAL)]
