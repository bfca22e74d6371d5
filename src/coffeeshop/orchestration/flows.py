"""Prefect flows over the engine: a streaming `sync`, a nightly `reconcile`, a daily
`refresh-summary`, and the deployments `coffeeshop flows serve` runs on schedules.

Cost model. A flow run costs about a second here and a task run about 10 ms, while the engine
applies some 35,000 receipts/s in batches of up to 5,000 (one batch every ~150 ms). So Prefect
never sees a receipt, nor even a batch: the engine batches exactly as under `coffeeshop sync`,
and Prefect records one task run per *pass* of the engine (`sync-pass`). A pass is
`Syncer.run()` over everything the source holds (one pass, `follow=False`) or, when following,
one *segment* of a stream of at most `segment_seconds`; the engine's `on_batch` callback writes
a progress line to the run logger at most every `progress_every` seconds. A task run per batch
would add ~7% and thousands of task runs an hour; a task run per pass adds ~10 ms per pass.

Why segments rather than one endless task: a task run stays a readable unit in the UI (its
counts and its log lines cover a quarter of an hour, not weeks), each has its own retry budget,
and each starts by re-reading the checkpoint and writing the day's summary row.
`reconcile` needs no pause in the stream: a repair lands between two batches, and the stream
continues from the checkpoint the repair moved (see `coffeeshop.pipeline.reconcile`).

Errors. Tasks retry transient failures (`StoreError`, `SourceUnavailable`, a moved checkpoint,
I/O and connection errors) with exponential backoff and jitter, on top of the engine's own
per-batch retries; `ConfigError` and every other `CoffeeshopError` fail at once with their
one-line message, logged without a traceback. A stream whose pass still fails starts again
after a capped backoff, so an outage of any length only pauses it; each failed pass stays
recorded as a failed task run.

Stopping. SIGTERM or SIGINT (a cancellation from the Prefect runner arrives as SIGTERM) sets a
stop flag: the engine commits the batch in hand with its checkpoint, stops its reader and
releases the lock; then the signal is handed on to the handler it interrupted (Prefect's, which
marks the run Cancelled or Crashed). A second signal is handed on at once. Either way nothing is
lost or counted twice: a batch commits atomically with its checkpoint.

Connection settings. The flows take `source` and `db` parameters, but flow parameters are
stored in the Prefect database, so a URL with a password must not be one: `coffeeshop flows
run/serve` put `--source`/`--db` into the environment of the process that runs the flows
(`COFFEESHOP_SOURCE`, `COFFEESHOP_DB`) and leave the parameters empty; every run logs its
database with the password masked.

Served deployments take no connection settings from a run. The local Prefect API has no
authentication, so whoever reaches it can start a run with any parameters (even past the
parameter schema: a run may ask the API not to enforce it). A run of a deployment served by
`coffeeshop flows serve` therefore takes its source, its database and (for the reconcile) its
`repair` from the serving process only: the deployments' parameter schemas leave `source` and
`db` out and freeze `repair`, and a run that passes them anyway fails before it opens anything.
"""

from __future__ import annotations

import os

# Prefect reads its settings, and starts its SDK analytics, when it is first imported: these
# defaults must be in the environment before that. Nothing here may try to reach the internet.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT", "false")
# The engine's own log lines go to the run's log in the API too (outside a run: nowhere).
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "coffeeshop")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Prefect's temporary API (a flow run without PREFECT_API_URL) gets 20 s to start by default;
# on a loaded machine it took 57 s. Give it longer (the user's setting wins).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import contextlib
import dataclasses
import gc
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import httpx
from prefect import State, Task, flow, get_run_logger, serve, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType, TaskRun
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.tasks import exponential_backoff
from prefect.types.entrypoint import EntrypointType
from prefect.utilities.annotations import freeze
from prefect.utilities.callables import ParameterSchema
from pydantic import ConfigDict
from sqlalchemy.exc import SQLAlchemyError

from coffeeshop.config import Settings, load_settings
from coffeeshop.errors import (
    CheckpointMoved,
    CoffeeshopError,
    ConfigError,
    SourceUnavailable,
    StoreError,
    WriterBusy,
)
from coffeeshop.pipeline.engine import SyncReport, is_transient
from coffeeshop.pipeline.facade import build_syncer
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.redact import mask_url
from coffeeshop.sources.base import BatchLimits
from coffeeshop.store import Store, normalize_url

