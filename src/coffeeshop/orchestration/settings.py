"""Prefect's settings for this package, applied by a call rather than at import.

`configure()` must run before Prefect is first imported: Prefect reads its settings, and starts
its SDK analytics, then. The commands (`coffeeshop flows …`, the Dask paths), the benchmarks and
the tests call it first; the modules of this package import Prefect and so never call it.
"""

from __future__ import annotations

import logging
import os

from coffeeshop.errors import CoffeeshopError

__all__ = ["EPHEMERAL_TIMEOUT", "configure", "install_log_filters"]

EPHEMERAL_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"

DEFAULTS = {
    # Nothing here may try to reach the internet.
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # The engine's own log lines go to the run's log in the API too (outside a run: nowhere).
    "PREFECT_LOGGING_EXTRA_LOGGERS": "coffeeshop",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # The Prefect server `flows serve` starts wants a CSRF token with every change.
    "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true",
    # Prefect's temporary API (a flow run without PREFECT_API_URL) gets 20 s to start by
    # default, too short on a loaded machine.
    EPHEMERAL_TIMEOUT: "180",
}


def configure() -> None:
    """Set Prefect's environment defaults (the user's own settings win) and install the log
    filters. Idempotent; the processes this one starts inherit the defaults."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    install_log_filters()


class _OneLineErrors(logging.Filter):
    """A `CoffeeshopError` already says what is wrong in one line: log it without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], CoffeeshopError):
            record.exc_info = None
            record.exc_text = None
        return True


def install_log_filters() -> None:
    """Flow and task runs log a `CoffeeshopError` as its one line. Idempotent. Every flow
    calls it too: a served deployment's run starts in a process that imports the flows by
    module path and never calls `configure()` (it inherits the environment defaults)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLineErrors) for f in logger.filters):
            logger.addFilter(_OneLineErrors())
