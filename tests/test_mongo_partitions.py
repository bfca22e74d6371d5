"""The MongoDB partitioner: `_id` ranges over every BSON type bracket cover the collection
exactly once, and their merged partials equal a fold of the whole collection (mongomock); the
partitioned reconcile of a collection equals the single-process one, and a backfill hands
over to the change stream without a gap (the scripted fake, on SQLite and MariaDB)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import mongomock
import pytest
from bson import Decimal128, Int64, ObjectId
from fake_mongo import FakeClient, delete, insert, replace
from helpers import receipt, reference_tables
from pymongo.errors import AutoReconnect, NetworkTimeout

from coffeeshop import retry
from coffeeshop.core.events import event_from_object
from coffeeshop.core.partials import merge_all, resolve, unkeyed_partial
from coffeeshop.core.plan import Parsed, parse_events
from coffeeshop.core.recompute import recompute
from coffeeshop.errors import ConfigError, SourceChanged
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.pipeline.reconcile import ReconcileReport, reconcile
from coffeeshop.sources import mongo_partitions
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.sources.mongo.errors import MongoRetrying
from coffeeshop.sources.mongo_partitions import plan_collection, read_id_range
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)


def retrying() -> MongoRetrying:
    return MongoRetrying("test", threading.Event(), retries=5)


def collection() -> mongomock.Collection:
    coll: Any = mongomock.MongoClient().db.receipt
    ids: list[object] = list(range(200))
    ids += [Int64(1000 + i) for i in range(20)] + [1e6 + i + 0.5 for i in range(20)]
    ids += [f"r-{i:04d}" for i in range(150)] + [ObjectId() for _ in range(120)]
    ids += [dt.datetime(2026, 1, 1) + dt.timedelta(hours=i) for i in range(40)]
    # (mongomock cannot store an unhashable _id: no Decimal128 or embedded-document _ids here)
    ids += [None, b"\x00\x01"]  # (and no bool: mongomock keys True like 1)
    docs = [receipt(i, store=n % 5, total=f"{n % 40}.10") for n, i in enumerate(ids)]
    docs.append(receipt("bad", total="oops"))  # quarantined
    coll.insert_many(docs)
    return coll


def test_id_ranges_cover_every_document_once_and_merge_to_the_whole() -> None:
    coll = collection()
    total = coll.count_documents({})
    for parts in (1, 3, 8, 20):
        ranges = plan_collection(coll, parts, retrying())
        seen: list[object] = []
        for r in ranges:
            seen += [d["_id"] for d in coll.find(r.query())]
        assert len(seen) == total, parts  # no document missed, none read twice
        assert len({repr(x) for x in seen}) == total
        outputs = [read_id_range(coll, r, 4, retrying()) for r in ranges]
        assert sum(o.documents for o in outputs) == total
        results = [resolve(o.shards[b] for o in outputs) for b in range(4)]
        partial = merge_all(
            [r.partial for r in results] + [unkeyed_partial(o.unkeyed) for o in outputs]
        )
        events = parse_events(event_from_object(d, where="snapshot", raw="") for d in coll.find())
        reference = recompute(
            (e.receipt for e in events if isinstance(e, Parsed) and e.receipt is not None), TODAY
        )

        assert partial.tables(TODAY) == reference
        assert [e.receipt_id for e in partial.entries()] == ["bad"]
    assert len(plan_collection(coll, 20, retrying())) >= 8  # brackets cut at sampled quantiles


# -- the partitioned reconcile and backfill of a collection (the tasks' code, in this process) ---

URI = "mongodb://fake-host:27017/"


def mixed_docs() -> list[dict[str, Any]]:
    """Receipts under `_id`s of every BSON type the fake orders (the scripted fake, unlike
    mongomock, also has change streams: a backfill hands over to one)."""
    ids: list[Any] = list(range(60)) + [Int64(1000 + i) for i in range(10)]
    ids += [1e6 + i + 0.5 for i in range(10)] + [Decimal128("7.5")]
    ids += [f"r-{i:03d}" for i in range(50)] + [ObjectId(f"{i:024x}") for i in range(1, 40)]
    ids += [dt.datetime(2026, 1, 1) + dt.timedelta(hours=i) for i in range(20)]
    ids += [None, b"\x00\x01", {"a": 1}]
    docs = [
        receipt(i, store=n % 5, total=f"{n % 40}.10", items=[("Tè\tverde", 1 + n % 3)])
        for n, i in enumerate(ids)
    ]
    docs += [receipt("bad", total="oops"), receipt("bad-2", date="2026-13-01")]
    return docs


def fake_source(client: FakeClient) -> MongoSource:
    return MongoSource(URI, client_factory=lambda: client)


def url_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'a.db'}"
    return str(request.getfixturevalue("mysql_url"))


def sync(url: str, source: MongoSource) -> None:
    with Store(url) as store:
        # In this process: a forked reader would change a copy of the fake's collection.
        Syncer(store, source, today=lambda: TODAY, read_ahead=False).run()


def single(url: str, source: MongoSource) -> ReconcileReport:
    with Store(url) as store:
        return reconcile(store, source, today=TODAY)


def partitioned(
    url: str, source: MongoSource, parts: int, *, repair: bool = False
) -> ReconcileReport:
    with Store(url, bulk_load=repair) as store:
        gathered = gather_in_process(source, parts)
        return finish(store, source, gathered, today=TODAY, repair=repair)


def report_of(report: ReconcileReport) -> tuple[Any, ...]:
    differences = [str(d) for d in report.differences]
    return (report.receipts, report.quarantined, report.position, report.counts, differences)


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_partitioned_reconcile_of_a_collection_equals_the_single_process_one(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = url_for(backend, tmp_path, request)
    client = FakeClient(mixed_docs(), [])
    sync(url, fake_source(client))
    with Store(url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE cs_receipts SET cents = cents + 1 WHERE receipt_id = 'r-007'")
        conn.exec_driver_sql("DELETE FROM store_monthly WHERE store_id = 1")
    expected = single(url, fake_source(client))
    assert expected.total_differences >= 2 and expected.quarantined == 2
    for parts in (1, 3, 8):
        assert report_of(partitioned(url, fake_source(client), parts)) == report_of(expected)
    assert partitioned(url, fake_source(client), 4, repair=True).repaired
    assert single(url, fake_source(client)).total_differences == 0


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_a_collection_backfill_hands_over_to_the_stream_without_a_gap(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Changes made while the ranges are read (after the stream's start point was taken)
    reach the tables through the stream, even one the ranges missed (the rebuild itself
    reads on through the stream to where it ends: `pipeline.catch_up`)."""
    url = url_for(backend, tmp_path, request)
    during = [
        replace(receipt(5, store=2, total="99.99")),
        delete("r-010"),
        insert(receipt("new-1", total="1.01")),
        insert(receipt(-5, total="5.55")),  # lands in the first number range, once it was read
    ]
    client = FakeClient(mixed_docs(), list(during))
    connects = {"n": 0}

    def connect() -> FakeClient:
        connects["n"] += 1
        if connects["n"] == 2:  # the plan's connection: the start point was taken before
            for index in range(3):
                client.collection._happen(index, during[index])
        if connects["n"] == 4:  # the second range's reader: the first range was read
            client.collection._happen(3, during[3])
        return client

    source = MongoSource(URI, client_factory=connect)
    built = partitioned(url, source, 4, repair=True)
    assert built.repaired and connects["n"] >= 4
    with Store(url) as store:
        # the ranges missed it; the rebuild read on from the start point through the stream
        assert "int:-5" in {r.key for r in store.iter_receipts()}
    client.collection.script.append(insert(receipt("after", total="2.00")))  # after it
    sync(url, fake_source(client))  # goes on from the backfill's checkpoint
    with Store(url) as store:
        assert store.read_tables(TODAY) == reference_tables(client.collection.docs, TODAY)
        assert store.count(schema.receipts) == len(client.collection.docs) - 2  # 2 invalid


