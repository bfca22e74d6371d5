"""The public tables, each with its maintenance in one module: how a batch's delta is
applied to it (and to the internal tables it is kept from), how a rebuild empties it, and the
descriptor (`TableRows`) of it and of each internal table the API reads. `TABLES` lists the
maintenance (applying a delta and rebuilding iterate it); `ROWS` lists every descriptor
(reading the tables, reconcile's comparison and repair, and the CLI's listing iterate it).

Adding a table of sums per group: one `Group` in `core/groups.py` (its maintenance here is
generated: `counted.py`); every file it touches is named in the README's "Adding a table".
Any other table: the groups it is kept from (`STATE_GROUPS` in `core/plan.py`: their sums,
state tables and add/subtract maintenance are generated as a counted table's) and its
reference formula in `core/recompute.py` (a field of `Tables`), its schema in
`store/schema.py` (+ a migration), a module here with how its rows follow from its groups' (a
`FromState` subclass, as `store_monthly.py`) and its descriptor, listed below.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from coffeeshop.core.groups import GROUPS
from coffeeshop.core.plan import Delta
from coffeeshop.core.recompute import Tables
from coffeeshop.store import schema
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import PublicTable, Reference, TableRows
from coffeeshop.store.tables.counted import CountedTable
from coffeeshop.store.tables.item_performance import ItemPerformance
from coffeeshop.store.tables.receipts_summary import ReceiptsSummary, since
from coffeeshop.store.tables.store_monthly import StoreMonthly
from coffeeshop.store.tables.store_peak_hours import StorePeakHours

SUMMARY = ReceiptsSummary()  # also written on its own: once a batch is in, or each day
COUNTED = tuple(CountedTable(group, schema.COUNTED[group.name]) for group in GROUPS)
TABLES: tuple[PublicTable, ...] = (
    SUMMARY,
    StoreMonthly(),
    StorePeakHours(),
    ItemPerformance(),
    *COUNTED,
)
ROWS: tuple[TableRows, ...] = tuple(rows for table in TABLES for rows in table.rows)


def apply_delta(conn: Connection, stmts: Statements, delta: Delta) -> None:
    """Every table's part of `delta`, in one transaction (the caller's)."""
    if delta.is_empty:
        return
    for table in TABLES:
        table.apply(conn, stmts, delta)


def read_tables(conn: Connection, today: dt.date | None) -> Tables:
    """Every table as values (the summary row for `today`, or the latest one)."""
    return Tables(**{rows.field: rows.read(conn, today) for rows in ROWS})


def clear_tables(conn: Connection) -> None:
    for table in TABLES:
        table.clear(conn)


def correct_kept(conn: Connection, stmts: Statements, fixes: dict[str, dict[Any, Any]]) -> None:
    """After a rebuild, the rows it keeps (past summaries) that reconcile found wrong:
    `fixes` maps a table's name to its keys' expected values (None: no row)."""
    for rows in ROWS:
        if rows.kept and fixes.get(rows.name):
            rows.correct(conn, stmts, fixes[rows.name])


__all__ = [
    "ROWS",
    "SUMMARY",
    "TABLES",
    "PublicTable",
    "Reference",
    "TableRows",
    "apply_delta",
    "clear_tables",
    "correct_kept",
    "read_tables",
    "since",
]
