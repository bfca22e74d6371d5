"""Recompute everything from the whole source and compare it with the database.

The source is folded into a scratch SQLite file (the last version of every receipt,
so memory stays bounded whatever the history), every table the API reads (the four
public tables and the engine's state they are kept from) is recomputed from scratch by
`recompute` (which shares nothing with the incremental path), and every difference is
reported, table by table as `store.tables.ROWS` describes them. `repair` replaces the
database's state with the recomputed one in one transaction, under the writer lock, and
corrects the past `receipts_summary` rows found wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coffeeshop.core.events import Delete, Unreadable
from coffeeshop.core.plan import Parsed, QuarantineEntry, parse_events
from coffeeshop.core.receipt_codec import (
    COLUMNS,
    NAMES,
    decode_key,
    encode_key,
    receipt_row,
    row_to_receipt,
)
from coffeeshop.core.receipts import Receipt
from coffeeshop.core.recompute import Tables, recompute
from coffeeshop.errors import ConfigError, StoreError, is_transient
from coffeeshop.pipeline import catch_up, windows
from coffeeshop.pipeline.readahead import source_batches
from coffeeshop.retry import Retrying, RetryPolicy
from coffeeshop.scratch import directory as scratch_directory
from coffeeshop.sources.base import BatchLimits, Source
from coffeeshop.store import Store, tables

MAX_LISTED = 50  # differences listed per table; the count covers all of them

# The scratch file's documents: `cs_receipts`' columns (SQLite types by what each holds).
_AFFINITY = {bytes: "BLOB", str: "TEXT", int: "INTEGER"}
_DOC_COLUMNS = ", ".join(
    f"{c.name} {_AFFINITY[c.kind.stored]}" + (" PRIMARY KEY" if i == 0 else "")
    for i, c in enumerate(COLUMNS)
)
_INSERT_VALID = (
    f"INSERT OR REPLACE INTO docs ({', '.join(NAMES)}, valid) "
    f"VALUES ({', '.join('?' for _ in NAMES)}, 1)"
)
_INSERT_INVALID = (
    f"INSERT OR REPLACE INTO docs ({NAMES[0]}, receipt_id, valid, payload) VALUES (?, ?, 0, ?)"
)


log = logging.getLogger("coffeeshop.pipeline.reconcile")
# A rebuild rolled back for a passing reason runs again whole, a few times (the shared policy).
REBUILD_RETRY = RetryPolicy(attempts=5, first_delay=0.25, max_delay=2.0)


class RebuildRetrying(Retrying):
    """The shared retry loop for a repair's rebuild (one transaction, over a snapshot kept
    on disk): one the database gave up on for a passing reason (InnoDB chose it as a
    deadlock's victim beside a running sync, a lost connection) runs again whole; any other
    error, or the last, leaves as its one `StoreError` line (a deadlock ended a repair in a
    traceback)."""

    def retryable(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        log.warning(
            "the rebuild was rolled back (%s); running it again in %.2f s (attempt %d of %s)",
            exc,
            delay,
            self.failures + 1,
            self.policy.attempts,
        )

    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        return exc

    def stopped(self, exc: BaseException, what: str) -> BaseException:
        return exc


def rebuild_again_if_transient(store: Store, rebuild: Callable[[], object]) -> None:
    """`rebuild()` with its database errors mapped, under `RebuildRetrying`."""

    def mapped() -> object:
        with store.mapped_errors():
            return rebuild()

    RebuildRetrying(REBUILD_RETRY, threading.Event()).call(mapped, catch=(StoreError,))


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    key: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.table} {self.key}: expected {self.expected}, found {self.actual}"


@dataclass(slots=True)
class ReconcileReport:
    receipts: int = 0
    quarantined: int = 0
    position: str | None = None
    differences: list[Difference] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # table -> number of differences
    repaired: bool = False
    recorded_sources: tuple[str, ...] = ()  # what the database's checkpoints named before
    # Rows a rebuild keeps (past summaries) found wrong: table -> key -> expected (None: no row)
    fixes: dict[str, dict[Any, Any]] = field(default_factory=dict)

    @property
    def total_differences(self) -> int:
        return sum(self.counts.values())


class SourceSnapshot:
    """The source's current receipts, folded into a scratch SQLite file."""

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / "snapshot.sqlite"
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        # A valid receipt is its `cs_receipts` row, an invalid one its key, id and payload.
        self.db.execute(f"CREATE TABLE docs ({_DOC_COLUMNS}, valid INTEGER, payload TEXT)")
        self.db.execute("CREATE TABLE unreadable (n INTEGER PRIMARY KEY, payload TEXT)")
        self.position: str | None = None

    def fold(self, source: Source, limits: BatchLimits) -> None:
        source.open(None)
        try:
            for batch in source_batches(source, limits, follow=False, stop=threading.Event()):
                self._fold_batch(parse_events(batch.events))
                self.position = batch.position
        finally:
            source.close()
        self.db.commit()

    def _fold_batch(self, events: list[Any]) -> None:
        db = self.db
        for event in events:
            if isinstance(event, Parsed):
                if event.receipt is not None:
                    db.execute(_INSERT_VALID, receipt_row(event.receipt, event.receipt_id))
                else:
                    payload = json.dumps(
                        {"reason": event.reason, "where": event.where, "raw": event.raw}
                    )
                    db.execute(
                        _INSERT_INVALID,
                        (encode_key(event.key), event.receipt_id, payload),
                    )
            elif isinstance(event, Delete):
                db.execute("DELETE FROM docs WHERE key = ?", (encode_key(event.key),))
            elif isinstance(event, Unreadable):
                db.execute(
                    "INSERT INTO unreadable (payload) VALUES (?)",
                    (json.dumps({"reason": event.reason, "where": event.where, "raw": event.raw}),),
                )

    def iter_receipts(self) -> Iterator[tuple[Receipt, str]]:
        rows = self.db.execute(
            f"SELECT {', '.join(NAMES)} FROM docs WHERE valid = 1 ORDER BY {NAMES[0]}"
        )
        return map(row_to_receipt, rows)

    def iter_quarantine(self) -> Iterator[QuarantineEntry]:
        for key, receipt_id, payload in self.db.execute(
            "SELECT key, receipt_id, payload FROM docs WHERE valid = 0 ORDER BY key"
        ):
            entry = json.loads(payload)
            yield QuarantineEntry(
                key=decode_key(key),
                receipt_id=receipt_id,
                reason=entry["reason"],
                where=entry["where"],
                raw=entry["raw"],
            )
        for (payload,) in self.db.execute("SELECT payload FROM unreadable ORDER BY n"):
            entry = json.loads(payload)
            yield QuarantineEntry(
                key=None,
                receipt_id=None,
                reason=entry["reason"],
                where=entry["where"],
                raw=entry["raw"],
            )

    def count(self, valid: bool) -> int:
        n = self.db.execute("SELECT count(*) FROM docs WHERE valid = ?", (int(valid),)).fetchone()[
            0
        ]
        if not valid:
            n += self.db.execute("SELECT count(*) FROM unreadable").fetchone()[0]
        return int(n)

    def close(self) -> None:
        self.db.close()


def reconcile(
    store: Store,
    source: Source,
    *,
    today: dt.date,
    repair: bool = False,
    limits: BatchLimits | None = None,
    replace_source: bool = False,
) -> ReconcileReport:
    """Compare the tables with a recomputation from the whole source; with `repair`,
    replace the state by the recomputation (when anything differs, the checkpoint
    included).

    Without `repair` nothing is written, nor created: the database must have the schema
    (`DatabaseMissing` otherwise). A repair is refused (`SourceMismatch`, before the source
    is read) when the database holds another source's receipts, which it would delete;
    `replace_source` replaces that source on purpose (see `store.ownership`).

    A repair may run while `sync` runs: its rebuild is one transaction that first takes
    the source's checkpoint row (SQLite: the database's write lock), so it lands between
    two batches, and moves the checkpoint to where this read of the source ended. The
    running sync's next batch sees the moved checkpoint, writes nothing, and continues
    from the new position. The tables stay exact either way. The rebuild reads the source on
    from where this read ended to where it ends at the commit (`pipeline.catch_up`): it never
    commits behind what another repair or the sync committed meanwhile."""
    report, replacing = _start(store, source.name, repair=repair, replace_source=replace_source)
    with scratch_directory("reconcile") as scratch:
        snapshot = SourceSnapshot(str(scratch))
        try:
            snapshot.fold(source, limits or BatchLimits(max_events=20_000))
            report.position = snapshot.position
            report.receipts = snapshot.count(valid=True)
            report.quarantined = snapshot.count(valid=False)
            expected = recompute((r for r, _ in snapshot.iter_receipts()), today)
            compare_tables(store, expected, report, source=source.name, today=today)
            _compare_receipts(snapshot.iter_receipts(), store.iter_receipts(), report)
            checkpoint = store.load_checkpoint(source.name)
            moved = checkpoint is None or checkpoint.position != report.position
            changed = report.total_differences or moved or replacing
            if repair and changed and report.position is not None:
                position = report.position
                rebuild_again_if_transient(
                    store,
                    lambda: store.rebuild(
                        source.name,
                        snapshot.iter_receipts(),
                        snapshot.iter_quarantine(),
                        position=position,
                        today=today,
                        replace=replace_source,
                        fixes=report.fixes,
                        catch_up=catch_up.reader(source),
                    ),
                )
                report.repaired = True
        finally:
            snapshot.close()
    return report


def _start(
    store: Store, source: str, *, repair: bool, replace_source: bool
) -> tuple[ReconcileReport, bool]:
    """What must hold before the source is read (the schema; for a repair, that the database
    is this source's); the report to fill, and whether the repair replaces another source."""
    if replace_source and not repair:
        raise ConfigError("--replace-source replaces the database's source: it needs --repair")
    if repair:
        store.upgrade()
        if not replace_source:
            store.check_source(source, rebuild=True)
    else:
        store.require_schema()
    report = ReconcileReport()
    report.recorded_sources = store.holdings().sources
    return report, repair and any(name != source for name in report.recorded_sources)


def _record(report: ReconcileReport, table: str, key: str, expected: Any, actual: Any) -> None:
    report.counts[table] = report.counts.get(table, 0) + 1
    if report.counts[table] <= MAX_LISTED:
        report.differences.append(Difference(table, key, expected, actual))


def compare_tables(
    store: Store,
    expected: Tables,
    report: ReconcileReport,
    *,
    source: str,
    today: dt.date,
    computed: windows.Windows | None = None,
) -> None:
    """Every table the API reads (`store.tables.ROWS`) against `expected`, the recomputation
    from the source read up to `report.position` (with `computed`, a partitioned read's, the
    day-keyed counted tables' rows are in its windows, not in `expected`, and are compared
    a window at a time: `pipeline.windows`; their differences are listed by day). The rows
    a rebuild keeps (past summaries) and that differ are noted in `report.fixes`, for a
    repair to correct."""
    reference = _reference(store, expected, source=source, today=today, position=report.position)
    for rows in tables.ROWS:
        group = windows.BY_NAME.get(rows.field)
        if group not in windows.WINDOWED:
            _compare(report, rows, *rows.compared(reference, store.stored_rows(rows)))
            continue
        assert group is not None
        if computed is None:
            pairs = iter([rows.compared(reference, store.stored_rows(rows))])
        else:
            pairs = computed.compared(store, rows, group)
        for want, got in pairs:
            _compare(report, rows, want, got, windows.order(group))


def _compare(
    report: ReconcileReport,
    rows: tables.TableRows,
    want: dict[Any, Any],
    got: dict[Any, Any],
    order: Callable[[Any], Any] = repr,
) -> None:
    for key in sorted(set(want) | set(got), key=order):
        wanted, found = want.get(key), got.get(key)
        if wanted == found:
            continue
        if rows.kept:
            report.fixes.setdefault(rows.name, {})[key] = wanted
        _record(
            report,
            rows.name,
            rows.render(key),
            "no row" if wanted is None else rows.describe(wanted),
            "no row" if found is None else rows.describe(found),
        )


def _reference(
    store: Store, expected: Tables, *, source: str, today: dt.date, position: str | None
) -> tables.Reference:
    """What the stored tables are held to. Past summary rows dated two days after the last
    commit (a day's margin for the time zone of the process that wrote them) were written
    from the state the tables hold now, so they are checked too: when the database holds
    only this source, and its checkpoint is where this read of the source ended."""
    checkpoints = store.list_checkpoints()
    settled_after = None
    if [(c.source, c.position) for c in checkpoints] == [(source, position)]:
        settled_after = checkpoints[0].committed_at.date() + dt.timedelta(days=1)
    return tables.Reference(expected, today, store.summary_since(), settled_after)


def _compare_receipts(
    expected: Iterator[tuple[Receipt, str]], actual: Iterator[Receipt], report: ReconcileReport
) -> None:
    """Merge two key-ordered streams: the source's receipts and the stored contributions."""
    table = "receipts (engine state)"
    want = next(expected, None)
    got = next(actual, None)
    while want is not None or got is not None:
        want_key = encode_key(want[0].key) if want else None
        got_key = encode_key(got.key) if got else None
        if got is None or (
            want is not None and want_key is not None and got_key is not None and want_key < got_key
        ):
            assert want is not None
            _record(report, table, want[1], "counted", "missing")
            want = next(expected, None)
        elif want is None or (want_key is not None and got_key is not None and got_key < want_key):
            _record(report, table, got.key, "not in the source", "counted")
            got = next(actual, None)
        else:
            if want[0] != got:
                _record(report, table, want[1], want[0], got)
            want, got = next(expected, None), next(actual, None)
