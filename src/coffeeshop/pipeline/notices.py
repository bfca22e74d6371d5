"""Quarantine warnings, summarised: a file with invalid lines spread over it quarantines
something in nearly every batch, and a WARNING per batch (26 for one file) buries the rest
of the log. The first batch that quarantines anything is reported at once; later ones are
added up and reported at most once per `every` seconds; the end of a run reports the total.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

# In the format string itself: the command's log filter completes it with --db.
HINT = "see `coffeeshop quarantine`"


class QuarantineNotice:
    """Counts quarantined events batch by batch and logs a summary now and then."""

    def __init__(
        self,
        log: logging.Logger,
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.every = every
        self.clock = clock
        self.total = 0
        self._pending = 0  # quarantined since the last line
        self._batches = 0  # batches behind `_pending`
        self._logged_at: float | None = None
        self._first = 0  # what the first line reported

    def add(self, batch: int, quarantined: int) -> None:
        """Batch `batch` quarantined `quarantined` event(s): log now, or add to the next line."""
        if quarantined <= 0:
            return
        self.total += quarantined
        now = self.clock()
        if self._logged_at is None:
            self.log.warning(
                f"batch %d: %d event(s) quarantined ({HINT}); further ones are summed up "
                "every %g s",
                batch,
                quarantined,
                self.every,
            )
            self._logged_at = now
            self._first = quarantined
            return
        self._pending += quarantined
        self._batches += 1
        if now - self._logged_at >= self.every:
            self._flush(now)

    def finish(self) -> None:
        """The end of a run: the total, unless the first line already said it all."""
        if self.total > self._first:
            self.log.warning(f"%d event(s) quarantined in all by this run ({HINT})", self.total)
        self._pending = self._batches = 0

    def _flush(self, now: float) -> None:
        assert self._logged_at is not None
        self.log.warning(
            f"%d more event(s) quarantined in %d batch(es) over the last %.0f s ({HINT})",
            self._pending,
            self._batches,
            now - self._logged_at,
        )
        self._pending = self._batches = 0
        self._logged_at = now