@pytest.mark.parametrize("other", ["the collection created again", "another replica set"])
def test_a_range_reader_that_reaches_another_collection_fails_the_repair_and_writes_nothing(
    other: str, tmp_path: Path
) -> None:
    """The start point is taken on the planned collection; the range readers (each connects
    to the URI itself, as a worker does) reach another one behind the same URI."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    planned = FakeClient(mixed_docs(), [])
    sync(url, fake_source(planned))
    with Store(url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM store_monthly WHERE store_id = 1")  # a repair writes
    with Store(url) as store:
        before = (store.read_tables(TODAY), list(store.iter_receipts()), store.list_checkpoints())
    elsewhere = FakeClient(mixed_docs()[:50], [], set_name="rs-other")
    if other == "the collection created again":
        elsewhere = FakeClient(mixed_docs()[:50], [])
        elsewhere.collection.recreate(mixed_docs()[:50])
    connects = {"n": 0}

    def connect() -> FakeClient:
        connects["n"] += 1
        return planned if connects["n"] <= 2 else elsewhere  # the start point, the plan

    with pytest.raises(SourceChanged) as caught:
        partitioned(url, MongoSource(URI, client_factory=connect), 4, repair=True)
    message = str(caught.value)
    assert "\n" not in message and "fake-host" in message and "coordinator" in message
    with Store(url) as store:
        after = (store.read_tables(TODAY), list(store.iter_receipts()), store.list_checkpoints())
    assert after == before


def test_a_standalone_server_is_refused_in_one_line(tmp_path: Path) -> None:
    client = FakeClient(mixed_docs(), [], replica_set=False)
    with pytest.raises(ConfigError, match="needs a replica set") as caught:
        gather_in_process(fake_source(client), 4)
    assert "\n" not in str(caught.value)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: 0.0)


def test_planning_retries_transient_errors_of_its_counts_and_sample(
    tmp_path: Path, no_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A network error while the partitions are planned (an estimated count, a count, the
    `$sample`) is retried with the source's policy, not a traceback and exit 1."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    client = FakeClient(mixed_docs(), [])
    sync(url, fake_source(client))
    expected = single(url, fake_source(client))
    for call in range(6):  # each planning call in turn fails once (count, …, $sample)
        client.collection.command_faults = [None] * call + [AutoReconnect("connection reset")]
        with Store(url) as store:
            gathered = gather_in_process(fake_source(client), 4)
            got = finish(store, fake_source(client), gathered, today=TODAY, repair=False)
        assert report_of(got) == report_of(expected), call
        assert client.collection.command_faults == []
    assert "cannot plan the partitions on" in caplog.text


def test_a_range_read_goes_on_after_its_last_id_when_a_getmore_fails(
    tmp_path: Path, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A getMore failure in a range (PyMongo never retries one) is retried after the last
    `_id` that range read, not by reading the whole range again."""
    monkeypatch.setattr(mongo_partitions, "RANGE_BATCH", 7)  # several replies per range
    url = f"sqlite:///{tmp_path / 'a.db'}"
    client = FakeClient(mixed_docs(), [])
    sync(url, fake_source(client))
    expected = single(url, fake_source(client))
    client.collection.getmore_faults = [NetworkTimeout("timed out"), AutoReconnect("reset")]
    finds = len(client.collection.find_calls)
    with Store(url) as store:
        gathered = gather_in_process(fake_source(client), 1)
        got = finish(store, fake_source(client), gathered, today=TODAY, repair=False)
    assert report_of(got) == report_of(expected)
    assert client.collection.getmore_faults == []
    resumed = [c for c in client.collection.find_calls[finds:] if c.get("min")]
    assert len(resumed) == 2
    assert all(c["hint"] == [("_id", 1)] for c in resumed)


