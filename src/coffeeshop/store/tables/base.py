"""What every public table's maintenance provides (see `coffeeshop.store.tables`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from coffeeshop.core.plan import Delta
from coffeeshop.store.statements import Statements


class PublicTable(Protocol):
    """One public table with the internal tables it is maintained from."""

    field: str  # its field in `core.recompute.Tables` (what `read` returns)

    def apply(self, conn: Connection, stmts: Statements, delta: Delta) -> None:
        """Apply this table's part of a batch's delta (inside the batch transaction)."""

    def read(self, conn: Connection, today: dt.date | None) -> Any:
        """The table as a value, comparable with the from-scratch recompute's."""

    def clear(self, conn: Connection) -> None:
        """Empty it and its internal tables (a rebuild then applies the full delta)."""
