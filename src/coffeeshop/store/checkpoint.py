"""The checkpoint: where a source's batches stand, moved with the data in one transaction
by compare-and-set on its version, and the data version readers' caches follow."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from coffeeshop.errors import CheckpointMoved
from coffeeshop.store import schema, signal
from coffeeshop.store.codec import utcnow


@dataclass(frozen=True, slots=True)
class Checkpoint:
    source: str
    position: str
    version: int
    applied: int
    quarantined: int
    batches: int
    committed_at: dt.datetime
    behind: int | None = None
    source_time: dt.datetime | None = None


def claim(conn: Connection, source: str, expected: int | None) -> int:
    """First statement of a writing transaction: take the checkpoint row (a row lock on
    MySQL/MariaDB/PostgreSQL, the write lock on SQLite) and check it is still at
    `expected` (None: whatever it is). Returns the version this transaction commits.

    A repair that rebuilt the state meanwhile moved the version: nothing is written and
    `CheckpointMoved` tells the writer to re-read the checkpoint."""
    c = schema.checkpoints
    condition = c.c.source == source
    if expected is not None:
        condition = and_(condition, c.c.version == expected)
    result = conn.execute(update(c).where(condition).values(version=c.c.version + 1))
    if result.rowcount == 1:
        if expected is not None:
            return expected + 1
        return int(conn.execute(select(c.c.version).where(c.c.source == source)).scalar_one())
    row = conn.execute(select(c.c.version, c.c.position).where(c.c.source == source)).first()
    if row is None and expected in (None, 0):
        return 1  # no checkpoint yet: `record` inserts it
    raise CheckpointMoved(
        f"the checkpoint of {source} moved under this writer (a repair rebuilt the tables?)",
        version=None if row is None else int(row.version),
        position=None if row is None else row.position,
    )


def record(
    conn: Connection,
    source: str,
    position: str,
    version: int,
    *,
    applied: int,
    quarantined: int,
    behind: int | None = None,
    source_time: dt.datetime | None = None,
    reset_counts: bool = False,
) -> None:
    """Move the checkpoint to `position` at `version` (claimed by `claim`), adding this
    batch's counts to its totals (or starting them again with `reset_counts`)."""
    c = schema.checkpoints
    values: dict[str, Any] = {
        "position": position,
        "version": version,
        "committed_at": utcnow(),
        "behind": behind,
        "source_time": source_time,
    }
    exists = conn.execute(select(c.c.source).where(c.c.source == source)).first()
    if exists is None:
        conn.execute(
            insert(c).values(
                source=source, applied=applied, quarantined=quarantined, batches=1, **values
            )
        )
        return
    if reset_counts:
        counts: dict[str, Any] = {"applied": applied, "quarantined": quarantined, "batches": 1}
    else:
        counts = {
            "applied": c.c.applied + applied,
            "quarantined": c.c.quarantined + quarantined,
            "batches": c.c.batches + 1,
        }
    conn.execute(update(c).where(c.c.source == source).values(**values, **counts))


def load(conn: Connection, source: str) -> Checkpoint | None:
    c = schema.checkpoints
    row = conn.execute(select(c).where(c.c.source == source)).first()
    return Checkpoint(**row._mapping) if row is not None else None


def load_all(conn: Connection) -> list[Checkpoint]:
    c = schema.checkpoints
    return [Checkpoint(**row._mapping) for row in conn.execute(select(c).order_by(c.c.source))]


def bump_data_version(conn: Connection) -> None:
    """The public tables changed: readers' caches are stale (and are told so at commit,
    `store.signal`)."""
    st = schema.state
    conn.execute(
        update(st)
        .where(st.c.id == 1)
        .values(data_version=st.c.data_version + 1, changed_at=utcnow())
    )
    signal.announce(conn)
