"""One source per database.

`cs_receipts` has no source column: a receipt is known by its `_id` alone, so two sources
synced into one database would merge receipts that share an `_id`, and a repair (or the
engine's rebuild after a MongoDB change stream lost its history) recomputes the whole state
from the one source it reads, which deletes every receipt the other sources brought. So a
database takes the receipts of one source, the one its `cs_checkpoint` row names:

* `sync` of another source is refused (one line, exit 2) before anything is read or written;
* a repair or rebuild from another source is refused the same way;
* replacing the source on purpose is `reconcile --repair --replace-source`, which says what
  it removes before it does.

A database from before this rule may hold several checkpoint rows: a sync of one of them
still continues (it drops nothing), a repair or rebuild needs `--replace-source`.

The check runs twice: up front, so a refused command reads nothing, and inside the writing
transaction (under a lock on the single `cs_totals` row), so two processes starting two
sources at the same moment cannot both get in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from coffeeshop.errors import SourceMismatch
from coffeeshop.redact import mask_text
from coffeeshop.store import schema


@dataclass(frozen=True, slots=True)
class Holdings:
    """What a database holds: its recorded sources, and the receipts and quarantine entries
    a replacement of those sources would remove."""

    sources: tuple[str, ...]
    receipts: int
    quarantined: int

    @property
    def removal(self) -> str:
        """`the 1,000 receipt(s) and 1 quarantine entry`: what replacing the source removes."""
        entries = "entry" if self.quarantined == 1 else "entries"
        return f"the {self.receipts:,} receipt(s) and {self.quarantined:,} quarantine {entries}"


def recorded_sources(conn: Connection, *, lock: bool = False) -> list[str]:
    """The sources with a checkpoint row; with `lock`, first lock the `cs_totals` row, which
    every writer of a new source takes, so the answer holds until the transaction ends."""
    if lock:
        t = schema.totals
        conn.execute(select(t.c.id).where(t.c.id == 1).with_for_update())
    c = schema.checkpoints
    return [row[0] for row in conn.execute(select(c.c.source).order_by(c.c.source))]


def holdings(conn: Connection) -> Holdings:
    sources = recorded_sources(conn)
    receipts = conn.execute(select(func.count()).select_from(schema.receipts)).scalar_one()
    q = schema.quarantine
    quarantined = conn.execute(select(func.count()).select_from(q)).scalar_one()
    return Holdings(tuple(sources), int(receipts), int(quarantined))


def conflict(
    conn: Connection, recorded: Sequence[str], source: str, *, rebuild: bool, database: str
) -> SourceMismatch | None:
    """The error for using `source` on a database whose checkpoints name `recorded`, or None.

    `rebuild`: the caller replaces the whole state from `source` (a repair, the engine's
    rebuild); otherwise it applies changes after its own checkpoint (a sync). The way out
    that deletes (`--replace-source`) is offered with what it would delete."""
    others = [name for name in recorded if name != source]
    if not others or (not rebuild and source in recorded):
        return None
    held = _names(others)
    deletes = f"it deletes {holdings(conn).removal} of {held}"
    if rebuild:
        return SourceMismatch(
            f"the database {database} holds the receipts of {held}, not of {_names([source])}: "
            "a repair from this source would delete them (one source per database). Pass "
            "the database's own --source, another --db, or add --replace-source to replace "
            f"them on purpose ({deletes})"
        )
    return SourceMismatch(
        f"the database {database} holds the receipts of {held}; not syncing "
        f"{_names([source])} into it (one source per database). Use another --db for this "
        "source, or replace the database's source on purpose with `coffeeshop reconcile "
        f"--repair --replace-source --source …` ({deletes})"
    )


def check(
    conn: Connection, source: str, *, rebuild: bool, database: str, replace: bool = False
) -> list[str]:
    """Inside a writing transaction: raise the `conflict`, if any (none with `replace`);
    return the other sources (those a replacement removes)."""
    recorded = recorded_sources(conn, lock=True)
    error = conflict(conn, recorded, source, rebuild=rebuild, database=database)
    if error is not None and not replace:
        raise error
    return [name for name in recorded if name != source]


def _names(sources: Sequence[str]) -> str:
    return ", ".join(mask_text(name) for name in sources)
