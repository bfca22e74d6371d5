"""The whole pipeline under live traffic, measured: prints numbers, asserts nothing.

Two presets (every figure can be overridden on the command line):

  load   60 s of `wrk` at 64 connections against the dashboard's six endpoints while
         `sync --follow` applies 1,000 receipts/s. Reports the requests, the errors and the
         freshness: from a receipt's line being written to the file to the API showing it.
  soak   30 minutes at 2,000 receipts/s with the API under the same load. Reports each
         process's memory over time (growth after warm-up), error lines and exactness.

Everything runs on this machine, on loopback, bounded in time:

  1. a fresh database (MariaDB: the database in --db is dropped and created; default a
     fresh SQLite file) gets a year of history (`generate` + `sync --once`), so the
     endpoints answer with realistic sizes;
  2. `coffeeshop generate --rate R` appends live receipts (with 5% replacements, 2%
     deletes, 1% invalid lines) to the file; `coffeeshop sync --follow` applies them;
     `coffeeshop serve` answers; `wrk` requests the dashboard's endpoints in turn;
  3. a probe appends one receipt of its own store every 0.25 s (one `write` with
     O_APPEND, as the generator's) and polls `/store_monthly?store_id=<probe store>`
     every 10 ms until that receipt's sale shows: that delay is the freshness;
  4. at the end: the generator stops, sync drains, `sync --once` must find nothing
     left, `reconcile` compares the tables with a recomputation from the file (exit 0 =
     exact: nothing lost, nothing counted twice), and every log is searched for errors.

    .venv/bin/python bench/live.py load --db mysql+pymysql://root@127.0.0.1/coffeeshop_live
    .venv/bin/python bench/live.py soak --db mysql+pymysql://root@127.0.0.1/coffeeshop_live
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

COFFEESHOP = [sys.executable, "-m", "coffeeshop"]
CHILDREN: list[subprocess.Popen[bytes]] = []  # killed on the way out, whatever happens
STORES = 50
PROBE_STORE = 999_999  # no generated receipt uses it
PRESETS: dict[str, dict[str, float]] = {
    "load": {"seconds": 60, "rate": 1000, "connections": 64, "history": 200_000, "sample": 5},
    # Freshness alone: the same live traffic, no wrk (connections 0), the probe's delays.
    "fresh": {"seconds": 60, "rate": 1000, "connections": 0, "history": 200_000, "sample": 5},
    "soak": {"seconds": 1800, "rate": 2000, "connections": 64, "history": 200_000, "sample": 10},
}
DASHBOARD_LUA = """
-- The dashboard's six requests, in turn (what one open dashboard asks every second).
local paths = {"/pipeline", "/receipts_summary", "/store_monthly",
               "/item_performance?limit=10", "/store_peak_hours", "/store_hours"}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


# -- processes -----------------------------------------------------------------------------------


