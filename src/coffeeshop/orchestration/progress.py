"""What a run reports while and after it runs: a sync's progress lines and totals
over its passes, a reconcile's differences."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from coffeeshop.pipeline.engine import SyncReport
from coffeeshop.pipeline.reconcile import ReconcileReport

__all__ = ["ProgressLog", "SyncTotals", "describe_sync", "log_reconcile"]


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


# The counters of one pass that add up over passes (`started` is a moment, not a count).
_SUMMED = tuple(f.name for f in dataclasses.fields(SyncReport) if f.name != "started")


@dataclasses.dataclass(slots=True)
class SyncTotals(SyncReport):
    """What a sync flow run did: the sum of its passes' reports, and how often it restarted."""

    passes: int = 0
    restarts: int = 0

    def add(self, report: SyncReport) -> None:
        self.passes += 1
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(report, name))

    def as_dict(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in _SUMMED}
        return counts | {
            "passes": self.passes,
            "events": self.events,
            "restarts": self.restarts,
            "seconds": round(self.seconds, 3),
        }


def describe_sync(report: SyncReport) -> str:
    """One line: what a pass or a whole run did, and how fast."""
    return (
        f"{report.events:,} event(s) in {report.batches:,} batch(es): {report.applied:,} "
        f"applied, {report.quarantined:,} quarantined, {report.skipped:,} skipped "
        f"({report.seconds:.2f} s, {report.rate():,.0f} events/s)"
    )


def log_reconcile(report: ReconcileReport, logger: Any) -> dict[str, Any]:
    """Log a reconcile's differences and its summary; the summary, as a flow returns it."""
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
