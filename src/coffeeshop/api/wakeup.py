"""How the API hears of a commit without polling: the writer's signal (`store.signal`).

`wakeup_for(url)` gives, for PostgreSQL, a LISTEN on the writer's NOTIFY channel (its own
connection, outside the read pool); for SQLite and MariaDB, an inotify watch on the signal
file the writer touches after each commit. `start(wake)` calls `wake()` on each signal and
says whether the wake-up could be had; `alive` stays true while it works. Where it cannot
(no inotify, a directory the API cannot write to, LISTEN refused), the watcher polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from coffeeshop.inotify import IN_ATTRIB, IN_CLOSE_WRITE, IN_MODIFY, FileWatch
from coffeeshop.store.signal import CHANNEL, signal_path, touch

log = logging.getLogger("coffeeshop.api")

Wake = Callable[[], None]


class Wakeup:
    """No wake-up at all: the watcher polls (an SQLite database in memory)."""

    alive = False

    async def start(self, wake: Wake) -> bool:
        return False

    async def stop(self) -> None:
        return None


class FileSignal(Wakeup):
    """inotify on the signal file (created empty when missing, as the writer would)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._watch: FileWatch | None = None

    async def start(self, wake: Wake) -> bool:
        if not self.path.exists():
            touch(self.path)
        watch = FileWatch.open(self.path, IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB)
        if watch is None:
            return False

        def ready() -> None:
            if watch.wait(0):
                wake()

        asyncio.get_running_loop().add_reader(watch.fd, ready)
        self._watch, self.alive = watch, True
        return True

    async def stop(self) -> None:
        watch, self._watch, self.alive = self._watch, None, False
        if watch is not None:
            asyncio.get_running_loop().remove_reader(watch.fd)
            watch.close()


class PgListen(Wakeup):
    """LISTEN on the writer's channel, on a connection of its own (psycopg, autocommit)."""

    def __init__(self, url: URL) -> None:
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._task: asyncio.Task[None] | None = None

    async def start(self, wake: Wake) -> bool:
        import psycopg

        try:
            conn: Any = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, connect_timeout=10
            )
            await conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            log.info("no LISTEN on the data version (the watcher polls): %s", exc)
            return False
        self.alive = True
        self._task = asyncio.create_task(self._listen(conn, wake), name="coffeeshop-listen")
        return True

    async def _listen(self, conn: Any, wake: Wake) -> None:
        import psycopg

        try:
            async for _ in conn.notifies():
                wake()
        except psycopg.Error as exc:
            log.warning("LISTEN on the data version ended (the watcher polls): %s", exc)
        finally:
            self.alive = False
            with contextlib.suppress(Exception):
                await conn.close()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def wakeup_for(url: URL) -> Wakeup:
    """The wake-up the database at `url` (the API's async URL) can give."""
    if url.get_backend_name() == "postgresql":
        return PgListen(url)
    path = signal_path(url)
    return FileSignal(path) if path is not None else Wakeup()
