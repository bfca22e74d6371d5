"""Prefect flows over the engine: a streaming `sync`, a nightly `reconcile`, a daily
`refresh-summary`, and the deployments `coffeeshop flows serve` runs on schedules.

Cost model. A flow run or a task run costs far more than a batch of the engine (measured by
`bench/bench_prefect.py`, see docs/benchmarks.md). So Prefect never sees a receipt, nor even
a batch: the engine batches exactly as under `coffeeshop sync`, and Prefect records one task
run per *pass* of the engine (`sync-pass`). A pass is `Syncer.run()` over everything the
source holds (one pass, `follow=False`) or, when following, one *segment* of a stream of at
most `segment_seconds`; the engine's `on_batch` callback writes a progress line to the run
logger at most every `progress_every` seconds.

Why segments rather than one endless task: a task run stays a readable unit in the UI (its
counts and its log lines cover a quarter of an hour, not weeks), each has its own retry budget,
and each starts by re-reading the checkpoint and writing the day's summary row.
`reconcile` needs no pause in the stream: a repair lands between two batches, and the stream
continues from the checkpoint the repair moved (see `coffeeshop.pipeline.reconcile`).

Errors. Tasks retry transient failures (see `orchestration.tasks`); a stream whose pass still
fails starts again after a capped backoff, so an outage of any length only pauses it; each
failed pass stays recorded as a failed task run.

Stopping. SIGTERM or SIGINT (a cancellation from the Prefect runner arrives as SIGTERM) sets a
stop flag: the engine commits the batch in hand with its checkpoint, stops its reader and
releases the lock. Under `flows run` the signal is then handed on to the handler it
interrupted (Prefect's), and a second one at once. In a run of a served deployment no signal
goes on to Prefect, which would record a crash with an ERROR line: the run ends Completed (or
Cancelled, recorded by the runner), and the reconcile and the summary row finish their one
transaction the same way (see `stop_on_signals`). Either way nothing is lost or counted
twice: a batch commits atomically with its checkpoint.

Connection settings. The flows take `source` and `db` parameters, but flow parameters are
stored in the Prefect database, so a URL with a password must not be one: `coffeeshop flows
run/serve` put `--source`/`--db` into the environment of the process that runs the flows
(`COFFEESHOP_SOURCE`, `COFFEESHOP_DB`) and leave the parameters empty; every run logs its
database with the password masked. A run of a served deployment takes none of them from its
parameters (see `orchestration.deployments`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from coffeeshop.config import Settings, load_settings
from coffeeshop.errors import CoffeeshopError, ConfigError, WriterBusy
from coffeeshop.orchestration.progress import SyncTotals, describe_sync
from coffeeshop.orchestration.settings import install_log_filters
from coffeeshop.orchestration.tasks import (
    PROGRESS_EVERY,
    is_retryable,
    reconcile_source,
    sync_pass,
    write_summary_row,
)
from coffeeshop.redact import mask_url
from coffeeshop.retry import Retrying, RetryPolicy
from coffeeshop.signals import CAUGHT, start_timer
from coffeeshop.signals import StopOnSignal as Stop
from coffeeshop.store import normalize_url

__all__ = [
    "SERVED",
    "ReconcileDifferences",
    "Stop",
    "is_retryable",
    "reconcile_flow",
    "refresh_summary_flow",
    "stop_on_signals",
    "sync_flow",
    "sync_pass",
]

SEGMENT_SECONDS = 900.0  # longest task run of a stream
# The bounds of the numeric run parameters: a run of a served deployment may come from anyone
# who reaches its Prefect API, and Prefect refuses a value outside them (the API against the
# deployment's parameter schema, the flow itself when a run asks the API not to enforce it).
DAY = 86_400.0
Seconds = Annotated[float, Field(ge=1.0, le=DAY)]
WaitSeconds = Annotated[float, Field(ge=0.0, le=DAY)]
RESTART_DELAY, MAX_RESTART_DELAY = 5.0, 300.0  # a failed stream starts again after these
# (times a jitter factor in [0.5, 1): `coffeeshop.retry.RetryPolicy`)
# Set by `deployments.serve_flows` in the serving process (its flow runs inherit it): "repair"
# or "check", what the nightly reconcile does. Its presence means run parameters cannot pick a
# source or db.
SERVED = "COFFEESHOP_FLOWS_SERVED"


class ReconcileDifferences(CoffeeshopError):
    """The tables differ from a recomputation over the source, and were not repaired."""

    exit_code = 1


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


@contextlib.contextmanager
def stop_on_signals(stop: Stop, logger: Any) -> Iterator[Stop]:
    """While inside, SIGTERM/SIGINT set `stop`. Under `flows run`, on the way out the first
    one is handed on to the handler it interrupted (Prefect's: the command then exits 130 or
    143), logged to `logger` (the run's); a second one is handed on at once. In a run of a
    served deployment no signal goes on: Prefect would record a crash, with an ERROR line,
    for a signal it did not send itself (Ctrl-C in the terminal of `flows serve`, SIGTERM to
    its process group: a deploy), and even the runner's own cancellation SIGTERM surfaced as
    one. The run ends as finished after its last committed batch (Completed; the runner
    records Cancelled over it where Prefect allows), signals are ignored from then on (the
    process ends with the run), and what will not finish is ended by the runner's SIGKILL
    after its grace period."""
    served = os.environ.get(SERVED) is not None
    if not served:
        with stop.install(hand_on=True, log=logger):
            yield stop
        return
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals go to the main thread only
        return
    for sig in CAUGHT:
        signal.signal(sig, stop.handle)
    try:
        yield stop
    finally:
        # The run's process ends with the run: a signal from now on (the runner's
        # cancellation, late) would only turn the end being recorded into a crash.
        for sig in CAUGHT:
            signal.signal(sig, signal.SIG_IGN)
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        logger.info("received %s: stopped after the last committed batch", name)


@flow(name="sync")
def sync_flow(
    source: str | None = None,
    db: str | None = None,
    follow: bool = True,
    wait_lock: WaitSeconds = 0.0,
    run_for: Annotated[float | None, Field(gt=0.0)] = None,
    segment_seconds: Seconds = SEGMENT_SECONDS,
    progress_every: Seconds = PROGRESS_EVERY,
) -> dict[str, Any]:
    """Keep the analytics tables in step with the source: follow it until stopped (default),
    or apply everything it holds once (`follow=False`, like `coffeeshop sync --once`).

    `wait_lock`: seconds to wait for another writer at the start (0 to a day); `run_for`:
    stop following after this many seconds; `segment_seconds`: longest pass (task run) of a
    stream (1 s to a day); `progress_every`: seconds between progress lines (1 s to a day).
    """
    install_log_filters()  # a served run's process imported this module, nothing more
    logger = get_run_logger()
    settings = _settings(source, db, logger, with_source=True)
    stop = Stop()
    timer = start_timer(run_for, stop.set)
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
    restarts = _Restarts(stop, logger, totals)
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
            try:
                restarts.failed(exc, "the stream")  # waits, or raises what cannot pass
            except _StoppedWaiting:
                break
            continue
        restarts.succeeded()
        totals.add(report)
    return totals


class _StoppedWaiting(Exception):
    """A stop was requested while the stream waited to start again."""


class _Restarts(Retrying):
    """The stream's side of the shared retry policy (`coffeeshop.retry`): a failed pass starts
    again, for ever, after a capped backoff, when its error may pass (`tasks.is_retryable`);
    after a first pass, another writer holding the lock is waited out too."""

    def __init__(self, stop: Stop, logger: Any, totals: SyncTotals) -> None:
        policy = RetryPolicy(None, first_delay=RESTART_DELAY, max_delay=MAX_RESTART_DELAY)
        super().__init__(policy, stop)
        self.logger = logger
        self.totals = totals

    def retryable(self, exc: BaseException) -> bool:
        return is_retryable(exc) or (self.totals.passes > 0 and isinstance(exc, WriterBusy))

    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        self.totals.restarts += 1
        self.logger.warning("%s stopped (%s); starting it again in %.0f s", what, exc, delay)

    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        return exc

    def stopped(self, exc: BaseException, what: str) -> BaseException:
        return _StoppedWaiting()


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
    install_log_filters()  # a served run's process imported this module, nothing more
    logger = get_run_logger()
    served = os.environ.get(SERVED)
    if served is not None and repair != (served == "repair"):
        refuse_run_parameters(repair=repair)
    settings = _settings(source, db, logger, with_source=True)
    with _engine_log_level(settings), stop_on_signals(Stop(), logger):
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
    install_log_filters()  # a served run's process imported this module, nothing more
    logger = get_run_logger()
    settings = _settings(None, db, logger, with_source=False)
    with _engine_log_level(settings), stop_on_signals(Stop(), logger):
        return write_summary_row(settings)
