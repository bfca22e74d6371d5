"""The sync loop: pull a batch from a source, apply it in one transaction, repeat.

One process at a time writes a database (the store's writer lock). The checkpoint
commits with the data, so a restart resumes exactly after the last committed batch.
Transient database failures (lost connection, deadlock, lock wait timeout, a locked
SQLite file) retry the whole batch with the shared backoff of `coffeeshop.retry`; which
errors are transient the store's one mapping says (`store.errors`: `StoreError.transient`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from coffeeshop.errors import (
    CheckpointMoved,
    SourceHistoryLost,
    SourceSwitched,
    StoreError,
    is_transient,
)
from coffeeshop.pipeline.notices import QuarantineNotice
from coffeeshop.pipeline.readahead import ReadBatch, read_ahead, read_inline
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.retry import Retrying, RetryPolicy, StopSignal
from coffeeshop.sources.base import BatchLimits, Source
from coffeeshop.store import Store

log = logging.getLogger("coffeeshop.pipeline.engine")

T = TypeVar("T")


@dataclass(slots=True)
class SyncReport:
    batches: int = 0
    applied: int = 0
    quarantined: int = 0
    skipped: int = 0
    retries: int = 0
    recovered: int = 0  # batches whose commit was acknowledged on a connection that died
    rebuilds: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def events(self) -> int:
        return self.applied + self.quarantined + self.skipped

    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Syncer:
    """Keeps a store in step with a source."""

    def __init__(
        self,
        store: Store,
        source: Source,
        *,
        limits: BatchLimits | None = None,
        today: Callable[[], dt.date] = dt.date.today,
        retry: RetryPolicy | None = None,
        on_batch: Callable[[SyncReport], None] | None = None,
        read_ahead: bool = True,
        rebuild_on_history_lost: bool = True,
    ) -> None:
        self.store = store
        self.source = source
        self.limits = limits or BatchLimits()
        self.today = today
        self.retry = retry or RetryPolicy()
        self.on_batch = on_batch
        # Read and validate in a second process when there is a second core to run it.
        self.read_ahead = read_ahead and (os.cpu_count() or 1) > 1
        self.rebuild_on_history_lost = rebuild_on_history_lost
        self._stop: StopSignal = threading.Event()
        self._quarantine = QuarantineNotice(log)

    def run(
        self, *, follow: bool = False, stop: StopSignal | None = None, wait_lock: float = 0.0
    ) -> SyncReport:
        """Apply everything the source has (and, with `follow`, keeps arriving) until `stop`."""
        stop = stop or threading.Event()
        self._stop = stop
        report = SyncReport()
        store = self.store
        self._quarantine = QuarantineNotice(log)
        self._call(store.upgrade, report)
        self._call(lambda: store.acquire_writer(wait=wait_lock), report)
        try:
            # One source per database: refuse another source's before reading anything.
            self._call(lambda: store.check_source(self.source.name, rebuild=False), report)
            while True:
                try:
                    self._follow(follow, stop, report)
                    break
                except CheckpointMoved as exc:
                    log.warning("%s; continuing from the new checkpoint", exc)
                    if stop.is_set():
                        break
                except SourceSwitched as exc:  # no failure: a better way to read the source
                    log.warning("%s", exc)
                    self._rebuild(report)
                    if stop.is_set():
                        break
                except SourceHistoryLost as exc:
                    if not self.rebuild_on_history_lost:
                        source = self.source.repair_args
                        raise SourceHistoryLost(
                            f"{exc}. The tables stay as they are; to rebuild them from the "
                            f"source: coffeeshop reconcile --repair {source} "
                            f"--db {shlex.quote(store.safe_url)}"
                        ) from None
                    log.error(
                        "%s. Rebuilding the tables from a fresh snapshot of the source; the "
                        "changes in between cannot be replayed one by one.",
                        exc,
                    )
                    self._rebuild(report)
                    if stop.is_set():
                        break
            self._call(lambda: store.refresh_summary(self.today()), report)
        finally:
            report.seconds = time.monotonic() - report.started
            store.release_writer()
            self._quarantine.finish()
        return report

    def _follow(self, follow: bool, stop: StopSignal, report: SyncReport) -> None:
        """From the checkpoint to the end of the source (or to `stop`, with `follow`)."""
        store, source = self.store, self.source
        checkpoint = self._call(lambda: store.load_checkpoint(source.name), report)
        source.open(checkpoint.position if checkpoint else None)
        try:
            if checkpoint:
                describe = getattr(source, "describe_position", None)  # optional
                where = describe(checkpoint.position) if describe else None
                log.info(
                    "resuming %s %s", source.name, where or f"after {_short(checkpoint.position)}"
                )
            version = checkpoint.version if checkpoint else 0
            last_position = checkpoint.position if checkpoint else None
            today = self.today()
            self._call(lambda: store.refresh_summary(today), report)
            read = read_ahead if self.read_ahead else read_inline
            for batch in read(source, self.limits, follow=follow, stop=stop):
                if self.today() != today:  # local midnight passed: start the new day's row
                    today = self.today()
                    self._call(functools.partial(store.refresh_summary, today), report)
                if batch.position is None or (not batch.events and batch.position == last_position):
                    continue
                version = self._apply(batch, version, today, report)
                last_position = batch.position
                if stop.is_set():
                    break
                if self.on_batch is not None:
                    self.on_batch(report)
        finally:
            source.close()

    def _rebuild(self, report: SyncReport) -> None:
        """Replace the state with a fresh read of the whole source (under our lock)."""
        result = reconcile(
            self.store,
            self.source,
            today=self.today(),
            repair=True,
            limits=BatchLimits(max_events=20_000, poll_interval=self.limits.poll_interval),
        )
        report.rebuilds += 1
        log.warning(
            "rebuilt from a fresh snapshot: %d receipt(s), %d difference(s) fixed",
            result.receipts,
            result.total_differences,
        )

    def _apply(self, batch: ReadBatch, version: int, today: dt.date, report: SyncReport) -> int:
        position = batch.position
        assert position is not None  # ticks never get here
        started = time.perf_counter()
        result = self._call(
            lambda: self.store.apply_batch(
                self.source.name,
                batch.events,
                behind=batch.behind,
                source_time=batch.source_time,
                position=position,
                expected_version=version,
                today=today,
            ),
            report,
        )
        report.batches += 1
        report.applied += result.applied
        report.quarantined += result.quarantined
        report.skipped += result.skipped
        if result.recovered:
            report.recovered += 1
            log.warning(
                "batch %d had committed before its connection was lost; not applied again",
                result.version,
            )
        self._quarantine.add(result.version, result.quarantined)
        log.debug(
            "batch %d: %d applied, %d quarantined, %d written, %d deleted in %.3f s",
            result.version,
            result.applied,
            result.quarantined,
            result.receipts_written,
            result.receipts_deleted,
            time.perf_counter() - started,
        )
        return result.version

    def _call(self, action: Callable[[], T], report: SyncReport) -> T:
        """Run one database action, retrying transient failures (the shared policy)."""
        retrying = StoreRetrying(self.retry, self._stop, self.store, report)
        return retrying.call(lambda: _mapped(self.store, action), catch=(StoreError,))


class StoreRetrying(Retrying):
    """The shared retry policy, for the store: a transient `StoreError` retries the action
    (a whole batch); any other, or the last failure, is raised as it is (one line)."""

    def __init__(
        self, policy: RetryPolicy, stop: StopSignal, store: Store, report: SyncReport
    ) -> None:
        super().__init__(policy, stop)
        self.store = store
        self.report = report

    def retryable(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        self.report.retries += 1
        log.warning(
            "database error, retrying the batch in %.1f s (attempt %d of %s): %s",
            delay,
            self.failures + 1,
            self.policy.attempts if self.policy.attempts is not None else "unlimited",
            exc,
        )

    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        return exc  # already one `StoreError` line, still saying whether it may pass

    def stopped(self, exc: BaseException, what: str) -> BaseException:
        return StoreError(f"stopped while waiting to retry: {exc}")


def _mapped(store: Store, action: Callable[[], T]) -> T:
    """`action()`, any database error inside mapped to its `StoreError` (`store.errors`)."""
    with store.mapped_errors():
        return action()


def _short(position: str) -> str:
    return position if len(position) <= 80 else position[:77] + "..."
