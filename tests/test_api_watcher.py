"""The data-version watcher: it polls until stopped, and stopping it never hangs, even when a
database driver turns the cancellation into an ordinary error (scripted database)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from coffeeshop.api.cache import ResponseCache, VersionTag
from coffeeshop.api.database import DatabaseUnavailable, ReadOnlyDatabase, async_url
from coffeeshop.api.watcher import VersionWatcher
from coffeeshop.config import Settings
from coffeeshop.store import Store

pytestmark = pytest.mark.anyio

TAG = VersionTag(7, dt.datetime(2026, 11, 26, 3, 0))


class ScriptedDatabase:
    """Answers each read after `delay` seconds; a cancellation during a read becomes a
    `DatabaseUnavailable` when `swallow_cancel` is set, as a driver that reports a broken
    connection instead of letting the cancellation through would."""

    def __init__(self, *, swallow_cancel: bool) -> None:
        self.swallow_cancel = swallow_cancel
        self.reads = 0
        self.inside = asyncio.Event()
        self.cancelled_inside = 0

    async def read(self, action: Any) -> tuple[VersionTag, list[dict[str, Any]]]:
        self.reads += 1
        self.inside.set()
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.cancelled_inside += 1
            if self.swallow_cancel:
                raise DatabaseUnavailable("lost connection to the server during query") from None
            raise
        finally:
            self.inside.clear()
        return TAG, []


def watcher_over(database: ScriptedDatabase) -> VersionWatcher:
    return VersionWatcher(database, ResponseCache(), interval=0.001)  # type: ignore[arg-type]


@pytest.mark.parametrize("swallow_cancel", [False, True])
async def test_stopping_in_the_middle_of_a_read_ends_the_watcher(swallow_cancel: bool) -> None:
    database = ScriptedDatabase(swallow_cancel=swallow_cancel)
    watcher = watcher_over(database)
    watcher.start()
    while database.reads < 3:
        await asyncio.sleep(0.01)
    await asyncio.wait_for(database.inside.wait(), 5)
    stopping = asyncio.create_task(watcher.stop())
    done, _ = await asyncio.wait({stopping}, timeout=60)
    assert stopping in done, "stop() hangs: the watcher went on polling"
    stopping.result()
    assert database.cancelled_inside == 1  # the stop landed inside a read
    reads = database.reads
    await asyncio.sleep(0.05)
    assert database.reads == reads  # and nothing polls any more
    assert watcher.tag == TAG


async def test_the_watcher_keeps_the_last_version_while_reads_fail() -> None:
    database = ScriptedDatabase(swallow_cancel=False)
    watcher = watcher_over(database)
    assert await watcher.refresh() == TAG and watcher.problem is None

    async def failing(action: Any) -> Any:
        raise DatabaseUnavailable("cannot use database sqlite:///x.db: gone")

    database.read = failing  # type: ignore[method-assign]
    assert await watcher.refresh() == TAG  # the last known version stands
    assert watcher.problem == "cannot use database sqlite:///x.db: gone"


async def test_an_outage_is_logged_once_then_once_a_minute_then_its_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing database file, polled every 0.15 s for ten minutes, used to log 3,844 lines:
    now the first failure, one line a minute with the count, and one when it answers."""
    url = f"sqlite:///{tmp_path / 'later.db'}"
    database = ReadOnlyDatabase(async_url(Settings(db=url)))
    database.start()
    watcher = VersionWatcher(database, ResponseCache(), interval=0.15)
    now = [1000.0]
    watcher.clock = lambda: now[0]
    caplog.set_level(logging.INFO, logger="coffeeshop.api")
    try:
        for _ in range(int(150 / 0.15)):  # two and a half minutes of polls
            assert await watcher.refresh() is None
            now[0] += 0.15
        assert watcher.problem is not None
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 3, lines
        assert lines[0].startswith("cannot read the data version")
        assert re.match(r"still cannot read the data version after 60 s \((399|400) more", lines[1])
        assert re.match(r"still cannot read the data version after 120 s \(400 more", lines[2])
        with Store(url) as store:
            store.upgrade()
        assert await watcher.refresh() is not None and watcher.problem is None
        assert await watcher.refresh() is not None
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 4 and lines[3].startswith("the database answers again after 150 s")
    finally:
        await database.stop()
