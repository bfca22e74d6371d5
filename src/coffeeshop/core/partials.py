"""Mergeable partial results of whole-history work split into partitions.

Pure: no I/O. A partition of the source (a byte range of a file, an `_id` range of a
collection) folds its events into *candidates*: the last version of each receipt it saw,
with its position in the source. Candidates are hash-split into buckets by key, so every
version of one receipt meets in one bucket whatever partition read it; a bucket keeps the
candidate with the highest position (last write wins), and turns the winners into:

- a `Partial`: per-group sums and counts of every table (a `Delta` from empty tables),
  and the quarantine entries. Merging two partials is associative, commutative and
  exact (integers only; money in cents), and the counts decide after the merge which
  groups are empty and which hour is a store's peak;
- its receipts' canonical rows (`Row`, exactly the columns of `cs_receipts`), sorted by
  key: the per-receipt digest reconcile compares with `cs_receipts`, range by range, and
  what a repair or a backfill writes.
"""

from __future__ import annotations

import datetime as dt
import heapq
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from coffeeshop.core.events import Delete, Unreadable
from coffeeshop.core.plan import (
    DAILY,
    STORE_HOUR,
    STORE_MONTH,
    Delta,
    Parsed,
    ParsedEvent,
    QuarantineEntry,
    peak_hour,
    summary_row,
)
from coffeeshop.core.receipt_codec import Row, encode_key, getter, receipt_row
from coffeeshop.core.receipts import Receipt
from coffeeshop.core.recompute import Tables

# Where an entry was read: a finished text ("snapshot"), or (partition, line within the
# partition, byte offset) for a file, whose line number is known only once every partition
# before it has counted its lines.
Where = str | tuple[int, int, int]

_SUMMED = getter("store_id", "day", "hour", "cents")  # what a row adds to the sums


@dataclass(frozen=True, slots=True)
class Candidate:
    """The last version of one receipt a partition saw.

    `receipt` is set for a valid receipt; `reason` for an invalid one (with `where`, `raw`);
    neither for a delete."""

    position: int  # order in the source: the later version has the higher position
    receipt_id: str
    receipt: Receipt | None = None
    reason: str | None = None
    where: Where = ""
    raw: str = ""


# Input that names no receipt (unreadable): a `Candidate` with its reason and no receipt id,
# always quarantined, never superseded (it is kept in a list, not by key).
Unkeyed = Candidate


Positioned = tuple[int, Where, ParsedEvent]


def fold(events: Iterable[Positioned]) -> tuple[dict[str, Candidate], list[Unkeyed]]:
    """A partition's events, in source order, to its last version of every receipt."""
    latest: dict[str, Candidate] = {}
    unkeyed: list[Unkeyed] = []
    for position, where, event in events:
        if isinstance(event, Parsed):
            receipt = event.receipt
            if receipt is not None:
                latest[event.key] = Candidate(position, event.receipt_id, receipt)
            else:
                latest[event.key] = Candidate(
                    position,
                    event.receipt_id,
                    reason=event.reason or "invalid",
                    where=where,
                    raw=event.raw,
                )
        elif isinstance(event, Delete):
            latest[event.key] = Candidate(position, event.receipt_id)
        elif isinstance(event, Unreadable):
            unkeyed.append(Candidate(position, "", reason=event.reason, where=where, raw=event.raw))
    return latest, unkeyed


def bucket_of(key: str, buckets: int) -> int:
    """Stable across processes and machines (unlike `hash`)."""
    return zlib.crc32(encode_key(key)) % buckets


def split(candidates: dict[str, Candidate], buckets: int) -> list[dict[str, Candidate]]:
    shards: list[dict[str, Candidate]] = [{} for _ in range(buckets)]
    for key, candidate in candidates.items():
        shards[bucket_of(key, buckets)][key] = candidate
    return shards


def last_write_wins(shards: Iterable[dict[str, Candidate]]) -> dict[str, Candidate]:
    """Every partition's candidates for one bucket, to the final version of each receipt."""
    final: dict[str, Candidate] = {}
    for shard in shards:
        for key, candidate in shard.items():
            held = final.get(key)
            if held is None or candidate.position > held.position:
                final[key] = candidate
    return final


# -- mergeable sums --------------------------------------------------------------------------


Queued = tuple[int, bytes, int, QuarantineEntry]  # a quarantine entry in its listing order


def quarantine_order(entry: Queued) -> tuple[int, bytes, int]:
    return entry[0], entry[1], entry[2]


_DATES: dict[int, dt.date] = {}  # YYYYMMDD -> date: few distinct days, many receipts


