"""Stopping a run on SIGTERM/SIGINT: one stop request fanned out to the passes that watch it.

Nothing here knows Prefect or the engine: only flags are set in a signal handler, and the
signal is handed on afterwards to the handler it interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Stop", "start_timer", "stop_on_signals"]


class Stop:
    """One stop request for a flow run, fanned out to the event each engine pass watches.

    The engine stops when a `threading.Event` is set; a pass of a stream also ends on its own
    at the end of its segment, so each pass gets its own event, set by a timer or by this.
    Only flags are set here, so `set` is safe inside a signal handler.
    """

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._passes: list[threading.Event] = []

    def set(self) -> None:
        self._requested.set()
        for event in tuple(self._passes):
            event.set()

    def is_set(self) -> bool:
        return self._requested.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when stopped; True when stopped."""
        return self._requested.wait(seconds)

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


def start_timer(seconds: float | None, action: Callable[[], None]) -> threading.Timer | None:
    if seconds is None:
        return None
    timer = threading.Timer(seconds, action)
    timer.daemon = True
    timer.start()
    return timer


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(stop: Stop, logger: Any) -> Iterator[None]:
    """While inside, SIGTERM/SIGINT set `stop`; on the way out the first one is handed on to
    the handler it interrupted (Prefect's marks the run Cancelled or Crashed). A second signal
    is handed on at once. Outside the main thread this does nothing: signals go to the main one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    # A signal this process ignores (SIGINT of a background job) stays ignored, and one
    # whose handler was set outside Python (None) cannot be restored: both are left alone.
    current = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    previous = {sig: h for sig, h in current.items() if h not in (None, signal.SIG_IGN)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def on_signal(signum: int, _frame: Any) -> None:
        if pending:  # asked twice: stop waiting for the batch
            pending.clear()
            restore()
            signal.raise_signal(signum)
            return
        pending.append(signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        restore()
        if pending:
            name = signal.Signals(pending[0]).name
            logger.info("received %s: stopped after the last committed batch", name)
            signal.raise_signal(pending[0])
