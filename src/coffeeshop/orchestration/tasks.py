"""The Prefect tasks the flows run: one engine pass (`sync-pass`), a reconcile, today's
summary row; and which of their failures Prefect retries.

Tasks retry transient failures only (`errors.is_transient`: a lost or refused database
connection, a deadlock, a locked SQLite file, an unreachable source, a moved checkpoint; and
I/O and connection errors) with exponential backoff and jitter, on top of the engine's own
per-batch retries. Which database errors are transient the store's one mapping decides
(`store.errors`). A missing database, a too-new schema, refused credentials, `ConfigError`
and every other `CoffeeshopError` fail at once with their one-line message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator
from typing import Any

from prefect import State, Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.tasks import exponential_backoff
from sqlalchemy.exc import SQLAlchemyError

from coffeeshop.config import Settings
from coffeeshop.errors import CoffeeshopError, is_transient
from coffeeshop.orchestration.progress import ProgressLog, describe_sync, log_reconcile
from coffeeshop.pipeline.engine import SyncReport
from coffeeshop.pipeline.facade import build_syncer
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.signals import StopOnSignal
from coffeeshop.store import Store
from coffeeshop.store.errors import is_transient as is_transient_database_error

__all__ = [
    "PROGRESS_EVERY",
    "is_retryable",
    "reconcile_source",
    "retry_when_transient",
    "sync_pass",
    "write_summary_row",
]

PROGRESS_EVERY = 30.0  # seconds between progress lines of a pass

# -- which failures are retried ---------------------------------------------------------------

_NOT_TRANSIENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError)


def is_retryable(exc: BaseException) -> bool:
    """Worth another attempt: the database or the source may be back. Never bad configuration."""
    if isinstance(exc, CoffeeshopError):
        return is_transient(exc)
    if isinstance(exc, OSError):
        return not isinstance(exc, _NOT_TRANSIENT_OS_ERRORS)
    if isinstance(exc, SQLAlchemyError):  # one that escaped the store's mapping
        return is_transient_database_error(exc)
    return False


def retry_when_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """A task's `retry_condition_fn`: retry only a failure that `is_retryable`."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return False


_RETRYING: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2.0),  # 2, 4, 8, 16 s
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_when_transient,
    "cache_policy": NO_CACHE,  # every call does work: never serve a pass from a cache
}


# -- tasks ------------------------------------------------------------------------------------


@task(name="sync-pass", **_RETRYING)
def sync_pass(
    settings: Settings,
    stop: StopOnSignal,
    *,
    follow: bool,
    seconds: float | None = None,
    wait_lock: float = 0.0,
    progress_every: float = PROGRESS_EVERY,
) -> SyncReport:
    """One pass of the engine: everything the source holds (`follow=False`), or one segment
    of a stream that ends after `seconds` or when `stop` is set."""
    logger = get_run_logger()
    source = settings.open_source()
    with (
        Store(settings.db) as store,
        store.mapped_errors(),
        stop.watch(seconds) as event,
        _frozen_heap(),
    ):
        syncer = build_syncer(
            store, settings, source=source, on_batch=ProgressLog(logger, every=progress_every)
        )
        report = syncer.run(follow=follow, stop=event, wait_lock=wait_lock)
    logger.info("pass done: %s", describe_sync(report))
    return report


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the cycle collector off the long-lived heap during a pass.

    With Prefect loaded the heap holds several times the objects the engine alone does; every
    full collection walks them all, and in the engine's forked reader process each walk copies
    the memory pages it touches. Freezing them first (`gc.freeze`, the recipe for processes
    that fork) brought the CPU time of a pass back to that of the plain engine."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@task(name="reconcile", **_RETRYING)
def reconcile_source(settings: Settings, *, repair: bool) -> dict[str, Any]:
    """Recompute from the whole source and compare; with `repair`, rebuild what differs (in
    one transaction that lands between two batches of a running stream)."""
    logger = get_run_logger()
    source = settings.open_source()
    with Store(settings.db) as store, store.mapped_errors():
        report = reconcile(store, source, today=settings.today(), repair=repair)
    return log_reconcile(report, logger)


@task(name="refresh-summary", **_RETRYING)
def write_summary_row(settings: Settings) -> dict[str, str]:
    """Write today's `receipts_summary` row from the running totals. Needs no writer lock, so
    it runs beside a stream (`Store.refresh_summary` locks the totals row while it reads)."""
    logger = get_run_logger()
    with Store(settings.db) as store, store.mapped_errors():
        store.upgrade()
        row = store.refresh_summary(settings.today())
    values = {name: str(value) for name, value in dataclasses.asdict(row).items()}
    logger.info("receipts_summary %s", values)
    return values
