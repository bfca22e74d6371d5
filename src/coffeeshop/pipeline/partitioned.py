"""The end of a partitioned reconcile, in the process that started it: compare the merged
partials with the database, and repair through the same rebuild as the single-process
reconcile (`Store.rebuild`: one transaction that claims the checkpoint row, so it lands
between two batches of a running sync and moves its checkpoint).

The per-receipt comparison walks the buckets' rows (merged into key order) beside
`cs_receipts` read in key ranges of `PAGE` rows: no receipt is decoded unless its row
differs. The report is the single-process `ReconcileReport`, listed and counted alike.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from coffeeshop.core.partials import (
    BucketResult,
    Partial,
    Queued,
    finish_entries,
    merge_all,
    quarantine_order,
    render_where,
    resolve,
    unkeyed_partial,
)
from coffeeshop.core.plan import QuarantineEntry
from coffeeshop.core.receipt_codec import READ_COLUMNS, Row, decode_key, getter, row_to_receipt
from coffeeshop.core.replay import MergedReplay
from coffeeshop.pipeline import catch_up
from coffeeshop.pipeline.reconcile import ReconcileReport, _record, compare_tables
from coffeeshop.pipeline.windows import Windows, split
from coffeeshop.sources import open_source
from coffeeshop.sources.base import PartitionPlan, Source, partitioned
from coffeeshop.sources.partitions import RangeOutput
from coffeeshop.store import Store, schema
from coffeeshop.store.codec import RECEIPT_COLUMNS

PAGE = 20_000
BUCKETS_PER_PART = 2
_ID = getter("receipt_id")
_CONTENT = getter(*READ_COLUMNS)  # what a receipt is, without the document's id
TABLE = "receipts (engine state)"


def heads_of(outputs: Iterable[RangeOutput]) -> list[RangeOutput]:
    """Every range's output without its candidates: line counts, unreadable input, its end."""
    return [RangeOutput([], o.unkeyed, o.lines, o.end, o.open_line) for o in outputs]


def buckets_for(parts: int) -> int:
    """How many buckets a plan of `parts` parts splits its receipts into: more than its parts,
    so that a bucket, resolved at once on one worker (its candidates, rows and sums as Python
    objects for a moment, ~3 KiB a receipt), is a smaller share of that worker's history."""
    return BUCKETS_PER_PART * parts


def resolve_outputs(outputs: list[RangeOutput]) -> tuple[list[BucketResult], Windows]:
    """Every bucket of the ranges' outputs, resolved (last write wins), in this process, and
    their windowed counted tables' windows."""
    count = len(outputs[0].shards) if outputs else 0
    buckets = [resolve(o.shards[b] for o in outputs) for b in range(count)]
    return buckets, Windows.local([split(bucket.partial) for bucket in buckets])


class Quarantine:
    """Every quarantine entry of a partitioned read, listed as the single-process reconcile
    lists them (invalid receipts by key, then unreadable input in source order), read again
    on every pass and never held whole: `runs` are sorted runs of `Queued` entries (a
    bucket's invalid receipts, a range's unreadable input): lists in one process, streams
    fetched from the workers on a cluster (`orchestration.buckets`). `render` gives a file
    position its line number once every range has counted its lines."""

    def __init__(self, runs: list[Iterable[Queued]], count: int, render: Any = str) -> None:
        self.runs = runs
        self.count = count
        self.render = render

    @classmethod
    def local(cls, buckets: list[BucketResult], heads: list[RangeOutput]) -> Quarantine:
        """Taken out of the buckets' partials (which keep only their sums)."""
        runs = [unkeyed_partial(h.unkeyed).quarantine for h in heads]
        for bucket in buckets:
            runs.append(bucket.partial.quarantine)
            bucket.partial.quarantine = []
        return cls(list(runs), sum(len(run) for run in runs))

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[QuarantineEntry]:
        return finish_entries(heapq.merge(*self.runs, key=quarantine_order), self.render)


@dataclass(slots=True)
class Gathered:
    """Everything the partitions produced, merged: what reconcile compares and repair writes.

    `runs` are the buckets' rows, each sorted by key: lists in one process; on a cluster,
    streams fetched from the workers (`orchestration.buckets`), read once per pass. So are
    the quarantine entries, and the windowed counted tables' sums, `windows`, a window of
    days at a time (`pipeline.windows`)."""

    partial: Partial  # sums and counts of the current valid receipts (but `windows`)
    runs: list[Iterable[Row]]
    windows: Windows
    quarantine: Quarantine
    position: str | None
    partitions: int

    def rows(self) -> Iterator[Row]:
        return sorted_rows(self.runs)


