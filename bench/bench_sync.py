"""Sync benchmark: prints numbers, asserts nothing. `make bench` (or --receipts N for a quick run).

Measures, on this machine:
1. sustained `coffeeshop sync --once` throughput for a generated file into MariaDB and SQLite,
   run as a real subprocess, with its peak memory (max RSS);
2. the cost of one batch of 1,000 new receipts on top of a small and a large history;
3. peak memory of `sync` for two file sizes (it streams: memory must not follow the file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pymysql
from sqlalchemy.engine import make_url

from coffeeshop.core.plan import parse_events
from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.writer import write_jsonl
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
COFFEESHOP = Path(sys.executable).with_name("coffeeshop")
TODAY = dt.date(2026, 11, 25)


HISTORY_START = dt.date(2023, 11, 25)
HISTORY_DAYS = 3 * 365


def generate(
    path: Path, count: int, *, seed: int, start: dt.date = HISTORY_START, days: int = HISTORY_DAYS
) -> None:
    """Receipts of 50 stores over 3 years (or the given days), written once and reused."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generator = ReceiptGenerator(seed=seed, stores=50, start=start, days=days)
    write_jsonl(path, count, generator=generator, append=False)
    seconds = time.perf_counter() - started
    print(f"generated {count:,} receipts in {seconds:.1f} s ({count / seconds:,.0f}/s) -> {path}")


def admin(url: str, database: str | None = None) -> pymysql.connections.Connection:
    """An autocommit connection for set-up (the benchmarks in this folder share it)."""
    u = make_url(url)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=database,
        autocommit=True,
    )


def fresh_mysql(base: str, name: str) -> str:
    """Drop and create database `name` on the server of `base`; returns its URL."""
    with admin(base) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}`")
    return make_url(base).set(database=name).render_as_string(hide_password=False)


def fresh_sqlite(name: str) -> str:
    path = DATA / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def timed_sync(source: Path, db: str) -> tuple[float, float]:
    """Run `coffeeshop sync --once` as a subprocess; return (seconds, its peak RSS in MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(COFFEESHOP), "sync", "--once", "--source", str(source), "--db", db],
        env={**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING"},
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sync into {db} failed")
    return seconds, usage.ru_maxrss / 1024


def batch_cost(db: str, batch_file: Path, *, batches: int = 5) -> float:
    """Median seconds to apply one batch of 1,000 new receipts (parse + one transaction)."""
    return statistics.median(wall for wall, _ in batch_times(db, batch_file, batches=batches))


def batch_times(
    db: str, batch_file: Path, *, batches: int = 5, skip: int = 0
) -> list[tuple[float, float]]:
    """(seconds, CPU seconds of this process) to apply each of `batches` batches of 1,000
    new receipts (parse + one transaction), after the first `skip` batches of the file
    (read, not applied: a later call applies receipts no earlier call applied)."""
    source = JsonlSource(batch_file)
    source.open(None)
    times: list[tuple[float, float]] = []
    with Store(db) as store:
        store.upgrade()
        # A database holds one source: the new batches continue the history's source (its
        # checkpoint moves to the batch file's positions; this database is the bench's own).
        (name,) = store.holdings().sources
        checkpoint = store.load_checkpoint(name)
        version = checkpoint.version if checkpoint else 0
        limits = BatchLimits(max_events=1000, max_wait=3600)
        for n, batch in enumerate(source.batches(limits, follow=False, stop=threading.Event())):
            if n < skip:
                continue
            if n >= skip + batches:
                break
            started, cpu = time.perf_counter(), time.process_time()
            parsed = parse_events(batch.events)
            result = store.apply_batch(
                name, parsed, position=batch.position, expected_version=version, today=TODAY
            )
            times.append((time.perf_counter() - started, time.process_time() - cpu))
            version = result.version
    source.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument(
        "--mysql",
        default=os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"),
    )
    args = parser.parse_args()
    n = args.receipts
    big = DATA / f"receipts-{n}.jsonl"
    small_n = 10_000
    small = DATA / f"receipts-{small_n}.jsonl"
    tenth = DATA / f"receipts-{n // 10}.jsonl"
    # New receipts are newer than the history (their ObjectIds too), as in production.
    extra = DATA / "new-batches-5000.jsonl"
    generate(big, n, seed=42)
    generate(small, small_n, seed=42)
    generate(tenth, n // 10, seed=42)
    generate(extra, 5000, seed=7, start=HISTORY_START + dt.timedelta(days=HISTORY_DAYS), days=1)

    machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}, {dt.date.today()}")
    rows: list[tuple[str, str]] = []

    for label, db in (
        ("MariaDB", fresh_mysql(args.mysql, "cs_bench")),
        ("SQLite", fresh_sqlite("bench")),
    ):
        seconds, peak = timed_sync(big, db)
        rows.append(
            (
                f"sync --once, {n:,} receipts into {label}",
                f"{n / seconds:,.0f} receipts/s ({seconds:.1f} s, peak RSS {peak:.0f} MB)",
            )
        )
        print(rows[-1])
        small_db = (
            fresh_mysql(args.mysql, "cs_bench_small")
            if label == "MariaDB"
            else fresh_sqlite("bench_small")
        )
        timed_sync(small, small_db)
        on_small = batch_cost(small_db, extra)
        on_big = batch_cost(db, extra)
        rows.append(
            (
                f"1,000-receipt batch on {label}",
                f"{on_small * 1000:.0f} ms on {small_n:,} of history, "
                f"{on_big * 1000:.0f} ms on {n:,} (ratio {on_big / on_small:.2f})",
            )
        )
        print(rows[-1])

    peaks = []
    for path, count in ((tenth, n // 10), (big, n)):
        _, peak = timed_sync(path, fresh_sqlite("memory"))
        peaks.append(f"{peak:.0f} MB for {count:,}")
    rows.append(("peak RSS of sync (SQLite)", ", ".join(peaks)))
    print(rows[-1])

    print("\n| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
