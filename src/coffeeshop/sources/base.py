"""What every source gives the engine: batches of change events with a resume position."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from coffeeshop.core.events import Event


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """Events read since the previous batch, and the position just after the last one.

    A batch may hold no events: it still moves the position (blank lines skipped, an
    idle change stream's newer resume token).
    """

    events: list[Event]
    position: str
    behind: int | None = None  # what the source still holds past this batch (bytes of a file)
    source_time: dt.datetime | None = None  # the source's time of the newest change (UTC)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """Micro-batching: a batch closes at `max_events`, or `max_wait` seconds after its
    first event, whichever comes first; a source with nothing more to read closes it
    at once, so light traffic is applied without waiting."""

    max_events: int = 5000
    max_wait: float = 0.2
    poll_interval: float = 0.1


class Source(Protocol):
    """A stream of receipt changes that can resume from a position string."""

    @property
    def name(self) -> str:
        """Identifies the source in checkpoints (one checkpoint per source name)."""
        ...

    def open(self, position: str | None) -> None:
        """Prepare to read after `position` (None: from the start); raise if it no longer fits."""
        ...

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: threading.Event
    ) -> Iterator[SourceBatch]:
        """Yield batches until the source is exhausted (`follow=False`) or `stop` is set."""
        ...

    def close(self) -> None: ...
