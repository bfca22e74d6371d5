"""Concurrent writers as an operator would start them: real `coffeeshop` processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from helpers import receipt, reference_tables, write_lines

from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store


def coffeeshop(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "coffeeshop", *args],
        cwd=cwd,
        env={**os.environ, "COFFEESHOP_POLL_INTERVAL": "0.05", "COFFEESHOP_BATCH_WAIT": "0.05"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(start: int, count: int) -> list[Any]:
    out: list[Any] = []
    for i in range(start, start + count):
        out.append(
            receipt(i, store=i % 4, total=f"{i % 50}.{i % 100:02d}", items=[("Latte", 1 + i % 3)])
        )
        if i % 7 == 0:
            out.append(receipt(i - 3, store=1, total="1.00"))  # a replace of an earlier receipt
        if i % 11 == 0:
            out.append({"operationType": "delete", "documentKey": {"_id": i - 5}})
    return out


def wait_until_caught_up(url: str, path: Path, stalled_after: float = 180) -> None:
    """Until the checkpoint reaches the end of the file. A loaded machine may take long to
    get there: this fails only when the checkpoint has not moved for `stalled_after` s."""
    name = JsonlSource(path).name
    offset, moved = -1, time.monotonic()
    while time.monotonic() < moved + stalled_after:
        with Store(url) as store:
            checkpoint = store.load_checkpoint(name)
        now = -1 if checkpoint is None else json.loads(checkpoint.position)["offset"]
        if now == path.stat().st_size:
            return
        if now != offset:
            offset, moved = now, time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"sync stopped at offset {offset} of {path.stat().st_size}")


def synced_events(output: str) -> int:
    match = re.search(r"synced (\d+) event", output)
    assert match is not None, output
    return int(match.group(1))


def test_two_syncs_started_together_exactly_one_applies(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    everything = lines(0, 10_000)  # long enough that the two usually overlap
    write_lines(path, everything)
    first = coffeeshop("sync", "--source", str(path), "--db", db_url, cwd=tmp_path)
    second = coffeeshop("sync", "--source", str(path), "--db", db_url, cwd=tmp_path)
    results = [(p.wait(timeout=120), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in results)
    if codes == [0, 0]:
        # On a busy machine one process can finish before the other even starts: then the
        # late one must find nothing left to apply (it never contended for the lock).
        applied = sorted(synced_events(out + err) for _, out, err in results)
        assert applied[0] == 0 < applied[1], results
    else:
        assert codes == [0, 3], results
        loser = next(err for code, _, err in results if code == 3)
        assert "another coffeeshop writer holds the lock" in loser
    with Store(db_url) as store:
        assert store.read_tables(dt.date.today()) == reference_tables(everything, dt.date.today())


def test_repair_while_sync_follows_leaves_the_tables_exact(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, lines(0, 500))
    follower = coffeeshop("sync", "--follow", "--source", str(path), "--db", db_url, cwd=tmp_path)
    written: list[Any] = lines(0, 500)
    stop = threading.Event()

    def append() -> None:
        n = 500
        while not stop.is_set() and n < 10_000:  # bounded, however slow the repairs are
            more = lines(n, 50)
            write_lines(path, more)
            written.extend(more)
            n += 50
            time.sleep(0.05)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        repairs = []
        for _ in range(3):
            time.sleep(0.5)
            repair = coffeeshop(
                "reconcile", "--repair", "--source", str(path), "--db", db_url, cwd=tmp_path
            )
            repairs.append((repair.wait(timeout=600), *repair.communicate()))
        failed = [f"exit {code}: {out[-500:]}{err[-20000:]}" for code, out, err in repairs if code]
        assert not failed, "\n".join(failed)  # whole: the cause is at the end of a traceback
    finally:
        stop.set()
        writer.join()
    try:
        wait_until_caught_up(db_url, path)
        follower.send_signal(signal.SIGTERM)
        code = follower.wait(timeout=120)
        _, err = follower.communicate()
    finally:
        if follower.poll() is None:
            follower.kill()
    assert code == 143, err  # stopped by SIGTERM after a clean stop, as shells expect
    assert "Traceback" not in err
    today = dt.date.today()
    with Store(db_url) as store:
        assert store.read_tables(today) == reference_tables(written, today)
    check = coffeeshop("reconcile", "--source", str(path), "--db", db_url, cwd=tmp_path)
    assert check.wait(timeout=120) == 0, check.communicate()
