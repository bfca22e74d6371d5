"""The read-ahead process: same batches as reading inline, errors and stops carried across."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from helpers import receipt, write_lines

from coffeeshop.core.plan import Parsed
from coffeeshop.errors import SourceChanged
from coffeeshop.pipeline import readahead
from coffeeshop.pipeline.readahead import ReadBatch, pack, read_ahead, read_inline, unpack
from coffeeshop.sources.base import BatchLimits, Source
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store


def mixed_lines() -> list[object]:
    return [
        receipt(1, items=[("Latte", 2), ("Crème Brûlée 🍮", 1)]),
        receipt(2, total=-1),
        "not json",
        {"operationType": "delete", "documentKey": {"_id": 1}},
        {"operationType": "update", "documentKey": {"_id": 3}, "fullDocument": None},
        receipt({"$oid": "6650c7e2a1b2c3d4e5f60718"}, date="2024-02-29"),
    ]


def collect(
    reader: Callable[..., Iterator[ReadBatch]], path: Path, *, max_events: int = 2
) -> list[ReadBatch]:
    source = JsonlSource(path)
    source.open(None)
    try:
        return list(
            reader(source, BatchLimits(max_events=max_events), follow=False, stop=threading.Event())
        )
    finally:
        source.close()


def offset(batch: ReadBatch) -> int:
    """The file offset a batch's position names (every JSONL batch has one)."""
    assert batch.position is not None
    return int(json.loads(batch.position)["offset"])


def test_pack_and_unpack_round_trip_every_kind_of_event(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, mixed_lines())
    (batch,) = collect(read_inline, path, max_events=100)
    assert len(batch.events) == 6
    assert unpack(pack(batch.events)) == batch.events


def test_the_child_reads_the_same_batches_and_positions_as_inline(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, mixed_lines())
    inline = collect(read_inline, path)
    ahead = collect(read_ahead, path)
    assert ahead == inline  # positions, events, and how far behind the file each batch was
    assert [batch.behind for batch in inline] == [
        path.stat().st_size - offset(batch) for batch in inline
    ]


def test_a_source_error_in_the_child_is_raised_in_the_parent_as_itself(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i) for i in range(5)])
    source = JsonlSource(path)
    source.open(None)
    stop = threading.Event()
    batches = read_ahead(source, BatchLimits(poll_interval=0.01), follow=True, stop=stop)
    next(batches)
    path.write_text("")  # truncated under the follower
    with pytest.raises(SourceChanged, match="truncated"):
        next(batches)
    source.close()


class OneByOne:
    """A JSONL source handing out one line per batch (as a change stream hands out each
    server reply), that says when it has handed out everything."""

    def __init__(self, path: Path, done: Path) -> None:
        self.inner, self.done = JsonlSource(path), done
        self.name = self.inner.name

    def open(self, position: str | None) -> None:
        self.inner.open(position)

    def batches(self, limits: BatchLimits, *, follow: bool, stop: Any) -> Any:
        yield from self.inner.batches(BatchLimits(max_events=1), follow=follow, stop=stop)
        self.done.write_text("done")

    def close(self) -> None:
        self.inner.close()


def test_batches_queued_while_the_parent_was_busy_are_merged_up_to_the_limit(
    tmp_path: Path,
) -> None:
    """While the parent commits, the reader goes on: what queued meanwhile is applied as
    one batch (up to `max_events`), not one transaction per reply falling behind."""
    path, done = tmp_path / "r.jsonl", tmp_path / "done"
    write_lines(path, [receipt(i) for i in range(50)])
    source = OneByOne(path, done)
    source.open(None)
    batches = read_ahead(
        cast(Source, source), BatchLimits(max_events=10), follow=False, stop=threading.Event()
    )
    first = [next(batches)]
    deadline = time.monotonic() + 30
    while not done.exists() and time.monotonic() < deadline:  # the parent is "busy"
        time.sleep(0.01)
    got = [b for b in first + list(batches) if b.position is not None]
    source.close()
    assert all(len(b.events) <= 10 for b in got)
    ids = [e.receipt_id for b in got for e in b.events if isinstance(e, Parsed)]
    assert ids == [str(i) for i in range(50)]
    assert offset(got[-1]) == path.stat().st_size
    assert len(got) <= 7, [len(b.events) for b in got]  # 50 one-line batches without merging


