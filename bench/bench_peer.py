"""Peer comparison: `coffeeshop sync --once` against our Pathway pipeline of the same four
tables (`bench/peer_pathway.py`), on the same generated feed. Prints numbers, asserts nothing.

`make bench-peer` (or `python bench/bench_peer.py --receipts 300000 --rounds 2`) installs
Pathway in a virtualenv of its own (`bench/.peer-venv`, git-ignored; never in this project's
environment), generates a JSONL change file of N new receipts mixed with 5 % replace events,
2 % delete events and 1 % invalid receipts (shares of all lines, as `coffeeshop generate
--updates 0.05 --deletes 0.02 --invalid 0.01` writes them), and runs, alternating which engine
goes first in each round:

- ours: `coffeeshop sync --once` into SQLite, MariaDB and PostgreSQL (`--databases`);
- Pathway: the pipeline into its SQLite sink, and into its PostgreSQL sink (which it is also
  compared with for MariaDB: those are the sinks the brief names).

Per run: CPU seconds of the whole process tree (user + system, from
`getrusage(RUSAGE_CHILDREN)`: every process of the tree is waited for), wall time, peak RSS of
the tree (the sum over its processes, sampled every 50 ms), and whether the four public tables
equal, to the cent, an independent recomputation over the feed (`core.recompute` over the
receipts the feed leaves: our reader and parser, no engine). `--busy N` starts N `yes`
processes beside it for the whole run (the busy-machine figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
from peer_tables import Public, differences, expected_public, read_public, reference_tables

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.writer import write_jsonl

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
PEER_VENV = ROOT / ".peer-venv"
PEER_PYTHON = PEER_VENV / "bin" / "python"
PATHWAY = "pathway==0.33.0"  # the version the figures in docs/benchmarks.md were taken with
COFFEESHOP = Path(sys.executable).with_name("coffeeshop")
UPDATE_SHARE, DELETE_SHARE, INVALID_SHARE = 0.05, 0.02, 0.01  # shares of all lines
ENV = {**os.environ, "COFFEESHOP_LOG_LEVEL": "WARNING", "COFFEESHOP_TIMEZONE": "UTC"}


def generate_feed(path: Path, receipts: int, *, seed: int, today: dt.date) -> None:
    """`receipts` new receipts of 50 stores over the year ending `today` (UTC), mixed with the
    shares of replace events, delete events and invalid receipts; kept and reused."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = ReceiptGenerator(
        seed=seed,
        stores=50,
        start=today - dt.timedelta(days=364),
        days=365,
        zone=dt.UTC,
        update_share=UPDATE_SHARE,
        delete_share=DELETE_SHARE,
        invalid_share=INVALID_SHARE,
    )
    partial = path.with_suffix(".partial")
    write_jsonl(partial, receipts, generator=generator, append=False)
    partial.rename(path)


def ensure_peer() -> str:
    """The peer virtualenv with the pinned Pathway installed; returns Pathway's version."""
    wanted = PATHWAY.split("==")[1]
    probe = [str(PEER_PYTHON), "-c", "import pathway; print(pathway.__version__)"]
    if PEER_PYTHON.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == wanted:
            return wanted
    pip = [str(PEER_PYTHON), "-m", "pip", "install", "--quiet"]
    for step in ([sys.executable, "-m", "venv", str(PEER_VENV)], [*pip, "--upgrade", "pip"]):
        subprocess.run(step, check=True)
    if subprocess.run([*pip, PATHWAY]).returncode != 0:
        raise SystemExit(f"cannot install {PATHWAY} into {PEER_VENV} (pip said why above)")
    return subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()


@dataclass(frozen=True, slots=True)
class Measure:
    cpu: float  # seconds, user + system, the whole process tree
    wall: float
    peak_mb: float  # peak of the tree's summed RSS


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with suppress(psutil.Error):  # gone between the listing and the reading
            total += p.memory_info().rss
    return total


