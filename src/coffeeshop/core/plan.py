"""What a batch of events changes: rows to write and exact aggregate deltas.

Pure: `plan_batch` takes the batch's events (already parsed) and the stored
state of the receipts they touch, and returns everything the store must write.
The cost is proportional to the batch, never to the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from coffeeshop.core.events import Delete, Event, Skip, Unreadable, Upsert
from coffeeshop.core.events import Parsed as Parsed  # (defined beside the events it follows)
from coffeeshop.core.groups import GROUPS, Group, GroupSums
from coffeeshop.core.limits import cap_raw, stored_items_problem
from coffeeshop.core.receipts import CENT, InvalidReceipt, Receipt, parse_receipt, render_document


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    key: str | None
    receipt_id: str | None
    reason: str
    where: str
    raw: str


@dataclass(slots=True)
class Sales:
    """A group's signed change in receipts and in cents (a day's, a store's month's)."""

    receipts: int = 0
    cents: int = 0


@dataclass(slots=True)
class Delta:
    """Signed changes to every aggregate, keyed like the state tables."""

    receipts: int = 0
    cents: int = 0
    units: int = 0
    daily: dict[dt.date, Sales] = field(default_factory=dict)
    store_month: dict[tuple[str, int], Sales] = field(default_factory=dict)
    store_hour: dict[tuple[int, int], int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    groups: GroupSums = field(default_factory=GroupSums)  # the counted tables (core/groups.py)

    def add(self, receipt: Receipt, sign: int) -> None:
        self.add_groups(
            receipt.store_id,
            receipt.day,
            receipt.month,
            receipt.hour,
            receipt.cents,
            receipt.items,
            sign,
        )

    def add_groups(
        self,
        store_id: int,
        day: dt.date,
        month: str,
        hour: int,
        cents: int,
        lines: tuple[tuple[str, int], ...],
        sign: int,
    ) -> None:
        """One receipt's contribution to every group, `sign` times (the one definition of
        the groups: a batch's delta and a partitioned read's partial sums both add here)."""
        whole = cents
        cents = sign * cents
        units = 0
        items = self.items
        for name, quantity in lines:
            items[name] = items.get(name, 0) + sign * quantity
            units += quantity
        self.receipts += sign
        self.cents += cents
        self.units += sign * units
        _add_sale(self.daily, day, sign, cents)
        _add_sale(self.store_month, (month, store_id), sign, cents)
        hour_key = (store_id, hour)
        self.store_hour[hour_key] = self.store_hour.get(hour_key, 0) + sign
        self.groups.add((store_id, day, month, hour), whole, units, lines, sign)

    def include(self, other: Delta) -> None:
        """Add `other`'s changes to these (exact: integers only); `other` is not changed."""
        self.receipts += other.receipts
        self.cents += other.cents
        self.units += other.units
        _add_sales(self.daily, other.daily)
        _add_sales(self.store_month, other.store_month)
        _add_counts(self.store_hour, other.store_hour)
        _add_counts(self.items, other.items)
        self.groups.include(other.groups)

    def prune(self) -> Delta:
        """Drop entries that cancel out, so unchanged groups are not written."""
        self.daily = {k: v for k, v in self.daily.items() if v.receipts or v.cents}
        self.store_month = {k: v for k, v in self.store_month.items() if v.receipts or v.cents}
        self.store_hour = {k: v for k, v in self.store_hour.items() if v}
        self.items = {k: v for k, v in self.items.items() if v}
        self.groups.prune()
        return self

    @property
    def is_empty(self) -> bool:
        return not (
            self.receipts
            or self.cents
            or self.units
            or self.daily
            or self.store_month
            or self.store_hour
            or self.items
            or not self.groups.is_empty
        )


def _add_sale(into: dict[Any, Sales], key: Any, receipts: int, cents: int) -> None:
    """Add signed `receipts` and `cents` to `key`'s sales, created at zero if new."""
    held = into.get(key)
    if held is None:
        into[key] = Sales(receipts, cents)  # a new object: never an operand's own
    else:
        held.receipts += receipts
        held.cents += cents


def _add_sales(into: dict[Any, Sales], other: Mapping[Any, Sales]) -> None:
    for key, sales in other.items():
        _add_sale(into, key, sales.receipts, sales.cents)


def _add_counts(into: dict[Any, int], other: Mapping[Any, int]) -> None:
    for key, n in other.items():
        into[key] = into.get(key, 0) + n


ParsedEvent = Parsed | Delete | Unreadable | Skip


def parse_events(events: Iterable[Event]) -> list[ParsedEvent]:
    """Validate every upsert; other events pass through. Raw text and reasons kept for
    quarantine are capped here (see `cap_raw`), before they travel any further."""
    out: list[ParsedEvent] = []
    for event in events:
        if isinstance(event, Upsert):
            try:
                receipt = parse_receipt(event.doc, key=event.key)
                problem = stored_items_problem(receipt)
            except InvalidReceipt as exc:
                problem = exc.reason
            if problem is None:
                out.append(Parsed(event.key, event.receipt_id, receipt, None, event.where, ""))
            else:
                raw = event.raw or render_document(event.doc)  # sources may defer this
                raw, problem = cap_raw(raw, problem)
                out.append(Parsed(event.key, event.receipt_id, None, problem, event.where, raw))
        elif isinstance(event, Unreadable):
            raw, reason = cap_raw(event.raw, event.reason)
            if raw is not event.raw or reason is not event.reason:
                event = Unreadable(reason=reason, where=event.where, raw=raw)
            out.append(event)
        else:
            out.append(event)
    return out


