"""MongoDB source benchmark: prints numbers, asserts nothing.

No MongoDB server can run on the benchmark machine, so this measures the *pipeline's* side
of the MongoDB source against stand-ins, and says so in its output:

1. snapshot throughput (receipts/s): `MongoSource` reads a replica set's collection in
   `_id` order and `Syncer` applies it (read-ahead process, default batch size 5,000) into
   SQLite and MariaDB. The stand-in serves each batch as BSON bytes decoded with
   `bson.decode_all`, as PyMongo does with a server reply, so BSON decoding is counted;
   the network and the server's own work are not.
2. insert → table latency on the change-stream path: `sync --follow` (in process, with the
   read-ahead process) against the scripted change stream of `tests/fake_mongo.py`; a
   writer thread appends inserts at a steady rate and the time from the insert to the
   commit of the batch holding it is recorded. The fake answers an awaitData getMore as
   soon as a change is there, like a server; the network round trip and the server's
   wake-up (milliseconds on a LAN) are not counted.

`python bench/bench_mongo.py [--receipts N] [--rate R --seconds S] [--mysql URL]`
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
from bench_sync import fresh_mysql
from bson import json_util

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fake_mongo import FakeClient, insert

TODAY = dt.date(2026, 11, 25)


class _Cursor:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for chunk in self._chunks:
            yield from bson.decode_all(chunk)

    def close(self) -> None:
        pass


class _Stream:
    def __init__(self) -> None:
        self.resume_token = {"_data": "0000"}

    def try_next(self) -> None:
        return None

    def close(self) -> None:
        pass

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class SnapshotCollection:
    """A replica set's collection whose find() replies are pre-encoded BSON batches."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.chunks: list[bytes] = []

    def find(self, filter: dict[str, Any], *, sort: Any, batch_size: int, **_: Any) -> _Cursor:
        if not self.chunks or len(bson.decode_all(self.chunks[0])) != batch_size:
            self.chunks = [
                b"".join(bson.encode(d) for d in self.docs[i : i + batch_size])
                for i in range(0, len(self.docs), batch_size)
            ]
        return _Cursor(self.chunks)

    def watch(self, **_: Any) -> _Stream:
        return _Stream()


class SnapshotClient:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.collection = SnapshotCollection(docs)
        self.admin = self

    def command(self, name: str) -> dict[str, Any]:
        return {"setName": "rs0", "ok": 1.0}

    def __getitem__(self, name: str) -> Any:
        return {"receipt": self.collection}

    def close(self) -> None:
        pass


def jsonl(url: str, path: Path, docs: list[dict[str, Any]]) -> tuple[float, SyncReport]:
    """The same receipts from a JSONL file: the baseline under the same load."""
    with path.open("w") as out:
        for d in docs:
            out.write(json_util.dumps(d) + "\n")
    with Store(url) as store:
        store.upgrade()
        started = time.perf_counter()
        report = Syncer(store, JsonlSource(str(path)), today=lambda: TODAY).run()
        return time.perf_counter() - started, report


def snapshot(url: str, docs: list[dict[str, Any]]) -> tuple[float, SyncReport]:
    client = SnapshotClient(docs)
    source = MongoSource("mongodb://bench/", client_factory=lambda: client)
    client.collection.find({}, sort=None, batch_size=5000)  # encode outside the timing
    with Store(url) as store:
        store.upgrade()
        started = time.perf_counter()
        report = Syncer(store, source, today=lambda: TODAY).run()
        return time.perf_counter() - started, report


def latency(url: str, rate: float, seconds: float) -> list[float]:
    """Seconds from each insert to the commit of the batch that holds it."""
    generator = ReceiptGenerator(seed=7, stores=20, days=30, ids_until_now=True)
    docs = list(generator.iter_documents(100 + int(rate * seconds)))
    client = FakeClient(docs[:100], [])
    script = client.collection.script
    inserted: list[float] = []
    committed: list[tuple[float, int]] = []
    stop = threading.Event()

    count = int(rate * seconds)

    def writer() -> None:
        started = time.monotonic()
        for n, doc in enumerate(docs[100 : 100 + count]):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            inserted.append(time.monotonic())
            script.append(insert(doc))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (committed and committed[-1][1] >= 100 + count):
            time.sleep(0.05)
        stop.set()

    def on_batch(report: SyncReport) -> None:
        committed.append((time.monotonic(), report.applied))

    with Store(url) as store:
        syncer = Syncer(
            store,
            MongoSource("mongodb://bench/", client_factory=lambda: client),
            today=lambda: TODAY,
            on_batch=on_batch,
            read_ahead=False,  # the fake's timeline lives in this process: no fork
        )
        thread = threading.Thread(target=writer)
        # the snapshot of the 100 first receipts, then the stream
        thread.start()
        syncer.run(follow=True, stop=stop)
        thread.join()
    if not committed or committed[-1][1] < 100 + len(inserted):
        raise SystemExit(
            f"not every insert was applied: {committed[-3:]}, {len(inserted)} inserted"
        )
    waits = []
    at = 0
    for k, moment in enumerate(inserted, start=101):
        while committed[at][1] < k:
            at += 1
        waits.append(committed[at][0] - moment)
    return waits


def _pick(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{dt.datetime.now():%Y-%m-%d %H:%M} · Python {platform.python_version()} · "
        f"{os.cpu_count()} cores, load average {load} · stand-ins, no MongoDB server"
    )
    docs = list(ReceiptGenerator(seed=42, stores=50, days=365).iter_documents(args.receipts))
    with tempfile.TemporaryDirectory() as scratch:
        targets = [
            ("SQLite", f"sqlite:///{scratch}/snapshot.db"),
            ("MariaDB", fresh_mysql(args.mysql, "cs_bench_mongo")),
        ]
        for label, url in targets:
            seconds, report = snapshot(url, docs)
            print(
                f"snapshot of {report.applied:,} receipts into {label}: {seconds:.1f} s, "
                f"{report.applied / seconds:,.0f} receipts/s (BSON decoded, no network)"
            )
        for label, url in (
            ("SQLite", f"sqlite:///{scratch}/jsonl.db"),
            ("MariaDB", fresh_mysql(args.mysql, "cs_bench_mongo_jsonl")),
        ):
            seconds, report = jsonl(url, Path(scratch) / "same.jsonl", docs)
            print(
                f"baseline, the same receipts as JSONL into {label}: {seconds:.1f} s, "
                f"{report.applied / seconds:,.0f} receipts/s"
            )
        for label, url in (
            ("SQLite", f"sqlite:///{scratch}/latency.db"),
            ("MariaDB", fresh_mysql(args.mysql, "cs_bench_mongo_latency")),
        ):
            waits = sorted(latency(url, args.rate, args.seconds))
            print(
                f"insert -> table, change stream, {label}, {len(waits)} inserts at "
                f"{args.rate:.0f}/s: median {statistics.median(waits) * 1000:.0f} ms, "
                f"p95 {_pick(waits, 0.95) * 1000:.0f} ms, p99 {_pick(waits, 0.99) * 1000:.0f} ms, "
                f"max {waits[-1] * 1000:.0f} ms (no network, no server, read-ahead off)"
            )


if __name__ == "__main__":
    main()
