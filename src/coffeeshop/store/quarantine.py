"""`cs_quarantine`: events that could not be applied, kept with their raw text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection

from coffeeshop.core.plan import QuarantineEntry
from coffeeshop.store import schema
from coffeeshop.store.codec import chunks, encode_key, utcnow


def write(
    conn: Connection, source: str, clear: Collection[str], add: Sequence[QuarantineEntry]
) -> bool:
    """Clear the entries of keys that are valid again and add the new ones; True when
    the quarantine changed (a valid receipt usually has no entry to clear)."""
    q = schema.quarantine
    cleared = 0
    if clear:
        for chunk in chunks([encode_key(k) for k in clear]):
            cleared += conn.execute(delete(q).where(q.c.key.in_(chunk))).rowcount
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
