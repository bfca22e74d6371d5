"""The public tables, each with its maintenance in one module: how a batch's delta is
applied to it (and to the internal tables it is kept from), how it is read back, and how a
rebuild empties it. `TABLES` lists them: applying a delta, reading the tables and
rebuilding iterate it.

Adding a table: its delta in `core/plan.py` (`Delta`) and formula in `core/recompute.py`
(`Tables`), its schema in `store/schema.py` (+ a migration), a module here, listed below.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

from coffeeshop.core.plan import Delta
from coffeeshop.core.recompute import Tables
from coffeeshop.store.statements import Statements
from coffeeshop.store.tables.base import PublicTable
from coffeeshop.store.tables.item_performance import ItemPerformance
from coffeeshop.store.tables.receipts_summary import ReceiptsSummary
from coffeeshop.store.tables.store_monthly import StoreMonthly
from coffeeshop.store.tables.store_peak_hours import StorePeakHours

SUMMARY = ReceiptsSummary()  # also written on its own: once a batch is in, or each day
TABLES: tuple[PublicTable, ...] = (SUMMARY, StoreMonthly(), StorePeakHours(), ItemPerformance())


def apply_delta(conn: Connection, stmts: Statements, delta: Delta) -> None:
    """Every table's part of `delta`, in one transaction (the caller's)."""
    if delta.is_empty:
        return
    for table in TABLES:
        table.apply(conn, stmts, delta)


def read_tables(conn: Connection, today: dt.date | None) -> Tables:
    """The public tables as values (the summary row for `today`, or the latest one)."""
    return Tables(**{table.field: table.read(conn, today) for table in TABLES})


def clear_tables(conn: Connection) -> None:
    for table in TABLES:
        table.clear(conn)


__all__ = ["SUMMARY", "TABLES", "PublicTable", "apply_delta", "clear_tables", "read_tables"]
