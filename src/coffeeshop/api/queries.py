"""The API's reads, as SQLAlchemy Core over the engine's own table definitions.

Each function takes a connection inside a read transaction and returns plain rows (dicts
whose keys are the JSON field names). Values come back in exact types: `Decimal` money (the
`Exact` column type turns SQLite's text back into `Decimal`), `date`, `int`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from coffeeshop.api.cache import VersionTag
from coffeeshop.api.database import SchemaMissing
from coffeeshop.api.params import (
    ItemParams,
    QuarantineParams,
    StoreMonthlyParams,
    StoreParams,
    SummaryParams,
    as_date,
)
from coffeeshop.store import schema
from coffeeshop.store.dialects import dialect_named

Row = dict[str, Any]


async def read_tag(conn: AsyncConnection) -> VersionTag:
    st = schema.state
    row = (
        await conn.execute(select(st.c.data_version, st.c.changed_at).where(st.c.id == 1))
    ).first()
    if row is None:
        raise SchemaMissing("cs_state has no row: run `coffeeshop db upgrade` or `coffeeshop sync`")
    return VersionTag(int(row[0]), row[1])


def _page(query: Select[Any], limit: int | None, offset: int) -> Select[Any]:
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return query


async def _rows(conn: AsyncConnection, query: Select[Any]) -> list[Row]:
    result = await conn.execute(query)
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


async def receipts_summary(conn: AsyncConnection, params: SummaryParams) -> list[Row]:
    rs = schema.receipts_summary
    query = select(*rs.c).order_by(rs.c.as_of)  # every column of the public table, in order
    first, last = as_date(params.as_of_from), as_date(params.as_of_to)
    if first is not None:
        query = query.where(rs.c.as_of >= first)
    if last is not None:
        query = query.where(rs.c.as_of <= last)
    return await _rows(conn, _page(query, params.limit, params.offset))


async def store_monthly(conn: AsyncConnection, params: StoreMonthlyParams) -> list[Row]:
    sm = schema.store_monthly
    query = select(sm.c.month, sm.c.store_id, sm.c.sales).order_by(sm.c.month, sm.c.store_id)
    if params.store_id is not None:
        query = query.where(sm.c.store_id == params.store_id)
    if params.month_from is not None:
        query = query.where(sm.c.month >= params.month_from)
    if params.month_to is not None:
        query = query.where(sm.c.month <= params.month_to)
    return await _rows(conn, _page(query, params.limit, params.offset))


async def item_performance(conn: AsyncConnection, params: ItemParams) -> list[Row]:
    ip = schema.item_performance
    query = select(ip.c.item_name, ip.c.total_sold)
    if params.order == "item_name":
        # As people read names: no SQL collation does this alike on SQLite, MariaDB and
        # PostgreSQL, and a product list is small, so it is sorted here, then paged.
        rows = sorted(await _rows(conn, query), key=lambda row: name_order(row["item_name"]))
        end = None if params.limit is None else params.offset + params.limit
        return rows[params.offset : end]
    query = query.order_by(ip.c.total_sold.desc(), ip.c.item_name)
    return await _rows(conn, _page(query, params.limit, params.offset))


def name_order(name: str) -> tuple[str, str]:
    """Sort key for names as people read them: case and accents ignored (`latte` beside
    `Latte` and `Latté`, all before `Turkey Club`), then the exact name, so that names
    equal when folded still have one fixed order."""
    decomposed = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return folded, name


async def store_peak_hours(conn: AsyncConnection, params: StoreParams) -> list[Row]:
    ph = schema.store_peak_hours
    query = select(ph.c.store_id, ph.c.peak_hour, ph.c.tx_count).order_by(ph.c.store_id)
    if params.store_id is not None:
        query = query.where(ph.c.store_id == params.store_id)
    return await _rows(conn, _page(query, params.limit, params.offset))


async def store_hours(conn: AsyncConnection, params: StoreParams) -> list[Row]:
    sh = schema.store_hour
    query = (
        select(sh.c.store_id, sh.c.hour, sh.c.receipts)
        .where(sh.c.receipts > 0)
        .order_by(sh.c.store_id, sh.c.hour)
    )
    if params.store_id is not None:
        query = query.where(sh.c.store_id == params.store_id)
    return await _rows(conn, _page(query, params.limit, params.offset))


RAW_PREVIEW = 1000  # characters of an entry's raw text in /quarantine
RAW_CHUNK = 256 * 1024  # characters read per query when streaming one entry's raw text


def _char_length(conn: AsyncConnection, column: Any) -> Any:
    return dialect_named(conn.dialect.name).char_length(column)


async def quarantine(conn: AsyncConnection, params: QuarantineParams) -> list[Row]:
    """A page of entries, each with the first `RAW_PREVIEW` characters of its raw text and
    that text's full length: the database cuts it, so a huge entry never reaches the API."""
    q = schema.quarantine
    query = select(
        q.c.id,
        q.c.receipt_id,
        q.c.reason,
        q.c.source,
        q.c.position,
        func.substr(q.c.raw, 1, RAW_PREVIEW).label("raw"),
        _char_length(conn, q.c.raw).label("raw_length"),
        q.c.received_at,
    ).order_by(q.c.id)
    if params.source is not None:
        query = query.where(q.c.source == params.source)
    rows = await _rows(conn, _page(query, params.limit, params.offset))
    return [
        {
            "id": row["id"],
            "receipt_id": row["receipt_id"],
            "reason": row["reason"],
            "source": row["source"],
            "position": row["position"],
            "raw": row["raw"],
            "raw_length": int(row["raw_length"]),
            "raw_truncated": int(row["raw_length"]) > RAW_PREVIEW,
            "received_at": row["received_at"],
        }
        for row in rows
    ]


