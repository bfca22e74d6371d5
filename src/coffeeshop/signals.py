"""Stopping on SIGINT/SIGTERM: one event that a signal sets, remembering which came first.

Long-running work (a `sync --follow`, `generate --rate`, the demo) watches the event and
stops at a safe point; the command then exits with 128 + the first signal (130 for SIGINT,
143 for SIGTERM), as shells expect. `install()` puts the handlers in place for a block and
restores the previous ones after it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

CAUGHT = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal(threading.Event):
    """Set by the first SIGINT/SIGTERM; `on_repeat` runs on each later one (e.g. to force)."""

    def __init__(
        self,
        log: logging.Logger,
        message: str = "received %s, stopping after the current batch",
        *,
        on_repeat: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.signum: int | None = None
        self.count = 0
        self._log = log
        self._message = message
        self._on_repeat = on_repeat

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal; None when no signal came."""
        return None if self.signum is None else 128 + self.signum

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        """The signal handler: the first signal sets the event, later ones call `on_repeat`."""
        self.count += 1
        if self.signum is None:
            self.signum = signum
            self._log.info(self._message, signal.Signals(signum).name)
            self.set()
        elif self._on_repeat is not None:
            self._on_repeat()

    @contextlib.contextmanager
    def install(self) -> Iterator[StopOnSignal]:
        """Handle SIGINT and SIGTERM within the block; the previous handlers afterwards."""
        previous = {sig: signal.signal(sig, self.handle) for sig in CAUGHT}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def exit_on_sigterm() -> None:
    """From now on SIGTERM exits through Python (status 143, `SystemExit`), so that `finally`
    blocks and context managers run: a process this one started is stopped, not left behind."""

    def exit_now(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_now)