def measured(command: list[str]) -> Measure:
    """Run `command` to its end; raise SystemExit when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            process = psutil.Process(child.pid)
            while True:
                peak = max(peak, _tree_rss(process))
                if done.wait(0.05):
                    return
        except psutil.Error:
            return  # it ended

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = child.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if child.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{command[:3]} failed ({child.returncode}): " + " | ".join(tail))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(cpu=cpu, wall=wall, peak_mb=peak / 2**20)


# -- databases -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Servers:
    mysql: str  # mysql+pymysql://root@127.0.0.1:3306
    postgres: str  # postgresql+psycopg://postgres@127.0.0.1:5432


@contextmanager
def fresh_database(kind: str, servers: Servers) -> Iterator[str]:
    """A new empty database of `kind` (sqlite, mariadb, postgresql): its URL; dropped after."""
    name = f"cs_peer_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        path = DATA / f"{name}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    server = servers.mysql if kind == "mariadb" else servers.postgres
    quote = "`" if kind == "mariadb" else '"'
    _admin(server, f"CREATE DATABASE {quote}{name}{quote}")
    try:
        yield f"{server.rstrip('/')}/{name}"
    finally:
        _admin(server, f"DROP DATABASE {quote}{name}{quote}")


def _admin(server: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    database = "postgres" if server.startswith("postgresql") else ""
    engine = create_engine(f"{server.rstrip('/')}/{database}", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    parts = {"host": u.host or "127.0.0.1", "port": u.port or 5432, "dbname": u.database}
    parts["user"] = u.username or "postgres"
    if u.password:
        parts["password"] = u.password
    return " ".join(f"{k}={v}" for k, v in parts.items())


# -- runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    engine: str  # "coffeeshop" or "Pathway"
    target: str  # sqlite, mariadb, postgresql
    measure: Measure
    problems: list[str]  # differences from the recomputation; empty: exact


def run_ours(feed: Path, kind: str, servers: Servers, expected: Public, today: dt.date) -> Run:
    with fresh_database(kind, servers) as url:
        command = [str(COFFEESHOP), "sync", "--once", "--source", str(feed), "--db", url]
        measure = measured(command)
        actual = read_public(url, today=today, cents=False)
    return Run("coffeeshop", kind, measure, differences(expected, actual))


def run_peer(feed: Path, kind: str, servers: Servers, expected: Public, today: dt.date) -> Run:
    with fresh_database(kind, servers) as url:
        command = [str(PEER_PYTHON), str(ROOT / "peer_pathway.py"), str(feed)]
        command += ["--today", today.isoformat()]
        if kind == "sqlite":
            command += ["--sqlite", url.removeprefix("sqlite:///")]
        else:
            command += ["--postgres", libpq(url)]
        measure = measured(command)
        actual = read_public(url, today=today, cents=True)
    return Run("Pathway", kind, measure, differences(expected, actual))


def describe(run: Run) -> str:
    m = run.measure
    exact = "exact" if not run.problems else f"NOT exact: {'; '.join(run.problems[:3])}"
    return (
        f"{run.engine:10} -> {run.target:10} CPU {m.cpu:6.1f} s  wall {m.wall:6.1f} s  "
        f"peak RSS {m.peak_mb:6.0f} MB  {exact}"
    )


@contextmanager
def busy(n: int) -> Iterator[None]:
    """`n` CPU-bound `yes` processes beside the benchmark, ended after it."""
    hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(n)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.wait()


def peer_target(kind: str) -> str:
    """The Pathway sink a target of ours is compared with: SQLite's, else PostgreSQL's."""
    return "sqlite" if kind == "sqlite" else "postgresql"


def rounds(args: argparse.Namespace, feed: Path, expected: Public, today: dt.date) -> list[Run]:
    servers = Servers(args.mysql, args.postgres)
    peers = list(dict.fromkeys(peer_target(kind) for kind in args.databases))
    runs: list[Run] = []
    for r in range(args.rounds):
        jobs = [("ours", kind) for kind in args.databases] + [("peer", kind) for kind in peers]
        if r % 2:  # alternate which engine goes first
            jobs.reverse()
        for who, kind in jobs:
            run = (run_ours if who == "ours" else run_peer)(feed, kind, servers, expected, today)
            print(f"round {r + 1}: {describe(run)}", flush=True)
            runs.append(run)
    return runs


def table(runs: list[Run], databases: list[str]) -> str:
    """The markdown table: ranges per engine and target, and Pathway's share of ours."""
    out = [
        "| target | coffeeshop CPU s | Pathway CPU s | coffeeshop wall s | Pathway wall s "
        "| coffeeshop peak MB | Pathway peak MB | exact (ours / Pathway) |",
        "|---" * 8 + "|",
    ]
    for kind in databases:
        ours = [r for r in runs if r.engine == "coffeeshop" and r.target == kind]
        peer = [r for r in runs if r.engine == "Pathway" and r.target == peer_target(kind)]
        cells = [f"{kind} (Pathway: {peer_target(kind)} sink)"]
        for field in ("cpu", "wall", "peak_mb"):
            for group in (ours, peer):
                values = [getattr(r.measure, field) for r in group]
                cells.append(_span(values, "{:.0f}" if field == "peak_mb" else "{:.1f}"))
        exact = [all(not r.problems for r in g) for g in (ours, peer)]
        cells.append(" / ".join("yes" if e else "NO" for e in exact))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _span(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return low if low == high else f"{low}–{high}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--busy", type=int, default=0, help="`yes` processes beside it")
    parser.add_argument(
        "--databases",
        type=lambda s: [d for d in s.split(",") if d],
        default=["sqlite", "mariadb", "postgresql"],
        help="comma-separated: sqlite, mariadb, postgresql",
    )
    mysql = os.environ.get("COFFEESHOP_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--mysql", default=mysql)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=24)
    args = parser.parse_args()
    unknown = set(args.databases) - {"sqlite", "mariadb", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    version = ensure_peer()
    today = dt.datetime.now(dt.UTC).date()
    feed = DATA / f"peer-{args.receipts}-{args.seed}-{today.isoformat()}.jsonl"
    generate_feed(feed, args.receipts, seed=args.seed, today=today)
    expected = expected_public(reference_tables(feed, today), today)
    print(
        f"Pathway {version}; feed {feed} ({feed.stat().st_size / 2**20:.0f} MB); "
        f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}; busy {args.busy}",
        flush=True,
    )
    with busy(args.busy):
        runs = rounds(args, feed, expected, today)
    print(f"\nload after: {os.getloadavg()[0]:.1f}\n\n{table(runs, args.databases)}")


if __name__ == "__main__":
    main()
