"""Before/after on a shared machine: two checkouts' `src`, alternating, back to back.

    git archive BASE src | tar -x -C /tmp/base
    .venv/bin/python bench/compare_checkouts.py --base /tmp/base/src --receipts 100000

Prints, per database, `sync --once` throughput (wall clock, as `bench_sync.py`) and the CPU
seconds of the sync process and its forked reader (user + sys from `wait4`, which a busy CPU
disturbs less than the wall clock), the database server's CPU seconds over the run (MariaDB
or PostgreSQL processes on this machine, from /proc: other clients of the same server count
too, so read it beside the load), then the reader alone (`JsonlSource.batches` +
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

import bench_bulk_pg
import bench_sync
from sqlalchemy.engine import make_url

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


_SERVERS = {"mysqld", "mariadbd", "postgres"}


SERVER_PIDS: set[int] = set()  # --server-pids: only these servers (and their children)


def server_cpu() -> float:
    """CPU seconds so far of the database servers' processes on this machine (user + sys, and
    of their reaped children: PostgreSQL's ended backends count in the postmaster's); only
    those of `SERVER_PIDS` and their children where it is given."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        pid, _, text = text.partition(" (")
        name, _, rest = text.rpartition(") ")
        fields = rest.split()  # fields[1] is the parent's pid
        ours = not SERVER_PIDS or {int(pid), int(fields[1])} & SERVER_PIDS
        if name in _SERVERS and ours:
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def sync_once(source: Path, db: str, src: str) -> tuple[float, float, float]:
    """(seconds, CPU seconds, the servers' CPU seconds) of one `coffeeshop sync --once` run
    with `src` first on the path."""
    server = server_cpu()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(bench_sync.COFFEESHOP), "sync", "--once", "--source", str(source), "--db", db],
        env={**os.environ, "PYTHONPATH": src, "COFFEESHOP_LOG_LEVEL": "WARNING"},
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sync into {db} failed")
    seconds = time.perf_counter() - started
    return seconds, usage.ru_utime + usage.ru_stime, server_cpu() - server


def reader_cpu(source: Path, src: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _READER, str(source)],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def fresh(label: str, mysql: str, pg: str, name: str = "cs_bench_compare") -> str:
    """A new, empty database `name` of the kind `label` names; its URL."""
    if label == "MariaDB":
        return bench_sync.fresh_mysql(mysql, name)
    if label == "PostgreSQL":
        with bench_bulk_pg.admin(pg) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return make_url(pg).set(database=name).render_as_string(hide_password=False)
    return bench_sync.fresh_sqlite(name)


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
        "--days", type=int, default=None, help="spread the receipts over this many days (3 years)"
    )
    parser.add_argument(
        "--databases", default="MariaDB,SQLite,PostgreSQL", help="comma-separated, in this order"
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("COFFEESHOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432"),
    )
    parser.add_argument("--no-reader", action="store_true", help="skip the reader-alone runs")
    parser.add_argument(
        "--mysql",
        default=os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"),
    )
    parser.add_argument(
        "--server-pids",
        default="",
        help="comma-separated pids of the servers whose CPU counts (default: every MariaDB "
        "and PostgreSQL process: start servers of your own to keep others' work out)",
    )
    args = parser.parse_args()
    SERVER_PIDS.update(int(pid) for pid in args.server_pids.split(",") if pid)
    n = args.receipts
    if args.days is None:
        source = bench_sync.DATA / f"receipts-{n}.jsonl"
        bench_sync.generate(source, n, seed=42)
    else:  # denser: more receipts per store and day
        source = bench_sync.DATA / f"receipts-{n}-{args.days}d.jsonl"
        bench_sync.generate(source, n, seed=42, days=args.days)
    bench_sync.DATA.mkdir(parents=True, exist_ok=True)
    checkouts = {"base": args.base, "new": args.new}
    rate: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    served: dict[tuple[str, str], list[float]] = {}
    labels = args.databases.split(",")
    for r in range(args.rounds):
        order = ("base", "new") if r % 2 == 0 else ("new", "base")
        for label in labels:
            for code in order:
                # A database name per process: two benchmarks at once must not share one.
                db = fresh(label, args.mysql, args.pg, f"cs_bench_compare_{os.getpid()}")
                seconds, used, server = sync_once(source, db, checkouts[code])
                rate.setdefault((label, code), []).append(n / seconds)
                cpu.setdefault((label, code), []).append(used)
                served.setdefault((label, code), []).append(server)
                print(
                    f"round {r} {label} {code}: {n / seconds:,.0f} receipts/s, {used:.1f} s CPU, "
                    f"server {server:.1f} s CPU, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    reader: dict[str, list[float]] = {"base": [], "new": []}
    for r in range(0 if args.no_reader else 2 * args.rounds):
        for code in ("base", "new") if r % 2 == 0 else ("new", "base"):
            reader[code].append(reader_cpu(source, checkouts[code]))
    print()
    for label in labels:
        print(summary(f"{label} receipts/s", rate[(label, "base")], rate[(label, "new")]))
        print(summary(f"{label} CPU s", cpu[(label, "base")], cpu[(label, "new")]))
        if label != "SQLite":
            print(summary(f"{label} server CPU s", served[(label, "base")], served[(label, "new")]))
    if reader["base"]:
        print(summary("reader alone, CPU s", reader["base"], reader["new"]))


if __name__ == "__main__":
    main()
