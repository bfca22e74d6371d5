"""Whole-history work partitioned over a Dask cluster, as Prefect tasks on a `DaskTaskRunner`.

`reconcile-partitioned` is a Prefect flow whose tasks run on Dask workers (a local cluster of
`workers` processes, or an existing cluster at `address`):

1. `read-range` (one per partition): read one part of the source, validate every receipt with
   the same rules as `sync`, fold it into last-write-wins candidates, split them by key hash
   into `buckets` shards, kept on the worker;
2. each bucket fetches only its own shard of every range, and resolves it where it runs
   (plain Dask tasks, `orchestration.buckets`): every version of a receipt meets in its
   bucket, the last one wins; the bucket's rows and its windowed counted sums stay on its
   worker, its small `Partial` (sums per day, month, hour, item) comes back; its quarantine
   entries stay on the worker too (a range's unreadable input on the range's), counted;
3. the flow merges the partials (exact, associative) and compares them with the database,
   streaming the buckets' rows from the workers in key order beside `cs_receipts` (and the
   counted sums a window of days or months at a time beside those tables' rows), then
   repairs through `Store.rebuild` with the same stream, in the flow's own process (see
   `pipeline.partitioned.finish`): the coordinator never holds the history's receipts at once.

Only the source must be reachable from the workers (the file at the same path, or the
MongoDB URI: each worker connects to it itself); the analysis database is read and written
by the flow's process alone, a repair or backfill included. A MongoDB collection is read
in `_id` ranges (`sources.mongo_partitions`), after the flow's process has taken the change
stream's start point, which a repair or backfill commits as the checkpoint.

A worker that dies mid-task loses its task: Dask runs it again on another worker (up to
`distributed.scheduler.allowed-failures` times), and the flow waits for it; a task that
raises is retried by Prefect (`RETRIES`) when its error may pass (`tasks.is_retryable`: an
unreachable source, a transient I/O error; never bad configuration). Either way no partial
result is merged twice: a bucket merges exactly the outputs of its upstream tasks,
whichever attempt produced them (a bucket lost with its worker is resolved again from its
inputs). A range that fails for good (its file missing on a worker,
or another file at the same path: `sources.partitions.check_planned`; another collection
behind the URI) fails the run with its own one-line error before any bucket is resolved,
and nothing is written.

The scheduler at `address` must accept a connection (`orchestration.scheduler`), checked
before Prefect starts anything: no scheduler there is one line, not minutes of retries.

Connection settings are read from the environment (as `orchestration.flows` does) when the
flow's `source`/`db` parameters are empty, so a password is never a flow parameter. Call
`orchestration.settings.configure()` before importing this module (it imports Prefect).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any, cast

from distributed import Client
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext, tags
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner
from prefect_dask import DaskTaskRunner
from pydantic import Field

from coffeeshop import scratch
from coffeeshop.config import Settings, build_settings
from coffeeshop.errors import ConfigError
from coffeeshop.orchestration.buckets import failed, pickled, resolve_on_cluster
from coffeeshop.orchestration.cluster import check_workers, scheduler_lost
from coffeeshop.orchestration.orphans import mark_crashed, owner_tags
from coffeeshop.orchestration.progress import log_reconcile
from coffeeshop.orchestration.scheduler import check_scheduler
from coffeeshop.orchestration.settings import DEFAULTS, EPHEMERAL_TIMEOUT, install_log_filters
from coffeeshop.orchestration.tasks import retry_when_transient
from coffeeshop.pipeline.partitioned import Gathered, buckets_for, combine, finish
from coffeeshop.pipeline.reconcile import ReconcileReport
from coffeeshop.sources.base import Partition, Partitioned, partitioned
from coffeeshop.store import Store

log = logging.getLogger("coffeeshop.orchestration.scaleout")

RETRIES = 2
_RETRYING: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": 1,
    "retry_condition_fn": retry_when_transient,
    "cache_policy": NO_CACHE,
}
# Free bytes the temporary directory needs for Prefect's temporary API server: its SQLite
# migrations write scratch files there, and on a full disk it fails only after its start-up
# timeout (minutes), with tracebacks.
EPHEMERAL_SCRATCH = 32 << 20
PARTS_PER_WORKER = 4  # more, smaller partitions: a lost one costs less, stragglers balance


class DaskSettings(Settings):
    """Where whole-history work runs: `COFFEESHOP_DASK_ADDRESS` (an existing cluster's
    scheduler, tcp://host:8786) or `COFFEESHOP_DASK_WORKERS` local worker processes. With
    neither, `reconcile` runs in one process as before."""

    dask_address: str | None = Field(None, validation_alias="COFFEESHOP_DASK_ADDRESS")
    dask_workers: int | None = Field(
        None, ge=1, le=1024, validation_alias="COFFEESHOP_DASK_WORKERS"
    )
    dask_partitions: int | None = Field(
        None, ge=1, le=100_000, validation_alias="COFFEESHOP_DASK_PARTITIONS"
    )

    @property
    def on_dask(self) -> bool:
        return bool(self.dask_address or self.dask_workers)


def dask_settings(**overrides: Any) -> DaskSettings:
    return build_settings(DaskSettings, **overrides)


def task_runner(*, workers: int | None, address: str | None) -> TaskRunner[Any]:
    """A `DaskTaskRunner` on the cluster at `address`, else on a local cluster of `workers`
    single-threaded worker processes (parsing is CPU-bound Python: threads would share the GIL).
    (Typed as a `TaskRunner[Any]`: its futures are `PrefectDaskFuture`s, which the invariant
    annotation of `Flow.with_options` would refuse.)"""
    if address:
        check_scheduler(address)
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers or os.cpu_count() or 1,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",  # any free port: never a clash with another run
        }
    )


# -- tasks: they run on the workers -------------------------------------------------------------


# Task results travel as pickled bytes (`buckets.pickled`): Prefect walks every task parameter
# looking for futures to resolve (`visit_collection`), which over a partition's candidates cost
# three times the reading itself; bytes are opaque to it, and Dask moves them without copying.


@task(name="read-range", **_RETRYING)
def read_partition(part: Partition, buckets: int) -> list[bytes]:
    """One part of a plan (a file's byte range, a collection's `_id` range), read by its
    source opened again on the worker (`part.reopen()`: the same path, or its own connection
    to the URI): [the part's summary, its shard for bucket 0, for bucket 1, …], each pickled."""
    install_log_filters()  # a worker process logs a one-line error as its line
    return pickled(part.reopen().read_partition(part, buckets))


# -- the flow: it runs where it was started ---------------------------------------------------


def gather(source: Partitioned, partitions: int) -> Gathered:
    """Plan the source's parts here (a collection: its change stream's start point first),
    read them on the flow's task runner, and merge them; the merged state hands over at the
    plan's position."""
    plan = source.plan_partitions(partitions)
    buckets = buckets_for(len(plan.parts))
    outputs: list[Any] = [read_partition.submit(part, buckets) for part in plan.parts]
    _raise_first_failure(outputs)
    ranges = [output.wrapped_future for output in outputs]
    del outputs  # `resolve_on_cluster` lets each range go once its buckets took their shards
    return combine(plan, *resolve_on_cluster(_client(), ranges, buckets))


def _client() -> Client:
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    if not isinstance(runner, DaskTaskRunner):
        raise ConfigError("a partitioned reconcile runs on a DaskTaskRunner")
    return runner.client


def _raise_first_failure(futures: list[Any]) -> None:
    """Fail the run with the error of a range that failed for good (Prefect would leave the
    buckets that need it PENDING, and report only that). A range's output stays on its
    worker: each range's outcome is looked at where it lives (`buckets.failed`), and only a
    failed one's state comes back here. (`PrefectDaskFuture.wait` would fetch the whole
    state, the range's candidates included, and keep it: every range's, ~230 bytes per
    receipt on the coordinator.)"""
    client = _client()
    checks = [client.submit(failed, f.wrapped_future, pure=False) for f in futures]
    for future, check in zip(futures, checks, strict=True):
        try:
            outcome = check.result()
        except Exception:  # the Dask task itself failed (its worker lost too often)
            outcome = True
        if outcome:
            future.result()  # raises the task's own exception
            raise ConfigError(f"a partition ended {future.state.name}: {future.state.message}")


def _partitions(settings: DaskSettings) -> int:
    if settings.dask_partitions:
        return settings.dask_partitions
    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    workers = settings.dask_workers or 1
    if isinstance(runner, DaskTaskRunner):
        workers = max(1, len(runner.client.scheduler_info(n_workers=-1).get("workers", {})))
    return PARTS_PER_WORKER * workers


@flow(name="reconcile-partitioned")
def reconcile_partitioned_flow(
    source: str | None = None,
    db: str | None = None,
    repair: bool = False,
    partitions: int | None = None,
) -> ReconcileReport:
    """Recompute the tables from the whole source in partitions on the flow's task runner (a
    Dask cluster), compare them with the database, and with `repair` rebuild them."""
    settings = dask_settings(source=source, db=db, dask_partitions=partitions)
    with scheduler_lost(_client().scheduler.address):
        return _reconcile(settings, repair)


def _reconcile(settings: DaskSettings, repair: bool) -> ReconcileReport:
    logger = get_run_logger()
    check_workers(_client(), __name__)
    parts = _partitions(settings)
    source_obj = settings.open_source()
    gathered = gather(partitioned(source_obj), parts)
    logger.info(
        "read %d partition(s): %d valid receipt(s), %d quarantined",
        gathered.partitions,
        gathered.partial.receipts,
        len(gathered.quarantine),
    )
    # A rebuild writes with the database's bulk path (MariaDB/MySQL: LOAD DATA LOCAL INFILE).
    with Store(settings.db, read_only=not repair, bulk_load=repair) as store:
        return finish(store, source_obj, gathered, today=settings.today(), repair=repair)


def reconcile_on_dask(
    *,
    source: str | None,
    db: str | None,
    repair: bool,
    workers: int | None,
    address: str | None,
    partitions: int | None = None,
) -> ReconcileReport:
    """`reconcile` on a local Dask cluster of `workers` processes, or the cluster at `address`."""
    runner = task_runner(workers=workers, address=address)
    with scheduler_lost(address or "of the local cluster"):
        return _run_owned(runner, source=source, db=db, repair=repair, partitions=partitions)


def summary_on_dask(
    settings: DaskSettings, *, source: str | None, db: str | None, repair: bool
) -> dict[str, Any]:
    """The `reconcile` deployment's run on Dask (a subflow): the summary it logs and returns."""
    logger = get_run_logger()
    runner = task_runner(workers=settings.dask_workers, address=settings.dask_address)
    with scheduler_lost(settings.dask_address or "of the local cluster"):
        report = _run_owned(
            runner, source=source, db=db, repair=repair, partitions=settings.dask_partitions
        )
    return log_reconcile(report, logger)


def _run_owned(runner: TaskRunner[Any], **parameters: Any) -> ReconcileReport:
    """The flow on `runner`, its run tagged with this process as its owner, after marking
    CRASHED the runs of coordinators on this machine that were killed (`orphans`)."""
    run = reconcile_partitioned_flow.with_options(task_runner=runner)
    with shared_api():
        mark_crashed(run.name)
        with tags(*owner_tags()):
            return cast(ReconcileReport, run(**parameters))


@contextlib.contextmanager
def shared_api() -> Iterator[str]:
    """The Prefect API every process of the run reports to. Without PREFECT_API_URL each
    process would start a temporary server of its own, a local worker included: start one
    here and hand its URL to the workers through the environment they inherit. (Workers of
    an existing cluster need PREFECT_API_URL in their own environment.)"""
    configured = PREFECT_API_URL.value()
    if configured:
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = configured
        try:
            yield configured
        finally:
            _restore("PREFECT_API_URL", previous)
        return
    from prefect.server.api.server import SubprocessASGIServer

    scratch.require_free("Prefect's temporary API server", EPHEMERAL_SCRATCH)
    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ.get(EPHEMERAL_TIMEOUT, DEFAULTS[EPHEMERAL_TIMEOUT])))
    try:
        os.environ["PREFECT_API_URL"] = server.api_url
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        drain_reporting()  # while the API still answers
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


DRAIN_TIMEOUT = 30.0  # longest wait for the run's last log lines and events to reach the API


def drain_reporting() -> None:
    """Send the log lines and events Prefect still holds for the API, and stop its workers.
    Else they try a stopped temporary API after the command's verdict: over a minute of
    retries at exit, then `--- Error logging to API --- All connection attempts failed`."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=DRAIN_TIMEOUT, at_exit=False)
    EventsWorker.drain_all(timeout=DRAIN_TIMEOUT, at_exit=False)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
