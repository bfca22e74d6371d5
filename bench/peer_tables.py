"""The peer benchmark's yardstick (`bench/bench_peer.py`): the four public tables an engine
wrote, read back from its database, against an independent recomputation over the feed.

The recomputation reads the feed with our own line decoder and receipt parser (what a line
means) and `core.recompute` (what the tables are): no engine, no database. Tables are compared
as plain values, money as exact decimals, to the cent; an engine that keeps money as integer
cents (the Pathway pipeline) is read with `cents=True`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from coffeeshop.core.events import Delete
from coffeeshop.core.plan import Parsed, parse_events
from coffeeshop.core.receipts import Receipt
from coffeeshop.core.recompute import Tables, recompute
from coffeeshop.sources.jsonl import decode_line

# table name -> {key columns' values: value columns' values}
Public = dict[str, dict[Any, Any]]

QUERIES = {
    "receipts_summary": "SELECT as_of, spend_per_rcpt, items_per_rcpt, this_week_sales, "
    "last_week_sales FROM receipts_summary",
    "store_monthly": "SELECT month, store_id, sales FROM store_monthly",
    "item_performance": "SELECT item_name, total_sold FROM item_performance",
    "store_peak_hours": "SELECT store_id, peak_hour, tx_count FROM store_peak_hours",
}


def current_receipts(feed: Path) -> dict[str, Receipt]:
    """The valid receipts the feed leaves, by key: each line in order, a replace or a newer
    version replacing the receipt, a delete or an invalid latest version removing it."""
    current: dict[str, Receipt] = {}
    with feed.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            event = decode_line(line.rstrip(b"\n"), where=f"line {number}")
            if event is None:
                continue
            for parsed in parse_events([event]):
                if isinstance(parsed, Parsed) and parsed.receipt is not None:
                    current[parsed.key] = parsed.receipt
                elif isinstance(parsed, Parsed | Delete):
                    current.pop(parsed.key, None)
    return current


def reference_tables(feed: Path, today: dt.date) -> Tables:
    return recompute(current_receipts(feed).values(), today)


def expected_public(tables: Tables, today: dt.date) -> Public:
    s = tables.summary
    return {
        "receipts_summary": {
            today.isoformat(): (
                s.spend_per_rcpt,
                s.items_per_rcpt,
                s.this_week_sales,
                s.last_week_sales,
            )
        },
        "store_monthly": dict(tables.store_monthly),
        "item_performance": dict(tables.item_performance),
        "store_peak_hours": dict(tables.store_peak_hours),
    }


def read_public(url: str, *, today: dt.date, cents: bool) -> Public:
    """The four tables in the database at `url` (today's summary row only). `cents`: money
    columns hold integer cents (else exact decimals, or their text on SQLite)."""

    def money(value: Any) -> Decimal:
        return Decimal(int(value)).scaleb(-2) if cents else Decimal(str(value))

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = {name: conn.execute(text(sql)).all() for name, sql in QUERIES.items()}
    finally:
        engine.dispose()
    return {
        "receipts_summary": {
            str(day)[:10]: tuple(money(v) for v in values)
            for day, *values in rows["receipts_summary"]
            if str(day)[:10] == today.isoformat()
        },
        "store_monthly": {
            (str(month), int(store)): money(sales) for month, store, sales in rows["store_monthly"]
        },
        "item_performance": {str(name): int(sold) for name, sold in rows["item_performance"]},
        "store_peak_hours": {
            int(store): (int(hour), int(count)) for store, hour, count in rows["store_peak_hours"]
        },
    }


def differences(expected: Public, actual: Public, *, limit: int = 3) -> list[str]:
    """Every table's rows that differ (missing, extra, or another value), the first `limit`
    of each table named; empty when the tables are equal to the cent."""
    found: list[str] = []
    for name, want in expected.items():
        got = actual.get(name, {})
        keys = want.keys() | got.keys()
        wrong = sorted((key for key in keys if want.get(key) != got.get(key)), key=str)
        for key in wrong[:limit]:
            found.append(f"{name}[{key}]: expected {want.get(key)}, got {got.get(key)}")
        if len(wrong) > limit:
            found.append(f"{name}: {len(wrong) - limit} more row(s) differ")
    return found