__all__ = [
    "RECONCILE_CRON",
    "SUMMARY_CRON",
    "PrefectUnavailable",
    "ReconcileDifferences",
    "Stop",
    "build_deployments",
    "check_api",
    "is_retryable",
    "prefect_api",
    "reconcile_flow",
    "refresh_summary_flow",
    "schedule_timezone",
    "serve_flows",
    "start_stream",
    "stop_on_signals",
    "sync_flow",
]

log = logging.getLogger("coffeeshop.orchestration.flows")

RECONCILE_CRON = "0 3 * * *"  # nightly, local time
SUMMARY_CRON = "1 0 * * *"  # just after local midnight: the new day's receipts_summary row
SEGMENT_SECONDS = 900.0  # longest task run of a stream
PROGRESS_EVERY = 30.0  # seconds between progress lines of a pass
RESTART_DELAY, MAX_RESTART_DELAY = 5.0, 300.0  # a failed stream starts again after these
DEFAULT_PORT = 4200  # the local Prefect server `flows serve` starts without PREFECT_API_URL
SERVER_START_TIMEOUT = 90.0
STREAM, NIGHTLY, DAILY = "stream", "nightly", "daily"  # deployment names
# Set by `serve_flows` in the serving process (its flow runs inherit it): "repair" or "check",
# what the nightly reconcile does. Its presence means run parameters cannot pick a source or db.
SERVED = "COFFEESHOP_FLOWS_SERVED"
EPHEMERAL_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"  # see the top
TAGS = ["coffeeshop"]


class ReconcileDifferences(CoffeeshopError):
    """The tables differ from a recomputation over the source, and were not repaired."""

    exit_code = 1


class PrefectUnavailable(CoffeeshopError):
    """The Prefect API cannot be reached or started."""


# -- errors -----------------------------------------------------------------------------------

_NOT_TRANSIENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError)


def is_retryable(exc: BaseException) -> bool:
    """Worth another attempt: the database or the source may be back. Never bad configuration."""
    if isinstance(exc, StoreError | SourceUnavailable | CheckpointMoved):
        return True
    if isinstance(exc, OSError):
        return not isinstance(exc, _NOT_TRANSIENT_OS_ERRORS)
    if isinstance(exc, SQLAlchemyError):
        return is_transient(exc)
    return False


def _retry_when_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return False


_RETRYING: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2.0),  # 2, 4, 8, 16 s
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": _retry_when_transient,
    "cache_policy": NO_CACHE,  # every call does work: never serve a pass from a cache
}


@contextlib.contextmanager
def _one_line_errors(store: Store) -> Iterator[None]:
    """Database errors the engine does not wrap itself (reads, the summary row) as one line."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(store.describe(exc)) from None


class _OneLineErrors(logging.Filter):
    """A `CoffeeshopError` already says what is wrong in one line: log it without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], CoffeeshopError):
            record.exc_info = None
            record.exc_text = None
        return True


def _install_log_filter() -> None:
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _OneLineErrors) for f in logger.filters):
            logger.addFilter(_OneLineErrors())


_install_log_filter()


# -- stopping ---------------------------------------------------------------------------------


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
        timer = _start_timer(seconds, event.set)
        try:
            yield event
        finally:
            if timer is not None:
                timer.cancel()
            self._passes.remove(event)


def _start_timer(seconds: float | None, action: Callable[[], None]) -> threading.Timer | None:
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


# -- progress and reports ---------------------------------------------------------------------


class ProgressLog:
    """`Syncer.on_batch` callback: a progress line through the run logger every `every` s."""

    def __init__(self, logger: Any, *, every: float) -> None:
        self.logger = logger
        self.every = every
        self._last = time.monotonic()

    def __call__(self, report: SyncReport) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        elapsed = max(now - report.started, 1e-9)
        self.logger.info(
            "%s event(s) in %s batch(es) so far: %s applied, %s quarantined (%.0f events/s)",
            f"{report.events:,}",
            f"{report.batches:,}",
            f"{report.applied:,}",
            f"{report.quarantined:,}",
            report.events / elapsed,
        )