def family(pid: int) -> list[int]:
    """A process and its children (sync's reader, serve's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [pid, *(int(p) for p in children.read_text().split())]
    except (FileNotFoundError, ProcessLookupError):
        return [pid]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1024


def window(at: str, seconds: float, margin: float) -> tuple[str, str]:
    """("HH:MM:SS", "HH:MM:SS") from `margin` before `at` (HH:MM:SS.mmm) to `margin` after
    `at` + `seconds`; compared as text, so a window across midnight comes out empty."""
    start = dt.datetime.strptime(at[:8], "%H:%M:%S")
    first = start - dt.timedelta(seconds=margin)
    last = start + dt.timedelta(seconds=seconds + margin)
    return first.strftime("%H:%M:%S"), last.strftime("%H:%M:%S")


def around(vmstat: str, at: str, seconds: float) -> list[str]:
    """The header and the `vmstat -t` lines (each ends in HH:MM:SS) from 2 s before `at` to
    2 s after `at` + `seconds`."""
    first, last = window(at, seconds, 2)
    lines = vmstat.splitlines()
    return lines[1:2] + [
        line
        for line in lines
        if re.fullmatch(r"\d\d:\d\d:\d\d", stamp := (line.split() or [""])[-1])
        and first <= stamp <= last
    ]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its children."""
    total = 0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def autogroup() -> str:
    """The kernel's autogroup setting: on, it leaves MariaDB's threads waiting for seconds."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown"


def fresh_database(url: str | None, work: Path) -> str:
    if url is None:
        return f"sqlite:///{work / 'live.db'}"
    u = make_url(url)
    if u.get_backend_name() != "mysql" or not u.database:
        raise SystemExit("--db: a mysql+pymysql://user@host/database URL (or none, for SQLite)")
    from bench_sync import fresh_mysql  # this folder's sync benchmark: drop and create

    return fresh_mysql(url, u.database)


def run(args: list[str], env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("a") as out:
        subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def get_json(conn: http.client.HTTPConnection, path: str) -> tuple[int, Any]:
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()  # resets the connection's state, so the next request reconnects
        raise
    return response.status, json.loads(body, parse_float=Decimal) if body else None


def fetch(port: int, path: str) -> tuple[int, Any]:
    """One request on a new connection (the server closes idle keep-alive connections)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return get_json(conn, path)
    finally:
        conn.close()


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f} s")


# -- the freshness probe -------------------------------------------------------------------------


@dataclass
class RunQueue:
    """Twice a second, the runnable threads of the machine counted by process (from
    /proc/*/task/*/stat) and, on MariaDB, the statements its connections are running: who
    was queueing for a CPU, and for what, during a stall."""

    watched: dict[str, int]  # role -> pid; a role covers the process and its children
    db: str | None = None  # a MySQL/MariaDB URL: its running statements are sampled too
    samples: list[tuple[str, dict[str, int]]] = field(default_factory=list)
    statements: list[tuple[str, list[str]]] = field(default_factory=list)
    connections: dict[int, str] = field(default_factory=dict)  # thread id -> last command
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        if self.db is not None:  # in its own thread: a stalled server must not stop the rest
            threading.Thread(target=self.watch_server, args=(self.db,), daemon=True).start()
        while not self.stop.wait(0.5):
            roles = {p: role for role, pid in self.watched.items() for p in family(pid)}
            counts: dict[str, int] = {}
            database_threads: list[int] = []
            for task in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
                try:
                    text = task.read_text()
                except OSError:
                    continue
                comm, _, rest = text.partition("(")[2].rpartition(")")
                if rest.split()[:1] == ["R"]:
                    name = roles.get(int(task.parts[2]), comm)
                    if name == "database server":
                        database_threads.append(int(task.parts[4]))
                    counts[name] = counts.get(name, 0) + 1
            # A runnable server thread is a connection's (by its last command) or internal.
            for tid in database_threads if self.db is not None else ():
                what = f"  database: {self.connections.get(tid, 'internal')}"
                counts[what] = counts.get(what, 0) + 1
            self.samples.append((_now(), counts))

    def watch_server(self, db: str) -> None:
        from bench_sync import admin

        with admin(db) as server:
            while not self.stop.wait(0.5):
                asked = _now()
                running, self.connections = server_activity(server)
                self.statements.append((asked, running))

    def around(self, at: str, seconds: float) -> list[str]:
        """The samples from 1 s before `at` (HH:MM:SS.mmm) to 1 s after `at` + `seconds`."""
        first, last = window(at, seconds, 1)
        threads = [
            f"{when}  {sum(c.values()):3d} runnable: "
            + ", ".join(f"{n} {k}" for n, k in sorted(c.items(), key=lambda x: -x[1]))
            for when, c in self.samples
            if first <= when[:8] <= last
        ]
        statements = [
            f"{when}  (asked) {len(rows)} statement(s) running: " + " | ".join(rows)
            for when, rows in self.statements
            if first <= when[:8] <= last
        ]
        return threads + statements