def touched_keys(events: Iterable[ParsedEvent]) -> set[str]:
    keys: set[str] = set()
    for event in events:
        if isinstance(event, Parsed | Delete):
            keys.add(event.key)
    return keys


_CLEAR = object()


@dataclass(slots=True)
class BatchPlan:
    upserts: dict[str, tuple[Receipt, str]]  # key -> (receipt, receipt_id)
    deletes: set[str]
    delta: Delta
    quarantine_clear: set[str]  # keys whose quarantine entry goes away (or is replaced)
    quarantine_add: list[QuarantineEntry]
    applied: int  # events that changed or confirmed a valid receipt, or deleted one
    quarantined: int  # events that were quarantined
    skipped: int


@dataclass(slots=True)
class _Fold:
    """The state a batch's events leave behind, folded in order (the first half of a plan)."""

    state: dict[str, Receipt | None]
    receipt_ids: dict[str, str]
    # key -> its new quarantine entry, or _CLEAR when its latest version is valid or deleted.
    quarantine: dict[str, object]
    unkeyed: list[QuarantineEntry]
    applied: int
    quarantined: int
    skipped: int


def _fold(events: Iterable[ParsedEvent]) -> _Fold:
    state: dict[str, Receipt | None] = {}
    receipt_ids: dict[str, str] = {}
    quarantine: dict[str, object] = {}
    unkeyed: list[QuarantineEntry] = []
    applied = quarantined = skipped = 0
    for event in events:
        if isinstance(event, Parsed):
            key = event.key
            receipt_ids[key] = event.receipt_id
            if event.receipt is not None:
                state[key] = event.receipt
                quarantine[key] = _CLEAR
                applied += 1
            else:
                state[key] = None
                quarantine[key] = QuarantineEntry(
                    key=key,
                    receipt_id=event.receipt_id,
                    reason=event.reason or "invalid",
                    where=event.where,
                    raw=event.raw,
                )
                quarantined += 1
        elif isinstance(event, Delete):
            state[event.key] = None
            quarantine[event.key] = _CLEAR
            applied += 1
        elif isinstance(event, Unreadable):
            unkeyed.append(
                QuarantineEntry(
                    key=None, receipt_id=None, reason=event.reason, where=event.where, raw=event.raw
                )
            )
            quarantined += 1
        else:
            skipped += 1
    return _Fold(state, receipt_ids, quarantine, unkeyed, applied, quarantined, skipped)


def plan_batch(
    events: Iterable[ParsedEvent],
    current: Mapping[str, Receipt],
    groups: tuple[Group, ...] = GROUPS,
) -> BatchPlan:
    """Fold `events` in order over `current` (the stored valid receipts they touch).

    A receipt's final state after the batch is a valid `Receipt` or nothing (deleted,
    never seen, or its latest version invalid). The delta is final minus initial, so
    replays and duplicates change nothing. `groups`: the counted tables it sums.
    """
    fold = _fold(events)

    delta = Delta(groups=GroupSums(groups))
    upserts: dict[str, tuple[Receipt, str]] = {}
    deletes: set[str] = set()
    for key, final in fold.state.items():
        initial = current.get(key)
        if initial == final:
            continue
        if initial is not None:
            delta.add(initial, -1)
        if final is not None:
            delta.add(final, +1)
            upserts[key] = (final, fold.receipt_ids[key])
        else:
            deletes.add(key)

    entries = [entry for entry in fold.quarantine.values() if isinstance(entry, QuarantineEntry)]
    return BatchPlan(
        upserts=upserts,
        deletes=deletes,
        delta=delta.prune(),
        quarantine_clear=set(fold.quarantine),
        quarantine_add=entries + fold.unkeyed,
        applied=fold.applied,
        quarantined=fold.quarantined,
        skipped=fold.skipped,
    )


def peak_hour(hours: Mapping[int, int]) -> tuple[int, int] | None:
    """The hour with the most receipts, the earliest on a tie; None when there are none."""
    best: tuple[int, int] | None = None
    for hour in sorted(hours):
        count = hours[hour]
        if count > 0 and (best is None or count > best[1]):
            best = (hour, count)
    return best


def week_bounds(today: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """(last Monday-7, this Monday, next Monday): last week and this week, Monday-based."""
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(days=7), monday, monday + dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    as_of: dt.date
    spend_per_rcpt: Decimal
    items_per_rcpt: Decimal
    this_week_sales: Decimal
    last_week_sales: Decimal


def summary_row(
    today: dt.date, *, receipts: int, cents: int, units: int, daily_cents: Mapping[dt.date, int]
) -> SummaryRow:
    """The `receipts_summary` row for `today` from the running totals and daily sales."""
    last_monday, monday, next_monday = week_bounds(today)
    this_week = sum(c for day, c in daily_cents.items() if monday <= day < next_monday)
    last_week = sum(c for day, c in daily_cents.items() if last_monday <= day < monday)
    return SummaryRow(
        as_of=today,
        spend_per_rcpt=_average(Decimal(cents).scaleb(-2), receipts),
        items_per_rcpt=_average(Decimal(units), receipts),
        this_week_sales=Decimal(this_week).scaleb(-2),
        last_week_sales=Decimal(last_week).scaleb(-2),
    )


def _average(total: Decimal, count: int) -> Decimal:
    if count == 0:
        return Decimal("0.00")
    return (total / count).quantize(CENT, rounding=ROUND_HALF_UP)
