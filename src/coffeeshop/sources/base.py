"""What every source gives the engine: batches of change events with a resume position.

Adding a source (Kafka, a directory of files, …) means writing one class that meets the
`Source` protocol below, cutting its reads into batches with `sources.batching.MicroBatch`,
retrying its own transient errors with `coffeeshop.retry`, and registering its kind (its URI
scheme) in `coffeeshop.sources`. The engine, the read-ahead process and reconcile do the
rest; whole-history work in partitions (Dask) needs the `Partitioned` capability too. The
files: its module, its `register` line in `sources/__init__.py`, its test, its line in the
README's "Sources" (4, counted in the README's "Adding a source").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from coffeeshop.core.events import Event
from coffeeshop.errors import ConfigError
from coffeeshop.retry import StopSignal

if TYPE_CHECKING:
    from coffeeshop.sources.partitions import RangeOutput

__all__ = [
    "BatchLimits",
    "Partition",
    "PartitionPlan",
    "Partitioned",
    "Reachable",
    "Source",
    "SourceBatch",
    "StopSignal",
    "partitioned",
]


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
    at once, so light traffic is applied without waiting. While following, a source
    with nothing to read looks again every `poll_interval` seconds (or waits that long
    for the server's answer). `sources.batching.MicroBatch` applies these limits."""

    max_events: int = 5000
    max_wait: float = 0.2
    poll_interval: float = 0.05


class Source(Protocol):
    """A stream of receipt changes that can resume from a position string.

    The engine's calls, in order: `open(position)`, then `batches(...)` (in a forked
    read-ahead process when there is a second core: see `coffeeshop.pipeline.readahead`), then
    `close()`. Each batch's `position` commits in the same transaction as its events, so
    after a crash `open()` receives the position of the last batch applied, and the
    events after it are read again (the engine is idempotent: a change applied twice
    leaves the tables as once).

    A **position** is a string the source alone writes and reads (JSON by convention): it
    says where to continue *after* the batch that carries it, and it is stored as is in
    `cs_checkpoint`. It must be valid on its own (a restart may use any committed one)
    and should detect that the source no longer matches it (a rewritten file, a
    change stream whose history is gone) rather than misread.
    """

    @property
    def name(self) -> str:
        """Identifies the source in checkpoints (one checkpoint per source name); stable
        across runs, and never holding a secret (it is logged and stored)."""
        ...

    @property
    def spec(self) -> str:
        """The portable spec: what opens this same source again in another process or working
        directory (`coffeeshop.sources.open_source`; an absolute path, a URI). It may hold a
        credential: it is handed on through the environment, never logged (`name` is)."""
        ...

    @property
    def repair_args(self) -> str:
        """The command-line options that name this source (`--source …`, shell-quoted, every
        credential masked), for the advice an error gives (`coffeeshop reconcile --repair …`)."""
        ...

    def open(self, position: str | None) -> None:
        """Prepare to read after `position`; raise if it no longer fits (`ConfigError`
        for a position this source cannot read, `SourceChanged` when the source no
        longer matches it).

        - **No I/O that cannot cross a fork.** `batches()` may run in a process forked
          after `open()` returns (`coffeeshop.pipeline.readahead`): network clients, threads and
          their locks must be made in `batches()`, not here. (A file descriptor is fine:
          it is inherited.) Check and parse the position here; connect in `batches()`.
        - **`open(None)` replays the full current state.** With no position, `batches()`
          must yield every receipt the source holds now (and, following, every change
          after). Reconcile (`coffeeshop reconcile`) and the engine's rebuild (after a
          lost history or a switch) recompute the tables from exactly this read.
        """
        ...

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: StopSignal
    ) -> Iterator[SourceBatch]:
        """Yield batches, in order, each within `limits` (use `MicroBatch`).

        - `follow=False` (`--once`, reconcile, rebuild): return once everything the source
          holds at the time of the read has been yielded; the last batch's position is
          where a later run continues.
        - `follow=True`: keep yielding as changes arrive; when nothing arrives, wait
          `limits.poll_interval` with `stop.wait(...)` (never `time.sleep`). An empty
          batch is worth yielding only when the position moved (so that it commits; the
          engine skips one whose position did not).
        - **Stopping.** Return soon (well within a second) once `stop.is_set()`: check it
          between items, wait only through `stop.wait(timeout)`, and end blocking calls
          that may hang (server selection) when it is set. A batch in hand may be
          yielded first. `stop` is a `StopSignal`: a `threading.Event` in the engine, the
          read-ahead child's own signal (which also fires when the parent dies).
        - Errors: retry transient ones (with `coffeeshop.retry`); raise
          `SourceUnavailable` once retries end, `SourceHistoryLost` / `SourceSwitched`
          when the engine must rebuild, `SourceChanged` when the source no longer
          matches its position. Bad *content* is never an error: it becomes an
          `Unreadable` event, which the engine quarantines.
        """
        ...

    def close(self) -> None:
        """Release what `open()` and `batches()` took (files, clients); may be called twice."""
        ...


@runtime_checkable
class Reachable(Protocol):
    """A source behind a network (a server): a one-shot run (`sync --once`, reconcile) asks
    it to answer first, so that an unreachable one fails in bounded time and before anything
    is created in the analysis database. `check_reachable` retries transient failures for a
    bounded time, then raises `SourceUnavailable` (or `ConfigError`)."""

    def check_reachable(self, stop: StopSignal) -> None: ...


class Partition(Protocol):
    """One part of a plan: a small picklable value that names its part of the source and
    opens the source again where it is read (a worker: the same path, its own connection)."""

    def reopen(self) -> Partitioned: ...


class PartitionPlan(Protocol):
    """A whole-history read cut into disjoint parts that cover the source once, planned by
    the coordinator. Each part is a small picklable value (a byte range, an `_id` range) that
    carries what a worker needs to read it (`reopen`); `handover` is the position a sync goes
    on from once every part is applied (a file: where the planned ranges end; a collection:
    its change stream's start point, taken before planning)."""

    @property
    def parts(self) -> Sequence[Partition]: ...

    def handover(self, heads: list[RangeOutput]) -> str | None:
        """The position after the parts, from each part's output (in plan order, without its
        candidates)."""
        ...


@runtime_checkable
class Partitioned(Protocol):
    """The capability of a source that whole-history work (`reconcile --workers`,
    `sync --backfill-workers`) reads in parts at once, as bytewax's `FixedPartitionedSource`:
    plan the parts, read any one of them anywhere, and hand over to the incremental reader
    at one position. A source without it runs those commands in one process only."""

    def check_partitionable(self, stop: StopSignal) -> None:
        """Refuse, in one line and before a cluster starts, a source that cannot be read in
        parts now (unreachable; a MongoDB server without change streams)."""
        ...

    def plan_partitions(self, parts: int) -> PartitionPlan:
        """About `parts` parts (a start position first, where the hand-over needs one)."""
        ...

    def read_partition(self, part: Any, buckets: int) -> RangeOutput:
        """Read, validate and fold one part of a plan, its candidates split into `buckets`."""
        ...


def partitioned(source: Source) -> Partitioned:
    """`source` as a `Partitioned` one; a kind without the capability is one `ConfigError`."""
    if not isinstance(source, Partitioned):
        raise ConfigError(
            f"{source.name} cannot be read in partitions (its kind has no partitioned "
            "reading): run without --workers/--dask-address/--backfill-workers"
        )
    return source