@dataclasses.dataclass(slots=True)
class SyncTotals:
    """What a sync flow run did, over all its passes."""

    passes: int = 0
    batches: int = 0
    events: int = 0
    applied: int = 0
    quarantined: int = 0
    skipped: int = 0
    retries: int = 0
    recovered: int = 0
    rebuilds: int = 0
    restarts: int = 0
    seconds: float = 0.0

    def add(self, report: SyncReport) -> None:
        self.passes += 1
        self.batches += report.batches
        self.events += report.events
        self.applied += report.applied
        self.quarantined += report.quarantined
        self.skipped += report.skipped
        self.retries += report.retries
        self.recovered += report.recovered
        self.rebuilds += report.rebuilds
        self.seconds += report.seconds

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"seconds": round(self.seconds, 3)}


def describe_sync(totals: SyncTotals | SyncReport) -> str:
    rate = totals.events / totals.seconds if totals.seconds > 0 else 0.0
    return (
        f"{totals.events:,} event(s) in {totals.batches:,} batch(es): {totals.applied:,} applied, "
        f"{totals.quarantined:,} quarantined, {totals.skipped:,} skipped "
        f"({totals.seconds:.2f} s, {rate:,.0f} events/s)"
    )


# -- tasks ------------------------------------------------------------------------------------


def _limits(settings: Settings) -> BatchLimits:
    return BatchLimits(settings.batch_size, settings.batch_wait, settings.poll_interval)


@task(name="sync-pass", **_RETRYING)
def sync_pass(
    settings: Settings,
    stop: Stop,
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
        _one_line_errors(store),
        stop.watch(seconds) as event,
        _frozen_heap(),
    ):
        on_batch = ProgressLog(logger, every=progress_every)
        syncer = build_syncer(store, settings, source=source, on_batch=on_batch)
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
    with Store(settings.db) as store, _one_line_errors(store):
        report = reconcile(store, source, today=settings.today(), repair=repair)
    for difference in report.differences:
        logger.warning("%s", difference)
    for table, count in sorted(report.counts.items()):
        logger.warning("%s: %d difference(s)", table, count)
    summary = {
        "receipts": report.receipts,
        "quarantined": report.quarantined,
        "differences": report.total_differences,
        "by_table": dict(sorted(report.counts.items())),
        "repaired": report.repaired,
    }
    logger.info("reconcile: %s", summary)
    return summary


@task(name="refresh-summary", **_RETRYING)
def write_summary_row(settings: Settings) -> dict[str, str]:
    """Write today's `receipts_summary` row from the running totals. Needs no writer lock, so
    it runs beside a stream. (On MySQL/MariaDB and PostgreSQL a batch that commits between
    this transaction's read of the totals and its write leaves the row one batch behind until
    the next batch: `Store.refresh_summary` should lock the totals row while it reads.)"""
    logger = get_run_logger()
    with Store(settings.db) as store, _one_line_errors(store):
        store.upgrade()
        row = store.refresh_summary(settings.today())
    values = {name: str(value) for name, value in dataclasses.asdict(row).items()}
    logger.info("receipts_summary %s", values)
    return values


# -- flows ------------------------------------------------------------------------------------


def refuse_run_parameters(**given: Any) -> None:
    """In a run of a served deployment (SERVED set), run parameters that would choose what the
    run reads or writes are refused: one line, before anything is opened."""
    if os.environ.get(SERVED) is None:
        return
    named = sorted(name for name, value in given.items() if value is not None)
    if named:
        raise ConfigError(
            f"run parameter(s) {', '.join(named)} refused: a deployment served by "
            "`coffeeshop flows serve` takes its source, database and repair setting from the "
            "serving process only"
        )


def _settings(source: str | None, db: str | None, logger: Any, *, with_source: bool) -> Settings:
    """Settings for a run, checked before any task starts: what no retry can fix fails now."""
    refuse_run_parameters(source=source, db=db)
    settings = load_settings(source=source, db=db)
    safe_db = mask_url(normalize_url(settings.db))
    if with_source:
        source_name = settings.open_source().name  # a URI's password is not in its name
        logger.info("source %s, database %s", source_name, safe_db)
    else:
        logger.info("database %s", safe_db)
    return settings