def test_string_bounds_follow_the_collections_default_collation(no_backoff: None) -> None:
    """With a case-insensitive default collation the server orders "a" < "B" < "c" < "D",
    code points "B" < "D" < "a" < "c": bounds cut in Python's order would make ranges that
    overlap under the server's (documents read twice) and others that are empty."""
    ids = [f"{prefix}-{n:02d}" for prefix in ("a", "B", "c", "D") for n in range(30)]
    docs = [receipt(i, total="1.00") for i in ids]
    client = FakeClient(docs, [], collation={"locale": "en", "strength": 2})
    coll = client["coffeeshop"]["receipt"]
    ranges = plan_collection(coll, 4, retrying())
    assert len(ranges) == 4
    seen: list[Any] = []
    for r in ranges:
        seen += [d["_id"] for d in coll.find(r.query())]
    assert sorted(seen) == sorted(ids)  # each document in exactly one range
    outputs = [read_id_range(coll, r, 2, retrying()) for r in ranges]
    assert sum(o.documents for o in outputs) == len(ids)


STANDALONE = """
import sys
sys.path.insert(0, {tests!r})
import pymongo
from fake_mongo import FakeClient

pymongo.MongoClient = lambda *args, **kwargs: FakeClient([], [], replica_set=False)
"""


@pytest.mark.parametrize(
    "command",
    [["reconcile", "--workers", "2"], ["sync", "--follow", "--backfill-workers", "2"]],
    ids=["reconcile", "backfill"],
)
def test_a_standalone_server_is_refused_before_prefect_or_dask_start(
    tmp_path: Path, command: list[str]
) -> None:
    """The real command, a scripted standalone server: refused in one line (exit 2) before
    Prefect's temporary server or a Dask cluster start, and before a database is created."""
    import os
    import subprocess
    import sys

    (tmp_path / "sitecustomize.py").write_text(STANDALONE.format(tests=str(Path(__file__).parent)))
    home, database = tmp_path / "prefect-home", tmp_path / "analysis.db"
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", *command, "--source", "mongodb://fake-host/"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "PREFECT_HOME": str(home),
            "COFFEESHOP_DB": f"sqlite:///{database}",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "needs a replica set" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    others = [line.lower() for line in result.stderr.splitlines() if line not in errors]
    assert not [line for line in others if "prefect" in line or "dask" in line], others
    assert not home.exists() and not database.exists()