def _now() -> str:
    return dt.datetime.now().strftime("%H:%M:%S.%f")[:-4]


def server_activity(server: Any) -> tuple[list[str], dict[int, str]]:
    """The statements MariaDB's connections are running (state, milliseconds, statement),
    and each connection's OS thread id -> its command (Sleep, Query, ...)."""
    with server.cursor() as cur:
        cur.execute(
            "SELECT TID, COMMAND, STATE, ROUND(TIME_MS), LEFT(REPLACE(INFO, '\\n', ' '), 50)"
            " FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
        )
        rows = cur.fetchall()
    running = [
        f"{state or '-'} {ms:.0f} ms: {info}"
        for _, command, state, ms, info in rows
        if command != "Sleep" and info is not None
    ]
    return running, {int(tid): f"connection {command}" for tid, command, *_ in rows}


@dataclass
class Probe:
    """Appends its own receipts and times how long each takes to show in the API."""

    source: Path
    port: int
    interval: float = 0.25
    poll: float = 0.01
    timeout: float = 30.0
    delays: list[float] = field(default_factory=list)
    slow: list[tuple[str, float]] = field(default_factory=list)  # (wall clock, seconds) > 1 s
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def line(self, n: int) -> bytes:
        now = dt.datetime.now()
        doc = {
            "_id": f"probe-{os.getpid()}-{n:06d}",
            "Store_ID": PROBE_STORE,
            "transactionDate": now.date().isoformat(),
            "transactionTime": now.strftime("%H:%M:%S"),
            "total_price": 1.0,
            "items": [{"product_name": "Probe", "product_quantity": 1, "product_price": 1.0}],
        }
        return (json.dumps(doc) + "\n").encode()

    def shown(self, conn: http.client.HTTPConnection) -> Decimal:
        self.requests += 1
        status, rows = get_json(conn, f"/store_monthly?store_id={PROBE_STORE}")
        if status != 200:
            self.errors.append(f"/store_monthly answered {status}")
            return Decimal(-1)
        return sum((Decimal(row["sales"]) for row in rows), Decimal(0))

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        fd = os.open(self.source, os.O_WRONLY | os.O_APPEND)
        try:
            while not self.stop.wait(self.interval):
                data = self.line(self.sent + 1)
                os.write(fd, data)  # one write of one whole line, as the generator's
                written = time.perf_counter()
                self.sent += 1
                expected = Decimal(self.sent)
                while self.shown(conn) < expected:
                    if time.perf_counter() - written > self.timeout:
                        self.errors.append(f"probe {self.sent} not visible after {self.timeout} s")
                        break
                    time.sleep(self.poll)
                else:
                    self.delays.append(time.perf_counter() - written)
                    if self.delays[-1] > 1:
                        at = dt.datetime.now() - dt.timedelta(seconds=self.delays[-1])
                        self.slow.append((at.strftime("%H:%M:%S.%f")[:-3], self.delays[-1]))
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"probe stopped: {exc!r}")
        finally:
            os.close(fd)
            conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# -- wrk -----------------------------------------------------------------------------------------


def wrk_figures(text: str) -> dict[str, Any]:
    def number(pattern: str) -> float:
        match = re.search(pattern, text)
        return float(match.group(1)) if match else 0.0

    def ms(pattern: str) -> float:
        match = re.search(pattern + r"\s+([\d.]+)(us|ms|s)\b", text)
        if not match:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    errors = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
    socket = re.search(errors, text)
    return {
        "requests": int(number(r"(\d+) requests in")),
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "p50_ms": ms(r"50%"),
        "p99_ms": ms(r"99%"),
        "non_2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(int(g) for g in socket.groups()) if socket else 0,
        "socket_detail": socket.group(0) if socket else "Socket errors: none",
    }