def test_stop_ends_a_following_child_promptly(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1)])
    source = JsonlSource(path)
    source.open(None)
    stop = threading.Event()
    batches = read_ahead(source, BatchLimits(poll_interval=0.01), follow=True, stop=stop)
    next(batches)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert list(batches) == []
    assert time.monotonic() - started < 3
    source.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_reader_stopped_alone_is_an_error_not_the_end_of_the_source(
    tmp_path: Path, signum: int
) -> None:
    """The reader stopping on its own (SIGTERM or SIGKILL to its pid, this process not
    stopping) must not look like a source that ended: a `--follow` would exit 0 with the
    source unread. With this process stopping too (a signal to the group) it is a clean end:
    see test_cli's interrupted-sync test."""
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1)])
    source = JsonlSource(path)
    source.open(None)
    batches = read_ahead(
        source, BatchLimits(poll_interval=0.01), follow=True, stop=threading.Event()
    )
    next(batches)
    (reader,) = multiprocessing.active_children()
    assert reader.pid is not None
    os.kill(reader.pid, signum)
    with pytest.raises(RuntimeError, match="source reader process stopped"):
        list(batches)
    source.close()


def test_the_child_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(1)])
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coffeeshop",
            "sync",
            "--follow",
            "--source",
            str(path),
            "--db",
            f"sqlite:///{tmp_path / 'a.db'}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    children: list[int] = []
    deadline = time.monotonic() + 120
    while not children and time.monotonic() < deadline:
        time.sleep(0.1)
        tasks = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
        if tasks.exists():
            children = [int(pid) for pid in tasks.read_text().split()]
    assert children, "the reader process never started"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


BLOCKED_READER = """
import os, sys, time
sys.path.insert(0, {tests!r})
import pymongo
from fake_mongo import FakeClient


def hang() -> None:  # a getMore on a network that went silent: it never returns
    with open({mark!r} + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.replace({mark!r} + ".tmp", {mark!r})
    time.sleep(3600)


def client(*args, **kwargs):
    fake = FakeClient([{{"_id": n}} for n in range(6)], [None])
    fake.collection.getmore_faults.append(hang)
    return fake


pymongo.MongoClient = client
"""


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_a_kill_9_of_the_parent_frees_the_writer_lock_while_the_reader_is_blocked(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The forked reader inherits the writer lock (SQLite: the flock'ed descriptor; MariaDB:
    the GET_LOCK connection's socket). Blocked in a source call no stop request ends, it
    must neither keep the lock after the parent's `kill -9` nor outlive it."""
    url = (
        f"sqlite:///{tmp_path / 'a.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("mysql_url")
    )
    mark = tmp_path / "reader-blocked"
    (tmp_path / "sitecustomize.py").write_text(
        BLOCKED_READER.format(tests=str(Path(__file__).parent), mark=str(mark))
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coffeeshop",
            "sync",
            "--follow",
            "--source",
            "mongodb://127.0.0.1:1",
        ],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "COFFEESHOP_DB": url,
            "COFFEESHOP_BATCH_SIZE": "2",
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not mark.exists() and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), parent.communicate()[1] if parent.poll() is not None else "timeout"

        reader = int(mark.read_text())
        assert reader != parent.pid  # blocked in the forked reader, the parent holds the lock
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        with Store(url) as store:
            store.acquire_writer(wait=30)  # WriterBusy when the reader kept it
            store.release_writer()
        deadline = time.monotonic() + 30
        while _alive(reader) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(reader), "the reader outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        if "reader" in locals() and _alive(reader):
            os.kill(reader, signal.SIGKILL)


@pytest.mark.parametrize("reader", [read_ahead, read_inline])
def test_the_collector_runs_less_often_while_reading_and_as_before_after(
    tmp_path: Path, reader: Callable[..., Iterator[ReadBatch]]
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, mixed_lines())
    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    source = JsonlSource(path)
    source.open(None)
    try:
        for _ in reader(source, BatchLimits(max_events=2), follow=False, stop=threading.Event()):
            seen.append(gc.get_threshold())
    finally:
        source.close()
    assert seen and all(t[0] >= readahead.YOUNG_OBJECTS for t in seen)
    assert all(t[1:] == before[1:] for t in seen)
    assert gc.get_threshold() == before


def test_the_collectors_thresholds_come_back_when_the_reader_fails_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, mixed_lines())
    before = gc.get_threshold()

    def refuse(self: object) -> None:
        raise OSError("no more processes")

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    with pytest.raises(OSError, match="no more processes"):
        collect(read_ahead, path)
    assert gc.get_threshold() == before
