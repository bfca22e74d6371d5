"""Our Pathway pipeline of the four public tables, the peer `bench/bench_peer.py` runs against
`coffeeshop sync --once`. Run by the peer virtualenv's python (Pathway is not a dependency of
this project and is never imported by it):

    bench/.peer-venv/bin/python bench/peer_pathway.py FEED --today YYYY-MM-DD --sqlite FILE
    bench/.peer-venv/bin/python bench/peer_pathway.py FEED --today YYYY-MM-DD --postgres DSN

What a Pathway user would write for the job: a Python connector in an **upsert session** keyed
by the receipt's `_id` (a replace re-sends the row, a delete or an invalid latest version
removes it, so every aggregate retracts exactly), each line parsed and validated by the rules of
`coffeeshop.core.receipts` that a generated feed exercises, money as integer cents, and the four
tables written by Pathway's own SQLite or PostgreSQL sink in snapshot mode (one row per primary
key, updated in place). Money columns hold integer cents (`items_per_rcpt`: hundredths); the
benchmark scales them back to decimals when it compares them to the recomputation.

The parsing half (`parse_line`) imports no Pathway, so the tests hold it to our own parser.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MAX_STORE_ID = 2**31 - 1
MAX_QUANTITY = 2**31 - 1
MAX_NAME_LENGTH = 100
MAX_TOTAL = Decimal("9999999999.99")
CENT = Decimal("0.01")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?", re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)

# A receipt as the pipeline keeps it: store_id, month, day, hour, cents, units, items.
Row = dict[str, Any]
ABSENT: Row = {
    "store_id": 0,
    "month": "",
    "day": "",
    "hour": 0,
    "cents": 0,
    "units": 0,
    "items": (),
}


class Invalid(ValueError):
    """A receipt that breaks a rule: its key's row is removed (its latest version is invalid)."""


def parse_line(line: str) -> tuple[str, Row | None] | None:
    """(key, row) for a valid insert or replace; (key, None) for a delete or an invalid
    receipt (the key holds no receipt after it); None for a line that names no receipt."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line, parse_float=Decimal)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    operation = obj.get("operationType")
    if operation is not None:
        key = _key((obj.get("documentKey") or {}).get("_id"))
        if key is None or operation not in ("insert", "replace", "update", "delete"):
            return None
        if operation == "delete":
            return key, None
        doc = obj.get("fullDocument")
        if not isinstance(doc, dict):
            return None
    else:
        doc = obj
        key = _key(doc.get("_id"))
        if key is None:
            return None
    try:
        return key, _receipt(doc)
    except Invalid:
        return key, None


def _key(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("$oid"), str):
        return "oid:" + value["$oid"].lower()
    if isinstance(value, str | int) and not isinstance(value, bool):
        return f"{type(value).__name__}:{value}"
    return None


def _receipt(doc: dict[str, Any]) -> Row:
    day, hour = _when(doc.get("transactionDate"), doc.get("transactionTime"))
    items = doc.get("items")
    if not isinstance(items, list):
        raise Invalid("items")
    kept: list[tuple[str, int]] = []
    for item in items:
        if not isinstance(item, dict):
            raise Invalid("item")
        name, quantity = item.get("product_name"), _integer(item.get("product_quantity"))
        if not isinstance(name, str) or not (name := name.strip()) or len(name) > MAX_NAME_LENGTH:
            raise Invalid("product_name")
        if quantity is None or not 1 <= quantity <= MAX_QUANTITY:
            raise Invalid("product_quantity")
        kept.append((name, quantity))
    return {
        "store_id": _store(doc.get("Store_ID")),
        "month": day[:7],
        "day": day,
        "hour": hour,
        "cents": _cents(doc.get("total_price")),
        "units": sum(quantity for _, quantity in kept),
        "items": tuple(kept),
    }


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


def _store(value: Any) -> int:
    number = _integer(value)
    if number is None and isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
    if number is None or not 0 <= number <= MAX_STORE_ID:
        raise Invalid("Store_ID")
    return number


def _when(date: Any, time: Any) -> tuple[str, int]:
    if not isinstance(date, str) or not _DATE.fullmatch(date):
        raise Invalid("transactionDate")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise Invalid("transactionDate") from None
    if not isinstance(time, str) or not (match := _TIME.fullmatch(time)):
        raise Invalid("transactionTime")
    return date, int(match.group(1))


def _cents(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise Invalid("total_price")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise Invalid("total_price") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_TOTAL:
        raise Invalid("total_price")
    return int(amount.quantize(CENT, rounding=ROUND_HALF_UP).scaleb(2))


def week_bounds(today: dt.date) -> tuple[str, str, str]:
    """ISO dates of last week's Monday, this week's Monday and next week's Monday."""
    monday = today - dt.timedelta(days=today.weekday())
    return tuple(  # type: ignore[return-value]
        (monday + dt.timedelta(days=7 * k)).isoformat() for k in (-1, 0, 1)
    )


