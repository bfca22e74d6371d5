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
   partitioned algorithm from the cost of the orchestration.

Runs alternate and each figure is the best of `--repeat` runs (the machine is shared).
Generated files and the database are kept in `bench/data/` and reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
os.environ.setdefault("PREFECT_HOME", str(DATA / "prefect-home"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from bench_sync import fresh_sqlite, generate  # noqa: E402

from coffeeshop.orchestration.settings import configure  # noqa: E402

configure()  # before Prefect is first imported
from coffeeshop.orchestration.scaleout import reconcile_on_dask, shared_api  # noqa: E402
from coffeeshop.pipeline.partitioned import finish, gather_in_process  # noqa: E402
from coffeeshop.pipeline.reconcile import reconcile  # noqa: E402
from coffeeshop.sources.jsonl import JsonlSource  # noqa: E402
from coffeeshop.store import Store  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receipts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

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
    with shared_api():
        clusters = {
            n: LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            for n in workers
        }
        try:
            for _ in range(args.repeat):
                with Store(url) as store:
                    started = time.perf_counter()
                    single = reconcile(store, JsonlSource(path), today=today)
                    took = time.perf_counter() - started
                    best["single"] = min(best.get("single", took), took)
                    print(f"  run: single process {took:.1f} s", flush=True)
                    started = time.perf_counter()
                    gathered = gather_in_process(str(path), 4)
                    merged = finish(
                        store, JsonlSource(path).name, gathered, today=today, repair=False
                    )
                    took = time.perf_counter() - started
                    best["in-process partitions"] = min(
                        best.get("in-process partitions", took), took
                    )
                    print(f"  run: in-process partitions {took:.1f} s", flush=True)
                    assert merged.total_differences == single.total_differences == 0
                for n, cluster in clusters.items():
                    started = time.perf_counter()
                    got = reconcile_on_dask(
                        source=str(path),
                        db=url,
                        repair=False,
                        workers=None,
                        address=cluster.scheduler_address,
                        partitions=4 * n,
                    )
                    took = time.perf_counter() - started
                    assert got.total_differences == 0 and got.receipts == single.receipts
                    best[f"dask {n}"] = min(best.get(f"dask {n}", took), took)
                    print(f"  run: dask {n} worker(s) {took:.1f} s", flush=True)
                    with Client(cluster.scheduler_address) as client:
                        rss = client.run(_peak_rss_mib)
                    memory[n] = sorted(rss.values())
        finally:
            for cluster in clusters.values():
                cluster.close()
    receipts = single.receipts
    for name, seconds in best.items():
        print(f"{name:>24}: {seconds:7.1f} s  {receipts / seconds:9,.0f} receipts/s")
    if "dask 1" in best and "dask 2" in best:
        print(f"speed-up 2 workers over 1: {best['dask 1'] / best['dask 2']:.2f}x")
    for n, rss in memory.items():
        print(f"peak RSS per worker, {n} worker(s): " + ", ".join(f"{m:.0f} MiB" for m in rss))
    print(f"driver peak RSS: {_peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
