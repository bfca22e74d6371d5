"""The day- and month-keyed counted tables of a partitioned read, a window at a time.

A counted table keyed by day (`core.groups`: a store's day, hour, product per day or hour)
has about as many rows as the history has receipts until its key space fills (at 250,000
receipts the product-hour sums alone were 510,000 keys, ~190 MiB as Python objects), and one
keyed by month (a store's product per month and hour, its weekday hours per month) grows
with the history's months: a process that holds them whole grows with the history. So each
bucket splits its sums of those tables by day or month (`split`), and the process that
compares and rebuilds holds one *window* at a time: one table's rows for a range of
consecutive days (months), cut where the keys the buckets reported reach `KEYS`
(`Windows.plan`), added exactly over the buckets. A window holds at most `KEYS` keys, or one
day's (month's) if it alone has more: its size depends on the chain's width, never on the
history's length.

The windows tile every value (the first is open below, the last above), so a stored row on
a day the source has none is compared too. Where the pieces live is the caller's business:
in this process (`Windows.local`), or on the Dask workers that resolved the buckets
(`orchestration.buckets`), fetched per window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import and_, true

from coffeeshop.core.groups import GROUPS, STORE_DAY, Group, GroupSums, Sums
from coffeeshop.core.partials import Partial
from coffeeshop.core.plan import Delta
from coffeeshop.store import Store
from coffeeshop.store.tables import TableRows

KEYS = 65_536  # keys per window at most (summed over the buckets: an upper bound), ~16 MiB
Piece = tuple[str, Any]  # (group name, day or month)
Span = tuple[Any, Any]  # a window's [start, stop) of days or months; None: unbounded
# A bucket's pieces -> their sums: (bucket handle, [(piece handle, …)]) -> [Sums, …]
Fetch = Callable[[Any, list[Any]], list[Sums]]

BY_NAME: dict[str, Group] = {group.name: group for group in GROUPS}
ALONG = ("day", "month")  # the dimension a group is windowed along: the first it holds
WINDOWED: tuple[Group, ...] = tuple(g for g in GROUPS if any(d in g.key for d in ALONG))
__all__ = ["STORE_DAY", "WINDOWED", "Windows", "split"]


def along(group: Group) -> str:
    return next(d for d in ALONG if d in group.key)


def day_at(group: Group) -> int:
    """Where the day (or month) a window cuts at is in `group`'s key."""
    return group.key.index(along(group))


def order(group: Group) -> Callable[[Any], Any]:
    """The order differences of a windowed table are listed in: by day (month), then as the
    other tables' (`repr`), whatever the windows."""
    at = day_at(group)
    return lambda key: (key[at], repr(key))


def split(partial: Partial) -> dict[Piece, Sums]:
    """Move the windowed groups' sums out of `partial` (which keeps the others), by day or
    month."""
    pieces: dict[Piece, Sums] = {}
    for group in WINDOWED:
        at = day_at(group)
        for key, values in partial.groups.sums.pop(group.name, {}).items():
            pieces.setdefault((group.name, key[at]), {})[key] = values
        partial.groups.sums[group.name] = {}
    return pieces


def _within(value: Any, span: Span) -> bool:
    start, stop = span
    return (start is None or value >= start) and (stop is None or value < stop)


class Windows:
    """Every bucket's pieces (a group's sums of one day): where they are (handles), how many
    keys each holds, and how to get them (`fetch`, one call per bucket and window)."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._pieces: dict[str, dict[Any, list[tuple[Any, Any, int]]]] = {}

    @classmethod
    def local(cls, buckets: Sequence[dict[Piece, Sums]]) -> Windows:
        windows = cls(lambda bucket, handles: [bucket[h] for h in handles])
        for pieces in buckets:
            for piece, sums in pieces.items():
                windows.add(piece, pieces, piece, len(sums))
        return windows

    def add(self, piece: Piece, bucket: Any, handle: Any, keys: int) -> None:
        name, day = piece
        self._pieces.setdefault(name, {}).setdefault(day, []).append((bucket, handle, keys))

    def plan(self, group: Group) -> list[Span]:
        """[start, stop) of each window of `group`, tiling every day (month)."""
        days = self._pieces.get(group.name, {})
        starts: list[Any] = [None]
        held = 0
        for day in sorted(days):
            keys = sum(k for *_, k in days[day])
            if held and held + keys > KEYS:
                starts.append(day)
                held = 0
            held += keys
        return list(zip(starts, [*starts[1:], None], strict=True))

    def sums(self, group: Group, span: Span) -> GroupSums:
        """The window's sums over every bucket (a key may be in several buckets' receipts:
        added exactly)."""
        by_bucket: dict[int, tuple[Any, list[Any]]] = {}
        for day, pieces in self._pieces.get(group.name, {}).items():
            if _within(day, span):
                for bucket, handle, _ in pieces:
                    by_bucket.setdefault(id(bucket), (bucket, []))[1].append(handle)
        merged = GroupSums((group,))
        for bucket, handles in by_bucket.values():
            for piece in self._fetch(bucket, handles):
                merged.include(GroupSums((group,), {group.name: piece}))
        return merged

    def deltas(self) -> Iterator[Delta]:
        """Every window as the delta that adds it to empty tables (what a rebuild applies)."""
        for group in WINDOWED:
            for span in self.plan(group):
                yield Delta(groups=self.sums(group, span)).prune()

    def compared(
        self, store: Store, rows: TableRows, group: Group
    ) -> Iterator[tuple[dict[Any, Any], dict[Any, Any]]]:
        """(expected, stored) rows of a windowed table, window by window."""
        column = rows.table.c[along(group)]
        for start, stop in self.plan(group):
            want = self.sums(group, (start, stop)).rows(group)
            bounds = [column >= start] if start is not None else []
            bounds += [column < stop] if stop is not None else []
            yield want, store.stored_rows(rows, where=and_(true(), *bounds))