# -- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--db", default=None, help="mysql+pymysql:// URL; default SQLite")
    parser.add_argument("--seconds", type=float, help="live phase length")
    parser.add_argument("--rate", type=float, help="receipts per second")
    parser.add_argument("--connections", type=int, help="wrk connections")
    parser.add_argument("--history", type=int, help="receipts loaded before the live phase")
    parser.add_argument("--workers", type=int, default=1, help="coffeeshop serve --workers")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--nice-load",
        type=int,
        default=0,
        help="run wrk at this nice level (the load "
        "generator shares the cores; production clients would not)",
    )
    parser.add_argument(
        "--nice-serve",
        type=int,
        default=0,
        help="run the API at this nice level (the sync and the database then come first)",
    )
    parser.add_argument("--sync-log-level", default="WARNING", help="e.g. DEBUG: every batch")
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    seconds = args.seconds or preset["seconds"]
    rate = args.rate or preset["rate"]
    connections = int(preset["connections"] if args.connections is None else args.connections)
    history = preset["history"] if args.history is None else args.history
    sample_every = preset["sample"]
    if connections and shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    with socket.socket() as probe_port:
        try:
            probe_port.bind(("127.0.0.1", args.port))
        except OSError:
            raise SystemExit(f"port {args.port} is in use (a previous run's server?)") from None

    work = Path(tempfile.mkdtemp(prefix=f"coffeeshop-{args.preset}-"))
    source = work / "receipts.jsonl"
    source.touch()
    db = fresh_database(args.db, work)
    env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING"}
    names = ("setup", "generate", "sync", "serve", "wrk", "vmstat")
    logs = {name: work / f"{name}.log" for name in names}
    print(
        f"{args.preset}: {seconds:.0f} s at {rate:.0f} receipts/s, wrk -c{connections}, "
        f"serve --workers {args.workers}, history {history:,}, db {make_url(db).get_backend_name()}"
        f"\nmachine: {os.cpu_count()} cores, {platform.python_version()}, {dt.date.today()}, "
        f"kernel.sched_autogroup_enabled={autogroup()} (1: expect a freshness tail, see "
        "docs/deployment.md)"
        f"\nwork directory: {work}",
        flush=True,
    )

    if history:
        generate = f"generate --count {int(history)} --seed 1 --stores {STORES}".split()
        took = run([*COFFEESHOP, *generate, "--out", str(source)], env, logs["setup"])
        took += run(
            [*COFFEESHOP, "sync", "--once", "--source", str(source), "--db", db], env, logs["setup"]
        )
        print(f"history: {int(history):,} receipts generated and synced in {took:.1f} s")

    def start(
        name: str, argv: list[str], extra: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = logs[name].open("a")  # closed with the process at exit
        child = subprocess.Popen(
            argv, env={**env, **(extra or {})}, stdout=out, stderr=subprocess.STDOUT
        )
        CHILDREN.append(child)
        return CHILDREN[-1]

    sync = start(
        "sync",
        [*COFFEESHOP, "sync", "--follow", "--source", str(source), "--db", db],
        {"COFFEESHOP_LOG_LEVEL": args.sync_log_level},
    )
    port = str(args.port)
    niced = ["nice", "-n", str(args.nice_serve)] if args.nice_serve else []
    serve = start(
        "serve",
        [*niced, *COFFEESHOP, "serve", "--db", db, "--port", port, "--workers", str(args.workers)],
    )

    def totals() -> dict[str, Any]:
        return fetch(args.port, "/pipeline")[1]["totals"]

    wait_until(lambda: fetch(args.port, "/ready")[0] == 200, 60, "the API")
    before = totals()
    live = (
        f"generate --count {int(rate * (seconds + 120))} --rate {rate} --seed 2 "
        f"--stores {STORES} --updates 0.05 --deletes 0.02 --invalid 0.01"
    )
    generator = start("generate", [*COFFEESHOP, *live.split(), "--append", "--out", str(source)])
    time.sleep(3)  # the live flow established before the load starts
    lua = work / "dashboard.lua"
    lua.write_text(DASHBOARD_LUA)
    load = f"wrk -t2 -c{connections} -d{int(seconds)}s --latency --timeout 5s"
    if args.nice_load:
        load = f"nice -n {args.nice_load} {load}"
    if connections:
        wrk = start("wrk", [*load.split(), "-s", str(lua), f"http://127.0.0.1:{port}"])
    else:  # no load: the live phase is just its length
        wrk = start("wrk", ["sleep", str(int(seconds))])
    # One line a second of run queue, blocked processes, I/O wait and steal, to explain a stall.
    start("vmstat", ["vmstat", "-t", "-w", "1"])
    probe = Probe(source, args.port)
    probe_thread = threading.Thread(target=probe.run, daemon=True)
    probe_thread.start()

    processes = {"generate": generator, "sync": sync, "serve": serve}
    samples: dict[str, list[float]] = {name: [] for name in processes}
    watched = {**{name: p.pid for name, p in processes.items()}, "wrk": wrk.pid}
    if make_url(db).get_backend_name() == "mysql":
        server = subprocess.run(["pgrep", "-x", "mariadbd|mysqld"], capture_output=True, text=True)
        if server.stdout.split():
            watched["database server"] = int(server.stdout.split()[0])
    runqueue = RunQueue(watched, db if make_url(db).get_backend_name() == "mysql" else None)
    threading.Thread(target=runqueue.run, daemon=True).start()
    cpu_start = {name: cpu_seconds(pid) for name, pid in watched.items()}
    cpu_last = dict(cpu_start)
    started = time.monotonic()
    next_print = 0.0
    while wrk.poll() is None:
        time.sleep(sample_every)
        elapsed = time.monotonic() - started
        for name, process in processes.items():
            samples[name].append(rss_mb(process.pid))
        for name, pid in watched.items():
            cpu_last[name] = max(cpu_last[name], cpu_seconds(pid))  # 0 once it has exited
        if elapsed >= next_print:
            next_print += max(sample_every, seconds / 20)
            rss = "  ".join(f"{n} {v[-1]:.0f} MB" for n, v in samples.items())
            print(
                f"{elapsed:6.0f} s  {rss}  probes {len(probe.delays)}, errors {len(probe.errors)}",
                flush=True,
            )
        if any(p.poll() is not None for p in processes.values()):
            print("a process ended early:", {n: p.poll() for n, p in processes.items()})
            break
    live_seconds = time.monotonic() - started
    probe.stop.set()
    runqueue.stop.set()
    probe_thread.join(timeout=60)
    during = totals()

    generator.send_signal(signal.SIGINT)
    generator.wait(timeout=60)
    size = source.stat().st_size
    wait_until(
        lambda: totals()["behind"] == 0 and source.stat().st_size == size,
        120 + seconds / 10,
        "sync to drain the file",
    )
    for process in (sync, serve):
        process.send_signal(signal.SIGTERM)
    exits = {"sync": sync.wait(timeout=60), "serve": serve.wait(timeout=60)}
    once = subprocess.run(
        [*COFFEESHOP, "sync", "--once", "--source", str(source), "--db", db],
        env=env,
        capture_output=True,
        text=True,
    )
    reconcile = subprocess.run(
        [*COFFEESHOP, "reconcile", "--source", str(source), "--db", db],
        env=env,
        capture_output=True,
        text=True,
    )

    # -- figures ---------------------------------------------------------------------------------
    wrk_text = logs["wrk"].read_text()
    figures = wrk_figures(wrk_text)
    lines = sum(1 for _ in source.open("rb"))
    applied = during["applied"] - before["applied"]
    quarantined = during["quarantined"] - before["quarantined"]
    error_lines = [
        f"{name}: {line}"
        for name, path in logs.items()
        for line in path.read_text(errors="replace").splitlines()
        if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)
    ]
    print("\n== figures ==", flush=True)
    print(
        f"live phase: {live_seconds:.0f} s; sync applied {applied:,} changes "
        f"({applied / live_seconds:,.0f}/s) and quarantined {quarantined:,} lines; "
        f"the file ended with {lines:,} lines"
    )
    print(
        "wrk: not run (connections 0)"
        if not connections
        else f"wrk: {figures['requests']:,} requests, {figures['rps']:,.0f} req/s, "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"non-2xx {figures['non_2xx']}, socket errors {figures['socket_errors']} "
        f"({figures['socket_detail']}; a timeout is a request wrk gave up on after 5 s)"
    )
    if probe.delays:
        ms = [d * 1000 for d in probe.delays]
        print(
            f"freshness (line written -> visible in the API), {len(ms)} probes: "
            f"p50 {percentile(ms, 50):.0f} ms, p90 {percentile(ms, 90):.0f} ms, "
            f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms, "
            f"mean {statistics.fmean(ms):.0f} ms"
        )
    print(f"probe: {probe.requests:,} requests, errors {len(probe.errors)}: {probe.errors[:3]}")
    if probe.slow:
        print("probes slower than 1 s (written at, seconds):", probe.slow[:10])
        at, worst = max(probe.slow, key=lambda s: s[1])
        print(f"vmstat around the slowest probe ({worst:.1f} s, written at {at}):")
        print("\n".join(around(logs["vmstat"].read_text(), at, worst)))
        print("runnable threads by process and running statements, around it:")
        print("\n".join(runqueue.around(at, worst)))
    # The first sixth is warm-up. RSS moves with the size of the batch in hand, so besides the
    # peak against one sample (strict, noisy), two measures a leak moves and a batch does not:
    # the trend (the last sixth's mean against the sixth after warm-up) and the window peaks
    # (the highest sample of each sixth after warm-up: a leak raises them one after another).
    warm = max(1, len(next(iter(samples.values()))) // 6)
    for name, values in samples.items():
        if len(values) >= 3 * warm:
            base, after = values[warm - 1], values[warm:]
            early, late = statistics.fmean(after[:warm]), statistics.fmean(values[-warm:])
            peaks = [max(after[i : i + warm]) for i in range(0, len(after) - warm + 1, warm)]
            print(
                f"memory {name}: {values[0]:.0f} MB at start, {base:.0f} MB after warm-up "
                f"({warm * sample_every:.0f} s), peak after {max(after):.0f} MB "
                f"({(max(after) - base) / base * 100:+.1f}%), end {values[-1]:.0f} MB; "
                f"trend {early:.0f} -> {late:.0f} MB ({(late - early) / early * 100:+.1f}%); "
                f"window peaks {' '.join(f'{p:.0f}' for p in peaks)} MB "
                f"(last against first {(peaks[-1] - peaks[0]) / peaks[0] * 100:+.1f}%)"
            )
    cores = os.cpu_count() or 1
    shares = ", ".join(
        f"{name} {(cpu_last[name] - cpu_start[name]) / live_seconds / cores * 100:.0f}%"
        for name in watched
    )
    print(f"CPU during the live phase, share of the {cores} cores: {shares}")
    print(
        f"exit status on SIGTERM: {exits} (0, or -15: uvicorn re-raises the signal after "
        "its graceful shutdown)"
    )
    print(f"sync --once after the drain: {once.stdout.strip() or once.stderr.strip()}")
    print(
        f"reconcile: exit {reconcile.returncode} (0 = exact): "
        f"{(reconcile.stdout + reconcile.stderr).strip().splitlines()[-1:]}"
    )
    print(f"error lines in the logs: {len(error_lines)}")
    for line in error_lines[:10]:
        print("  " + line)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    try:
        main()
    finally:
        for child in CHILDREN:
            if child.poll() is None:
                child.kill()
