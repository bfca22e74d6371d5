"""Partitioned reconcile on Dask: prints numbers, asserts nothing.

`python bench/bench_dask.py [--receipts N] [--repeat R] [--workers 1,2]` measures, on this
machine, the whole-history reconcile of N generated receipts (`bench_sync.generate`: inserts
of 50 stores over 3 years) against a SQLite database holding them:

1. the single-process `reconcile` (the reference);
2. the partitioned reconcile as a Prefect flow on a local Dask cluster of 1 and of 2 worker
   processes (one thread each): wall time of the flow call (the cluster is started before the
   clock starts; it is what a nightly run on a standing cluster pays), the speed-up over one
   worker, and each worker's peak resident memory (`ru_maxrss`);
3. the in-process partitioned code (no Prefect, no Dask), to separate the cost of the
   partitioned algorithm from the cost of the orchestration;
4. the backfill (`sync --backfill-workers N`'s first step: the partitioned read, then the
   rebuild of an empty MariaDB database in one transaction with LOAD DATA LOCAL INFILE) on
   1 and 2 workers: its wall time, and the rows/s of its bulk write (the `Store.rebuild`
   call alone) beside MariaDB's own ceiling for the same rows, measured in the same run: one
   plain LOAD DATA LOCAL INFILE of a ready-made file of the backfill's `cs_receipts` rows
   into a scratch table of the same definition, committed.

Runs alternate and each figure is the best of `--repeat` runs (the machine is shared).
Generated files and the SQLite database are kept in `bench/data/` and reused; the MariaDB
database (`--mysql`, a server URL; default root@127.0.0.1:3306) is made afresh per backfill.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
os.environ.setdefault("PREFECT_HOME", str(DATA / "prefect-home"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from bench_sync import fresh_sqlite, generate  # noqa: E402

from coffeeshop.orchestration.settings import configure  # noqa: E402

configure()  # before Prefect is first imported
from coffeeshop.orchestration.scaleout import reconcile_on_dask, shared_api  # noqa: E402
from coffeeshop.pipeline.partitioned import finish, gather_in_process  # noqa: E402
from coffeeshop.pipeline.reconcile import ReconcileReport, reconcile  # noqa: E402
from coffeeshop.sources.jsonl import JsonlSource  # noqa: E402
from coffeeshop.store import Store, bulk, schema  # noqa: E402
from coffeeshop.store.codec import RECEIPT_COLUMNS  # noqa: E402

BACKFILL_DB = "coffeeshop_bench_backfill"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_mariadb(server: str, name: str) -> str:
    """An empty database `name` on the MariaDB server at `server`; its URL."""
    from sqlalchemy import create_engine

    engine = create_engine(server.replace("mysql://", "mysql+pymysql://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    engine.dispose()
    return f"{server.rstrip('/')}/{name}"


class RebuildClock:
    """Times `Store.rebuild` (the bulk write of a backfill) in this process, where it runs."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rows = 0
        self._original = Store.rebuild

    def __enter__(self) -> RebuildClock:
        original, clock = self._original, self

        def rebuild(store: Store, *args: object, **kwargs: object) -> int:
            started = time.perf_counter()
            rows = original(store, *args, **kwargs)  # type: ignore[arg-type]
            clock.seconds, clock.rows = time.perf_counter() - started, rows
            return rows

        Store.rebuild = rebuild  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        Store.rebuild = self._original  # type: ignore[method-assign]


def load_data_ceiling(url: str) -> tuple[int, float]:
    """MariaDB's own LOAD DATA LOCAL INFILE of the backfill's cs_receipts rows (a file
    written beforehand, not timed) into a scratch table like cs_receipts: (rows, seconds)."""
    from sqlalchemy import MetaData

    scratch = schema.receipts.to_metadata(MetaData(), name="bench_load_ceiling")
    path = DATA / "load-ceiling.tsv"
    with Store(url, bulk_load=True) as store, store.engine.connect() as conn:
        columns = ", ".join(f"`{c}`" for c in RECEIPT_COLUMNS)
        rows = conn.exec_driver_sql(f"SELECT {columns} FROM cs_receipts").all()
        with path.open("wb") as out:
            out.writelines(bulk.line(row) for row in rows)
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_load_ceiling")
        conn.exec_driver_sql("CREATE TABLE bench_load_ceiling LIKE cs_receipts")
        conn.commit()
        loader = bulk.FileLoader(store, conn, DATA)
        started = time.perf_counter()
        loader.load_file(scratch, RECEIPT_COLUMNS, path, len(rows))
        conn.commit()
        took = time.perf_counter() - started
        conn.exec_driver_sql("DROP TABLE bench_load_ceiling")
        conn.commit()
    path.unlink()
    return len(rows), took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--mysql", default="mysql://root@127.0.0.1:3306")
    args = parser.parse_args()

    path = DATA / f"dask-{args.receipts}.jsonl"
    generate(path, args.receipts, seed=14)
    url = fresh_sqlite(f"dask-{args.receipts}")
    os.environ["COFFEESHOP_TIMEZONE"] = "UTC"
    today = dt.datetime.now(dt.UTC).date()
    size = path.stat().st_size
    print(f"{dt.date.today()} {platform.node()} cpus={os.cpu_count()} load={os.getloadavg()}")
    print(f"file {path.name}: {size / 2**20:.0f} MiB")

    with Store(url) as store:
        started = time.perf_counter()
        report = reconcile(store, JsonlSource(path), today=today, repair=True)
        fill = time.perf_counter() - started
    print(
        f"single-process reconcile --repair into an empty SQLite (fills it): {fill:.1f} s, "
        f"{report.receipts} receipts, {report.quarantined} quarantined"
    )
    workers = [int(w) for w in args.workers.split(",")]
    best: dict[str, float] = {}
    memory: dict[int, list[float]] = {}
    writes: dict[int, tuple[int, float]] = {}
    ceiling: tuple[int, float] | None = None
    with shared_api():
        clusters = start_clusters(workers)
        try:
            for _ in range(args.repeat):
                single = run_in_process(url, path, today, best)
                for n, cluster in clusters.items():
                    run_reconcile(cluster, n, url, path, single.receipts, best)
                    mysql_url = fresh_mariadb(args.mysql, BACKFILL_DB)
                    write = run_backfill(cluster, n, mysql_url, path, single.receipts, best)
                    if n not in writes or write[1] < writes[n][1]:
                        writes[n] = write
                    rows, took = load_data_ceiling(mysql_url)
                    if ceiling is None or took < ceiling[1]:
                        ceiling = (rows, took)
                    memory[n] = worker_rss(cluster)
        finally:
            for cluster in clusters.values():
                cluster.close()
    print_results(single.receipts, best, writes, ceiling, memory)