def _date(day: int) -> dt.date:
    held = _DATES.get(day)
    if held is None:
        held = _DATES[day] = dt.date(day // 10000, day // 100 % 100, day % 100)
    return held


@dataclass(slots=True)
class Partial(Delta):
    """A `Delta` from empty tables (the sums and counts per group of every table, the groups
    declared once: `core.plan.STATE_GROUPS` and `core.groups.GROUPS`), and the quarantine
    entries.

    `quarantine` holds (0, key, 0, entry) for an invalid receipt and (1, b"", position,
    entry) for unreadable input: sorted, keyed entries by key, then unreadable input in
    source order, as the single-process reconcile lists them."""

    quarantine: list[Queued] = field(default_factory=list)

    def add_row(self, row: Row, items: tuple[tuple[str, int], ...]) -> None:
        store_id, day, hour, cents = _SUMMED(row)
        month = f"{day // 10000:04d}-{day // 100 % 100:02d}"
        self.add_groups(store_id, _date(day), month, hour, cents, items, +1)

    def merge(self, other: Partial) -> Partial:
        """A new partial holding both (neither operand changes; both quarantines are sorted:
        merged in one pass)."""
        out = Partial()
        out.include(self)
        out.include(other)
        out.quarantine = list(heapq.merge(self.quarantine, other.quarantine, key=quarantine_order))
        return out

    def delta(self) -> Delta:
        """These sums as the `Delta` that adds them to empty tables: what a rebuild applies,
        equal to the sum of `Delta.add(receipt, +1)` over the same receipts."""
        out = Delta()
        out.include(self)
        return out

    def entries(self) -> list[QuarantineEntry]:
        return [entry for *_, entry in self.quarantine]

    def tables(self, today: dt.date) -> Tables:
        """Every table as `core.recompute.Tables`: each group's rows (`GroupSums.rows`: groups
        whose count is zero have none), and the public tables derived from their groups."""
        sums = self.groups
        by_group = {group.name: sums.rows(group) for group in sums.groups}
        hours: dict[int, dict[int, int]] = {}
        for (store_id, hour), n in sums.rows(STORE_HOUR).items():
            hours.setdefault(store_id, {})[hour] = n
        peaks = {store_id: peak_hour(by_hour) for store_id, by_hour in hours.items()}
        return Tables(
            summary=summary_row(
                today,
                receipts=self.receipts,
                cents=self.cents,
                units=self.units,
                daily_cents={d: c for d, (_, c) in by_group[DAILY.name].items()},
            ),
            store_monthly={
                k: Decimal(c).scaleb(-2) for k, (_, c) in by_group[STORE_MONTH.name].items()
            },
            store_peak_hours={s: peak for s, peak in peaks.items() if peak is not None},
            totals={1: (self.receipts, self.cents, self.units)},
            **by_group,
        )


def merge_all(partials: Iterable[Partial]) -> Partial:
    """One partial holding them all: their sums added into one, their (sorted) quarantines
    merged in one pass."""
    out = Partial()
    runs: list[list[Queued]] = []
    for partial in partials:
        out.include(partial)
        runs.append(partial.quarantine)
    out.quarantine = list(heapq.merge(*runs, key=quarantine_order))
    return out


@dataclass(slots=True)
class BucketResult:
    """One bucket's final receipts: its partial and its rows, sorted by key (a list, or a
    stream that can be read again)."""

    partial: Partial
    rows: Iterable[Row]


def resolve(shards: Iterable[dict[str, Candidate]]) -> BucketResult:
    """Last write wins over every partition's candidates for one bucket, then the bucket's
    partial and rows. A file position stays (partition, line, byte) until `finish_entries`."""
    final = last_write_wins(shards)
    partial = Partial()
    rows: list[Row] = []
    for key, c in final.items():
        if c.receipt is not None:
            row = receipt_row(c.receipt, c.receipt_id)
            rows.append(row)
            partial.add_row(row, c.receipt.items)
        elif c.reason is not None:
            entry = QuarantineEntry(key, c.receipt_id, c.reason, c.where, c.raw)  # type: ignore[arg-type]
            partial.quarantine.append((0, encode_key(key), 0, entry))
    rows.sort()
    partial.quarantine.sort(key=quarantine_order)
    return BucketResult(partial, rows)


def unkeyed_partial(unkeyed: Iterable[Unkeyed]) -> Partial:
    partial = Partial()
    for u in unkeyed:
        entry = QuarantineEntry(None, None, u.reason, u.where, u.raw)  # type: ignore[arg-type]
        partial.quarantine.append((1, b"", u.position, entry))
    partial.quarantine.sort(key=quarantine_order)
    return partial


def render_where(line_offsets: list[int]) -> Any:
    """A `render` for a file whose partition `i` starts after `line_offsets[i]` lines."""

    def render(where: Where) -> str:
        if isinstance(where, str):
            return where
        part, line, byte = where
        return f"line {line_offsets[part] + line} (byte {byte})"

    return render


def finish_entries(queued: Iterable[Queued], render: Any) -> Iterator[QuarantineEntry]:
    """The quarantine entries with every file position rendered as 'line N (byte B)'."""
    for *_, entry in queued:
        if isinstance(entry.where, tuple):
            yield QuarantineEntry(
                entry.key, entry.receipt_id, entry.reason, render(entry.where), entry.raw
            )
        else:
            yield entry
