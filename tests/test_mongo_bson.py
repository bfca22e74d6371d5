"""BSON that PyMongo's defaults cannot decode, and `_id`s that look like Extended JSON, read
through every MongoDB path (issue 23, items 1, 3 and 10).

Each case of `hostile_corpus.BSON_CASES` is raw BSON, stored as such in the scripted fake
(`fake_mongo.raw`), which decodes it with the codec options the source takes its collection
with, as PyMongo does: under PyMongo's strict defaults the batch fails with `InvalidBSON`.
The case's documents sit between valid neighbours; the neighbours must be applied, and the
case's documents applied or quarantined (naming their `_id`) on the snapshot, the change
stream, polling (a standalone server) and the partitioned reader alike.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Code, Decimal128, Int64, ObjectId, Timestamp
from bson.errors import InvalidBSON
from fake_mongo import FakeClient, insert, raw, update
from helpers import current_receipts, receipt, reference_tables
from hostile_corpus import BSON_CASES, MARK, NEIGHBOURS, OID, BsonCase, bson_doc

from coffeeshop.core.receipts import Receipt, receipt_key
from coffeeshop.core.recompute import recompute
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.store import Store

TODAY = dt.date(2026, 11, 25)
URI = "mongodb://fake-host:27017/"
PATHS = ["snapshot", "stream", "poll", "partitions"]


def source(client: FakeClient) -> MongoSource:
    return MongoSource(URI, client_factory=lambda: client)


def run_path(path: str, url: str, documents: list[Any], *, parts: int = 3) -> None:
    """Read `documents` (raw BSON or dicts) through one MongoDB path into the store."""
    if path == "partitions":
        client = FakeClient(documents, [])
        with Store(url, bulk_load=True) as store:
            gathered = gather_in_process(source(client), parts)
            finish(store, source(client), gathered, today=TODAY, repair=True)
        return
    if path == "stream":  # an empty snapshot, then every document as an insert event
        client = FakeClient([], [insert(d) for d in documents] + [None])
    else:
        client = FakeClient(documents, [], replica_set=path != "poll")
    sync(url, source(client))


def sync(url: str, src: MongoSource) -> SyncReport:
    with Store(url) as store:
        limits = BatchLimits(max_events=3, max_wait=30.0, poll_interval=0.01)
        syncer = Syncer(store, src, limits=limits, today=lambda: TODAY, read_ahead=False)
        return syncer.run()


def neighbours_around(case: BsonCase) -> list[Any]:
    """The neighbours as BSON documents, the case's raw documents in the middle."""
    stored = [raw(doc) for doc in NEIGHBOURS]
    return [*stored[:2], *(raw(document) for document in case.documents), *stored[2:]]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'analysis.db'}"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", BSON_CASES, ids=[case.id for case in BSON_CASES])
def test_a_bson_case_between_valid_receipts(case: BsonCase, path: str, url: str) -> None:
    run_path(path, url, neighbours_around(case))
    expected: set[Receipt] = set(current_receipts(NEIGHBOURS)) | set(case.receipts)
    with Store(url) as store:
        stored = set(store.iter_receipts())
        rows = store.quarantine_rows(limit=100)
        tables = store.read_tables(TODAY)
    assert stored == expected
    assert tables == recompute(expected, TODAY)
    if case.outcome == "quarantined":
        assert len(rows) == len(case.documents)
        for row in rows:
            assert row["receipt_id"] == case.receipt_id
            assert case.reason is not None
            assert re.search(case.reason, row["reason"]), row["reason"]
    else:
        assert rows == []


def test_the_fake_decodes_like_pymongo_a_strict_collection_fails_the_batch() -> None:
    """The fake is faithful: PyMongo's defaults (what the source used before) raise."""
    (case,) = [c for c in BSON_CASES if c.id == "bson-date-year-10000"]
    client = FakeClient([raw(case.documents[0])], [])
    with pytest.raises(InvalidBSON, match="year 10000 is out of range"):
        list(client["coffeeshop"]["receipt"].find({}))
    (case,) = [c for c in BSON_CASES if c.id == "bson-name-not-utf8"]
    client = FakeClient([raw(case.documents[0])], [])
    with pytest.raises(InvalidBSON, match="codec can't decode"):
        list(client["coffeeshop"]["receipt"].find({}))


# -- a change event over 16 MB ------------------------------------------------------------------


