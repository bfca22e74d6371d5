"""API benchmark: prints numbers, asserts nothing. Needs MariaDB and `wrk` (apt-get install wrk).

1. Loads 50 stores x 3 years of generated receipts into MariaDB with `coffeeshop sync` (once;
   `--reuse` keeps a loaded database), and gives `receipts_summary` one snapshot per day of those
   3 years, as a deployment that has run daily would have.
2. Starts `coffeeshop serve --workers N` on loopback and runs `wrk` against each endpoint
   (64 connections, 2 threads, 10 s each by default): the requests a dashboard makes, the
   unfiltered tables, a revalidation answered 304, and /pipeline (rendered per request from
   the state the watcher reads, through FastAPI's routing and validation: the slow path).
3. Prints requests/s, p50 and p99 latency, and non-2xx/3xx or socket errors per endpoint.

Every URL a case requests is fetched first (on each worker), so the numbers are those of a
dashboard's steady state between two commits; a commit makes the next request of each URL
read the database once per worker.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench_sync import admin
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
COFFEESHOP = Path(sys.executable).with_name("coffeeshop")
HISTORY_START = dt.date(2023, 11, 25)
HISTORY_DAYS = 3 * 365
DATABASE = "cs_bench_api"


@dataclass(frozen=True)
class Case:
    label: str
    path: str
    headers: tuple[str, ...] = ()
    lua: str | None = None
    warm: tuple[str, ...] = ()  # further paths the case requests (the first is `path`)


@dataclass(frozen=True)
class Result:
    case: Case
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str
    body_bytes: int


def cases(today: dt.date, etag: str) -> list[Case]:
    month_to = today.strftime("%Y-%m")
    month_from = (today.replace(day=1) - dt.timedelta(days=335)).strftime("%Y-%m")
    year = f"month_from={month_from}&month_to={month_to}"
    since = (today - dt.timedelta(days=30)).isoformat()
    rotate_stores = f"""
counter = 0
request = function()
  counter = counter % 50 + 1
  return wrk.format("GET", "/store_monthly?store_id=" .. counter .. "&{year}")
end
"""
    return [
        Case(
            "dashboard: /receipts_summary?as_of_from=<30 days ago>",
            f"/receipts_summary?as_of_from={since}",
        ),
        Case("dashboard: /store_peak_hours", "/store_peak_hours"),
        Case("dashboard: /item_performance?limit=20", "/item_performance?limit=20"),
        Case(
            "dashboard: /store_monthly?store_id=N&<one year> (N = 1..50 in turn)",
            f"/store_monthly?store_id=1&{year}",
            lua=rotate_stores,
            warm=tuple(f"/store_monthly?store_id={n}&{year}" for n in range(2, 51)),
        ),
        *range_cases(today),
        Case("unfiltered: /receipts_summary", "/receipts_summary"),
        Case("unfiltered: /store_monthly", "/store_monthly"),
        Case("unfiltered: /item_performance", "/item_performance"),
        Case("unfiltered: /store_peak_hours", "/store_peak_hours"),
        Case(
            "revalidation: /store_monthly with If-None-Match (304)",
            "/store_monthly",
            headers=(f"If-None-Match: {etag}",),
        ),
        Case("not cached: /pipeline (rendered through FastAPI each time)", "/pipeline"),
        Case("baseline: /health", "/health"),
    ]


def range_cases(today: dt.date) -> list[Case]:
    """The range endpoints over one year (the last 365 days), one store or all."""
    year = f"day_from={(today - dt.timedelta(days=364)).isoformat()}&day_to={today.isoformat()}"
    return [
        Case("range: /store_daily?store_id=7&<one year>", f"/store_daily?store_id=7&{year}"),
        Case("range: /item_sales?<one year>", f"/item_sales?{year}"),
        Case(
            "range: /item_sales?store_id=7&<one year>&hour_from=7&hour_to=10",
            f"/item_sales?store_id=7&{year}&hour_from=7&hour_to=10",
        ),
        Case("range: /store_weekday_hours?<one year>", f"/store_weekday_hours?{year}"),
        Case("range: /store_month_to_date", f"/store_month_to_date?month={today:%Y-%m}"),
        Case(
            "range: /day_check?day=<yesterday>",
            f"/day_check?day={(today - dt.timedelta(days=1)).isoformat()}",
        ),
    ]


# -- data ----------------------------------------------------------------------------------------


def ensure_receipts(path: Path, count: int) -> None:
    """The generated history (shared with bench_sync.py when it is there already)."""
    if path.exists():
        return
    from coffeeshop.demo.generator import ReceiptGenerator
    from coffeeshop.demo.writer import write_jsonl

    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generator = ReceiptGenerator(seed=42, stores=50, start=HISTORY_START, days=HISTORY_DAYS)
    write_jsonl(path, count, generator=generator, append=False)
    print(f"generated {count:,} receipts in {time.perf_counter() - started:.1f} s -> {path}")


def load(mysql: str, source: Path, *, reuse: bool) -> str:
    url = make_url(mysql).set(database=DATABASE).render_as_string(hide_password=False)
    with admin(mysql) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE %s", (DATABASE,))
        exists = cur.fetchone() is not None
        if exists and reuse:
            cur.execute(f"SELECT COUNT(*) FROM `{DATABASE}`.store_monthly")
            if cur.fetchone()[0] > 0:
                print(f"reusing the loaded database {DATABASE}")
                return url
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cur.execute(f"CREATE DATABASE `{DATABASE}`")
    started = time.perf_counter()
    subprocess.run(
        [str(COFFEESHOP), "sync", "--once", "--source", str(source), "--db", url],
        env={**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING"},
        check=True,
    )
    print(f"synced {source.name} into MariaDB in {time.perf_counter() - started:.1f} s")
    backfill_snapshots(mysql)
    return url


def backfill_snapshots(mysql: str) -> None:
    """One receipts_summary row per day of the history (the engine writes one per day it runs;
    a fresh load has only today's), so date filters select from a realistic table."""
    with admin(mysql, DATABASE) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT spend_per_rcpt, items_per_rcpt, this_week_sales, last_week_sales "
            "FROM receipts_summary ORDER BY as_of DESC LIMIT 1"
        )
        row = cur.fetchone()
        today = dt.date.today()
        days = [today - dt.timedelta(days=n) for n in range(1, HISTORY_DAYS + 1)]
        cur.executemany(
            "INSERT IGNORE INTO receipts_summary VALUES (%s, %s, %s, %s, %s)",
            [(day, *row) for day in days],
        )
        cur.execute("UPDATE cs_state SET data_version = data_version + 1, changed_at = NOW()")
    print(f"added {len(days):,} daily receipts_summary snapshots")


