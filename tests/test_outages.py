"""Database outages: a fault-injecting proxy between the engine and MariaDB, lock waits,
deadlocks, and a locked SQLite file. The engine retries with backoff, logs a line per
attempt, never commits half a batch, catches up, and ends exact."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FaultProxy
from helpers import mysql_connect, receipt, reference_tables, write_lines
from sqlalchemy.engine import make_url

from coffeeshop.pipeline.engine import RetryPolicy, Syncer
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

TODAY = dt.date(2026, 11, 25)
FAST_RETRY = RetryPolicy(attempts=40, first_delay=0.05, max_delay=0.4)


def many(start: int, count: int) -> list[Any]:
    out: list[Any] = []
    for i in range(start, start + count):
        out.append(
            receipt(i, store=i % 5, total=f"{i % 40}.{i % 100:02d}", items=[("Latte", 1 + i % 2)])
        )
        if i % 9 == 0:
            out.append({"operationType": "delete", "documentKey": {"_id": i - 4}})
    return out


def through(proxy: FaultProxy, mysql_url: str) -> str:
    return (
        make_url(mysql_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def proxy(mysql_url: str) -> Any:
    url = make_url(mysql_url)
    p = FaultProxy((url.host or "127.0.0.1", url.port or 3306))
    yield p
    p.close()


def run_while(url: str, path: Path, action: Any, *, follow_until: int, fault: Any = None) -> Any:
    """Sync in a thread (following the file) while `action` injects faults; stop once
    `follow_until` events were applied."""
    stop = threading.Event()
    reports: list[Any] = []
    seen = {"events": 0}

    def on_batch(report: Any) -> None:
        seen["events"] = report.events
        if report.events >= follow_until:
            stop.set()

    def target() -> None:
        with Store(url, fault=fault) as store:
            syncer = Syncer(
                store,
                JsonlSource(path),
                limits=BatchLimits(max_events=200, poll_interval=0.02),
                today=lambda: TODAY,
                retry=FAST_RETRY,
                on_batch=on_batch,
            )
            reports.append(syncer.run(follow=True, stop=stop))

    thread = threading.Thread(target=target)
    thread.start()
    try:
        action()
    finally:
        thread.join(timeout=120)
        stop.set()
    assert not thread.is_alive(), f"the sync counted {seen['events']} of {follow_until} events"
    assert reports, "the sync thread died"
    return reports[0]


@pytest.mark.mariadb
def test_dropped_connections_are_retried_and_the_tables_end_exact(
    mysql_url: str, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    lines = many(0, 4000)
    write_lines(path, lines[:1000])
    url = through(proxy, mysql_url)
    caplog.set_level(logging.WARNING)

    def faults() -> None:
        step = (len(lines) - 1000) // 5 + 1
        for n in range(5):
            time.sleep(0.3)
            write_lines(path, lines[1000 + n * step : 1000 + (n + 1) * step])
            proxy.drop_all()

    calls = {"n": 0}

    def cut_inside_a_transaction(stage: str) -> None:
        # Every 4th batch loses its connections between its receipts and its aggregates:
        # the half-done transaction must roll back and the whole batch run again.
        if stage == "receipts":
            calls["n"] += 1
            if calls["n"] % 4 == 0:
                proxy.drop_all()

    report = run_while(url, path, faults, follow_until=len(lines), fault=cut_inside_a_transaction)
    assert proxy.dropped >= 5
    assert report.retries >= 1
    retries = [r for r in caplog.records if "retrying the batch" in r.getMessage()]
    assert retries and all("attempt" in r.getMessage() for r in retries)
    with Store(mysql_url) as store:
        assert store.read_tables(TODAY) == reference_tables(lines, TODAY)


@pytest.mark.mariadb
def test_refused_and_slow_connections_are_waited_out(
    mysql_url: str, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    lines = many(0, 3000)
    write_lines(path, lines[:500])
    url = through(proxy, mysql_url)
    caplog.set_level(logging.WARNING)

    def faults() -> None:
        time.sleep(0.3)
        with proxy.refuse():
            write_lines(path, lines[500:1500])
            time.sleep(1.5)  # the database is "down" for 1.5 s
        proxy.delay = 0.01  # then slow
        write_lines(path, lines[1500:])
        time.sleep(0.5)
        proxy.delay = 0.0

    run_while(url, path, faults, follow_until=len(lines))
    messages = [r.getMessage() for r in caplog.records]
    assert any(("retrying the batch" in m and "(2003)" in m) or "(2013)" in m for m in messages)
    assert not any("password" in m.lower() for m in messages)
    with Store(mysql_url) as store:
        assert store.read_tables(TODAY) == reference_tables(lines, TODAY)


@pytest.mark.mariadb
def test_a_lock_wait_timeout_retries_the_whole_batch(mysql_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = many(0, 300)
    write_lines(path, lines)
    with Store(mysql_url) as store:
        store.upgrade()
    blocker = mysql_connect(mysql_url)
    with blocker.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT * FROM cs_totals WHERE id = 1 FOR UPDATE")  # holds the row lock

    class ReleaseOnRetry(logging.Handler):
        """Lets the row lock go once the engine announces a retry: held until then, however
        slow the machine (a fixed timer released it before a loaded engine got there)."""

        def emit(self, record: logging.LogRecord) -> None:
            if "retrying the batch" in record.getMessage() and blocker.open:
                blocker.rollback()
                blocker.close()

    engine_log = logging.getLogger("coffeeshop.pipeline.engine")
    release = ReleaseOnRetry()
    engine_log.addHandler(release)
    lock_wait_url = make_url(mysql_url).update_query_dict(
        {"init_command": "SET innodb_lock_wait_timeout=1"}
    )
    try:
        with Store(lock_wait_url.render_as_string(hide_password=False)) as store:
            report = Syncer(store, JsonlSource(path), today=lambda: TODAY, retry=FAST_RETRY).run()
    finally:
        engine_log.removeHandler(release)
        if blocker.open:
            blocker.close()
    assert report.retries >= 1  # 1205 Lock wait timeout, then the batch ran again whole
    with Store(mysql_url) as store:
        assert store.read_tables(TODAY) == reference_tables(lines, TODAY)


@pytest.mark.mariadb
def test_a_deadlock_retries_the_whole_batch(
    mysql_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real InnoDB deadlock: the engine holds the checkpoint row and waits for `cs_daily`;
    another transaction holds `cs_daily` and asks for the checkpoint row. InnoDB rolls back
    the lighter transaction, which is the engine's (the other one has inserted 20,000 rows)."""
    path = tmp_path / "r.jsonl"
    lines = many(0, 300)
    write_lines(path, lines[:100])
    with Store(mysql_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()  # the checkpoint row exists
    write_lines(path, lines[100:])
    other = mysql_connect(mysql_url, autocommit=True)
    with other.cursor() as cur:
        cur.execute("CREATE TABLE ballast (n INT PRIMARY KEY) ENGINE=InnoDB")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO ballast SELECT seq FROM seq_1_to_20000")  # weight
        cur.execute("SELECT * FROM cs_daily FOR UPDATE")
    holds_checkpoint = threading.Event()

    def fault(stage: str) -> None:
        if stage == "receipts":  # the engine's batch has claimed the checkpoint row
            holds_checkpoint.set()

    reports: list[Any] = []

    def target() -> None:
        with Store(mysql_url, fault=fault) as store:
            reports.append(
                Syncer(store, JsonlSource(path), today=lambda: TODAY, retry=FAST_RETRY).run()
            )

    thread = threading.Thread(target=target)
    thread.start()
    try:
        assert holds_checkpoint.wait(30)
        time.sleep(0.2)  # the engine is now waiting for cs_daily
        with other.cursor() as cur:  # closes the cycle; InnoDB picks the engine as victim
            cur.execute("UPDATE cs_checkpoint SET version = version WHERE 1 = 1")
    finally:
        other.rollback()
        thread.join(timeout=60)
        with other.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS ballast")
        other.close()
    assert not thread.is_alive() and reports
    assert reports[0].retries >= 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying the batch" in m and "(1213)" in m for m in messages), messages
    with Store(mysql_url) as store:
        assert store.read_tables(TODAY) == reference_tables(lines, TODAY)


def test_sqlite_busy_with_another_writer_is_waited_out(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    lines = many(0, 300)
    write_lines(path, lines)
    db = tmp_path / "a.db"
    url = f"sqlite:///{db}"
    with Store(url) as store:
        store.upgrade()
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database for 1.5 s
    threading.Timer(1.5, lambda: other.execute("ROLLBACK")).start()
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute(
        "SELECT count(*) FROM cs_receipts"
    ).fetchone()  # and a reader keeps a snapshot open
    started = time.monotonic()
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY).run()
    assert time.monotonic() - started >= 1.0  # it waited for the writer, then went on
    reader.execute("COMMIT")
    with Store(url) as store:
        assert store.read_tables(TODAY) == reference_tables(lines, TODAY)