@contextlib.contextmanager
def _engine_log_level(settings: Settings) -> Iterator[None]:
    """COFFEESHOP_LOG_LEVEL for the engine's loggers during a run (Prefect sets the root
    logger to WARNING); the level before is restored after it."""
    logger = logging.getLogger("coffeeshop")
    before = logger.level
    logger.setLevel(settings.log_level)
    try:
        yield
    finally:
        logger.setLevel(before)


@flow(name="sync")
def sync_flow(
    source: str | None = None,
    db: str | None = None,
    follow: bool = True,
    wait_lock: float = 0.0,
    run_for: float | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
    progress_every: float = PROGRESS_EVERY,
) -> dict[str, Any]:
    """Keep the analytics tables in step with the source: follow it until stopped (default),
    or apply everything it holds once (`follow=False`, like `coffeeshop sync --once`).

    `wait_lock`: seconds to wait for another writer at the start; `run_for`: stop following
    after this many seconds; `segment_seconds`: longest pass (task run) of a stream;
    `progress_every`: seconds between progress lines.
    """
    logger = get_run_logger()
    settings = _settings(source, db, logger, with_source=True)
    stop = Stop()
    timer = _start_timer(run_for, stop.set)
    try:
        with _engine_log_level(settings), stop_on_signals(stop, logger):
            if follow:
                totals = _stream(
                    settings,
                    stop,
                    logger,
                    wait_lock=wait_lock,
                    segment_seconds=segment_seconds,
                    progress_every=progress_every,
                )
            else:
                totals = SyncTotals()
                report = sync_pass(
                    settings, stop, follow=False, wait_lock=wait_lock, progress_every=progress_every
                )
                totals.add(report)
    finally:
        if timer is not None:
            timer.cancel()
    logger.info("synced %s", describe_sync(totals))
    return totals.as_dict()


def _stream(
    settings: Settings,
    stop: Stop,
    logger: Any,
    *,
    wait_lock: float,
    segment_seconds: float,
    progress_every: float,
) -> SyncTotals:
    """Passes of at most `segment_seconds` until stopped; a failed pass starts again later."""
    totals = SyncTotals()
    failures = 0
    while not stop.is_set():
        try:
            report = sync_pass(
                settings,
                stop,
                follow=True,
                seconds=segment_seconds,
                wait_lock=wait_lock if not totals.passes else 0.0,
                progress_every=progress_every,
            )
        except Exception as exc:
            # After a first pass, another writer holding the lock is waited out too.
            if not (is_retryable(exc) or (totals.passes and isinstance(exc, WriterBusy))):
                raise
            failures += 1
            totals.restarts += 1
            delay = min(MAX_RESTART_DELAY, RESTART_DELAY * 2 ** (failures - 1))
            logger.warning("the stream stopped (%s); starting it again in %.0f s", exc, delay)
            stop.wait(delay)
            continue
        failures = 0
        totals.add(report)
    return totals


@flow(name="reconcile")
def reconcile_flow(
    source: str | None = None,
    db: str | None = None,
    repair: bool = False,
) -> dict[str, Any]:
    """Recompute the tables from the whole source and compare them with the database; with
    `repair`, rebuild them when they differ (safe while a stream runs). Fails when
    differences remain. Run while receipts flow, a comparison may count the receipts of
    batches in flight as differences; a repair leaves the tables exact either way."""
    logger = get_run_logger()
    served = os.environ.get(SERVED)
    if served is not None and repair != (served == "repair"):
        refuse_run_parameters(repair=repair)
    settings = _settings(source, db, logger, with_source=True)
    with _engine_log_level(settings):
        from coffeeshop.orchestration.scaleout import dask_settings, summary_on_dask

        on_dask = dask_settings(source=source, db=db)
        if on_dask.on_dask:  # COFFEESHOP_DASK_ADDRESS / _WORKERS: partitions on a Dask cluster
            summary = summary_on_dask(on_dask, source=source, db=db, repair=repair)
        else:
            summary = reconcile_source(settings, repair=repair)
    if summary["differences"] and not summary["repaired"]:
        tables = ", ".join(f"{table}: {n}" for table, n in summary["by_table"].items())
        raise ReconcileDifferences(
            f"{summary['differences']} difference(s) between the tables and the source "
            f"({tables}); run the reconcile with repair to rebuild the tables"
        )
    return summary


