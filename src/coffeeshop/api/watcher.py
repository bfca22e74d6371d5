"""One background task per process re-reads the data version when the writer signals a commit
(`api.wakeup`: PostgreSQL NOTIFY, or the signal file by inotify), and at least every
`SIGNALLED_INTERVAL` seconds while signals are trusted; every `interval` seconds otherwise.
Signals are trusted from the moment the wake-up starts (an idle server then reads the version
once every SIGNALLED_INTERVAL, not 20 times a second), and no longer when a read finds the
version moved without one (a writer that does not signal, e.g. on another machine, or a
signal file removed under the watch): its first change is seen within SIGNALLED_INTERVAL,
the next ones within `interval`.

Requests never read it themselves: they compare their cached entry's tag with `watcher.tag`.
When the version moves, entries of older versions are dropped from the cache. The same read
(one snapshot) takes the checkpoints, which /pipeline and /metrics report.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from coffeeshop.api.cache import ResponseCache, VersionTag
from coffeeshop.api.database import DatabaseUnavailable, ReadOnlyDatabase
from coffeeshop.api.queries import checkpoints, read_tag
from coffeeshop.api.wakeup import Wakeup

log = logging.getLogger("coffeeshop.api")

SIGNALLED_INTERVAL = 10.0  # seconds between two safety reads while signals are trusted
STOP_PATIENCE = 1.0  # seconds between two cancellations of the polling task at shutdown
LOG_EVERY = 60.0  # while the database stays unreadable: at most one log line this often


class VersionWatcher:
    def __init__(
        self,
        database: ReadOnlyDatabase,
        cache: ResponseCache,
        *,
        interval: float,
        wakeup: Wakeup | None = None,
    ) -> None:
        self.database = database
        self.cache = cache
        self.interval = interval
        self.tag: VersionTag | None = None
        self.sources: list[dict[str, Any]] = []  # cs_checkpoint rows at the last read
        self.read_at: dt.datetime | None = None  # UTC (naive) of the last successful read
        self.error: DatabaseUnavailable | None = DatabaseUnavailable(
            "the database has not been read yet"
        )
        self.checked_at = 0.0  # time.monotonic() of the last successful read
        self.clock = time.monotonic
        self._down_since: float | None = None  # clock() of the first failed read of an outage
        self._logged_at = 0.0  # clock() of the last line about the outage
        self._unlogged = 0  # failed reads since that line
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()  # set (and replaced) when the version moves
        self.wakeup = wakeup or Wakeup()
        self.trusted = False  # signals come for commits: poll only as a safety net
        self._signalled = asyncio.Event()

    @property
    def problem(self) -> str | None:
        return None if self.error is None else str(self.error)

    async def refresh(self) -> VersionTag | None:
        """Read the version now; on failure keep the last one and record the problem."""
        try:
            tag, sources = await self.database.read(_tag_and_sources)
        except DatabaseUnavailable as exc:
            self._log_failure(exc)
            self.error = exc
            return self.tag
        if self._down_since is not None:
            log.info(
                "the database answers again after %.0f s (data version %d)",
                self.clock() - self._down_since,
                tag.data_version,
            )
            self._down_since = None
        self.error = None
        self.sources = sources
        self.read_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.checked_at = time.monotonic()
        if tag != self.tag:
            self.tag = tag
            self.cache.retain(tag)
            self.wake()
        return tag

    def wake(self) -> None:
        """Wake every `moved()` waiting (the version moved, or the server is stopping)."""
        self._moved.set()
        self._moved = asyncio.Event()

    async def moved(self, seen: VersionTag | None, timeout: float) -> VersionTag | None:
        """The tag once it differs from `seen` (at once when it already does); None when
        `timeout` seconds pass without a change. For the event stream's subscribers: they
        wait on one shared event, never on the database."""
        if self.tag != seen:
            return self.tag
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), timeout)
        return self.tag if self.tag != seen else None

    def _log_failure(self, exc: DatabaseUnavailable) -> None:
        """The first failed read of an outage is logged; then at most one line every
        LOG_EVERY seconds with the count (the watcher polls every few hundred ms)."""
        now = self.clock()
        if self._down_since is None:
            self._down_since, self._logged_at, self._unlogged = now, now, 0
            log.warning("cannot read the data version: %s", exc)
            return
        self._unlogged += 1
        if now - self._logged_at >= LOG_EVERY:
            log.warning(
                "still cannot read the data version after %.0f s (%d more failed reads): %s",
                now - self._down_since,
                self._unlogged,
                exc,
            )
            self._logged_at, self._unlogged = now, 0

    def signal(self) -> None:
        """The writer says it committed a new version (called by the wake-up)."""
        self.trusted = True
        self._signalled.set()

    def next_interval(self) -> float:
        """Seconds until the next read unless a signal comes first."""
        if self.trusted and self.wakeup.alive:
            return max(self.interval, SIGNALLED_INTERVAL)
        return self.interval

    async def start_wakeup(self) -> None:
        """Hear of commits from the writer where the database can tell (`api.wakeup`)."""
        if await self.wakeup.start(self.signal):
            self.trusted = True
            log.info("the data version is re-read when the writer signals a commit")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="coffeeshop-version-watcher")

    async def stop(self) -> None:
        """Cancel the polling task and wait for it. A cancellation that a database driver
        turns into an ordinary error (so the task's loop goes on) must not hang the
        shutdown: the loop also checks for a pending cancellation, and stop cancels again
        until the task is done."""
        await self.wakeup.stop()
        task, self._task = self._task, None
        if task is None:
            return
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_PATIENCE)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()

    async def _run(self) -> None:
        task = asyncio.current_task()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._signalled.wait(), self.next_interval())
            signalled = self._signalled.is_set()
            self._signalled.clear()
            before = self.tag
            try:
                await self.refresh()
                if not signalled and self.tag != before and before is not None:
                    self.trusted = False  # a commit nobody signalled: poll at the interval
            except Exception:  # never let the one watcher die: log and keep polling
                log.exception("unexpected error while reading the data version")
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # a cancellation that became an error above


async def _tag_and_sources(conn: AsyncConnection) -> tuple[VersionTag, list[dict[str, Any]]]:
    return await read_tag(conn), await checkpoints(conn)