async def quarantine_raw_length(conn: AsyncConnection, entry_id: int) -> int | None:
    """The length in characters of one entry's raw text; None when there is no such entry."""
    q = schema.quarantine
    length = (
        await conn.execute(select(_char_length(conn, q.c.raw)).where(q.c.id == entry_id))
    ).scalar()
    return None if length is None else int(length)


async def quarantine_raw_piece(
    conn: AsyncConnection, entry_id: int, start: int, size: int
) -> str | None:
    """`size` characters of one entry's raw text from `start` (1-based)."""
    q = schema.quarantine
    query = select(func.substr(q.c.raw, start, size)).where(q.c.id == entry_id)
    piece: str | None = (await conn.execute(query)).scalar()
    return piece


async def checkpoints(conn: AsyncConnection) -> list[Row]:
    c = schema.checkpoints
    names = ("source", "committed_at", "behind", "source_time", "applied", "quarantined", "batches")
    query = select(*c.c[names]).order_by(c.c.source)
    return await _rows(conn, query)


def pipeline_status(
    tag: VersionTag,
    sources: list[Row],
    *,
    now: dt.datetime,
    checked_at: dt.datetime,
    database: str,
) -> dict[str, Any]:
    """The body of GET /pipeline: per source and in total, how current the tables are."""

    def since(moment: dt.datetime | None) -> float | None:
        return None if moment is None else round(max(0.0, (now - moment).total_seconds()), 3)

    entries = [
        {
            "source": s["source"],
            "committed_at": s["committed_at"],
            "seconds_since_commit": since(s["committed_at"]),
            "behind": s["behind"],
            "source_time": s["source_time"],
            "applied": int(s["applied"]),
            "quarantined": int(s["quarantined"]),
            "batches": int(s["batches"]),
        }
        for s in sources
    ]
    last = max((s["committed_at"] for s in sources), default=None)
    behind = [int(s["behind"]) for s in sources if s["behind"] is not None]
    return {
        "data_version": tag.data_version,
        "changed_at": tag.changed_at,
        "checked_at": checked_at,
        "database": database,
        "totals": {
            "applied": sum(e["applied"] for e in entries),
            "quarantined": sum(e["quarantined"] for e in entries),
            "batches": sum(e["batches"] for e in entries),
            "behind": sum(behind) if behind else None,
            "last_committed_at": last,
            "seconds_since_commit": since(last),
        },
        "sources": entries,
    }