# -- server and load -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    log = open(DATA / "bench_api_serve.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [str(COFFEESHOP), "serve", "--db", url, "--port", str(port), "--workers", str(workers)],
        env={**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"coffeeshop serve did not become ready; see {log.name}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def fetch(port: int, path: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.read(), response.headers.get("ETag", "")


def warm_up(port: int, paths: tuple[str, ...]) -> None:
    """Fill every worker's cache (each request is a new connection, so the kernel spreads them
    over the workers): the benchmark measures a dashboard's steady state, not its first load."""
    for path in paths:
        for _ in range(10):
            fetch(port, path)


def run_wrk(case: Case, port: int, *, duration: int, connections: int, threads: int) -> Result:
    body, _ = fetch(port, case.path)
    warm_up(port, (case.path, *case.warm))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    for header in case.headers:
        command += ["-H", header]
    with tempfile.TemporaryDirectory() as tmp:
        if case.lua:
            script = Path(tmp) / "requests.lua"
            script.write_text(case.lua)
            command += ["-s", str(script)]
        command.append(f"http://127.0.0.1:{port}{case.path}")
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return Result(
        case=case,
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_latency(out, "50%"),
        p99_ms=_latency(out, "99%"),
        errors=_errors(out),
        body_bytes=len(body),
    )


def _latency(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
    return float(match.group(1)) * scale


def _errors(out: str) -> str:
    found = []
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        found.append(f"{non2xx.group(1)} non-2xx/3xx")
    sockets = re.search(r"Socket errors: (.*)", out)
    if sockets:
        found.append(f"socket errors: {sockets.group(1)}")
    return "; ".join(found) or "0"


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument(
        "--mysql",
        default=os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306"),
    )
    parser.add_argument("--reuse", action="store_true", help="Keep an already loaded database.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="Port to serve on (0: a free one).")
    parser.add_argument("--duration", type=int, default=10, help="Seconds of wrk per endpoint.")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", help="Run only the cases whose label contains this text.")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")

    source = DATA / f"receipts-{args.receipts}.jsonl"
    ensure_receipts(source, args.receipts)
    url = load(args.mysql, source, reuse=args.reuse)
    with admin(args.mysql) as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        server = cur.fetchone()[0]
    print(
        f"\nmachine: {platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, MariaDB {server}; {dt.date.today()}"
    )
    print(
        f"coffeeshop serve --workers {args.workers}; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s --latency on loopback (wrk shares the cores)\n"
    )
    port = args.port or free_port()
    process = start_server(url, port, args.workers)
    results: list[Result] = []
    try:
        _, etag = fetch(port, "/store_monthly")
        sizes = json.loads(fetch(port, "/pipeline")[0])["totals"]
        print(f"data: {sizes['applied']:,} receipts applied; data version tag {etag}\n")
        for case in cases(dt.date.today(), etag):
            if args.only and args.only not in case.label:
                continue
            result = run_wrk(
                case,
                port,
                duration=args.duration,
                connections=args.connections,
                threads=args.threads,
            )
            results.append(result)
            print(
                f"{case.label}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                f"p99 {result.p99_ms:.2f} ms, errors {result.errors}",
                flush=True,
            )
    finally:
        stop_server(process)

    print("\n| request | response | req/s | p50 | p99 | errors |\n|---|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r.case.label} | {r.body_bytes:,} B | {r.rps:,.0f} | {r.p50_ms:.2f} ms "
            f"| {r.p99_ms:.2f} ms | {r.errors} |"
        )


if __name__ == "__main__":
    main()
