"""Before/after on a shared machine: two checkouts' `src`, alternating, back to back.

    git archive BASE src | tar -x -C /tmp/base
    .venv/bin/python bench/compare_checkouts.py --base /tmp/base/src --receipts 100000

Prints, per database, `sync --once` throughput (wall clock, as `bench_sync.py`) and the CPU
seconds of the sync process and its forked reader (user + sys from `wait4`, which a busy CPU
disturbs less than the wall clock), then the reader alone (`JsonlSource.batches` +
`parse_events`, CPU seconds). Runs alternate base/new and new/base, so drifting load hits
both alike; the spread is printed with each median. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_sync

_READER = """
import sys, threading, time
try:
    from coffeeshop.core.plan import parse_events
except ImportError:  # a checkout from before the re-layout of issue 13
    from coffeeshop.aggregates import parse_events
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
source = JsonlSource(sys.argv[1]); source.open(None)
started = time.process_time()
limits = BatchLimits(max_events=5000, max_wait=3600)
for batch in source.batches(limits, follow=False, stop=threading.Event()):
    parse_events(batch.events)
print(time.process_time() - started)
"""


def sync_once(source: Path, db: str, src: str) -> tuple[float, float]:
    """(seconds, CPU seconds) of one `coffeeshop sync --once` run with `src` first on the path."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(bench_sync.COFFEESHOP), "sync", "--once", "--source", str(source), "--db", db],
        env={**os.environ, "PYTHONPATH": src, "COFFEESHOP_LOG_LEVEL": "WARNING"},
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sync into {db} failed")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def reader_cpu(source: Path, src: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _READER, str(source)],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def summary(label: str, base: list[float], new: list[float]) -> str:
    b, n = statistics.median(base), statistics.median(new)
    return (
        f"{label}: base {b:,.2f} ({min(base):,.2f}–{max(base):,.2f}), "
        f"new {n:,.2f} ({min(new):,.2f}–{max(new):,.2f}), {100 * (n / b - 1):+.1f} %"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the base checkout's src directory")
    parser.add_argument("--new", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--receipts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--mysql",
        default=os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"),
    )
    args = parser.parse_args()
    n = args.receipts
    source = bench_sync.DATA / f"receipts-{n}.jsonl"
    bench_sync.generate(source, n, seed=42)
    bench_sync.DATA.mkdir(parents=True, exist_ok=True)
    checkouts = {"base": args.base, "new": args.new}
    rate: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        order = ("base", "new") if r % 2 == 0 else ("new", "base")
        for label in ("MariaDB", "SQLite"):
            for code in order:
                db = (
                    bench_sync.fresh_mysql(args.mysql, f"cs_bench_compare_{os.getpid()}")
                    if label == "MariaDB"
                    else bench_sync.fresh_sqlite("compare")
                )
                seconds, used = sync_once(source, db, checkouts[code])
                rate.setdefault((label, code), []).append(n / seconds)
                cpu.setdefault((label, code), []).append(used)
                print(
                    f"round {r} {label} {code}: {n / seconds:,.0f} receipts/s, {used:.1f} s CPU, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    reader: dict[str, list[float]] = {"base": [], "new": []}
    for r in range(2 * args.rounds):
        for code in ("base", "new") if r % 2 == 0 else ("new", "base"):
            reader[code].append(reader_cpu(source, checkouts[code]))
    print()
    for label in ("MariaDB", "SQLite"):
        print(summary(f"{label} receipts/s", rate[(label, "base")], rate[(label, "new")]))
        print(summary(f"{label} CPU s", cpu[(label, "base")], cpu[(label, "new")]))
    print(summary("reader alone, CPU s", reader["base"], reader["new"]))


if __name__ == "__main__":
    main()
