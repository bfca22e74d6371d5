"""How a repair's rebuild reads on past its snapshot (`store.apply.CatchUp`).

A repair reads the whole source, compares, then rebuilds in one transaction. Meanwhile a
faster repair or a running sync may have committed a newer end of the source: committing
the older snapshot as it is would move the tables and the checkpoint backwards. So inside
the rebuild's transaction (which holds the checkpoint row: nobody else commits meanwhile),
the source is opened again at the snapshot's end and read, validated as `sync` does, to
where it ends now; those changes are applied on top and the checkpoint moves there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from coffeeshop.core.plan import ParsedEvent, parse_events
from coffeeshop.pipeline.readahead import source_batches
from coffeeshop.sources.base import BatchLimits, Source
from coffeeshop.store.apply import CatchUp

LIMITS = BatchLimits(max_events=20_000)


def reader(source: Source, limits: BatchLimits = LIMITS) -> CatchUp:
    """A `CatchUp` reading `source` (opened anew, closed after) from a position on."""

    def read(position: str) -> Iterator[tuple[list[ParsedEvent], str]]:
        source.open(position)
        try:
            for batch in source_batches(source, limits, follow=False, stop=threading.Event()):
                yield parse_events(batch.events), batch.position
        finally:
            source.close()

    return read
