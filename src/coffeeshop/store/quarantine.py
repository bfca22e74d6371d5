"""`cs_quarantine`: events that could not be applied, kept with their raw text."""

from __future__ import annotations

from collections.abc import Collection, Sequence

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
        conn.execute(
            insert(q),
            [
                {
                    "key": encode_key(e.key) if e.key is not None else None,
                    "receipt_id": e.receipt_id[:255] if e.receipt_id else None,
                    "reason": e.reason,
                    "source": source[:255],
                    "position": e.where[:255],
                    "raw": e.raw,
                    "received_at": now,
                }
                for e in add
            ],
        )
    return cleared > 0 or bool(add)
