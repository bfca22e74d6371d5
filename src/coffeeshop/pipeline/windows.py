"""The counted tables of a partitioned read, one calendar month at a time.

A counted table keyed by day (`core.groups`: a store's day, hour, product per hour) has about
as many rows as the history has receipts until its key space fills (at 250,000 receipts the
product-hour sums alone were 510,000 keys, ~190 MiB as Python objects). A process that holds
them whole grows with the history. So each bucket splits its sums of those tables by month
(`split`): a *window* is one table's sums for one month, and the process that compares and
rebuilds holds one window at a time (`Windows.sums`: the window's piece from every bucket,
added exactly), whose size is one month of the chain, whatever the history's length.

Where the pieces live is the caller's business: in this process (`Windows.local`), or on the
Dask workers that resolved the buckets (`orchestration.buckets`), fetched per window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from coffeeshop.core.groups import GROUPS, Group, GroupSums, Sums
from coffeeshop.core.partials import Partial
from coffeeshop.core.plan import Delta
from coffeeshop.store import Store
from coffeeshop.store.tables import TableRows

Window = tuple[str, str]  # (group name, month "YYYY-MM")
# Handles of a window's pieces -> the pieces (Sums), in any order.
Fetch = Callable[[list[Any]], Iterable[Sums]]

BY_NAME: dict[str, Group] = {group.name: group for group in GROUPS}
WINDOWED: tuple[Group, ...] = tuple(g for g in GROUPS if "day" in g.key)


def month_of(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def day_at(group: Group) -> int:
    return group.key.index("day")


def split(partial: Partial) -> dict[Window, Sums]:
    """Move the day-keyed groups' sums out of `partial` (which keeps the others), by month."""
    pieces: dict[Window, Sums] = {}
    for group in WINDOWED:
        at = day_at(group)
        for key, values in partial.groups.sums.pop(group.name, {}).items():
            pieces.setdefault((group.name, month_of(key[at])), {})[key] = values
        partial.groups.sums[group.name] = {}
    return pieces


def month_range(first: dt.date, last: dt.date) -> Iterator[tuple[dt.date, dt.date]]:
    """[first day, first day of the next month) of every month from `first`'s to `last`'s."""
    start = first.replace(day=1)
    while start <= last:
        following = (start + dt.timedelta(days=32)).replace(day=1)
        yield start, following
        start = following


class Windows:
    """Every window of a set of buckets: which pieces hold it (handles), and how to get them."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._pieces: dict[Window, list[Any]] = {}

    @classmethod
    def local(cls, buckets: Sequence[dict[Window, Sums]]) -> Windows:
        windows = cls(list)
        for pieces in buckets:
            for window, sums in pieces.items():
                windows.add(window, sums)
        return windows

    def add(self, window: Window, handle: Any) -> None:
        self._pieces.setdefault(window, []).append(handle)

    def months(self, group: Group) -> list[str]:
        return sorted(month for name, month in self._pieces if name == group.name)

    def sums(self, group: Group, month: str) -> GroupSums:
        """The window's sums over every bucket (each key is in one bucket's receipts or in
        several: added exactly)."""
        merged = GroupSums((group,))
        for piece in self._fetch(self._pieces.get((group.name, month), [])):
            merged.include(GroupSums((group,), {group.name: piece}))
        return merged

    def rows(self, group: Group, month: str) -> dict[Any, Any]:
        """The window's rows as `core.recompute.Tables` holds the group's."""
        return self.sums(group, month).rows(group)

    def deltas(self) -> Iterator[Delta]:
        """Every window as the delta that adds it to empty tables (what a rebuild applies)."""
        for group in WINDOWED:
            for month in self.months(group):
                yield Delta(groups=self.sums(group, month)).prune()


def by_month(group: Group, rows: dict[Any, Any]) -> dict[str, dict[Any, Any]]:
    """A group's rows as `core.recompute.Tables` holds them, split by month."""
    at = day_at(group)
    out: dict[str, dict[Any, Any]] = {}
    for key, value in rows.items():
        day = key[at] if isinstance(key, tuple) else key
        out.setdefault(month_of(day), {})[key] = value
    return out


def monthly(
    store: Store, rows: TableRows, months: Iterable[str], expected: Callable[[str], dict[Any, Any]]
) -> Iterator[tuple[dict[Any, Any], dict[Any, Any]]]:
    """(expected, stored) rows of a day-keyed table, month by month in calendar order: every
    month `expected` has, and every month the table has rows in."""
    day = rows.table.c["day"]
    wanted = set(months)
    stored = store.day_range(rows.table)
    if stored is not None:
        wanted.update(month_of(first) for first, _ in month_range(*stored))
    for month in sorted(wanted):
        first = dt.date(int(month[:4]), int(month[5:7]), 1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        yield expected(month), store.stored_rows(rows, where=(day >= first) & (day < following))
