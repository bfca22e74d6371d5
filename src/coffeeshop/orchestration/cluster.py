"""A Dask cluster's failures as one line each (`ConfigError`: exit 2), within a bounded time.

- No worker at all: Dask would wait for one for ever. `check_workers` waits `WORKER_WAIT`
  seconds for the first one.
- A worker that cannot import the package (installed without it, another virtualenv): the
  first task it receives fails to unpickle, its connection to the scheduler breaks, the worker
  stops (or its nanny restarts it, to fail again), and the run waited for ever with no message.
  `check_workers` imports the flow's task module on every worker first (`Client.run`) and
  names the worker that cannot.
- The scheduler lost mid-run (killed, its machine gone): the client's futures are cancelled
  once it gives up reconnecting; `scheduler_lost` turns that into one line. Nothing is written:
  a rebuild reads the buckets from the workers inside its transaction, which rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from distributed import Client
from distributed.comm.core import CommClosedError
from distributed.utils import CancelledError

from coffeeshop.errors import ConfigError

WORKER_WAIT = 120.0  # seconds for the first worker to join a scheduler


def check_workers(client: Client, module: str, *, wait: float = WORKER_WAIT) -> None:
    """At least one worker, and every worker imports `module` (the tasks' own module)."""
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=wait)
    except TimeoutError:
        raise ConfigError(
            f"no Dask worker joined the scheduler at {address} within {wait:.0f} s; "
            "nothing was written"
        ) from None
    # `exec` of an import: only builtins to unpickle on the worker (a function of this package
    # would fail to unpickle there, and break the worker's connection instead of answering).
    results = client.run(exec, f"import {module}", on_error="return")
    for worker, outcome in sorted(results.items()):
        if isinstance(outcome, BaseException):
            raise ConfigError(
                f"Dask worker {worker} cannot import {module} ({type(outcome).__name__}: "
                f"{outcome}): every worker needs the coffeeshop package with its 'dask' extra, "
                "the coordinator's version; nothing was written"
            )


_LOST = (CancelledError, CommClosedError)
# What the client logs when it gives up reconnecting: its wait for the scheduler, cancelled.
_LOST_LOGGED = (*_LOST, asyncio.CancelledError, OSError)


class _LostScheduler(logging.Filter):
    """The client's own traceback when it gives up reconnecting: `scheduler_lost` says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _LOST_LOGGED))


@contextlib.contextmanager
def scheduler_lost(address: str) -> Iterator[None]:
    """The run's Dask errors that mean the scheduler is gone, as one line. (Used inside the
    flow, so its run logs the line, and around it, for what fails after.)"""
    client_log = logging.getLogger("distributed.client")
    if not any(isinstance(f, _LostScheduler) for f in client_log.filters):
        client_log.addFilter(_LostScheduler())
    try:
        yield
    except _LOST as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "its connection closed"
        raise ConfigError(
            f"the Dask scheduler {address} stopped answering mid-run ({type(exc).__name__}: "
            f"{reason}); nothing was written"
        ) from None
