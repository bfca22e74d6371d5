"""Prefect overhead benchmark: prints numbers, asserts nothing.

`python bench/bench_prefect.py [--receipts N] [--repeat R]` measures, on this machine:

1. throughput of the plain engine (`Syncer.run(follow=False)`, in a process without Prefect,
   as `coffeeshop sync` runs it) against the same file through the Prefect `sync` flow (one
   pass, `follow=False`, in this process, whose Prefect API is already up), into MariaDB (a
   database created and dropped here) and SQLite. Both time only the call, not the start-up;
   runs alternate, and the overhead is that of the medians;
2. what a process pays once: its first flow run, which starts Prefect's temporary local API
   (without PREFECT_API_URL), and a whole `coffeeshop flows run sync` against a whole
   `coffeeshop sync --once`, as subprocesses.

Generated files are kept in `bench/data/` and reused; the temporary Prefect API keeps its
database in `bench/data/prefect-home` unless PREFECT_HOME is set.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
os.environ.setdefault("PREFECT_HOME", str(DATA / "prefect-home"))

from bench_sync import admin, fresh_mysql, fresh_sqlite  # noqa: E402

from coffeeshop.config import load_settings  # noqa: E402
from coffeeshop.demo.generator import ReceiptGenerator  # noqa: E402
from coffeeshop.demo.writer import write_jsonl  # noqa: E402
from coffeeshop.pipeline.engine import Syncer  # noqa: E402
from coffeeshop.sources.base import BatchLimits  # noqa: E402
from coffeeshop.sources.jsonl import JsonlSource  # noqa: E402
from coffeeshop.store import Store  # noqa: E402

COFFEESHOP = Path(sys.executable).with_name("coffeeshop")
MYSQL_DATABASE = "cs_bench_prefect"


def generate(path: Path, count: int) -> None:
    """Receipts of 50 stores over 3 years (as bench_sync.py writes them), written once."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generator = ReceiptGenerator(seed=42, stores=50, start=dt.date(2023, 11, 25), days=3 * 365)
    write_jsonl(path, count, generator=generator, append=False)
    print(f"generated {count:,} receipts in {time.perf_counter() - started:.1f} s -> {path}")


def drop_mysql(base: str) -> None:
    with admin(base) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{MYSQL_DATABASE}`")


def time_engine(source: Path, db: str) -> tuple[int, float]:
    """The plain engine, timed around `Syncer.run` (run in a process without Prefect)."""
    settings = load_settings()
    limits = BatchLimits(settings.batch_size, settings.batch_wait, settings.poll_interval)
    with Store(db) as store:
        syncer = Syncer(store, JsonlSource(source), limits=limits, today=settings.today)
        started = time.perf_counter()
        report = syncer.run()
        return report.events, time.perf_counter() - started


def with_engine(source: Path, db: str) -> tuple[int, float]:
    command = [sys.executable, __file__, "--time-engine", str(source), db]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the engine run into {db} failed:\n{done.stderr[-3000:]}")
    events, seconds = json.loads(done.stdout.splitlines()[-1])
    return int(events), float(seconds)


def with_flow(source: Path, db: str) -> tuple[int, float]:
    from coffeeshop.orchestration import flows

    started = time.perf_counter()
    events = flows.sync_flow(source=str(source), db=db, follow=False)["events"]
    return int(events), time.perf_counter() - started


def timed(
    run: Callable[[Path, str], tuple[int, float]], source: Path, fresh: Callable[[], str]
) -> float:
    events, seconds = run(source, fresh())
    print(f"  {run.__name__:<12} {events:,} events in {seconds:.2f} s ({events / seconds:,.0f}/s)")
    return seconds


def compare(source: Path, n: int, fresh: Callable[[], str], repeat: int) -> tuple[float, float]:
    """Median seconds of the engine and of the flow over `repeat` alternating runs."""
    engine: list[float] = []
    flow: list[float] = []
    for rep in range(repeat):
        order = [(with_engine, engine), (with_flow, flow)]
        for run, times in order if rep % 2 == 0 else reversed(order):
            times.append(timed(run, source, fresh))
    return statistics.median(engine), statistics.median(flow)


def cold_cli(source: Path) -> tuple[float, float]:
    """Whole subprocesses, SQLite: `sync --once` against `flows run sync` (imports Prefect and,
    without PREFECT_API_URL, starts and stops a temporary Prefect API)."""
    times = []
    for args in (["sync", "--once"], ["flows", "run", "sync"]):
        db = fresh_sqlite("bench_prefect_cli")
        env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING"}
        started = time.perf_counter()
        subprocess.run(
            [str(COFFEESHOP), *args, "--source", str(source), "--db", db],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def overhead_row(label: str, n: int, repeat: int, engine: float, flow: float) -> tuple[str, str]:
    overhead = 100 * (flow - engine) / engine
    return (
        f"{n:,} receipts into {label}: engine vs Prefect flow, median of {repeat}",
        f"{n / engine:,.0f} vs {n / flow:,.0f} receipts/s ({engine:.2f} s vs {flow:.2f} s): "
        f"**Prefect overhead {overhead:+.1f}%**",
    )


def measure(source: Path, n: int, *, repeat: int, mysql: str) -> list[tuple[str, str]]:
    rows = []
    try:
        for label, fresh in (
            ("MariaDB", lambda: fresh_mysql(mysql, MYSQL_DATABASE)),
            ("SQLite", lambda: fresh_sqlite("bench_prefect")),
        ):
            print(f"{n:,} receipts into {label}:")
            engine, flow = compare(source, n, fresh, repeat)
            rows.append(overhead_row(label, n, repeat, engine, flow))
    finally:
        drop_mysql(mysql)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--no-cli", action="store_true", help="skip the subprocess comparison")
    parser.add_argument(
        "--no-freeze", action="store_true", help="flow passes without their gc.freeze (to compare)"
    )
    parser.add_argument(
        "--mysql",
        default=os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"),
    )
    parser.add_argument("--time-engine", nargs=2, metavar=("SOURCE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_engine:
        source, db = args.time_engine
        print(json.dumps(time_engine(Path(source), db)))
        return
    from coffeeshop.orchestration.settings import configure

    configure()  # before Prefect is first imported (only here: the engine's process must not)
    from coffeeshop.orchestration import flows, tasks

    if args.no_freeze:
        tasks._frozen_heap = contextlib.nullcontext  # type: ignore[assignment]
    n = args.receipts
    source = DATA / f"receipts-{n}.jsonl"
    generate(source, n)
    machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}, {dt.date.today()}")

    started = time.perf_counter()
    flows.refresh_summary_flow(db=fresh_sqlite("bench_prefect_warmup"))
    first_run = time.perf_counter() - started
    rows = measure(source, n, repeat=args.repeat, mysql=args.mysql)
    rows.append(("first flow run of a process (starts the temporary API)", f"{first_run:.1f} s"))
    if not args.no_cli:
        plain, prefect = cold_cli(source)
        rows.append(
            (
                f"whole CLI, {n:,} receipts into SQLite: `sync --once` vs `flows run sync`",
                f"{plain:.1f} s vs {prefect:.1f} s ({prefect - plain:+.1f} s, "
                f"{100 * (prefect - plain) / plain:+.1f}%)",
            )
        )

    print("\n| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