@flow(name="refresh-summary")
def refresh_summary_flow(db: str | None = None) -> dict[str, str]:
    """Write today's `receipts_summary` row (today in COFFEESHOP_TIMEZONE), so the table has
    its row for a new day even before the day's first receipt arrives."""
    logger = get_run_logger()
    settings = _settings(None, db, logger, with_source=False)
    with _engine_log_level(settings):
        return write_summary_row(settings)


# -- deployments and serving ------------------------------------------------------------------


def schedule_timezone(settings: Settings) -> str:
    """The IANA zone of "today": COFFEESHOP_TIMEZONE, else the machine's (UTC if unknown)."""
    if settings.timezone:
        return settings.timezone
    try:
        from tzlocal import get_localzone_name

        name = get_localzone_name()
    except Exception:  # no tzlocal, or a zone it cannot name
        name = None
    if not name:
        log.warning("cannot name this machine's time zone; scheduling in UTC")
    return name or "UTC"


def build_deployments(
    settings: Settings,
    *,
    repair: bool = False,
    reconcile_cron: str = RECONCILE_CRON,
    summary_cron: str = SUMMARY_CRON,
) -> list[RunnerDeployment]:
    """The three deployments: `sync/stream` (no schedule: started by `serve_flows`),
    `reconcile/nightly` and `refresh-summary/daily` on cron schedules in local time."""
    zone = schedule_timezone(settings)
    try:
        reconcile_schedule = Cron(reconcile_cron, timezone=zone)
        summary_schedule = Cron(summary_cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(f"bad schedule: {_first_line(exc)}") from None
    common: dict[str, Any] = {"tags": TAGS, "entrypoint_type": EntrypointType.MODULE_PATH}
    deployments = [
        sync_flow.to_deployment(
            STREAM, description="Follows the source; started once by `flows serve`.", **common
        ),
        reconcile_flow.to_deployment(
            NIGHTLY,
            schedule=reconcile_schedule,
            parameters={"repair": freeze(repair)},
            description=f"Recompute and compare{' and repair' if repair else ''}, nightly.",
            **common,
        ),
        refresh_summary_flow.to_deployment(
            DAILY,
            schedule=summary_schedule,
            description="Writes the new day's receipts_summary row after local midnight.",
            **common,
        ),
    ]
    for deployment in deployments:
        _without_connection_parameters(deployment)
    return deployments


def _without_connection_parameters(deployment: RunnerDeployment) -> None:
    """The API refuses a run of `deployment` that names `source` or `db` (or any parameter the
    flow does not take): they come from the serving process. (A run can ask the API not to
    enforce the schema; the flows refuse those parameters themselves too.)"""
    fields = deployment._parameter_openapi_schema.model_dump()
    for name in ("source", "db"):
        fields["properties"].pop(name, None)
    fields["required"] = [n for n in fields["required"] if n in fields["properties"]]
    deployment._parameter_openapi_schema = _ClosedSchema(**fields, additionalProperties=False)


class _ClosedSchema(ParameterSchema):
    """Prefect's parameter schema with `additionalProperties` (the API validates with it)."""

    model_config = ConfigDict(extra="allow")


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def start_stream(deployment: RunnerDeployment) -> UUID:
    """Register `deployment` and ask for one run of it, unless one is already waiting to start
    (left over from an earlier `serve`). Returns the id of that run."""
    deployment_id = deployment.apply()
    waiting = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
        )
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=waiting,
            limit=1,
        )
        if runs:
            return runs[0].id
        return client.create_flow_run_from_deployment(deployment_id, tags=TAGS).id


def serve_flows(
    settings: Settings,
    *,
    repair: bool = False,
    reconcile_cron: str = RECONCILE_CRON,
    summary_cron: str = SUMMARY_CRON,
    stream: bool = True,
    port: int = DEFAULT_PORT,
) -> None:
    """Register the deployments, start the stream, and serve them in this process until
    SIGTERM or Ctrl-C (which cancel the runs in flight: the stream stops after its batch)."""
    deployments = build_deployments(
        settings, repair=repair, reconcile_cron=reconcile_cron, summary_cron=summary_cron
    )
    os.environ[SERVED] = "repair" if repair else "check"  # inherited by the flow runs
    with prefect_api(port=port) as api_url:
        log.info("Prefect API at %s", api_url)
        if stream:
            run_id = start_stream(deployments[0])
            log.info("stream: flow run %s of sync/%s", run_id, STREAM)
        print(serving_message(api_url, deployments), file=sys.stderr, flush=True)
        serve(*deployments, print_starting_message=False)


