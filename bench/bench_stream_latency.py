"""Change-stream latency added by the pipeline: prints numbers, asserts nothing.

A scripted change stream delivers `--rate` inserts per second for `--seconds`; each change is
*available to the driver* at its scheduled time (t0 + i / rate), and a getMore returns as soon
as one is (a server's awaitData wake-up, without the network). Each change goes through the
real engine (`Syncer`, `MongoSource`, the read-ahead process on a machine with 2+ cores) into
SQLite; the added latency of a change is the time from its availability to the commit of the
batch holding it. The stream imitates PyMongo where the source looks: a getMore's changes are
buffered in `stream._cursor._data` (`--hide-buffer` hides it, as a driver whose buffer the
source cannot see: batches then close at `--batch-wait`).

Not counted: the network, the server, PyMongo's BSON decoding of the reply.

    PYTHONPATH=src:bench .venv/bin/python bench/bench_stream_latency.py --rate 500 --seconds 20

To compare with another checkout, point PYTHONPATH at its `src` (the stand-in is here).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from typing import Any

from bson import Timestamp

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.store import Store

TODAY = dt.date(2026, 11, 25)


class _Reply:
    def __init__(self) -> None:
        self._data: collections.deque[dict[str, Any]] = collections.deque()


class TimedStream:
    """Changes `start`, `start + 1`, … each available at `t0 + i / rate` (monotonic clock,
    shared by the processes of this machine)."""

    def __init__(self, timeline: Timeline, start: int, max_await: float, batch: int) -> None:
        self.timeline = timeline
        self.position = start  # the next change to fetch from the "server"
        self.max_await = max_await
        self.batch = batch or 101
        self.reply = _Reply()
        self.resume_token: dict[str, str] | None = {"_data": f"{start:08d}"}

    @property
    def _cursor(self) -> _Reply:
        if self.timeline.hide_buffer:
            raise AttributeError("_cursor")
        return self.reply

    def try_next(self) -> dict[str, Any] | None:
        if not self.reply._data:
            self._get_more()
        if not self.reply._data:
            return None
        change = self.reply._data.popleft()
        # as PyMongo: the change's token, or after a reply's last change its post-batch token
        self.resume_token = change["_id"] if self.reply._data else {"_data": f"{self.position:08d}"}
        return change

    def _get_more(self) -> None:
        timeline = self.timeline
        deadline = time.monotonic() + self.max_await
        while True:
            ready = min(timeline.available(time.monotonic()), timeline.count)
            if ready > self.position or time.monotonic() >= deadline:
                break
            wake = timeline.at(self.position) if self.position < timeline.count else deadline
            time.sleep(max(0.0, min(wake, deadline) - time.monotonic()))
        end = min(ready, self.position + self.batch)
        for i in range(self.position, end):
            self.reply._data.append(timeline.change(i))
        self.position = max(self.position, end)
        if not self.reply._data:
            self.resume_token = {"_data": f"{self.position:08d}"}

    def close(self) -> None:
        pass

    def __enter__(self) -> TimedStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class Timeline:
    def __init__(self, docs: list[dict[str, Any]], rate: float, hide_buffer: bool) -> None:
        self.docs, self.rate, self.count = docs, rate, len(docs)
        self.hide_buffer = hide_buffer
        self.t0 = multiprocessing.Value("d", 0.0)  # set when the stream opens (in the reader)

    def available(self, now: float) -> int:
        return 0 if not self.t0.value else int((now - self.t0.value) * self.rate) + 1

    def at(self, i: int) -> float:
        return float(self.t0.value) + i / self.rate

    def change(self, i: int) -> dict[str, Any]:
        doc = self.docs[i]
        return {
            "_id": {"_data": f"{i + 1:08d}"},
            "operationType": "insert",
            "documentKey": {"_id": doc["_id"]},
            "fullDocument": doc,
            "clusterTime": Timestamp(1_795_000_000 + i // 1000, i % 1000 + 1),
            "wallTime": dt.datetime(2026, 11, 25, 12, 0, 0),
        }


class _Cursor:
    def __iter__(self) -> Any:
        return iter(())

    def close(self) -> None:
        pass


class TimedCollection:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline

    def find(self, *args: Any, **kwargs: Any) -> _Cursor:  # the snapshot: an empty collection
        return _Cursor()

    def watch(self, *, resume_after: Any = None, **options: Any) -> TimedStream:
        if resume_after is None:  # the start point, taken before the snapshot
            return TimedStream(self.timeline, 0, 0.0, 1)
        if not self.timeline.t0.value:
            self.timeline.t0.value = time.monotonic()
        max_await = (options.get("max_await_time_ms") or 1000) / 1000
        start = int(resume_after["_data"])
        return TimedStream(self.timeline, start, max_await, options.get("batch_size") or 0)


class TimedDatabase:
    """The database as the source asks it: the collection (with its codec options) and its
    `listCollections` entry (the source refuses a namespace that does not exist)."""

    def __init__(self, collection: TimedCollection) -> None:
        self.collection = collection

    def get_collection(self, name: str, **options: Any) -> TimedCollection:
        return self.collection

    def __getitem__(self, name: str) -> TimedCollection:
        return self.collection

    def list_collections(self, filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [{"name": "receipt", "type": "collection", "options": {}, "info": {}}]


class TimedClient:
    def __init__(self, timeline: Timeline) -> None:
        self.database = TimedDatabase(TimedCollection(timeline))
        self.admin = self

    def command(self, name: str) -> dict[str, Any]:
        return {"setName": "rs0", "ok": 1.0}

    def __getitem__(self, name: str) -> Any:
        return self.database

    def close(self) -> None:
        pass


def added_latency(url: str, args: argparse.Namespace) -> tuple[list[float], SyncReport, float]:
    """Each change's added latency, the run's report, and the CPU seconds of this (the
    applying) process during the run."""
    count = int(args.rate * args.seconds)
    generator = ReceiptGenerator(seed=7, stores=20, days=30, ids_until_now=True)
    timeline = Timeline(list(generator.iter_documents(count)), args.rate, args.hide_buffer)
    committed: list[tuple[float, int]] = []
    stop = threading.Event()

    def on_batch(report: SyncReport) -> None:
        committed.append((time.monotonic(), report.applied))
        if report.applied >= count:
            stop.set()

    safety = threading.Timer(args.seconds + 120, stop.set)
    safety.start()
    with Store(url) as store:
        syncer = Syncer(
            store,
            MongoSource("mongodb://bench/", client_factory=lambda: TimedClient(timeline)),
            limits=BatchLimits(max_wait=args.batch_wait),
            today=lambda: TODAY,
            on_batch=on_batch,
        )
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        report = syncer.run(follow=True, stop=stop)
        after = resource.getrusage(resource.RUSAGE_SELF)
    safety.cancel()
    seconds = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    if not committed or committed[-1][1] < count:
        raise SystemExit(f"not every change was applied: {committed[-3:]} of {count}")
    latencies, at = [], 0
    for i in range(count):
        while committed[at][1] <= i:
            at += 1
        latencies.append(committed[at][0] - timeline.at(i))
    return latencies, report, seconds


def _pick(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-wait", type=float, default=0.2)
    parser.add_argument("--hide-buffer", action="store_true")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{dt.datetime.now():%Y-%m-%d %H:%M} · Python {platform.python_version()} · "
        f"{os.cpu_count()} cores, load average {load} · scripted stream, SQLite"
    )
    with tempfile.TemporaryDirectory() as scratch:
        waits, report, cpu = added_latency(f"sqlite:///{scratch}/latency.db", args)
    waits.sort()
    print(
        f"{len(waits)} changes at {args.rate:.0f}/s{' (buffer hidden)' if args.hide_buffer else ''}"
        f": added latency p50 {statistics.median(waits) * 1000:.1f} ms, "
        f"p99 {_pick(waits, 0.99) * 1000:.1f} ms, max {waits[-1] * 1000:.1f} ms; "
        f"{report.batches} batches ({len(waits) / max(1, report.batches):.1f} changes each, "
        f"{cpu / max(1, report.batches) * 1000:.1f} ms of the applying process's CPU "
        "each: the commit's cost on an idle core)"
    )


if __name__ == "__main__":
    main()
