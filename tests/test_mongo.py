"""The MongoDB source end to end: mongomock for a standalone server (no change streams),
the scripted fake of `fake_mongo` for a replica set (snapshot, change stream, resume
tokens, failures), a real subprocess for credentials, and an optional live replica set.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import fake_mongo
import mongomock
import pytest
from bson import Decimal128, ObjectId, json_util
from fake_mongo import FakeClient, delete, drop, insert, invalidate, replace, token, update
from helpers import execute_sql, free_port, receipt, reference_tables
from pymongo.errors import AutoReconnect, CursorNotFound, NetworkTimeout, OperationFailure
from pymongo.errors import ServerSelectionTimeoutError as SelectionTimeout

from coffeeshop import retry
from coffeeshop.core.receipts import render_document
from coffeeshop.errors import ConfigError, SourceHistoryLost, SourceUnavailable
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.sources.mongo import stream as mongo_stream
from coffeeshop.sources.mongo.errors import describe
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)  # a Wednesday
URI = "mongodb://fake-host:27017/"
NAME = "mongodb:fake-host:27017/coffeeshop.receipt"  # MongoSource(URI).name
MAX_EVENTS = 1000


# -- helpers -------------------------------------------------------------------------------------


def oid(n: int) -> ObjectId:
    return ObjectId(f"{n:024x}")


def doc(n: int, *, total: str | None = None, items: list[tuple[str, int]] | None = None) -> Any:
    """A receipt as PyMongo returns it: ObjectId _id, Decimal128 total; even numbers carry a
    datetime transactionDate (the hour comes from it), odd ones the original strings."""
    d = receipt(
        oid(n),
        store=1 + n % 3,
        date=f"2026-11-{10 + n % 15:02d}",
        time=f"{7 + n % 10:02d}:15:00",
        total=Decimal128(total if total is not None else f"{n}.25"),
        items=items if items is not None else [("Latte", 1 + n % 2), ("Muffin", 1)],
    )
    if n % 2 == 0:
        d["transactionDate"] = dt.datetime(2026, 11, 10 + n % 15, 6 + n % 12, 5, 9)
        del d["transactionTime"]
    return d


def invalid(n: int) -> Any:
    d = doc(n)
    d["total_price"] = "12,50"
    return d


class RecordingStop(threading.Event):
    """A stop event whose timed waits (the source's backoff) return at once, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        self.waits.append(round(timeout, 3))
        return self.is_set()


def fake_source(client: Any, **options: Any) -> MongoSource:
    return MongoSource(URI, client_factory=lambda: client, **options)


def sync(
    url: str,
    source: MongoSource,
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    read_ahead: bool = False,
    max_events: int = MAX_EVENTS,
    fault: Any = None,
    rebuild: bool = True,
    on_batch: Any = None,
) -> SyncReport:
    with Store(url, fault=fault) as store:
        syncer = Syncer(
            store,
            source,
            # max_wait is long so batches close only at max_events or an idle getMore.
            limits=BatchLimits(max_events=max_events, max_wait=30.0, poll_interval=0.01),
            today=lambda: TODAY,
            read_ahead=read_ahead,
            rebuild_on_history_lost=rebuild,
            on_batch=(lambda report: on_batch(store, report)) if on_batch else None,
        )
        return syncer.run(follow=follow, stop=stop)


def tables(url: str) -> Any:
    with Store(url) as store:
        return store.read_tables(TODAY)


def committed_token(store: Store) -> Any:
    found = store.load_checkpoint(NAME)
    assert found is not None
    return json_util.loads(json.loads(found.position)["resume"])


def checkpoint(url: str, name: str = NAME) -> Any:
    """The committed position, its resume token and _id decoded (without the identity of
    its history, which `test_mongo_history` checks)."""
    with Store(url) as store:
        found = store.load_checkpoint(name)
    assert found is not None
    state = json.loads(found.position)
    state.pop("history", None)
    for field in ("resume", "after", "marks"):
        if state.get(field) is not None:
            state[field] = json_util.loads(state[field])
    return state


def poll_highs(url: str, name: str = NAME) -> dict[str, Any]:
    """The highest _id per type that the last poll read (its newest mark)."""
    return dict(checkpoint(url, name)["marks"][-1][1])


def stream_at(position: int) -> dict[str, Any]:
    return {"mode": "stream", "resume": token(position)}


def changes(script: list[Any]) -> list[Any]:
    return [step for step in script if isinstance(step, dict)]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analysis.db'}"


# -- a standalone server (mongomock): no change streams, polling by _id ----------------------------


def mongomock_client(docs: list[Any]) -> Any:
    client = fake_mongo.mongomock_client()
    if docs:
        client["coffeeshop"]["receipt"].insert_many(copy.deepcopy(docs))
    return client


def test_mongomock_standalone_reads_every_document_then_polls_after_the_last_id(
    db_url: str,
) -> None:
    docs = [doc(n) for n in range(1, 13)]
    client = mongomock_client(docs)
    source = MongoSource("mongodb://localhost/", client_factory=lambda: client)
    report = sync(db_url, source, read_ahead=True, max_events=5)  # the forked reader process
    assert report.applied == 12 and report.quarantined == 0
    assert tables(db_url) == reference_tables(docs, TODAY)
    name = source.name
    assert poll_highs(db_url, name) == {"objectId": oid(12)}
    assert checkpoint(db_url, name)["swept"] is not None  # the first read was a sweep

    later = [doc(n) for n in range(13, 16)]
    client["coffeeshop"]["receipt"].insert_many(copy.deepcopy(later))
    again = MongoSource("mongodb://localhost/", client_factory=lambda: client)
    report = sync(db_url, again, read_ahead=True, max_events=5)
    # the trailing window: from the highest _id of the last poll (read again, harmlessly)
    assert report.applied == 1 + 3
    assert tables(db_url) == reference_tables(docs + later, TODAY)
    assert poll_highs(db_url, name) == {"objectId": oid(15)}


def test_mongomock_standalone_logs_the_polling_warning(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = mongomock_client([doc(1)])
    sync(sqlite_url, MongoSource("mongodb://localhost/", client_factory=lambda: client))
    warnings = [
        r for r in caplog.records if r.name == "coffeeshop.mongo" and r.levelname == "WARNING"
    ]
    assert any("Falling back to polling" in r.getMessage() for r in warnings)


def test_a_standalone_server_is_polled_by_id_with_a_warning(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    docs = [doc(n) for n in range(1, 5)]
    client = FakeClient(docs, [], replica_set=False)
    sync(sqlite_url, fake_source(client))
    (warning,) = [r for r in caplog.records if r.name == "coffeeshop.mongo"]
    assert warning.levelname == "WARNING"
    assert "standalone server" in warning.getMessage()
    assert "deletes made while no sync runs are NOT seen" in warning.getMessage()
    assert client.collection.watch_calls == []  # no change stream on a standalone

    client.collection.docs.append(doc(7))
    report = sync(sqlite_url, fake_source(client))
    assert report.applied == 1 + 1  # the window starts at the last poll's highest _id
    assert client.collection.find_calls[-1]["filter"] == {"$nor": [{"_id": {"$lt": oid(4)}}]}
    assert tables(sqlite_url) == reference_tables([*docs, doc(7)], TODAY)


def test_mongomock_invalid_documents_are_quarantined_as_extended_json(sqlite_url: str) -> None:
    docs = [doc(1), invalid(2), doc(3), invalid(5)]
    client = mongomock_client(docs)
    report = sync(sqlite_url, MongoSource("mongodb://localhost/", client_factory=lambda: client))
    assert report.applied == 2 and report.quarantined == 2
    assert tables(sqlite_url) == reference_tables(docs, TODAY)
    with Store(sqlite_url) as store:
        rows = {row["receipt_id"]: row for row in store.quarantine_rows()}
    assert set(rows) == {str(oid(2)), str(oid(5))}
    for n in (2, 5):
        row = rows[str(oid(n))]
        assert row["reason"].startswith("total_price: must be a decimal number")
        assert row["position"] == "poll"
        assert row["raw"] == render_document(invalid(n))
        assert json_util.loads(row["raw"]) == invalid(n)  # relaxed Extended JSON, exact
        assert f'{{"$oid": "{oid(n)}"}}' in row["raw"]
    assert '"$date"' in rows[str(oid(2))]["raw"]  # the datetime transactionDate


def test_reconcile_against_mongomock_finds_tampering_and_repair_fixes_it(sqlite_url: str) -> None:
    docs = [doc(n) for n in range(1, 9)] + [invalid(9)]
    client = mongomock_client(docs)

    def source() -> MongoSource:
        return MongoSource("mongodb://localhost/", client_factory=lambda: client)

    sync(sqlite_url, source())
    with Store(sqlite_url) as store:
        clean = reconcile(store, source(), today=TODAY)
        assert clean.total_differences == 0
        assert clean.receipts == 8 and clean.quarantined == 1
        execute_sql(store, "UPDATE item_performance SET total_sold = 99 WHERE item_name = 'Muffin'")
        execute_sql(store, "DELETE FROM store_monthly")
        found = reconcile(store, source(), today=TODAY)
        assert found.counts["item_performance"] == 1
        assert found.counts["store_monthly"] == 3
        assert any(
            str(d) == "item_performance 'Muffin': expected 8, found 99" for d in found.differences
        )
        repaired = reconcile(store, source(), today=TODAY, repair=True)
        assert repaired.repaired
        assert reconcile(store, source(), today=TODAY).total_differences == 0
    assert tables(sqlite_url) == reference_tables(docs, TODAY)


def test_polling_resumes_after_string_ids_in_braces(sqlite_url: str) -> None:
    # .NET-style GUID strings, e.g. Guid.ToString("B"), are plausible receipt _ids.
    guids = [f"{{3F2504E0-4F89-11D3-9A0C-0305E82C33{n:02d}}}" for n in range(1, 4)]
    docs = [{**doc(n), "_id": guid} for n, guid in enumerate(guids[:2], start=1)]
    client = mongomock_client(docs)
    sync(sqlite_url, MongoSource("mongodb://localhost/", client_factory=lambda: client))
    later = {**doc(3), "_id": guids[2]}
    client["coffeeshop"]["receipt"].insert_one(copy.deepcopy(later))
    report = sync(sqlite_url, MongoSource("mongodb://localhost/", client_factory=lambda: client))
    assert report.applied == 1 + 1  # the second GUID again (the window), and the new one
    assert tables(sqlite_url) == reference_tables([*docs, later], TODAY)


# -- a replica set (scripted fake): snapshot, then the change stream ------------------------------


def test_snapshot_then_stream_takes_the_start_token_before_the_snapshot(db_url: str) -> None:
    docs = [doc(1), doc(2), doc(3)]
    script = [
        insert(doc(4)),
        replace(doc(1, total="99.90", items=[("Mocha", 3)])),
        update(oid(2), doc(2, total="0.50"), total_price=Decimal128("0.50")),
        update(oid(3), None, total_price=Decimal128("1")),  # looked up after its delete
        delete(oid(3)),
        insert(invalid(5)),
        None,
    ]
    client = FakeClient(docs, script)
    positions: list[Any] = []
    report = sync(
        db_url,
        fake_source(client),
        on_batch=lambda store, _: positions.append(store.load_checkpoint(NAME).position),
    )
    calls = client.collection.calls
    assert [name for name, _ in calls] == ["watch", "find", "watch"]
    assert calls[0][1] == {
        "full_document": "updateLookup",
        "resume_after": None,
        "max_await_time_ms": None,
        "batch_size": None,
    }
    assert calls[1][1] == {
        "filter": {},
        "sort": [("_id", 1)],
        "batch_size": MAX_EVENTS,
        "limit": 0,
    }
    assert calls[2][1] == {
        "full_document": "updateLookup",
        "resume_after": token(0),  # the token taken before the snapshot
        "max_await_time_ms": 10,
        "batch_size": MAX_EVENTS,
    }
    # the snapshot's batch already commits a stream position: the start token
    assert [json.loads(p)["mode"] for p in positions] == ["stream", "stream"]
    assert json_util.loads(json.loads(positions[0])["resume"]) == token(0)
    assert checkpoint(db_url) == stream_at(7)
    assert report.applied == 3 + 4 and report.skipped == 1 and report.quarantined == 1
    assert tables(db_url) == reference_tables(docs + changes(script), TODAY)
    assert tables(db_url) == reference_tables(client.collection.docs, TODAY)
    with Store(db_url) as store:
        (row,) = store.quarantine_rows()
    assert row["receipt_id"] == str(oid(5))
    assert row["position"].startswith("change at 2026-11-18T")  # the change's clusterTime
    assert row["raw"] == render_document(invalid(5))
    assert client.closed == 1  # the run's one client is closed at the end


def test_changes_seen_in_the_snapshot_and_again_in_the_stream_change_nothing(
    sqlite_url: str,
) -> None:
    # After the start token and before the snapshot read: doc 9 was inserted, doc 1
    # updated and doc 2 deleted. The snapshot shows all three; the stream then replays them.
    updated = doc(1, total="42.00", items=[("Tea", 5)])
    docs = [updated, doc(3), doc(9)]
    script: list[Any] = [insert(doc(9)), update(oid(1), updated, total_price=Decimal128("42.00"))]
    script += [delete(oid(2)), None]
    client = FakeClient(docs, script)
    seen: list[Any] = []
    report = sync(
        sqlite_url,
        fake_source(client),
        on_batch=lambda store, _: seen.append(
            (store.read_tables(TODAY), list(store.iter_receipts()))
        ),
    )
    assert report.batches == 2
    (after_snapshot, receipts_before), (after_stream, receipts_after) = seen
    assert after_stream == after_snapshot and receipts_after == receipts_before
    assert after_stream == reference_tables(docs, TODAY)
    assert checkpoint(sqlite_url) == stream_at(4)


def test_snapshot_and_stream_through_the_read_ahead_process(sqlite_url: str) -> None:
    docs = [doc(n) for n in range(1, 8)]
    script = [insert(doc(8)), delete(oid(2)), replace(doc(3, total="3.33")), None]
    client = FakeClient(docs, script)
    report = sync(sqlite_url, fake_source(client), read_ahead=True, max_events=3)
    assert report.applied == 7 + 3
    assert tables(sqlite_url) == reference_tables(docs + changes(script), TODAY)
    assert checkpoint(sqlite_url) == stream_at(4)


def test_a_second_run_resumes_after_the_committed_token(sqlite_url: str) -> None:
    docs = [doc(1), doc(2)]
    script = [insert(doc(3)), None, insert(doc(4)), delete(oid(1)), None]
    client = FakeClient(docs, script)
    first = sync(sqlite_url, fake_source(client))
    assert first.applied == 3
    assert checkpoint(sqlite_url) == stream_at(2)

    before = len(client.collection.calls)
    second = sync(sqlite_url, fake_source(client))
    assert second.applied == 2  # only the later changes
    assert client.collection.calls[before:] == [
        (
            "watch",
            {
                "full_document": "updateLookup",
                "resume_after": token(2),
                "max_await_time_ms": 10,
                "batch_size": MAX_EVENTS,
            },
        )
    ]
    assert checkpoint(sqlite_url) == stream_at(5)
    assert tables(sqlite_url) == reference_tables(docs + changes(script), TODAY)


class Crash(Exception):
    pass


@pytest.mark.parametrize("stage", ["receipts", "checkpoint"])
def test_a_crash_inside_a_stream_batch_rereads_from_the_last_committed_token(
    sqlite_url: str, stage: str
) -> None:
    docs = [doc(1), doc(2), doc(3)]
    script: list[Any] = [insert(doc(4)), insert(doc(5)), insert(doc(6)), delete(oid(1))]
    script += [replace(doc(2, total="7.00")), None]
    client = FakeClient(docs, script)
    applied = {"n": 0}

    def fault(at: str) -> None:
        if at == stage:
            applied["n"] += 1
            if applied["n"] == 4:  # snapshot (2 docs), snapshot (1 doc), stream, stream ← here
                raise Crash(at)

    with pytest.raises(Crash):
        sync(sqlite_url, fake_source(client), max_events=2, fault=fault)
    assert checkpoint(sqlite_url) == stream_at(2)  # after the first stream batch
    assert tables(sqlite_url) == reference_tables(docs + changes(script)[:2], TODAY)

    before = len(client.collection.calls)
    report = sync(sqlite_url, fake_source(client), max_events=2)
    assert client.collection.calls[before][1]["resume_after"] == token(2)
    assert report.applied == 3
    assert tables(sqlite_url) == reference_tables(docs + changes(script), TODAY)
    assert checkpoint(sqlite_url) == stream_at(6)


def test_a_crash_during_the_snapshot_reads_it_again_and_keeps_the_start_token(
    sqlite_url: str,
) -> None:
    docs = [doc(n) for n in range(1, 6)]
    script = [insert(doc(6)), delete(oid(1)), None]
    client = FakeClient(docs, script)
    batches = {"n": 0}

    def fault(at: str) -> None:
        if at == "aggregates":
            batches["n"] += 1
            if batches["n"] == 2:
                raise Crash(at)

    with pytest.raises(Crash):
        sync(sqlite_url, fake_source(client), max_events=2, fault=fault)
    assert checkpoint(sqlite_url) == {"mode": "snapshot", "resume": token(0), "after": oid(2)}

    before = len(client.collection.calls)
    sync(sqlite_url, fake_source(client), max_events=2)
    calls = client.collection.calls[before:]
    # no new start token: the snapshot is read again, then the stream starts at the old token
    assert [name for name, _ in calls] == ["find", "watch"]
    assert calls[0][1]["filter"] == {}
    assert calls[1][1]["resume_after"] == token(0)
    assert tables(sqlite_url) == reference_tables(docs + changes(script), TODAY)
    assert checkpoint(sqlite_url) == stream_at(3)


def test_idle_post_batch_tokens_are_committed_while_following(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mongo_stream, "IDLE_COMMIT_SECONDS", 0.0)
    docs = [doc(1), doc(2)]
    client = FakeClient(docs, [None, None, None])  # three empty getMores, then idle
    stop = threading.Event()
    committed: list[Any] = []

    def on_batch(store: Store, _: SyncReport) -> None:
        committed.append(committed_token(store))
        if committed[-1] == token(3):
            stop.set()

    safety = threading.Timer(10.0, stop.set)
    safety.start()
    try:
        report = sync(sqlite_url, fake_source(client), follow=True, stop=stop, on_batch=on_batch)
    finally:
        safety.cancel()
    assert committed == [token(0), token(1), token(2), token(3)]
    assert report.applied == 2
    assert checkpoint(sqlite_url) == stream_at(3)


def test_the_changes_of_a_server_reply_commit_before_the_next_getmore(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady writes no idle getMore comes: a batch closes when the driver holds no
    more changes of the last reply (PyMongo's buffer), not `max_wait` (30 s here) later.
    So reply [3, 4] commits before the next getMore, which fails, and the stream resumes
    after 4; a batch held for `max_wait` would have been dropped and read again."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: 0.0)
    monkeypatch.setattr(mongo_stream, "IDLE_COMMIT_SECONDS", 0.0)
    script = [insert(doc(3)), insert(doc(4)), AutoReconnect("reset"), insert(doc(5)), None]
    client = FakeClient([doc(1)], script)
    client.collection.replies = True
    stop = RecordingStop()
    committed: list[Any] = []

    def on_batch(store: Store, _: SyncReport) -> None:
        committed.append(committed_token(store))
        if committed[-1] == token(5):
            stop.set()

    safety = threading.Timer(20.0, stop.set)
    safety.start()
    try:
        report = sync(sqlite_url, fake_source(client), follow=True, stop=stop, on_batch=on_batch)
    finally:
        safety.cancel()
    assert committed == [token(0), token(2), token(4), token(5)]
    assert [c["resume_after"] for c in client.collection.watch_calls] == [None, token(0), token(2)]
    assert report.applied == 3 + 1  # doc 1 (snapshot), 3, 4, 5: none read twice


# -- a stream that can no longer resume: rebuild from a fresh snapshot ----------------------------


def test_history_lost_286_rebuilds_from_a_fresh_snapshot(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    docs = [doc(1), doc(2), doc(3)]
    lost = OperationFailure("Resume of change stream was not possible", code=286)
    script = [insert(doc(4)), None, lost, insert(doc(6)), None]
    client = FakeClient(docs, script)
    sync(db_url, fake_source(client))
    assert checkpoint(db_url) == stream_at(2)
    # changes that fell off the oplog: the stream will never deliver them
    coll = client.collection
    coll.docs = [d for d in coll.docs if d["_id"] != oid(2)]
    coll.docs[0] = doc(1, total="10.10", items=[("Scone", 4)])

    before = len(coll.calls)
    report = sync(db_url, fake_source(client))
    assert report.rebuilds == 1
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "OperationFailure 286" in message and "cannot resume from the checkpoint" in message
    assert "Rebuilding the tables from a fresh snapshot" in message
    assert [kw["resume_after"] for call, kw in coll.calls[before:] if call == "watch"] == [
        token(2),  # the failed stream
        None,  # the fresh start token, before the snapshot
        token(3),  # the rebuild's stream
        token(5),  # the rebuild reads on from its end at its commit (nothing new)
        token(5),  # following on from the rebuilt checkpoint
    ]
    assert tables(db_url) == reference_tables(coll.docs, TODAY)
    assert {d["_id"] for d in coll.docs} == {oid(1), oid(3), oid(4), oid(6)}
    assert checkpoint(db_url) == stream_at(5)


@pytest.mark.parametrize("end", [drop(), invalidate()], ids=["drop", "invalidate"])
def test_a_drop_or_invalidate_event_rebuilds_from_a_fresh_snapshot(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, end: dict[str, Any]
) -> None:
    docs = [doc(1), doc(2)]
    script = [insert(doc(3)), None, end, insert(doc(7)), None]
    client = FakeClient(docs, script)
    sync(sqlite_url, fake_source(client))
    report = sync(sqlite_url, fake_source(client))
    assert report.rebuilds == 1
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    article = "an" if end["operationType"] == "invalidate" else "a"
    assert f"ended with {article} '{end['operationType']}' event" in error.getMessage()
    expected = {oid(7)} if end["operationType"] == "drop" else {oid(1), oid(2), oid(3), oid(7)}
    assert {d["_id"] for d in client.collection.docs} == expected
    assert tables(sqlite_url) == reference_tables(client.collection.docs, TODAY)
    assert checkpoint(sqlite_url) == stream_at(5)


def test_history_lost_stops_with_source_history_lost_when_rebuild_is_off(sqlite_url: str) -> None:
    docs = [doc(1), doc(2)]
    lost = OperationFailure("Resume of change stream was not possible", code=286)
    client = FakeClient(docs, [insert(doc(3)), None, lost, insert(doc(4)), None])
    sync(sqlite_url, fake_source(client))
    with pytest.raises(SourceHistoryLost, match="cannot resume from the checkpoint"):
        sync(sqlite_url, fake_source(client), rebuild=False)
    assert checkpoint(sqlite_url) == stream_at(2)  # untouched
    assert tables(sqlite_url) == reference_tables([*docs, doc(3)], TODAY)


def test_history_lost_when_reopening_the_stream_rebuilds(sqlite_url: str) -> None:
    docs = [doc(1), doc(2), doc(3)]
    script = [insert(doc(4)), None, insert(doc(5)), delete(oid(1)), None, insert(doc(6)), None]
    client = FakeClient(docs, script)
    sync(sqlite_url, fake_source(client))
    assert checkpoint(sqlite_url) == stream_at(2)
    # the sync was down while the oplog rolled past its checkpoint: resuming from
    # token(2) now fails in watch() itself with ChangeStreamHistoryLost (286)
    client.collection.roll_oplog(5)
    report = sync(sqlite_url, fake_source(client))
    assert report.rebuilds == 1
    assert tables(sqlite_url) == reference_tables(client.collection.docs, TODAY)
    assert checkpoint(sqlite_url) == stream_at(7)


# -- network errors: back off, resume from the last committed position ---------------------------


@pytest.mark.parametrize("follow", [False, True], ids=["once", "follow"])
def test_network_errors_back_off_with_increasing_delays_then_the_stream_continues(
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    follow: bool,
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)  # no jitter
    docs = [doc(1), doc(2)]
    failures = [AutoReconnect("connection reset"), NetworkTimeout("timed out")]
    failures.append(SelectionTimeout("no primary available"))
    script = [*failures, insert(doc(3)), delete(oid(1)), None]
    client = FakeClient(docs, script)
    stop = RecordingStop()

    def on_batch(store: Store, _: SyncReport) -> None:
        if committed_token(store) == token(6):  # following: stop once everything is in
            stop.set()

    report = sync(sqlite_url, fake_source(client), follow=follow, stop=stop, on_batch=on_batch)
    assert stop.waits == [0.5, 1.0, 2.0]
    warnings = [r.getMessage() for r in caplog.records if r.name == "coffeeshop.mongo"]
    limit = "" if follow else " of 5"
    assert len(warnings) == 3
    for attempt, (line, kind, delay) in enumerate(
        zip(
            warnings,
            ["AutoReconnect", "NetworkTimeout", "ServerSelectionTimeoutError"],
            [0.5, 1.0, 2.0],
            strict=True,
        ),
        start=1,
    ):
        assert line.startswith(
            f"MongoDB error, retrying in {delay:.1f} s (attempt {attempt}{limit} took "
        )
        assert f"cannot read the change stream on {NAME}: {kind}" in line
    # every reopened stream resumes from the committed position: nothing is skipped
    assert [c["resume_after"] for c in client.collection.watch_calls] == [None] + [token(0)] * 4
    assert report.applied == 2 + 2
    assert tables(sqlite_url) == reference_tables(docs + changes(script), TODAY)
    assert checkpoint(sqlite_url) == stream_at(6)


def test_more_failures_than_the_retry_limit_raise_and_apply_nothing_half(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    docs = [doc(1), doc(2)]
    script: list[Any] = [insert(doc(3)), insert(doc(4))]  # one batch of max_events=2, committed
    script += [AutoReconnect(f"connection reset #{n}") for n in range(1, 7)]
    script += [insert(doc(5)), None]
    client = FakeClient(docs, script)
    stop = RecordingStop()
    with pytest.raises(
        SourceUnavailable, match=r": AutoReconnect: connection reset #6 \(gave up after 5 retries, "
    ):
        sync(sqlite_url, fake_source(client), stop=stop, max_events=2)
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len([r for r in caplog.records if r.name == "coffeeshop.mongo"]) == 5
    # the batch of doc 3 and doc 4 is committed, and nothing after it
    assert checkpoint(sqlite_url) == stream_at(2)
    assert tables(sqlite_url) == reference_tables([*docs, doc(3), doc(4)], TODAY)
    with Store(sqlite_url) as store:
        assert store.count(schema.receipts) == 4

    report = sync(sqlite_url, fake_source(client), max_events=2)  # the server is back
    assert report.applied == 1  # doc 5, read from the committed token
    assert tables(sqlite_url) == reference_tables(docs + changes(script), TODAY)


def test_failures_after_a_replayed_change_still_count_toward_the_limit(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    script = [insert(doc(2)), *[AutoReconnect(f"reset #{n}") for n in range(1, 7)], None]
    client = FakeClient([doc(1)], script)
    stop = RecordingStop()
    try:
        with pytest.raises(SourceUnavailable, match="after 5 retries"):
            sync(sqlite_url, fake_source(client), stop=stop)
    finally:
        print("backoff delays:", stop.waits)
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 8.0]


# -- credentials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "hosts"),
    [
        ("mongodb://user:secret@127.0.0.1:27017/?authSource=admin", "127.0.0.1:27017"),
        (
            "mongodb://user:secret@db1.example.com,db2.example.com:27018/shop?replicaSet=rs0",
            "db1.example.com:27017,db2.example.com:27018",
        ),
        (
            "mongodb+srv://user:secret@cluster0.example.net/?retryWrites=true",
            "cluster0.example.net",
        ),
        ("mongodb://user:se%40cret%3A@host.example:27019", "host.example:27019"),
        ("mongodb://user:sec@ret@host.example:27017/", "host.example:27017"),  # unescaped @
    ],
)
def test_the_source_name_never_contains_credentials(uri: str, hosts: str) -> None:
    source = MongoSource(uri, database="shop", collection="receipts")
    assert source.name == f"mongodb:{hosts}/shop.receipts"
    assert "user" not in source.name and "sec" not in source.name


SITECUSTOMIZE = """\
import random

random.uniform = lambda low, high: 0.0  # no backoff sleeps in this test subprocess
"""


def test_cli_sync_with_an_unreachable_server_fails_with_one_line_and_no_password(
    tmp_path: Path,
) -> None:
    # timeoutMS=200 only works around the ignored serverSelectionTimeoutMS (see the xfail
    # test below); the sitecustomize removes the backoff waits, not the retries.
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    uri = "mongodb://user:secret@127.0.0.1:1/?serverSelectionTimeoutMS=200&timeoutMS=200"
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", "sync", "--source", uri],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "COFFEESHOP_DB": f"sqlite:///{tmp_path / 'a.db'}",
            "COFFEESHOP_LOG_LEVEL": "DEBUG",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "secret" not in output and "user:" not in output
    assert "Traceback" not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        "error: cannot connect on mongodb:127.0.0.1:1/coffeeshop.receipt: no server answered "
        "at 127.0.0.1:1 (connection refused) (gave up after 5 retries, "
    ), errors[0]
    assert result.stderr.count("MongoDB error, retrying") == 5


@pytest.mark.parametrize("command", [["sync", "--once"], ["reconcile"]], ids=["sync", "reconcile"])
def test_a_down_mongodb_is_reported_in_bounded_time_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    """A closed port, real PyMongo, the real command: one readable line per attempt that
    says how long the attempt took (no topology dump), one error line, exit 2, and no
    database file. The time it takes is printed for the record, not asserted."""
    import time

    port = free_port()
    database = tmp_path / "analysis.db"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", *command, "--source", f"mongodb://127.0.0.1:{port}/"],
        cwd=tmp_path,
        env={**os.environ, "COFFEESHOP_DB": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(f"{command[0]}: a down MongoDB reported in {time.monotonic() - started:.1f} s")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Topology Description" not in result.stderr
    unanswered = f"no server answered at 127.0.0.1:{port} (connection refused)"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(
        f"error: cannot connect on mongodb:127.0.0.1:{port}/coffeeshop.receipt: {unanswered} "
        "(gave up after "
    ), errors[0]
    attempts = [line for line in result.stderr.splitlines() if "MongoDB error" in line]
    assert attempts, result.stderr
    for line in attempts:
        assert re.search(r"retrying in \d+\.\d s \(attempt \d+ of 5 took \d+\.\d s\)", line), line
        assert line.endswith(unanswered), line
    assert not database.exists()


def test_the_server_selection_summary_names_every_server_and_its_reason() -> None:
    text = (
        "a:1: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: 20000.0ms, "
        "connectTimeoutMS: 20000.0ms),b:2: timed out (configured timeouts: socketTimeoutMS: "
        "20000.0ms, connectTimeoutMS: 20000.0ms),c:3: [Errno 111] Connection refused "
        "(configured timeouts: socketTimeoutMS: 20000.0ms, connectTimeoutMS: 20000.0ms), "
        "Timeout: 3.0s, Topology Description: <TopologyDescription id: 1, servers: [...]>"
    )
    assert describe(SelectionTimeout(text)) == (
        "no server answered at a:1, c:3 (connection refused); b:2 (timed out)"
    )
    no_primary = "No primary available for writes, Timeout: 3.0s, Topology Description: <…>"
    assert describe(SelectionTimeout(no_primary)) == "No primary available for writes"


def dns_failure(name: str) -> Exception:
    """What PyMongo raises when a mongodb+srv name does not resolve (srv_resolver.py:
    `raise ConfigurationError(str(exc)) from exc`, dnspython's NXDOMAIN the cause)."""
    import dns.resolver
    from pymongo.errors import ConfigurationError

    cause = dns.resolver.NXDOMAIN()
    error = ConfigurationError(f"The DNS query name does not exist: _mongodb._tcp.{name}.")
    error.__cause__ = cause
    return error


def test_a_srv_name_that_does_not_resolve_yet_is_retried_while_following(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: 0.0)
    client = FakeClient([doc(1), doc(2)], [None])
    attempts = {"n": 0}

    def connect() -> FakeClient:
        attempts["n"] += 1
        if attempts["n"] <= 7:  # more than a one-shot run would retry
            raise dns_failure("cluster0.example.net")
        return client

    stop = RecordingStop()
    source = MongoSource("mongodb+srv://u:p@cluster0.example.net/", client_factory=connect)
    report = sync(sqlite_url, source, follow=True, stop=stop, on_batch=lambda *_: stop.set())
    assert report.applied == 2 and attempts["n"] == 8
    lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(lines) == 7
    assert (
        "cannot connect on mongodb:cluster0.example.net/coffeeshop.receipt: the name does "
        in (lines[0])
    )


@pytest.mark.parametrize(
    "uri",
    ["mongodb+srv://127.0.0.1/", "mongodb+srv://cluster0.example.net:27017/"],
    ids=["ip-address", "port"],
)
def test_a_malformed_srv_uri_stays_a_configuration_error(sqlite_url: str, uri: str) -> None:
    with pytest.raises(ConfigError, match="cannot use MongoDB source") as caught:
        sync(sqlite_url, MongoSource(uri), follow=True, stop=RecordingStop())
    assert "\n" not in str(caught.value)


def test_cli_follow_retries_a_srv_name_that_does_not_resolve(tmp_path: Path) -> None:
    """Real PyMongo and real DNS (`.invalid` never resolves): `--follow` keeps retrying as
    for any unreachable server, until stopped; it used to exit 2 at once."""
    import signal

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coffeeshop",
            "sync",
            "--follow",
            "--source",
            "mongodb+srv://nothing.invalid/?connectTimeoutMS=500",
        ],
        cwd=tmp_path,
        env={**os.environ, "COFFEESHOP_DB": f"sqlite:///{tmp_path / 'a.db'}"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "(attempt 2 took" in line:
                break
        assert "(attempt 2 took" in seen[-1], seen
        assert "the name does not resolve" in seen[-1], seen
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[1]
    finally:
        process.kill()
        process.wait()
    assert "Traceback" not in rest
    assert process.returncode == 130, (seen, rest)


def test_the_server_selection_timeout_in_the_uri_is_honoured() -> None:
    source = MongoSource("mongodb://user:secret@127.0.0.1:1/?serverSelectionTimeoutMS=200")
    client = source._default_client()
    try:
        assert client.options.server_selection_timeout == 0.2
    finally:
        client.close()


# -- a live replica set (optional) ---------------------------------------------------------------

LIVE_URI = os.environ.get("COFFEESHOP_TEST_MONGO_URI", "")
live = pytest.mark.skipif(
    not LIVE_URI,
    reason="COFFEESHOP_TEST_MONGO_URI is not set: the live MongoDB replica-set tests were skipped",
)


@pytest.fixture
def live_collection() -> Any:
    from pymongo import MongoClient

    client: Any = MongoClient(LIVE_URI, serverSelectionTimeoutMS=10_000)
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]["receipt"]
    finally:
        client.drop_database(name)
        client.close()


def _live_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


COMMAND = [sys.executable, "-m", "coffeeshop"]


def _cli_sync(tmp_path: Path, database: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "sync", "--once", "--source", LIVE_URI, "--database", database],
        cwd=tmp_path,
        env={
            **os.environ,
            "COFFEESHOP_DB": f"sqlite:///{tmp_path / 'live.db'}",
            "COFFEESHOP_TIMEZONE": "UTC",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def _live_tables(tmp_path: Path, today: dt.date) -> Any:
    with Store(f"sqlite:///{tmp_path / 'live.db'}") as store:
        return store.read_tables(today)


@live
def test_live_replica_set_sync_once_then_updates_and_deletes(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    coll.insert_many([doc(n) for n in range(1, 21)])
    first = _cli_sync(tmp_path, coll.database.name)
    assert first.returncode == 0, first.stderr
    today = _live_today()
    assert _live_tables(tmp_path, today) == reference_tables(list(coll.find()), today)

    coll.update_one({"_id": oid(2)}, {"$set": {"total_price": Decimal128("77.70")}})
    coll.replace_one({"_id": oid(3)}, doc(3, total="1.00", items=[("Tea", 9)]))
    coll.delete_many({"_id": {"$in": [oid(4), oid(5)]}})
    coll.insert_one(invalid(30))
    coll.insert_one(doc(31))
    second = _cli_sync(tmp_path, coll.database.name)
    assert second.returncode == 0, second.stderr
    today = _live_today()
    assert _live_tables(tmp_path, today) == reference_tables(list(coll.find()), today)
    with Store(f"sqlite:///{tmp_path / 'live.db'}") as store:
        assert [row["receipt_id"] for row in store.quarantine_rows()] == [str(oid(30))]
        source = MongoSource(LIVE_URI, database=coll.database.name)
        assert reconcile(store, source, today=today).total_differences == 0


@live
def test_live_replica_set_resumes_from_its_token_with_read_ahead(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    coll.insert_many([doc(n) for n in range(1, 6)])
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()

    def run() -> SyncReport:
        with Store(url) as store:
            source = MongoSource(LIVE_URI, database=coll.database.name)
            return Syncer(store, source, today=lambda: today).run()

    run()
    coll.insert_many([doc(n) for n in range(6, 9)])
    coll.delete_one({"_id": oid(1)})
    report = run()
    assert report.applied == 4 and report.rebuilds == 0
    with Store(url) as store:
        assert store.read_tables(today) == reference_tables(list(coll.find()), today)


# -- issue 9: the snapshot survives getMore failures and resumes after the recorded _id ----------


def mixed_docs() -> list[Any]:
    """Receipts whose _ids are of three types, in BSON order: numbers < strings < ObjectIds."""
    numbers = [{**doc(n), "_id": n} for n in (1, 2, 3)]
    strings = [{**doc(n), "_id": f"R-{n:04d}"} for n in (4, 5, 6)]
    return numbers + strings + [doc(n) for n in (7, 8, 9)]


@pytest.mark.parametrize(
    "fault",
    [
        AutoReconnect("connection reset by peer"),
        NetworkTimeout("timed out"),
        CursorNotFound("cursor id 42 not found", code=43),
    ],
    ids=["AutoReconnect", "NetworkTimeout", "CursorNotFound"],
)
@pytest.mark.parametrize("follow", [False, True], ids=["once", "follow"])
def test_a_getmore_failure_in_the_snapshot_is_retried_after_the_last_id_read(
    sqlite_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    fault: Exception,
    follow: bool,
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)  # no jitter
    docs = mixed_docs()
    client = FakeClient(docs, [insert(doc(10)), None])
    coll = client.collection
    # the first getMore fails (the last _id read is 2), and so does the first getMore of
    # the continued cursor (the last _id read is then 3)
    coll.getmore_faults = [fault, fault]
    stop = RecordingStop()

    def on_batch(store: Store, _: SyncReport) -> None:
        if committed_token(store) == token(2):
            stop.set()

    report = sync(
        sqlite_url, fake_source(client), follow=follow, stop=stop, max_events=2, on_batch=on_batch
    )
    finds = coll.find_calls
    assert len(finds) == 3  # the first scan, then one per failure
    assert finds[0]["filter"] == {} and "min" not in finds[0]
    # each continuation starts at the last _id read, on the index, across every type
    assert finds[1]["min"] == [("_id", 2)] and finds[1]["hint"] == [("_id", 1)]
    assert finds[2]["min"] == [("_id", 3)]
    warnings = [r.getMessage() for r in caplog.records if r.name == "coffeeshop.mongo"]
    assert len(warnings) == 2
    limit = "" if follow else " of 5"
    assert warnings[0].startswith(f"MongoDB error, retrying in 0.5 s (attempt 1{limit} took ")
    assert warnings[1].startswith(f"MongoDB error, retrying in 1.0 s (attempt 2{limit} took ")
    assert f"cannot read the snapshot on {NAME}: {type(fault).__name__}" in warnings[0]
    assert stop.waits[:2] == [0.5, 1.0]
    assert report.applied == 9 + 1
    assert tables(sqlite_url) == reference_tables([*docs, doc(10)], TODAY)


def test_a_crash_in_a_mixed_type_snapshot_continues_from_the_recorded_id(
    sqlite_url: str,
) -> None:
    docs = mixed_docs()
    script = [insert(doc(10)), None]
    client = FakeClient(docs, script)
    batches = {"n": 0}

    def fault(at: str) -> None:
        if at == "aggregates":
            batches["n"] += 1
            if batches["n"] == 3:
                raise Crash(at)

    with pytest.raises(Crash):
        sync(sqlite_url, fake_source(client), max_events=2, fault=fault)
    # two batches committed: the snapshot is recorded after _id 'R-0004'
    assert checkpoint(sqlite_url) == {"mode": "snapshot", "resume": token(0), "after": "R-0004"}

    before = len(client.collection.calls)
    report = sync(sqlite_url, fake_source(client), max_events=2)
    calls = client.collection.calls[before:]
    assert [name for name, _ in calls] == ["find", "watch"]
    assert calls[0][1]["min"] == [("_id", "R-0004")]  # not the whole collection again
    assert calls[1][1]["resume_after"] == token(0)
    # 'R-0005', 'R-0006' and the three ObjectIds that sort after every string, then doc 10
    assert report.applied == 5 + 1
    assert tables(sqlite_url) == reference_tables([*docs, doc(10)], TODAY)


# -- issue 9: polling never misses an insert ------------------------------------------------------


class Clock:
    """The poller's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from coffeeshop.sources.mongo import poll as mongo_poll

    fake = Clock()
    monkeypatch.setattr(mongo_poll, "wall_clock", fake)
    return fake


def oid_at(seconds: float, n: int) -> ObjectId:
    """An ObjectId made by a client at `seconds` (its first 4 bytes), counter `n`."""
    return ObjectId(f"{int(seconds):08x}{n:016x}")


def test_polling_sees_an_insert_that_lands_after_a_higher_id_was_polled(
    sqlite_url: str, clock: Clock
) -> None:
    # writer A makes its ObjectId, writer B inserts 1 s later, the poll passes B, A's
    # insert lands 2.6 s after it was made
    t = clock.now
    client = mongomock_client([{**doc(1), "_id": oid_at(t - 100, 1)}])

    def source() -> MongoSource:
        return MongoSource("mongodb://localhost/", client_factory=lambda: client)

    sync(sqlite_url, source())
    a = {**doc(2), "_id": oid_at(t, 2)}
    b = {**doc(3), "_id": oid_at(t + 1, 3)}
    client["coffeeshop"]["receipt"].insert_one(copy.deepcopy(b))
    clock.now = t + 1.5
    sync(sqlite_url, source())
    assert poll_highs(sqlite_url, "mongodb:localhost:27017/coffeeshop.receipt") == {
        "objectId": b["_id"]
    }
    client["coffeeshop"]["receipt"].insert_one(copy.deepcopy(a))
    clock.now = t + 2.6
    sync(sqlite_url, source())  # A, below B's _id, is read by the trailing window
    everything = list(client["coffeeshop"]["receipt"].find())
    assert tables(sqlite_url) == reference_tables(everything, TODAY)


def test_polling_sees_object_ids_after_a_string_id(sqlite_url: str, clock: Clock) -> None:
    docs = [doc(1), {**doc(2), "_id": "R-0002"}]
    client = mongomock_client(docs)

    def source() -> MongoSource:
        return MongoSource("mongodb://localhost/", client_factory=lambda: client)

    sync(sqlite_url, source())
    later = [doc(3), {**doc(4), "_id": "R-0004"}, {**doc(5), "_id": 5}]
    client["coffeeshop"]["receipt"].insert_many(copy.deepcopy(later))
    clock.now += 1
    report = sync(sqlite_url, source())
    # an ObjectId, a string and a number: every type is covered (and the two _ids that
    # were the highest of their type are read again, harmlessly)
    assert report.applied == 3 + 2
    assert tables(sqlite_url) == reference_tables(docs + later, TODAY)


def test_a_periodic_sweep_finds_late_inserts_updates_and_deletes_while_polling(
    sqlite_url: str, clock: Clock
) -> None:
    t = clock.now
    docs = [{**doc(n), "_id": oid_at(t - 1000 + n, n)} for n in range(1, 6)]
    client = FakeClient(docs, [], replica_set=False)
    stop = threading.Event()
    coll = client.collection
    steps = iter(range(100))

    def on_batch(store: Store, report: SyncReport) -> None:
        step = next(steps)
        if step == 0:  # after the first sweep: changes the trailing window cannot see
            coll.docs = [d for d in coll.docs if d["_id"] != docs[1]["_id"]]  # a delete
            coll.docs[0] = {**doc(1, total="9.99", items=[("Tea", 3)]), "_id": docs[0]["_id"]}
            coll.docs.append({**doc(9), "_id": oid_at(t - 997, 9)})  # landed 997 s late
            coll.docs.append({**doc(10), "_id": oid_at(t + 1, 10)})  # a fresh insert
            clock.now = t + 2
        elif step == 1:  # the trailing window found the fresh insert, and only that
            assert report.applied == 5 + 1
            assert store.count(schema.receipts) == 6
            assert store.read_tables(TODAY) != reference_tables(coll.docs, TODAY)
            clock.now = t + 400  # the sweep is due (every 300 s)
        elif store.read_tables(TODAY) == reference_tables(coll.docs, TODAY):
            stop.set()

    safety = threading.Timer(20.0, stop.set)
    safety.start()
    try:
        sync(sqlite_url, fake_source(client), follow=True, stop=stop, on_batch=on_batch)
    finally:
        safety.cancel()
    assert tables(sqlite_url) == reference_tables(coll.docs, TODAY)
    with Store(sqlite_url) as store:
        assert store.count(schema.receipts) == 6  # 1, 3, 4, 5, 9 and 10: 2 is deleted


def test_generate_to_mongodb_never_writes_object_ids_from_the_future(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pymongo
    from typer.testing import CliRunner

    from coffeeshop.cli import app

    client: Any = mongomock.MongoClient()
    monkeypatch.setattr(pymongo, "MongoClient", lambda *args, **kwargs: client)

    monkeypatch.setattr(client, "close", lambda: None)
    before = dt.datetime.now(dt.UTC)
    result = CliRunner().invoke(
        app, ["generate", "--count", "500", "--days", "1", "--to", "mongodb://localhost/"]
    )
    assert result.exit_code == 0, result.output
    ids = [d["_id"] for d in client["coffeeshop"]["receipt"].find()]
    assert len(ids) == 500
    latest = max(i.generation_time for i in ids)
    assert latest <= dt.datetime.now(dt.UTC)
    assert latest >= before.replace(microsecond=0) - dt.timedelta(days=1)


# -- issue 9: a poll checkpoint switches to the change stream when the server has one -------------


def test_a_poll_checkpoint_switches_to_the_change_stream_without_a_gap(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    docs = [doc(n) for n in range(1, 5)]
    client = FakeClient(docs, [], replica_set=False)
    sync(sqlite_url, fake_source(client))
    assert checkpoint(sqlite_url)["mode"] == "poll"
    # while polling: a delete and an update that polling has not seen yet
    coll = client.collection
    coll.docs = [d for d in coll.docs if d["_id"] != oid(2)]
    coll.docs[0] = doc(1, total="5.55", items=[("Mocha", 2)])
    # the operator turns the server into a replica set (as the warning advises)
    client.replica_set = True
    coll.script += [insert(doc(7)), delete(oid(3)), None]
    caplog.clear()
    report = sync(sqlite_url, fake_source(client))
    assert report.rebuilds == 1
    switch = [r.getMessage() for r in caplog.records if "switching" in r.getMessage()]
    assert len(switch) == 1 and "change stream" in switch[0]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    # the start point is taken first, then the collection read, then the stream (the
    # rebuild's own read on to the stream's end at its commit, then the sync's)
    assert [c["resume_after"] for c in coll.watch_calls] == [None, token(0), token(3), token(3)]
    assert checkpoint(sqlite_url)["mode"] == "stream"
    assert tables(sqlite_url) == reference_tables(coll.docs, TODAY)
    assert {d["_id"] for d in coll.docs} == {oid(1), oid(4), oid(7)}


# -- issue 9: the polling warning, start-up retries, whenAvailable, small fixes -------------------


def test_the_polling_warning_names_reconcile_repair_and_what_polling_sees(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient([doc(1)], [], replica_set=False)
    sync(sqlite_url, fake_source(client))
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "coffeeshop.mongo"]
    assert "`coffeeshop reconcile --repair`" in warning
    assert "every 300 s" in warning  # the sweep that finds updates and deletes


class FlakyAdmin:
    """`hello` fails with AutoReconnect `failures` times, then the replica set answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def command(self, name: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise SelectionTimeout("127.0.0.1:27017: [Errno 111] Connection refused")
        return {"isWritablePrimary": True, "setName": "rs0", "ok": 1.0}


def test_follow_retries_an_unreachable_server_at_start_forever_with_capped_backoff(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    client = FakeClient([doc(1), doc(2)], [insert(doc(3)), None])
    client.admin = FlakyAdmin(failures=12)  # type: ignore[assignment]
    stop = RecordingStop()

    def on_batch(store: Store, _: SyncReport) -> None:
        if committed_token(store) == token(2):
            stop.set()

    report = sync(sqlite_url, fake_source(client), follow=True, stop=stop, on_batch=on_batch)
    assert report.applied == 3
    assert stop.waits[:12] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0, 60.0]
    lines = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(lines) == 12
    assert lines[11].startswith("MongoDB error, retrying in 60.0 s (attempt 12 took ")
    assert "cannot connect on" in lines[11]


def test_once_gives_up_on_an_unreachable_server_after_five_attempts(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    client = FakeClient([doc(1)], [])
    client.admin = FlakyAdmin(failures=100)  # type: ignore[assignment]
    with pytest.raises(
        SourceUnavailable, match=r"cannot connect on .* \(gave up after 5 retries, "
    ):
        sync(sqlite_url, fake_source(client), stop=RecordingStop())


def test_ctrl_c_stops_a_follow_that_waits_for_an_unreachable_server(tmp_path: Path) -> None:
    import signal
    import time

    uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=3000"
    process = subprocess.Popen(
        [sys.executable, "-m", "coffeeshop", "sync", "--follow", "--source", uri],
        cwd=tmp_path,
        env={**os.environ, "COFFEESHOP_DB": f"sqlite:///{tmp_path / 'a.db'}"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # wait for the second attempt to be under way
            seen.append(line)
            if "(attempt 2" in line:
                break
        assert "(attempt 2 took" in seen[-1], seen  # no "of 5": following retries for ever
        time.sleep(0.5)  # inside the 3 s server selection of attempt 3, or in its backoff
        assert process.poll() is None, seen
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=60)[1]
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert took < 1.5, (took, seen, rest)
    assert "Traceback" not in rest
    assert process.returncode == 130, rest  # interrupted, as shells expect (128 + SIGINT)


def test_when_available_is_refused_without_pre_and_post_images(sqlite_url: str) -> None:
    client = FakeClient([doc(1)], [None], post_images=False)
    with pytest.raises(ConfigError) as info:
        sync(sqlite_url, fake_source(client, full_document="whenAvailable"))
    message = str(info.value)
    assert "\n" not in message
    assert "changeStreamPreAndPostImages" in message and "collMod" in message
    assert client.collection.find_calls == []  # refused before reading anything


def test_when_available_reads_the_document_when_a_post_image_is_missing(
    sqlite_url: str,
) -> None:
    docs = [doc(1), doc(2), doc(3)]
    client = FakeClient(docs, [None], post_images=True)
    sync(sqlite_url, fake_source(client, full_document="whenAvailable"))
    coll = client.collection
    updated = doc(1, total="3.30", items=[("Tea", 4)])
    # post-images not recorded (expired): no fullDocument, and no delete follows the update
    # of doc 1; doc 2 is updated, then deleted, before the stream reads its update
    coll.script += [
        update(oid(1), updated, image=False, total_price=Decimal128("3.30")),
        update(oid(2), doc(2, total="0.10"), image=False, total_price=Decimal128("0.10")),
        delete(oid(2)),
        None,
    ]
    for index in range(1, len(coll.script)):  # the server is ahead of the stream
        coll._happen(index, coll.script[index])
    report = sync(sqlite_url, fake_source(client, full_document="whenAvailable"))
    lookups = [kw["filter"] for name, kw in coll.calls if name == "find_one"]
    assert lookups == [{"_id": oid(1)}, {"_id": oid(2)}]
    assert report.skipped == 0
    assert tables(sqlite_url) == reference_tables([updated, doc(3)], TODAY)
    assert tables(sqlite_url) == reference_tables(coll.docs, TODAY)


def test_a_server_without_hello_is_asked_is_master(sqlite_url: str) -> None:
    client = FakeClient([doc(1)], [None], hello=False)  # MongoDB 4.4.0 / 4.4.1
    report = sync(sqlite_url, fake_source(client))
    assert client.commands == ["hello", "isMaster"]
    assert report.applied == 1
    assert checkpoint(sqlite_url) == stream_at(1)  # a replica set: streamed


def test_cursor_not_found_in_the_stream_is_transient(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)
    script = [CursorNotFound("cursor id 7 not found", code=43), insert(doc(2)), None]
    client = FakeClient([doc(1)], script)
    report = sync(sqlite_url, fake_source(client), stop=RecordingStop())
    assert report.applied == 2
    assert checkpoint(sqlite_url) == stream_at(3)


def test_history_lost_with_stop_names_the_repair_command_with_a_masked_password(
    sqlite_url: str,
) -> None:
    lost = OperationFailure("Resume of change stream was not possible", code=286)
    client = FakeClient(
        [doc(1)], [insert(doc(3)), None, invalidate(), None], namespace=("shop", "receipts")
    )
    uri = "mongodb://app:s3cret@fake-host:27017/?authSource=admin"

    def source() -> MongoSource:
        return MongoSource(
            uri, database="shop", collection="receipts", client_factory=lambda: client
        )

    sync(sqlite_url, source())
    with pytest.raises(SourceHistoryLost) as info:
        sync(sqlite_url, source(), rebuild=False)
    message = str(info.value)
    assert "ended with an 'invalidate' event" in message
    assert (
        "coffeeshop reconcile --repair --source 'mongodb://app:***@fake-host:27017/?authSource"
        f"=admin' --database shop --collection receipts --db {sqlite_url}"
    ) in message
    assert "s3cret" not in message
    del lost


def _live_sync(url: str, source: MongoSource, today: dt.date, **options: Any) -> SyncReport:
    with Store(url) as store:
        return Syncer(store, source, today=lambda: today, **options).run()


@live
def test_live_a_killed_snapshot_cursor_is_continued_after_the_last_id(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    numbers = [{**doc(n), "_id": n} for n in range(1, 301)]
    strings = [{**doc(n), "_id": f"R-{n:04d}"} for n in range(301, 601)]
    coll.insert_many(numbers + strings + [doc(n) for n in range(601, 901)])
    source = MongoSource(LIVE_URI, database=coll.database.name)
    source.open(None)
    admin = coll.database.client.admin
    namespace = f"{coll.database.name}.{coll.name}"
    seen: list[Any] = []
    killed = 0
    try:
        for batch in source.batches(
            BatchLimits(max_events=100), follow=False, stop=threading.Event()
        ):
            seen.extend(batch.events)
            if len(seen) in (200, 500):  # in the numbers, then in the strings
                idle = admin.aggregate(
                    [{"$currentOp": {"idleCursors": True}}, {"$match": {"type": "idleCursor"}}]
                )
                ids = [op["cursor"]["cursorId"] for op in idle if op.get("ns") == namespace]
                if ids:
                    coll.database.command("killCursors", coll.name, cursors=ids)
                    killed += 1
    finally:
        source.close()
    assert killed == 2
    keys = [event.key for event in seen]
    assert len(keys) == len(set(keys)) == 900  # every document once, across every type


@live
def test_live_polling_sees_out_of_order_and_mixed_type_inserts(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()

    def run() -> SyncReport:
        source = MongoSource(LIVE_URI, database=coll.database.name, mode="poll")
        return _live_sync(url, source, today)

    now = int(dt.datetime.now(dt.UTC).timestamp())
    coll.insert_one({**doc(1), "_id": oid_at(now - 100, 1)})
    run()
    coll.insert_one({**doc(3), "_id": oid_at(now + 1, 3)})  # writer B
    run()
    coll.insert_one({**doc(2), "_id": oid_at(now, 2)})  # writer A, landing after B was read
    coll.insert_one({**doc(4), "_id": "R-0004"})
    coll.insert_one({**doc(5), "_id": oid_at(now + 2, 5)})  # an ObjectId after a string
    run()
    assert _live_tables(tmp_path, today) == reference_tables(list(coll.find()), today)


@live
def test_live_a_poll_checkpoint_switches_to_the_change_stream(
    tmp_path: Path, live_collection: Any, caplog: pytest.LogCaptureFixture
) -> None:
    coll = live_collection
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()
    coll.insert_many([doc(n) for n in range(1, 6)])
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name, mode="poll"), today)
    coll.delete_one({"_id": oid(2)})  # not seen by polling yet
    coll.update_one({"_id": oid(3)}, {"$set": {"total_price": Decimal128("1.10")}})
    report = _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    assert report.rebuilds == 1
    assert any("switching from polling" in r.getMessage() for r in caplog.records)
    coll.insert_one(doc(9))
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    assert _live_tables(tmp_path, today) == reference_tables(list(coll.find()), today)


@live
def test_live_when_available_is_refused_without_post_images(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    coll.insert_one(doc(1))
    source = MongoSource(LIVE_URI, database=coll.database.name, full_document="whenAvailable")
    with pytest.raises(ConfigError, match="changeStreamPreAndPostImages"):
        _live_sync(f"sqlite:///{tmp_path / 'live.db'}", source, _live_today())


@live
def test_live_history_lost_with_stop_names_the_repair_command(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()
    coll.insert_many([doc(1), doc(2)])
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    coll.drop()  # the stream ends with a drop and an invalidate
    coll.insert_one(doc(3))
    source = MongoSource(LIVE_URI, database=coll.database.name)
    with pytest.raises(SourceHistoryLost, match="coffeeshop reconcile --repair --source"):
        _live_sync(url, source, today, rebuild_on_history_lost=False)


@pytest.mark.parametrize("replica_set", [True, False], ids=["snapshot", "poll"])
def test_a_stop_while_a_find_waits_for_the_server_ends_the_run_quietly(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, replica_set: bool
) -> None:
    import time

    client = FakeClient([doc(1)], [None], replica_set=replica_set)
    original = client.collection.find

    class Unreachable:
        """A find whose first batch waits for server selection (as when the server is down)."""

        def __init__(self, cursor: Any) -> None:
            self.cursor = cursor
            self.docs: Any = None

        def __iter__(self) -> Any:  # as PyMongo's Cursor: the I/O is in next()
            return self

        def __next__(self) -> Any:
            if self.docs is None:
                time.sleep(3.0)
                self.docs = iter(self.cursor)
            return next(self.docs)

        def close(self) -> None:
            self.cursor.close()

    monkeypatch.setattr(client.collection, "find", lambda *a, **kw: Unreachable(original(*a, **kw)))
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    started = time.monotonic()
    report = sync(sqlite_url, fake_source(client), follow=True, stop=stop)
    assert time.monotonic() - started < 2.0
    assert report.applied == 0


def test_a_poll_checkpoint_of_the_old_format_reads_the_whole_collection_once(
    sqlite_url: str,
) -> None:
    # The old poller recorded only the last _id: what it missed (here an ObjectId that
    # landed below it, and one after a string) is found by a first full read.
    docs = [doc(1), doc(5)]
    client = FakeClient(docs, [], replica_set=False)
    sync(sqlite_url, fake_source(client))
    old = json.dumps({"mode": "poll", "after": json_util.dumps(oid(5))})
    with Store(sqlite_url) as store:
        execute_sql(store, f"UPDATE cs_checkpoint SET position = '{old}'")
    client.collection.docs += [doc(3), {**doc(4), "_id": "R-0004"}, doc(9)]
    sync(sqlite_url, fake_source(client))
    assert client.collection.find_calls[-1]["filter"] == {}  # the whole collection
    assert tables(sqlite_url) == reference_tables(client.collection.docs, TODAY)
    assert checkpoint(sqlite_url)["swept"] is not None


def test_the_poll_window_reaches_back_a_full_window_after_many_polls() -> None:
    from coffeeshop.sources.mongo.errors import MongoRetrying
    from coffeeshop.sources.mongo.poll import Poller

    poller = Poller(
        None,
        NAME,
        marks=[],
        swept=0.0,
        window=60.0,
        sweep_every=300.0,
        retry=MongoRetrying(NAME, threading.Event(), retries=0),  # never called: no I/O here
    )
    for second in range(0, 200):  # a poll a second, the highest _id growing with time
        poller._mark(float(second), {"objectId": oid(second)})
        low = poller.lows(float(second))["objectId"]
        # never less than a window back: the low end's _id was read at least 60 s ago
        assert second < 60 or low <= oid(second - 60), (second, low)
        assert len(poller.marks) <= 12


def test_the_reply_buffer_is_seen_in_the_installed_pymongo() -> None:
    """`stream.buffered` reads PyMongo's private reply buffer: it must exist, under that
    name, in the PyMongo installed (else batches would silently fall back to batch-wait)."""
    import inspect

    from pymongo import MongoClient
    from pymongo.synchronous.change_stream import ChangeStream
    from pymongo.synchronous.command_cursor import CommandCursor

    assert "self._cursor" in inspect.getsource(ChangeStream)
    client: Any = MongoClient("mongodb://127.0.0.1:1/", connect=False)
    try:
        reply = {"id": 0, "firstBatch": [{"_id": 1}, {"_id": 2}]}  # a server reply, 2 changes
        stream = ChangeStream.__new__(ChangeStream)
        stream._cursor = CommandCursor(client.db.receipt, reply, address=None)
        assert mongo_stream.buffered(stream) == 2
        next(stream._cursor)
        assert mongo_stream.buffered(stream) == 1
    finally:
        client.close()


@live
def test_live_the_reply_buffer_of_a_real_change_stream(live_collection: Any) -> None:
    live_collection.insert_one({"_id": "first"})
    with live_collection.watch(max_await_time_ms=1000) as stream:
        live_collection.insert_many([{"_id": n} for n in range(3)])
        change = None
        for _ in range(20):
            change = stream.try_next()
            if change is not None:
                break
        assert change is not None
        # the rest of the same reply (one insert_many: usually both others), never unknown
        assert mongo_stream.buffered(stream) in (0, 1, 2)


@live
def test_live_partitions_follow_a_case_insensitive_default_collation(
    live_collection: Any,
) -> None:
    from coffeeshop.sources.mongo.errors import MongoRetrying
    from coffeeshop.sources.mongo_partitions import plan_collection, read_id_range

    database = live_collection.database
    live_collection.drop()
    coll = database.create_collection("receipt", collation={"locale": "en", "strength": 2})
    ids = [f"{prefix}-{n:02d}" for prefix in ("a", "B", "c", "D") for n in range(30)]
    coll.insert_many([receipt(i, total="1.00") for i in ids])
    retrying = MongoRetrying("live", threading.Event(), retries=5)
    ranges = plan_collection(coll, 4, retrying)
    seen = [d["_id"] for r in ranges for d in coll.find(r.query())]
    assert sorted(seen) == sorted(ids)
    assert sum(read_id_range(coll, r, 2, retrying).documents for r in ranges) == len(ids)


# -- issue 23: values PyMongo's defaults cannot decode, history identity, namespaces (live) ------


def _hostile_bson(prefix: str) -> tuple[list[Any], set[str]]:
    """Receipts as raw BSON that PyMongo's defaults cannot decode, and the `_id`s of those
    that must be quarantined (the one with an out-of-range extra field is valid)."""
    from bson import DatetimeMS
    from bson.raw_bson import RawBSONDocument
    from hostile_corpus import MARK, YEAR_10000_MS, YEAR_MINUS_3_MS, bson_doc

    documents = {
        "date-10000": bson_doc(
            _id=f"{prefix}date-10000", transactionDate=DatetimeMS(YEAR_10000_MS)
        ),
        "date-minus-3": bson_doc(
            _id=f"{prefix}date-minus-3", transactionDate=DatetimeMS(YEAR_MINUS_3_MS)
        ),
        "name": bson_doc(
            _id=f"{prefix}name", items=[{"product_name": f"La{MARK}tte", "product_quantity": 1}]
        ),
        "created": bson_doc(_id=f"{prefix}created", created=DatetimeMS(2**62)),
    }
    raw = [RawBSONDocument(data) for data in documents.values()]
    return raw, {f"{prefix}{name}" for name in documents if name != "created"}


def _decoding(coll: Any) -> Any:
    from coffeeshop.sources.mongo.codec import CODEC_OPTIONS

    return coll.with_options(codec_options=CODEC_OPTIONS)


@live
def test_live_undecodable_values_are_quarantined_on_every_path(
    tmp_path: Path, live_collection: Any
) -> None:
    from coffeeshop.pipeline.partitioned import finish, gather_in_process

    coll = live_collection
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()
    snapshot, bad_in_snapshot = _hostile_bson("s-")
    coll.insert_many([doc(n) for n in range(1, 5)] + snapshot)
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)  # snapshot
    streamed, bad_in_stream = _hostile_bson("c-")
    coll.insert_many([doc(5), *streamed, doc(6)])
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)  # stream
    bad = bad_in_snapshot | bad_in_stream
    with Store(url) as store:
        assert {row["receipt_id"] for row in store.quarantine_rows()} == bad
        assert store.count(schema.receipts) == 6 + 2
    valid = [d for d in _decoding(coll).find() if d["_id"] not in bad]
    assert _live_tables(tmp_path, today) == reference_tables(valid, today)
    with Store(url) as store:  # the partitioned reader agrees
        source = MongoSource(LIVE_URI, database=coll.database.name)
        gathered = gather_in_process(source, 3)
        assert finish(store, source, gathered, today=today, repair=False).total_differences == 0


@live
def test_live_a_change_event_over_16_mb_is_read_by_id(tmp_path: Path, live_collection: Any) -> None:
    coll = live_collection
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()
    coll.insert_one({**doc(1), "notes": "a" * (9 << 20)})
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    # the update's event holds the 9 MB post-image and the 9 MB update description
    coll.update_one({"_id": oid(1)}, {"$set": {"notes": "b" * (9 << 20), "Store_ID": 3}})
    coll.insert_one(doc(2))
    report = _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    assert report.applied == 2 and report.quarantined == 0
    assert _live_tables(tmp_path, today) == reference_tables(list(coll.find()), today)


@live
def test_live_a_checkpoint_of_another_collection_history_is_history_lost(
    tmp_path: Path, live_collection: Any
) -> None:
    coll = live_collection
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()
    coll.insert_many([doc(1), doc(2)])
    _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    (info,) = coll.database.list_collections(filter={"name": coll.name})
    name = MongoSource(LIVE_URI, database=coll.database.name).name
    with Store(url) as store:
        found = store.load_checkpoint(name)
        assert found is not None
        state = json.loads(found.position)
        assert state["history"]["uuid"] == bytes(info["info"]["uuid"]).hex()
        state["history"]["uuid"] = "0" * 32  # as if the collection had been re-created since
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE cs_checkpoint SET position = ?", (json.dumps(state),))
    source = MongoSource(LIVE_URI, database=coll.database.name)
    with pytest.raises(SourceHistoryLost, match="is not the collection of the checkpoint"):
        _live_sync(url, source, today, rebuild_on_history_lost=False)
    report = _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    assert report.rebuilds == 1


@live
def test_live_a_misspelt_collection_is_refused_in_one_line(
    tmp_path: Path, live_collection: Any
) -> None:
    from helpers import assert_one_line_error

    live_collection.insert_one(doc(1))
    result = subprocess.run(
        [
            *COMMAND,
            "sync",
            "--once",
            "--source",
            LIVE_URI,
            "--database",
            live_collection.database.name,
            "--collection",
            "reciept",
        ],
        cwd=tmp_path,
        env={**os.environ, "COFFEESHOP_DB": f"sqlite:///{tmp_path / 'live.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(result, "collection 'reciept' does not exist")


@live
def test_live_code_and_string_ids_are_two_receipts(tmp_path: Path, live_collection: Any) -> None:
    from bson import Code

    coll = live_collection
    coll.insert_many([{**doc(1), "_id": Code("x")}, {**doc(2), "_id": "x"}])
    url = f"sqlite:///{tmp_path / 'live.db'}"
    today = _live_today()
    report = _live_sync(url, MongoSource(LIVE_URI, database=coll.database.name), today)
    assert report.applied == 2
    with Store(url) as store:
        assert store.count(schema.receipts) == 2
        source = MongoSource(LIVE_URI, database=coll.database.name)
        assert reconcile(store, source, today=today).total_differences == 0