def test_a_change_event_over_16_mb_is_read_by_id_and_its_neighbours_applied(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An update whose post-image and update description together pass 16 MB: the server
    refuses the event (BSONObjectTooLarge, 10334) on every resume; the document is read by
    `_id` instead and the changes around it apply."""
    big = "x" * (9 << 20)
    first = receipt(1, total="1.00")
    grown = {**receipt(2, total="2.00"), "notes": big}
    script = [
        insert(first),
        insert(receipt(2, total="2.00")),
        update(2, grown, notes=big),  # 18 MB: fullDocument + updateDescription
        insert(receipt(3, total="3.00")),
        update(3, receipt(3, total="3.50"), total_price="3.50"),
        None,
    ]
    client = FakeClient([], script)
    assert len(bson.encode(script[2] or {})) > client.collection.max_event_bytes
    report = sync(url, source(client))
    assert tables_of(url) == reference_tables(client.collection.docs, TODAY)
    assert report.quarantined == 0
    with Store(url) as store:
        assert {r.key for r in store.iter_receipts()} == {"int:1", "int:2", "int:3"}
    (warning,) = [r.getMessage() for r in caplog.records if "16 MB" in r.getMessage()]
    assert "_id 2 is over 16 MB (BSONObjectTooLarge)" in warning
    small = [kw for kw in client.collection.watch_calls if kw.get("pipeline")]
    assert len(small) == 1 and small[0]["full_document"] is None  # no post-image for it
    # a second run goes on after it: the event is never read again
    assert sync(url, source(client)).events == 0


def tables_of(url: str) -> Any:
    with Store(url) as store:
        return store.read_tables(TODAY)


# -- keys: read from BSON, a document is never Extended JSON ------------------------------------


def test_keys_of_ordinary_ids_are_unchanged_in_both_modes() -> None:
    """Existing checkpoints and `cs_receipts` keys stay valid: the keys of ObjectId, integer,
    string and compound `_id`s read from MongoDB are the ones every earlier version wrote."""
    known = [
        (ObjectId(OID), f"oid:{OID}"),
        (5, "int:5"),
        (Int64(5), "int:5"),
        (5.0, "int:5"),
        (Decimal128("5.50"), "num:5.5"),
        ("r-901", "str:r-901"),
        ("", "str:"),
    ]
    for value, key in known:
        assert receipt_key(value) == key
        assert receipt_key(value, literal=True) == key
    compound = {"store": 7, "seq": Int64(1), "oid": ObjectId(OID)}
    expected = 'doc:{"store":{"$num":"int:7"},"seq":{"$num":"int:1"},"oid":{"$oid":"' + OID + '"}}'
    assert receipt_key(compound) == receipt_key(compound, literal=True) == expected


@pytest.mark.parametrize(
    ("lookalike", "native"),
    [
        ({"$oid": OID}, ObjectId(OID)),
        ({"$numberLong": "5"}, 5),
        ({"$timestamp": {"t": 1, "i": 2}}, Timestamp(1, 2)),
        ({"a": {"$oid": OID}}, {"a": ObjectId(OID)}),
        ({"a": {"$num": "int:5"}}, {"a": 5}),
        ("x", Code("x")),
        ({"a": "x"}, {"a": Code("x")}),
    ],
    ids=["oid", "numberLong", "timestamp", "nested-oid", "nested-num", "code", "nested-code"],
)
def test_distinct_bson_ids_never_share_a_key(lookalike: Any, native: Any) -> None:
    assert receipt_key(lookalike, literal=True) != receipt_key(native, literal=True)


def test_extended_json_lookalike_ids_are_two_receipts_in_sync_and_reconcile(url: str) -> None:
    from coffeeshop.pipeline.reconcile import reconcile

    docs = [
        receipt({"$oid": OID}, store=1, total="1.00"),
        receipt(ObjectId(OID), store=2, total="2.00"),
        receipt({"$numberLong": "5"}, store=3, total="3.00"),
        receipt(5, store=4, total="4.00"),
        receipt(Code("x"), store=5, total="5.00"),
        receipt("x", store=6, total="6.00"),
    ]
    client = FakeClient(docs, [None])
    report = sync(url, source(client))
    assert report.applied == 6
    plain = [{**d, "_id": f"plain-{n}"} for n, d in enumerate(docs)]
    assert tables_of(url) == reference_tables(plain, TODAY)
    with Store(url) as store:
        assert len(list(store.iter_receipts())) == 6
        assert reconcile(store, source(client), today=TODAY).total_differences == 0


def test_a_bson_document_can_be_written_with_the_mark_only() -> None:
    """`bson_doc` really writes bytes that are not UTF-8 (the corpus would test nothing
    otherwise)."""
    data = bson_doc(Store_ID="7\x01not-utf8\x01")
    with pytest.raises(InvalidBSON):
        bson.decode(data)


def test_partition_bounds_are_never_strings_that_were_not_utf8(url: str) -> None:
    """A sampled `_id` that was not UTF-8 cannot be sent back as a range bound (PyMongo
    encodes queries strictly): the plan cuts at the others, and every document is read."""
    documents = [raw(bson_doc(_id=f"r-{n:03d}", Store_ID=n % 5)) for n in range(0, 60, 2)]
    documents += [raw(bson_doc(_id=f"r-{n:03d}{MARK}", Store_ID=n % 5)) for n in range(1, 60, 2)]
    run_path("partitions", url, documents, parts=4)  # sampled bounds: r-015…, r-030, r-045…
    with Store(url) as store:
        assert len(list(store.iter_receipts())) == 60
        assert store.quarantine_rows(limit=10) == []


def test_a_snapshot_resumed_after_an_id_that_was_not_utf8_reads_on(url: str) -> None:
    """The snapshot goes on after the last `_id` it read (`min()`): never after one PyMongo
    cannot send back; it goes on after the one before, and reads the rest once."""
    from pymongo.errors import AutoReconnect

    ids = ["r-000", "r-001", f"r-002{MARK}", "r-003", f"r-004{MARK}", "r-005"]
    client = FakeClient([raw(bson_doc(_id=i)) for i in ids], [None])
    client.collection.getmore_faults.append(AutoReconnect("connection reset"))
    report = sync(url, source(client))  # batches of 3: the getMore after r-002… fails
    assert report.applied == 7 and report.quarantined == 0  # r-002… twice: harmless
    (_, again) = client.collection.find_calls
    assert again["min"] == [("_id", "r-001")]
    with Store(url) as store:
        assert len(list(store.iter_receipts())) == 6
