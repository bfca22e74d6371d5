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


# The groups the four public tables are kept from, declared as the counted tables are
# (`core/groups.py`) and summed with them by one compiled adder: `cs_daily` (this week's and
# last week's sales of `receipts_summary`), `cs_store_month` (`store_monthly`), `cs_store_hour`
# (`store_peak_hours`) and `item_performance`'s units per product. Each name is its field in
# `core.recompute.Tables`; the tables of the first three are generated from them
# (`store/schema.py`), and so is their add/subtract maintenance (`store/tables/`).
DAILY = Group("daily", "cs_daily", ("day",), ("receipts", "cents"))
STORE_MONTH = Group("store_month", "cs_store_month", ("month", "store_id"), ("receipts", "cents"))
STORE_HOUR = Group("store_hour", "cs_store_hour", ("store_id", "hour"), ("receipts",))
ITEMS = Group("item_performance", "item_performance", ("product",), ("units",), per_line=True)
STATE_GROUPS: tuple[Group, ...] = (DAILY, STORE_MONTH, STORE_HOUR, ITEMS)
ALL_GROUPS: tuple[Group, ...] = (*STATE_GROUPS, *GROUPS)


def _all_groups() -> GroupSums:
    return GroupSums(ALL_GROUPS)


@dataclass(slots=True)
class Delta:
    """Signed changes to every aggregate: the running totals, and the sums per group and key
    of every group (`STATE_GROUPS` and the counted tables)."""

    receipts: int = 0
    cents: int = 0
    units: int = 0
    groups: GroupSums = field(default_factory=_all_groups)

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
        """One receipt's contribution to every group, `sign` times (a batch's delta and a
        partitioned read's partial sums both add here)."""
        units = 0
        for _, quantity in lines:
            units += quantity
        self.receipts += sign
        self.cents += sign * cents
        self.units += sign * units
        self.groups.add((store_id, day, month, hour), cents, units, lines, sign)

    def include(self, other: Delta) -> None:
        """Add `other`'s changes to these (exact: integers only); `other` is not changed."""
        self.receipts += other.receipts
        self.cents += other.cents
        self.units += other.units
        self.groups.include(other.groups)

    def prune(self) -> Delta:
        """Drop entries that cancel out, so unchanged groups are not written."""
        self.groups.prune()
        return self

    def sums(self, group: Group) -> dict[tuple[Any, ...], list[int]]:
        """`group`'s signed sums by key (none where this delta does not carry the group)."""
        return self.groups.sums.get(group.name, {})

    @property
    def is_empty(self) -> bool:
        return not (self.receipts or self.cents or self.units or not self.groups.is_empty)


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
    replays and duplicates change nothing. `groups`: the counted tables it sums (besides
    `STATE_GROUPS`).
    """
    fold = _fold(events)

    delta = Delta(groups=GroupSums((*STATE_GROUPS, *groups)))
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
