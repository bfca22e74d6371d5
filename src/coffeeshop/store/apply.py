"""The writing transactions: one batch (read the current receipts of its keys, plan once,
hand the plan to the writers, move the checkpoint) and a rebuild from a full replay."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import (
    BatchPlan,
    ParsedEvent,
    QuarantineEntry,
    plan_batch,
    touched_keys,
)
from coffeeshop.core.receipt_codec import Row
from coffeeshop.core.replay import Replay
from coffeeshop.store import bulk, checkpoint, ownership, quarantine, receipts, schema, tables
from coffeeshop.store.codec import RECEIPT_COLUMNS

if TYPE_CHECKING:
    from coffeeshop.store.database import Store

log = logging.getLogger("coffeeshop.store")

REBUILD_ROWS = 5000  # receipts per insert while rebuilding

# A rebuild's way on from its snapshot: given the snapshot's position, the source's batches
# after it (validated events, and the position after each) to where the source ends now.
CatchUp = Callable[[str], Iterable[tuple[Sequence[ParsedEvent], str]]]


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int
    quarantined: int
    skipped: int
    receipts_written: int
    receipts_deleted: int
    version: int
    recovered: bool = False  # an earlier attempt had committed it; nothing written now


def apply_batch(
    store: Store,
    source: str,
    events: Sequence[ParsedEvent],
    *,
    position: str,
    expected_version: int,
    today: dt.date,
    behind: int | None,
    source_time: dt.datetime | None,
) -> BatchResult:
    """`Store.apply_batch`'s transaction (`CheckpointMoved` goes to the caller)."""
    stmts = store.statements
    with store.writer.begin() as conn:
        version = checkpoint.claim(conn, source, expected_version)
        store.check_writer(conn)
        if version == 1:  # this source's first batch: is the database its own?
            ownership.check(conn, source, rebuild=False, database=store.safe_url)
        store.fault_at("begin")
        plan, changed = _write_events(store, conn, source, events)
        if not plan.delta.is_empty:
            tables.SUMMARY.write(conn, stmts, today)
        checkpoint.record(
            conn,
            source,
            position,
            version,
            applied=plan.applied,
            quarantined=plan.quarantined,
            behind=behind,
            source_time=source_time,
        )
        if not plan.delta.is_empty or changed:
            checkpoint.bump_data_version(conn)  # readers' caches are stale only then
        store.fault_at("checkpoint")
    return BatchResult(
        applied=plan.applied,
        quarantined=plan.quarantined,
        skipped=plan.skipped,
        receipts_written=len(plan.upserts),
        receipts_deleted=len(plan.deletes),
        version=version,
    )


def _write_events(
    store: Store, conn: Connection, source: str, events: Sequence[ParsedEvent]
) -> tuple[BatchPlan, bool]:
    """Plan `events` over the stored receipts they touch and write the plan (receipts,
    aggregates, quarantine); the plan, and whether the quarantine changed."""
    stmts = store.statements
    plan = plan_batch(events, receipts.load(conn, stmts, touched_keys(events)))
    receipts.write(conn, stmts, plan)
    store.fault_at("receipts")
    tables.apply_delta(conn, stmts, plan.delta)
    store.fault_at("aggregates")
    changed = quarantine.write(conn, stmts, source, plan.quarantine_clear, plan.quarantine_add)
    store.fault_at("quarantine")
    return plan, changed


def rebuild(
    store: Store,
    source: str,
    replay: Replay,
    entries: Iterable[QuarantineEntry],
    *,
    position: str,
    today: dt.date,
    replace: bool,
    catch_up: CatchUp | None,
    fixes: dict[str, dict[Any, Any]] | None = None,
) -> int:
    """`Store.rebuild`'s transaction; returns the number of receipts written."""
    stmts = store.statements
    with store.writer.begin() as conn:
        version = checkpoint.claim(conn, source, None)
        store.check_writer(conn)
        store.fault_at("rebuild")
        others = ownership.check(
            conn, source, rebuild=True, database=store.safe_url, replace=replace
        )
        if others:
            _remove_sources(conn, others, store.safe_url)
        conn.execute(delete(schema.receipts))
        tables.clear_tables(conn)
        q = schema.quarantine
        conn.execute(delete(q).where(q.c.source == source[:255]))
        with bulk.loader(store, conn) as loader:
            if loader is not None:
                count = loader.receipts(replay.rows())
                loader.quarantine(source, entries)
            else:
                count = _insert_receipts(store, conn, replay.rows())
                listed = iter(entries)  # a stream (a partitioned read's): never held whole
                while chunk := list(itertools.islice(listed, REBUILD_ROWS)):
                    quarantine.write(conn, stmts, source, (), chunk)
        tables.apply_delta(conn, stmts, replay.delta().prune())
        for window in replay.windows():
            tables.apply_delta(conn, stmts, window)
        tables.correct_kept(conn, stmts, fixes or {})
        if catch_up is not None:
            position, applied, quarantined = _caught_up(store, conn, source, position, catch_up)
        else:
            applied = quarantined = 0
        tables.SUMMARY.write(conn, stmts, today)
        checkpoint.bump_data_version(conn)
        checkpoint.record(
            conn,
            source,
            position,
            version,
            applied=applied,
            quarantined=quarantined,
            reset_counts=True,
        )
    return count


def _caught_up(
    store: Store, conn: Connection, source: str, position: str, catch_up: CatchUp
) -> tuple[str, int, int]:
    """Inside the rebuild's transaction, on top of its snapshot: the source's changes after
    the snapshot's `position`, to where the source ends now. Another writer (a faster
    repair, a sync) may have committed a newer end meanwhile: the rebuild then still commits
    at least as far, never behind it. Returns the new position and the events applied and
    quarantined."""
    applied = quarantined = 0
    start = position
    for events, after in catch_up(position):
        plan, _ = _write_events(store, conn, source, events)
        applied += plan.applied
        quarantined += plan.quarantined
        position = after
    if position != start:
        log.info(
            "the rebuild read on past its snapshot to where %s ends now: %d event(s) applied, "
            "%d quarantined",
            source,
            applied,
            quarantined,
        )
    return position, applied, quarantined


def _remove_sources(conn: Connection, others: list[str], safe_url: str) -> None:
    c, q = schema.checkpoints, schema.quarantine
    conn.execute(delete(c).where(c.c.source.in_(others)))
    conn.execute(delete(q).where(q.c.source.in_([o[:255] for o in others])))
    log.warning(
        "replacing the source of %s: removed the receipts, checkpoint and quarantine of %s",
        safe_url,
        ", ".join(others),
    )


def _insert_receipts(store: Store, conn: Connection, current: Iterable[Row]) -> int:
    """Insert `cs_receipts` rows, `REBUILD_ROWS` per statement; return their count."""
    stmts = store.statements
    statement = stmts.cached("rebuild", lambda: insert(schema.receipts))
    count = 0
    iterator = iter(current)
    while chunk := list(itertools.islice(iterator, REBUILD_ROWS)):
        stmts.execute_rows(conn, statement, RECEIPT_COLUMNS, chunk)
        count += len(chunk)
    return count
