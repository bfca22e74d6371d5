"""Range endpoints, uncached: the latency of each query over one year. Prints, asserts nothing.

    .venv/bin/python bench/bench_ranges.py [--receipts 1000000] [--stores 12] [--db URL]

Fills the counted tables (`core/groups.py`) of a fresh database with one year of generated
receipts (the demo's generator; the receipts themselves are not stored: these queries never
read them), then runs each range endpoint's query (`api/ranges.py`) `--runs` times through the
API's async driver, every run a database read (the API's cache would answer a repeated request
from memory between two commits; this measures the read a commit forces). Prints p50 and p99
in milliseconds (wall clock) and the median CPU time of this process per query (on SQLite the
whole query's work, steadier than the wall clock on a loaded machine; on a server database
only the client's share), and the rows of each counted table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from coffeeshop.api import ranges
from coffeeshop.api.params import RangeParams
from coffeeshop.core.groups import GROUPS, GroupSums
from coffeeshop.core.receipts import parse_receipt
from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.store import Store, schema
from coffeeshop.store.dialects import dialect_named
from coffeeshop.store.tables.counted import CountedTable

DATA = Path(__file__).resolve().parent / "data"
START = dt.date(2025, 12, 1)


def fill(url: str, receipts: int, stores: int) -> None:
    generator = ReceiptGenerator(seed=7, stores=stores, start=START, days=365, zone=dt.UTC)
    sums = GroupSums(GROUPS)
    for doc in generator.iter_documents(receipts):
        r = parse_receipt(doc)
        sums.add((r.store_id, r.day, r.month, r.hour), r.cents, r.units, r.items, +1)
    with Store(url) as store:
        store.upgrade()
        with store.engine.begin() as conn:
            for group in GROUPS:
                table = CountedTable(group, schema.COUNTED[group.name])
                table.add(conn, store.statements, sums.sums[group.name])
            for group in GROUPS:
                count = conn.execute(select(func.count()).select_from(schema.COUNTED[group.name]))
                print(f"{group.table}: {count.scalar():,} rows")


def cases(last: dt.date) -> list[tuple[str, Any, Any]]:
    """Each range endpoint over one year of whole months (`<year>`: no edge days), and over
    one as ragged as the data allows (`<ragged>`: 10 whole months and 59 edge days, the most
    a range can have is 60)."""
    first = last - dt.timedelta(days=364)
    year = {"day_from": first.isoformat(), "day_to": last.isoformat()}
    ragged = {
        "day_from": (first + dt.timedelta(days=1)).isoformat(),
        "day_to": (last - dt.timedelta(days=1)).isoformat(),
    }
    hours = ranges.HourRangeParams
    morning = {"hour_from": 7, "hour_to": 10}
    return [
        ("/store_daily?store_id=7&<year>", ranges.store_daily, RangeParams(store_id=7, **year)),
        ("/store_daily?<year>", ranges.store_daily, RangeParams(**year)),
        ("/item_sales?<year>", ranges.item_sales, hours(**year)),
        ("/item_sales?<ragged>", ranges.item_sales, hours(**ragged)),
        ("/item_sales?store_id=7&<year>", ranges.item_sales, hours(store_id=7, **year)),
        ("/item_sales?store_id=7&<ragged>", ranges.item_sales, hours(store_id=7, **ragged)),
        (
            "/item_sales?store_id=7&<year>&hour_from=7&hour_to=10",
            ranges.item_sales,
            hours(store_id=7, **morning, **year),
        ),
        (
            "/item_sales?store_id=7&<ragged>&hour_from=7&hour_to=10",
            ranges.item_sales,
            hours(store_id=7, **morning, **ragged),
        ),
        ("/item_sales?<year>&hour_from=7&hour_to=10", ranges.item_sales, hours(**morning, **year)),
        (
            "/item_sales?<ragged>&hour_from=7&hour_to=10",
            ranges.item_sales,
            hours(**morning, **ragged),
        ),
        ("/store_weekday_hours?<year>", ranges.store_weekday_hours, hours(**year)),
        ("/store_weekday_hours?<ragged>", ranges.store_weekday_hours, hours(**ragged)),
        (
            "/store_month_to_date?month=<last>",
            lambda conn, p: ranges.store_month_to_date(conn, p, last),
            ranges.MonthToDateParams(month=last.isoformat()[:7]),
        ),
        (
            "/day_check?day=<last>",
            lambda conn, p: ranges.day_check(conn, p, last),
            ranges.DayCheckParams(day=last.isoformat()),
        ),
    ]


async def measure(url: str, runs: int) -> None:
    async_url = dialect_named(make_url(url).get_backend_name()).async_url(make_url(url))
    engine = create_async_engine(async_url)
    last = START + dt.timedelta(days=364)
    try:
        for label, query, params in cases(last):
            times, cpu = [], []
            for _ in range(runs):
                async with engine.connect() as conn:
                    started, started_cpu = time.perf_counter(), time.process_time()
                    rows = await query(conn, params)
                    times.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - started_cpu) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            print(
                f"{label:60s} {len(rows):6d} rows  p50 {statistics.median(times):7.1f} ms  "
                f"p99 {p99:7.1f} ms  cpu p50 {statistics.median(cpu):6.1f} ms"
            )
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument("--stores", type=int, default=12)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", default=None, help="an empty database (default: a SQLite file)")
    args = parser.parse_args()
    url = args.db
    if url is None:
        DATA.mkdir(parents=True, exist_ok=True)
        path = DATA / f"ranges-{os.getpid()}.db"
        url = f"sqlite:///{path}"
    started = time.perf_counter()
    fill(url, args.receipts, args.stores)
    print(f"filled in {time.perf_counter() - started:.0f} s; load {os.getloadavg()[0]:.1f}")
    asyncio.run(measure(url, args.runs))
    if args.db is None:
        path.unlink()


if __name__ == "__main__":
    main()