def start_clusters(workers: list[int]) -> dict[int, Any]:
    from distributed import LocalCluster

    return {
        n: LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
        for n in workers
    }


def run_in_process(url: str, path: Path, today: dt.date, best: dict[str, float]) -> ReconcileReport:
    with Store(url) as store:
        started = time.perf_counter()
        single = reconcile(store, JsonlSource(path), today=today)
        took = time.perf_counter() - started
        best["single"] = min(best.get("single", took), took)
        print(f"  run: single process {took:.1f} s", flush=True)
        started = time.perf_counter()
        gathered = gather_in_process(str(path), 4)
        merged = finish(store, JsonlSource(path), gathered, today=today, repair=False)
        took = time.perf_counter() - started
        best["in-process partitions"] = min(best.get("in-process partitions", took), took)
        print(f"  run: in-process partitions {took:.1f} s", flush=True)
        assert merged.total_differences == single.total_differences == 0
    return single


def timed_flow(cluster: Any, n: int, url: str, path: Path, *, repair: bool) -> tuple[Any, float]:
    """One partitioned run on the standing cluster of `n` workers: (its report, seconds)."""
    started = time.perf_counter()
    got = reconcile_on_dask(
        source=str(path),
        db=url,
        repair=repair,
        workers=None,
        address=cluster.scheduler_address,
        partitions=4 * n,
    )
    return got, time.perf_counter() - started


def run_reconcile(
    cluster: Any, n: int, url: str, path: Path, receipts: int, best: dict[str, float]
) -> None:
    got, took = timed_flow(cluster, n, url, path, repair=False)
    assert got.total_differences == 0 and got.receipts == receipts
    best[f"dask {n}"] = min(best.get(f"dask {n}", took), took)
    print(f"  run: dask {n} worker(s) {took:.1f} s", flush=True)


def run_backfill(
    cluster: Any, n: int, url: str, path: Path, receipts: int, best: dict[str, float]
) -> tuple[int, float]:
    """The backfill of an empty MariaDB database; (rows, seconds) of its bulk write."""
    with RebuildClock() as clock:
        got, took = timed_flow(cluster, n, url, path, repair=True)
    assert got.repaired and got.receipts == receipts == clock.rows
    best[f"backfill dask {n}"] = min(best.get(f"backfill dask {n}", took), took)
    print(
        f"  run: backfill dask {n} worker(s) {took:.1f} s (its bulk write {clock.seconds:.1f} s)",
        flush=True,
    )
    return clock.rows, clock.seconds


def worker_rss(cluster: Any) -> list[float]:
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        rss = client.run(_peak_rss_mib)
    return sorted(rss.values())


def print_results(
    receipts: int,
    best: dict[str, float],
    writes: dict[int, tuple[int, float]],
    ceiling: tuple[int, float] | None,
    memory: dict[int, list[float]],
) -> None:
    for name, seconds in best.items():
        print(f"{name:>24}: {seconds:7.1f} s  {receipts / seconds:9,.0f} receipts/s")
    for prefix in ("dask", "backfill dask"):
        if f"{prefix} 1" in best and f"{prefix} 2" in best:
            speedup = best[f"{prefix} 1"] / best[f"{prefix} 2"]
            print(f"{prefix}: speed-up 2 workers over 1: {speedup:.2f}x")
    for n, (rows, seconds) in writes.items():
        print(f"backfill bulk write ({n} worker(s)): {rows / seconds:,.0f} rows/s", end="")
        if ceiling is not None:
            print(f"  | MariaDB LOAD DATA ceiling: {ceiling[0] / ceiling[1]:,.0f} rows/s", end="")
        print()
    for n, rss in memory.items():
        print(f"peak RSS per worker, {n} worker(s): " + ", ".join(f"{m:.0f} MiB" for m in rss))
    print(f"driver peak RSS: {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
