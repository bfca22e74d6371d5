"""The read-ahead process: same batches as reading inline, errors and stops carried across."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import receipt, write_lines

from coffeeshop.errors import SourceChanged
from coffeeshop.pipeline.readahead import ReadBatch, pack, read_ahead, read_inline, unpack
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource


def mixed_lines() -> list[object]:
    return [
        receipt(1, items=[("Latte", 2), ("Crème Brûlée 🍮", 1)]),
        receipt(2, total=-1),
        "not json",
        {"operationType": "delete", "documentKey": {"_id": 1}},
        {"operationType": "update", "documentKey": {"_id": 3}, "fullDocument": None},
        receipt({"$oid": "6650c7e2a1b2c3d4e5f60718"}, date="2024-02-29"),
    ]


def collect(reader: object, path: Path, *, max_events: int = 2) -> list[ReadBatch]:
    source = JsonlSource(path)
    source.open(None)
    try:
        return list(
            reader(source, BatchLimits(max_events=max_events), follow=False, stop=threading.Event())
        )  # type: ignore[operator]
    finally:
        source.close()


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
        path.stat().st_size - json.loads(batch.position)["offset"] for batch in inline
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
