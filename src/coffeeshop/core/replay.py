"""What a rebuild writes: every current receipt as its `cs_receipts` row, and the `Delta`
that adds their sums to empty tables.

Pure. Two kinds: `ReceiptReplay` over `(Receipt, receipt_id)` pairs (the single-process
reconcile's snapshot) encodes each receipt and adds it to the delta as the rows stream by;
`MergedReplay` over a partitioned read's merged result already holds both (the buckets'
rows, sorted by key, and the merged `Partial`'s sums), so nothing is decoded or summed again.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

from coffeeshop.core.partials import Partial
from coffeeshop.core.plan import Delta
from coffeeshop.core.receipt_codec import Row, receipt_row
from coffeeshop.core.receipts import Receipt


class Replay(ABC):
    """Rows to write and their delta; `delta()` is complete once `rows()` was consumed."""

    @abstractmethod
    def rows(self) -> Iterable[Row]: ...

    @abstractmethod
    def delta(self) -> Delta: ...

    def windows(self) -> Iterable[Delta]:
        """More of the delta, in pieces applied one after the other (a partitioned read's
        day-keyed counted tables, a window of days at a time)."""
        return ()


class ReceiptReplay(Replay):
    def __init__(self, current: Iterable[tuple[Receipt, str]]) -> None:
        self._current = current
        self._delta = Delta()

    def rows(self) -> Iterator[Row]:
        add = self._delta.add
        for receipt, receipt_id in self._current:
            add(receipt, +1)
            yield receipt_row(receipt, receipt_id)

    def delta(self) -> Delta:
        return self._delta


class MergedReplay(Replay):
    """`runs`: key-sorted rows of disjoint key sets (each iterable again: read once per
    rebuild); `partial`: exactly their sums."""

    def __init__(
        self,
        runs: Iterable[Iterable[Row]],
        partial: Partial,
        windows: Callable[[], Iterable[Delta]] = tuple,
    ) -> None:
        self._runs = list(runs)
        self._partial = partial
        self._windows = windows

    def rows(self) -> Iterator[Row]:
        return heapq.merge(*self._runs)

    def delta(self) -> Delta:
        return self._partial.delta()

    def windows(self) -> Iterable[Delta]:
        return self._windows()


def replay_of(current: Iterable[tuple[Receipt, str]] | Replay) -> Replay:
    return current if isinstance(current, Replay) else ReceiptReplay(current)
