"""Stopping on SIGINT/SIGTERM: one stop request that a signal, a timer or a call sets.

Long-running work (a `sync --follow`, `generate --rate`, the demo, a Prefect flow run) watches
the request and stops at a safe point. Under a command, the command then exits with 128 + the
first signal (130 for SIGINT, 143 for SIGTERM), as shells expect: `install()` puts the handlers
in place for a block and restores the previous ones after it. Under a host with handlers of its
own (Prefect's mark a run Cancelled or Crashed), `install(hand_on=True)` hands the signal on to
the handler it interrupted once the block is done. Work in passes (the engine's, under a flow)
watches one event per pass (`watch`), set by the request or by the pass's own timer.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["CAUGHT", "StopOnSignal", "exit_on_sigterm", "start_timer"]

CAUGHT = (signal.SIGINT, signal.SIGTERM)

_log = logging.getLogger(__name__)


class StopOnSignal(threading.Event):
    """Set by the first SIGINT/SIGTERM; `on_repeat` runs on each later one (e.g. to force).

    Setting it also sets the event of every pass in progress (`watch`); only flags are set, so
    `set` is safe inside a signal handler.
    """

    def __init__(
        self,
        log: logging.Logger | None = None,
        message: str = "received %s, stopping after the current batch",
        *,
        on_repeat: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.signum: int | None = None
        self.count = 0
        self._log = log or _log
        self._message = message
        self._on_repeat = on_repeat
        self._passes: list[threading.Event] = []

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal; None when no signal came."""
        return None if self.signum is None else 128 + self.signum

    def set(self) -> None:
        super().set()
        for event in tuple(self._passes):
            event.set()

    @contextlib.contextmanager
    def watch(self, seconds: float | None = None) -> Iterator[threading.Event]:
        """An event for one pass: set by this stop, or after `seconds` (None: never)."""
        event = threading.Event()
        self._passes.append(event)
        if self.is_set():
            event.set()
        timer = start_timer(seconds, event.set)
        try:
            yield event
        finally:
            if timer is not None:
                timer.cancel()
            self._passes.remove(event)

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
    def install(self, *, hand_on: bool = False, log: Any = None) -> Iterator[StopOnSignal]:
        """Handle SIGINT and SIGTERM within the block; the previous handlers afterwards.

        `hand_on`: the first signal only sets this event; on the way out it is handed on to the
        handler it interrupted (logged to `log`, by default this stop's logger), and a second
        one is handed on at once. Signals this process ignores or that a handler outside Python
        takes are left alone then, and outside the main thread (signals go to the main one)
        nothing is installed.
        """
        if not hand_on:
            previous = {sig: signal.signal(sig, self.handle) for sig in CAUGHT}
            try:
                yield self
            finally:
                _restore(previous)
            return
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        with self._handing_on(log or self._log):
            yield self

    @contextlib.contextmanager
    def _handing_on(self, log: Any) -> Iterator[None]:
        pending: list[int] = []
        # A signal this process ignores (SIGINT of a background job) stays ignored, and one
        # whose handler was set outside Python (None) cannot be restored: both are left alone.
        current = {sig: signal.getsignal(sig) for sig in CAUGHT}
        previous = {sig: h for sig, h in current.items() if h not in (None, signal.SIG_IGN)}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if pending:  # asked twice: stop waiting for the batch
                pending.clear()
                _restore(previous)
                signal.raise_signal(signum)
                return
            pending.append(signum)
            self.set()

        for sig in previous:
            signal.signal(sig, on_signal)
        try:
            yield
        finally:
            _restore(previous)
            if pending:
                name = signal.Signals(pending[0]).name
                log.info("received %s: stopped after the last committed batch", name)
                signal.raise_signal(pending[0])


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def start_timer(seconds: float | None, action: Callable[[], None]) -> threading.Timer | None:
    """`action` in a daemon thread after `seconds` (None: no timer); cancel the timer returned."""
    if seconds is None:
        return None
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


def exit_on_sigterm() -> None:
    """From now on SIGTERM exits through Python (status 143, `SystemExit`), so that `finally`
    blocks and context managers run: a process this one started is stopped, not left behind."""

    def exit_now(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_now)
