"""`cs_quarantine`: events that could not be applied, kept with their raw text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import QuarantineEntry
from coffeeshop.store import schema
from coffeeshop.store.codec import encode_key, utcnow
from coffeeshop.store.statements import Statements


def write(
    conn: Connection,
    stmts: Statements,
    source: str,
    clear: Collection[str],
    add: Sequence[QuarantineEntry],
) -> bool:
    """Clear the entries of keys that are valid again and add the new ones; True when
    the quarantine changed (a valid receipt usually has no entry to clear)."""
    q = schema.quarantine
    head = f"DELETE FROM {q.name} WHERE {stmts.quote('key')}"
    cleared = stmts.count_in_keys(conn, head, [encode_key(k) for k in clear])
    if add:
        now = utcnow()
        conn.execute(insert(q), [entry_row(e, source, now) for e in add])
    return cleared > 0 or bool(add)


def entry_row(entry: QuarantineEntry, source: str, now: dt.datetime) -> dict[str, Any]:
    """One entry as its `cs_quarantine` row (without the id the database gives it)."""
    return {
        "key": encode_key(entry.key) if entry.key is not None else None,
        "receipt_id": entry.receipt_id[:255] if entry.receipt_id else None,
        "reason": entry.reason,
        "source": source[:255],
        "position": entry.where[:255],
        "raw": entry.raw,
        "received_at": now,
    }
