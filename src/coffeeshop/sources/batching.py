"""Micro-batching, for every source: when the batch being filled is handed out.

A source only knows how to read its next items and what its position is; the policy
that cuts them into batches is here (after bytewax's `inputs.batch`): a batch closes at
`limits.max_events`, or `limits.max_wait` seconds after its first event, whichever
comes first. A source that has nothing more to read right now (end of the file, a
caught-up change stream) hands out what it holds at once, so light traffic is applied
without waiting.

A bulk read (the MongoDB snapshot, a poll) is cut by count only (`timed=False`): its
events are all there already, so a clock would only make its batches smaller.

    batch = MicroBatch(limits)
    for item in items:
        if batch.add(event_of(item)):
            yield SourceBatch(batch.take(), position())
    ...
    if batch:  # caught up
        yield SourceBatch(batch.take(), position())
"""

from __future__ import annotations

import time

from coffeeshop.core.events import Event
from coffeeshop.sources.base import BatchLimits


class MicroBatch:
    """The events of the batch being filled, and the clock that closes it."""

    __slots__ = ("_max_events", "_max_wait", "_started", "events")

    def __init__(self, limits: BatchLimits, *, timed: bool = True) -> None:
        self._max_events = limits.max_events
        self._max_wait = limits.max_wait if timed else None
        self._started = 0.0
        self.events: list[Event] = []

    def add(self, event: Event) -> bool:
        """Add one event; True when the batch is now full and should be handed out."""
        events = self.events
        if not events:
            self._started = time.monotonic()
        events.append(event)
        if len(events) >= self._max_events:
            return True
        return self._max_wait is not None and time.monotonic() - self._started >= self._max_wait

    def take(self) -> list[Event]:
        """The events to hand out; the next batch starts empty."""
        events, self.events = self.events, []
        return events

    def __bool__(self) -> bool:
        return bool(self.events)

    def __len__(self) -> int:
        return len(self.events)
