"""What every public table's maintenance provides (see `coffeeshop.store.tables`), and the one
descriptor of each table the API reads (`TableRows`): its name and columns, how its rows are
read, and which rows the recomputation expects. Reconcile's comparison and repair, `read_tables`
and the CLI's listing all iterate the descriptors."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as attribute
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import Delta
from coffeeshop.core.recompute import Tables
from coffeeshop.store.codec import CHUNK, chunks
from coffeeshop.store.row_format import RowFormat, supported
from coffeeshop.store.statements import Statements

if TYPE_CHECKING:  # counted.py builds on this module
    from coffeeshop.store.tables.counted import CountedTable


@dataclass(frozen=True, slots=True)
class Reference:
    """What reconcile holds the stored tables to: the recomputation over the source's current
    receipts, for `today`, and what tells which past `receipts_summary` rows can be checked."""

    tables: Tables
    today: dt.date
    since: dt.date | None = None  # the first day this database wrote a summary row
    settled_after: dt.date | None = None  # rows dated later were written from today's state


@dataclass(frozen=True, slots=True)
class TableRows:
    """One table as reconcile, the CLI and the tests see it: a mapping of its key columns to
    its value columns (one column: the value itself; several: a tuple), which is also its
    field of `core.recompute.Tables`: the recomputation's rows of it."""

    table: Table
    field: str  # its field in `core.recompute.Tables`
    key: tuple[str, ...]
    values: tuple[str, ...]
    public: bool = True  # one of the four tables of the specification (the CLI lists those)
    kept: bool = False  # a rebuild keeps its rows: a repair corrects them one by one
    order: Callable[[tuple[Any, Any]], Any] | None = None  # the API's order of (key, value)
    # How `add` writes its rows (compiled once), where its columns have a row format.
    format: RowFormat | None = attribute(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if supported(self.table, self.header):
            rows = RowFormat(self.table, self.key, self.values, bare=True)
            object.__setattr__(self, "format", rows)

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def header(self) -> list[str]:
        return [*self.key, *self.values]

    def stored(self, conn: Connection, where: Any = None) -> dict[Any, Any]:
        """Every row of the table (those `where` selects), key -> value."""
        columns = [self.table.c[name] for name in self.header]
        keys, n = len(self.key), len(self.header)
        query = select(*columns) if where is None else select(*columns).where(where)
        return {
            (row[0] if keys == 1 else tuple(row[:keys])): (
                row[keys] if n - keys == 1 else tuple(row[keys:])
            )
            for row in conn.execute(query)
        }

    def read(self, conn: Connection, today: dt.date | None) -> Any:
        """Its value in `Tables` (`read_tables`)."""
        return self.stored(conn)

    def compared(
        self, reference: Reference, stored: dict[Any, Any]
    ) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """(expected, stored) rows that reconcile compares: every row, by default."""
        return getattr(reference.tables, self.field), stored

    def correct(self, conn: Connection, stmts: Statements, fixes: dict[Any, Any]) -> None:
        """Set each key of `fixes` to its value, or delete its row where the value is None."""
        gone = [key for key, value in fixes.items() if value is None]
        for chunk in chunks(gone, CHUNK // max(1, len(self.key))):
            conn.execute(delete(self.table).where(self._key_in(chunk)))
        rows = [self._row(key, value) for key, value in fixes.items() if value is not None]
        if rows:
            conn.execute(stmts.upsert(self.table, self.key, set_=self.values), rows)

    def add(self, conn: Connection, stmts: Statements, changes: dict[Any, Any]) -> None:
        """Add each value of `changes` (signed) to its key's row, created at zero if new."""
        upsert = stmts.upsert(self.table, self.key, add=self.values)
        if self.format is not None:
            stmts.execute_format(conn, upsert, self.format, changes)
            return
        conn.execute(upsert, [self._row(key, value) for key, value in changes.items()])

    def _row(self, key: Any, value: Any) -> dict[str, Any]:
        return dict(zip(self.header, [*_cells(key), *_cells(value)], strict=True))

    def _key_in(self, keys: Sequence[Any]) -> Any:
        if len(self.key) == 1:
            return self.table.c[self.key[0]].in_(keys)
        return tuple_(*(self.table.c[name] for name in self.key)).in_(keys)

    def listing(self, stored: dict[Any, Any]) -> list[list[Any]]:
        """The rows in the API's order (by key, unless `order` says), each as its header's
        cells: what `coffeeshop tables` prints."""
        items = sorted(stored.items(), key=self.order or _by_key)
        return [[*_cells(key), *_cells(value)] for key, value in items]

    def render(self, key: Any) -> str:
        """A key as a difference names it: `'Latte'`, `2026-11-24`, `'2026-11' 3`."""
        return " ".join(repr(part) if isinstance(part, str) else str(part) for part in _cells(key))

    def describe(self, value: Any) -> str:
        """A value as a difference shows it: the value of one column, or `column=value`."""
        if isinstance(value, str) or len(self.values) == 1:
            return str(value)
        return " ".join(f"{name}={part}" for name, part in zip(self.values, value, strict=True))


def _by_key(item: tuple[Any, Any]) -> Any:
    return item[0]


def _cells(part: Any) -> list[Any]:
    return list(part) if isinstance(part, tuple) else [part]


class PublicTable(Protocol):
    """One public table with the internal tables it is maintained from."""

    field: str  # its field in `core.recompute.Tables` (what `read` returns)

    @property
    def rows(self) -> tuple[TableRows, ...]:
        """The descriptors of it and of its internal tables."""

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        """Apply this table's part of a batch's delta (inside the batch transaction)."""

    def clear(self, conn: Connection) -> None:
        """Empty it and its internal tables (a rebuild then applies the full delta)."""


class FromState(ABC):
    """A public table kept from a table of counts per group (`state`, a `CountedTable` of one
    of `core.plan.STATE_GROUPS`): a batch's sums of that group are added to the state rows
    (rows whose count falls to zero go), then the public rows of the keys they touched are
    derived again from those (`refresh`); a rebuild empties both."""

    field: str
    public: TableRows
    state: CountedTable

    @property
    def rows(self) -> tuple[TableRows, ...]:
        return (self.public, *self.state.rows)

    @abstractmethod
    def refresh(self, conn: Connection, stmts: Statements, changes: dict[Any, Any]) -> None:
        """Derive the public rows of the state rows that `changes` (just added) touched."""

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        changes = delta.sums(self.state.group)
        if changes:
            self.state.add(conn, stmts, changes)
            self.refresh(conn, stmts, changes)

    def clear(self, conn: Connection) -> None:
        for rows in self.rows:
            conn.execute(delete(rows.table))