def combine(
    plan: PartitionPlan,
    heads: list[RangeOutput],
    buckets: list[BucketResult],
    windows: Windows,
    quarantine: Quarantine,
) -> Gathered:
    """Merge every bucket of a plan: sums, rows, quarantine (with line numbers), and the
    position the plan hands over at. The buckets' partials hold no quarantine entries: they
    are in `quarantine`."""
    offsets = [0]
    for head in heads:
        offsets.append(offsets[-1] + head.lines)
    quarantine.render = render_where(offsets)
    partial = merge_all(b.partial for b in buckets)
    runs = [b.rows for b in buckets]
    return Gathered(partial, runs, windows, quarantine, plan.handover(heads), len(heads))


def gather_in_process(source: Source | str, partitions: int) -> Gathered:
    """The same partitions, buckets and merge as on Dask, in this process, one at a time
    (`source` a source with the `Partitioned` capability, or a spec: a JSONL file's path)."""
    reader = partitioned(open_source(source) if isinstance(source, str) else source)
    plan = reader.plan_partitions(partitions)
    buckets = buckets_for(len(plan.parts))
    outputs = [reader.read_partition(part, buckets) for part in plan.parts]
    heads = heads_of(outputs)
    resolved, windows = resolve_outputs(outputs)
    return combine(plan, heads, resolved, windows, Quarantine.local(resolved, heads))


def sorted_rows(runs: Iterable[Iterable[Row]]) -> Iterator[Row]:
    """The buckets' rows (each run sorted by key) as one key-ordered stream."""
    return heapq.merge(*runs)


def finish(
    store: Store,
    source: Source,
    gathered: Gathered,
    *,
    today: dt.date,
    repair: bool,
) -> ReconcileReport:
    """Compare, and with `repair` rebuild, exactly as `pipeline.reconcile.reconcile` does
    (reading `source` on from the partitions' end to where it ends at the commit)."""
    source_name = source.name
    partial, rows, quarantine = gathered.partial, gathered.rows, gathered.quarantine
    position = gathered.position
    if repair:
        store.upgrade()
        store.check_source(source_name, rebuild=True)  # never drops another source's receipts
    else:
        store.require_schema()  # a plain reconcile creates nothing
    report = ReconcileReport(
        receipts=partial.receipts, quarantined=len(quarantine), position=position
    )
    tables = partial.tables(today)
    computed = gathered.windows
    compare_tables(store, tables, report, source=source_name, today=today, computed=computed)
    _compare_rows(rows(), _stored_rows(store), report)
    checkpoint = store.load_checkpoint(source_name)
    moved = checkpoint is None or checkpoint.position != position
    if repair and (report.total_differences or moved) and position is not None:
        store.rebuild(
            source_name,
            MergedReplay(gathered.runs, partial, computed.deltas),
            quarantine,
            position=position,
            today=today,
            fixes=report.fixes,
            catch_up=catch_up.reader(source),
        )
        report.repaired = True
    return report


def _stored_rows(store: Store) -> Iterator[Row]:
    """cs_receipts in key order, a range of `PAGE` keys per query, as the driver returns
    rows (no per-value processing: this read is the serial part of a partitioned reconcile)."""
    dialect = store.engine.dialect
    q = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    head = f"SELECT {', '.join(q(c) for c in RECEIPT_COLUMNS)} FROM {q(schema.receipts.name)}"
    order = f" ORDER BY {q('key')} LIMIT {PAGE}"
    last: bytes | None = None
    while True:
        with store.engine.connect() as conn:
            cursor = conn.connection.cursor()
            if last is None:
                cursor.execute(head + order)
            else:
                cursor.execute(f"{head} WHERE {q('key')} > {mark}{order}", (last,))
            page = cursor.fetchall()
            cursor.close()
        if not page:
            return
        if type(page[0][0]) is not bytes:  # a driver that returns keys as memoryview
            page = [(bytes(row[0]), *row[1:]) for row in page]
        yield from page
        last = page[-1][0]


def _compare_rows(expected: Iterator[Row], actual: Iterator[Row], report: ReconcileReport) -> None:
    """Merge two key-ordered streams, as the single-process reconcile compares receipts."""
    want = next(expected, None)
    got = next(actual, None)
    while want is not None or got is not None:
        if got is None or (want is not None and want[0] < got[0]):
            assert want is not None
            _record(report, TABLE, _ID(want), "counted", "missing")
            want = next(expected, None)
        elif want is None or got[0] < want[0]:
            _record(
                report,
                TABLE,
                decode_key(got[0]),
                "not in the source",
                "counted",
            )
            got = next(actual, None)
        else:
            if want != got and _CONTENT(want) != _CONTENT(got):  # not compared: the id
                expected_receipt = row_to_receipt(want)[0]
                stored = row_to_receipt(got)[0]
                if expected_receipt != stored:
                    _record(report, TABLE, _ID(want), expected_receipt, stored)
            want, got = next(expected, None), next(actual, None)