def serving_message(api_url: str, deployments: list[RunnerDeployment]) -> str:
    """What is served, the UI's link and commands that work as printed (in another shell,
    where PREFECT_API_URL may be unset or point elsewhere)."""
    ui = api_url.rstrip("/").removesuffix("/api")
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    lines = [f"serving {len(names)} deployment(s): {', '.join(names)}"]
    lines.append(f"Prefect UI: {ui}/deployments")
    lines += [
        f"run one now: PREFECT_API_URL={api_url} prefect deployment run '{name}'"
        for name in names[1:]
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def prefect_api(*, port: int = DEFAULT_PORT) -> Iterator[str]:
    """The Prefect API to serve against: PREFECT_API_URL when set; else a Prefect server on
    127.0.0.1:`port` (one already running there, or one started for the duration). Schedules
    need it: the temporary API Prefect starts on its own runs no scheduler."""
    configured = check_api()
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    with _local_server(url, port), temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


@contextlib.contextmanager
def run_api(*, port: int = DEFAULT_PORT) -> Iterator[str | None]:
    """The Prefect API for `coffeeshop flows run`: PREFECT_API_URL when set, else a Prefect
    server already running on 127.0.0.1:`port` (no start-up to wait for), else None: Prefect
    starts its temporary API (see EPHEMERAL_TIMEOUT)."""
    configured = check_api()
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        print(f"using the Prefect server running at {url}", file=sys.stderr, flush=True)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
        return
    yield None


@contextlib.contextmanager
def one_line_prefect_errors() -> Iterator[None]:
    """Prefect's own failures to start or reach its API, as one line naming what helps."""
    try:
        yield
    except RuntimeError as exc:
        if "ephemeral Prefect API" not in str(exc):
            raise
        raise PrefectUnavailable(
            f"Prefect's temporary API did not start within {os.environ.get(EPHEMERAL_TIMEOUT)} s "
            f"(a busy machine?): raise {EPHEMERAL_TIMEOUT}, or run `prefect server start` "
            "and set PREFECT_API_URL=http://127.0.0.1:4200/api"
        ) from None
    except httpx.HTTPError as exc:
        raise PrefectUnavailable(
            f"the Prefect API stopped answering ({type(exc).__name__}: {_first_line(exc)}); "
            "check PREFECT_API_URL"
        ) from None


def check_api() -> str | None:
    """The configured PREFECT_API_URL (None: Prefect starts a temporary one), checked to answer."""
    configured = PREFECT_API_URL.value()
    if configured and not _healthy(configured):
        raise PrefectUnavailable(
            f"the Prefect API at {configured} (PREFECT_API_URL) does not answer; start it, "
            "or unset PREFECT_API_URL to use a temporary local one"
        )
    return configured or None


@contextlib.contextmanager
def _local_server(url: str, port: int) -> Iterator[None]:
    if _healthy(url):  # a Prefect server is already running there: share it
        yield
        return
    log.info("starting a Prefect server (scheduler and UI) at http://127.0.0.1:%d", port)
    command = [sys.executable, "-m", "prefect", "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--analytics-off"]
    # Its own session: a SIGTERM to the process group of `flows serve` (systemd, `timeout`)
    # must not stop the API before the runs in flight have reported their end to it; this
    # process stops it last, below.
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, env=local_server_env(url), start_new_session=True
    )
    try:
        _wait_until_healthy(url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def local_server_env(url: str) -> dict[str, str]:
    """The environment of the Prefect server `flows serve` starts: its UI calls this API (by
    default it calls port 4200, whatever port the server listens on), and nothing it serves
    reaches beyond this machine (no analytics, no promotional content, no telemetry)."""
    return os.environ | {
        "PREFECT_UI_API_URL": url,
        "PREFECT_SERVER_UI_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "DO_NOT_TRACK": "1",
    }


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not _healthy(url):
        if process.poll() is not None:
            raise PrefectUnavailable(
                f"the Prefect server on {url} exited with status {process.returncode} "
                "(is the port taken? see its output above)"
            )
        if time.monotonic() > deadline:
            raise PrefectUnavailable(f"the Prefect server on {url} did not start in time")
        time.sleep(0.2)


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