# -- the Pathway pipeline (needs the peer virtualenv) ------------------------------------------


def build(feed: str, today: dt.date) -> dict[str, tuple[Any, list[str]]]:
    """The four tables, each with its primary key's column names."""
    import pathway as pw

    class Receipts(pw.Schema):
        key: str = pw.column_definition(primary_key=True)
        store_id: int
        month: str
        day: str
        hour: int
        cents: int
        units: int
        items: tuple[tuple[str, int], ...]

    class Feed(pw.io.python.ConnectorSubject):
        def __init__(self) -> None:
            super().__init__(session_type="upsert")

        def run(self) -> None:
            with open(feed, encoding="utf-8") as lines:
                for line in lines:
                    parsed = parse_line(line)
                    if parsed is None:
                        continue
                    key, row = parsed
                    if row is None:
                        self.delete(key=key, **ABSENT)
                    else:
                        self.next(key=key, **row)

    t = pw.io.python.read(Feed(), schema=Receipts)
    last_monday, monday, next_monday = week_bounds(today)
    this_week = (t.day >= monday) & (t.day < next_monday)
    last_week = (t.day >= last_monday) & (t.day < monday)
    totals = t.reduce(
        n=pw.reducers.count(),
        cents=pw.reducers.sum(t.cents),
        units=pw.reducers.sum(t.units),
        this_week=pw.reducers.sum(pw.if_else(this_week, t.cents, 0)),
        last_week=pw.reducers.sum(pw.if_else(last_week, t.cents, 0)),
    )
    n = pw.if_else(totals.n > 0, totals.n, 1)  # half-up averages in integers
    summary = totals.select(
        as_of=today.isoformat(),
        spend_per_rcpt=(2 * totals.cents + n) // (2 * n),
        items_per_rcpt=(200 * totals.units + n) // (2 * n),
        this_week_sales=totals.this_week,
        last_week_sales=totals.last_week,
    )
    monthly = t.groupby(t.month, t.store_id).reduce(
        t.month, t.store_id, sales=pw.reducers.sum(t.cents)
    )
    lines = t.flatten(t.items).select(name=pw.this.items[0], quantity=pw.this.items[1])
    items = lines.groupby(lines.name).reduce(
        item_name=lines.name, total_sold=pw.reducers.sum(lines.quantity)
    )
    hourly = t.groupby(t.store_id, t.hour).reduce(t.store_id, t.hour, n=pw.reducers.count())
    # The busiest hour, the earliest of a tie: the max of n * 24 + (23 - hour).
    best = hourly.groupby(hourly.store_id).reduce(
        hourly.store_id, best=pw.reducers.max(hourly.n * 24 + 23 - hourly.hour)
    )
    peaks = best.select(best.store_id, peak_hour=23 - best.best % 24, tx_count=best.best // 24)
    return {
        "receipts_summary": (summary, ["as_of"]),
        "store_monthly": (monthly, ["month", "store_id"]),
        "item_performance": (items, ["item_name"]),
        "store_peak_hours": (peaks, ["store_id"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("feed")
    parser.add_argument("--today", required=True, type=dt.date.fromisoformat)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", help="database file for pw.io.sqlite.write")
    target.add_argument("--postgres", help='libpq settings, "host=… port=… dbname=… user=…"')
    args = parser.parse_args()
    import pathway as pw

    for name, (table, key) in build(args.feed, args.today).items():
        primary = [table[column] for column in key]
        common: dict[str, Any] = {
            "init_mode": "replace",
            "output_table_type": "snapshot",
            "primary_key": primary,
        }
        if args.sqlite:
            pw.io.sqlite.write(table, args.sqlite, name, **common)
        else:
            settings = dict(part.split("=", 1) for part in args.postgres.split())
            pw.io.postgres.write(table, settings, name, **common)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)


if __name__ == "__main__":
    main()
