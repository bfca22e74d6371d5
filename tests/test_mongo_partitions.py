"""The MongoDB partitioner (mongomock): `_id` ranges over every BSON type bracket cover the
collection exactly once, and their merged partials equal a fold of the whole collection."""

from __future__ import annotations

import datetime as dt

import mongomock
from bson import Int64, ObjectId
from helpers import receipt

from coffeeshop.core.events import event_from_object
from coffeeshop.core.partials import merge_all, resolve, unkeyed_partial
from coffeeshop.core.plan import parse_events
from coffeeshop.core.recompute import recompute
from coffeeshop.sources.mongo_partitions import plan_collection, read_id_range

TODAY = dt.date(2026, 11, 25)


def collection() -> mongomock.Collection:
    coll = mongomock.MongoClient().db.receipt
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
        ranges = plan_collection(coll, parts)
        seen: list[object] = []
        for r in ranges:
            seen += [d["_id"] for d in coll.find(r.query())]
        assert len(seen) == total, parts  # no document missed, none read twice
        assert len({repr(x) for x in seen}) == total
        outputs = [read_id_range(coll, r, 4) for r in ranges]
        assert sum(o.documents for o in outputs) == total
        results = [resolve(o.shards[b] for o in outputs) for b in range(4)]
        partial = merge_all(
            [r.partial for r in results] + [unkeyed_partial(o.unkeyed) for o in outputs]
        )
        events = parse_events(event_from_object(d, where="snapshot", raw="") for d in coll.find())
        reference = recompute((e.receipt for e in events if e.receipt is not None), TODAY)
        assert partial.tables(TODAY) == reference
        assert [e.receipt_id for e in partial.entries()] == ["bad"]
    assert len(plan_collection(coll, 20)) >= 8  # brackets cut at sampled quantiles
