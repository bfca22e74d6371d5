"""Partitioned reading of a MongoDB collection: disjoint `_id` ranges that cover it once.

MongoDB compares values of different BSON types by type order, and a `$gte`/`$lt` query
matches only values of the bound's own type bracket. So the plan splits the `_id`s by type
bracket (`$type`): numbers, strings, ObjectIds and dates (the `_id` types of real
collections, whose order Python shares) are cut at quantiles of a sample of their `_id`s
(`$sample`), so the ranges are of similar size; every other BSON type is one more range (the
`$nor` of those four), so together the ranges cover every BSON type. Each range is a plain
`find` with `_id` bounds on the `_id` index; together they return each document exactly
once. Plain PyMongo calls only.

A partitioned read hands over to the change stream like the single-process snapshot: the
stream's start point is taken first (`MongoSource.start_position`), then the ranges are read,
each by a reader that connects to the URI itself (`MongoTarget`: what crosses to a worker is
the URI and names, never a client). A change made while the ranges are read is seen by the
stream too; applying it again is harmless (the engine is idempotent).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from coffeeshop.core.events import event_from_object
from coffeeshop.core.partials import Candidate, Positioned, Unkeyed, fold, split
from coffeeshop.core.plan import parse_events
from coffeeshop.redact import mask_url
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.sources.mongo.codec import encodable
from coffeeshop.sources.partitions import RangeOutput

# Brackets whose values Python orders as MongoDB does: these are cut at sampled quantiles.
_ORDERED = {
    "number": (int, float),
    "string": (str,),
    "objectId": (ObjectId,),
    "date": (dt.datetime,),
}
REST = "rest"  # every other BSON type (null, documents, arrays, binary, booleans, …): one range
SAMPLE_PER_PART = 32


@dataclass(frozen=True, slots=True)
class IdRange:
    """`_id`s of one type bracket, from `low` (inclusive) to `high` (exclusive); None: open."""

    bracket: str
    low: Any = None
    high: Any = None

    def query(self) -> dict[str, Any]:
        if self.bracket == REST:
            return {"$nor": [{"_id": {"$type": bracket}} for bracket in _ORDERED]}
        condition: dict[str, Any] = {"$type": self.bracket}
        if self.low is not None:
            condition["$gte"] = self.low
        if self.high is not None:
            condition["$lt"] = self.high
        return {"_id": condition}


@dataclass(frozen=True, slots=True)
class MongoTarget:
    """What a worker needs to read a range: the URI (it connects itself) and the names."""

    uri: str
    database: str
    collection: str

    @classmethod
    def of(cls, source: MongoSource) -> MongoTarget:
        return cls(source.uri, source.database, source.collection)

    def source(self) -> MongoSource:
        return MongoSource(self.uri, database=self.database, collection=self.collection)

    def __repr__(self) -> str:  # a task's parameters may be logged: never the password
        return f"MongoTarget({mask_url(self.uri)!r}, {self.database!r}, {self.collection!r})"


@dataclass(slots=True)
class MongoRangeOutput:
    shards: list[dict[str, Candidate]]
    unkeyed: list[Unkeyed] = field(default_factory=list)
    documents: int = 0


def plan_collection(collection: Any, parts: int) -> list[IdRange]:
    """About `parts` ranges over the collection's `_id`s (more when many type brackets hold
    documents: each non-empty bracket is at least one range)."""
    total = collection.estimated_document_count() or 1
    ranges: list[IdRange] = []
    for bracket in _ORDERED:
        count = collection.count_documents({"_id": {"$type": bracket}})
        if count:
            share = max(1, round(parts * count / total))
            ranges.extend(_cut(collection, bracket, share) if share > 1 else [IdRange(bracket)])
    if collection.count_documents(IdRange(REST).query(), limit=1):
        ranges.append(IdRange(REST))
    return ranges


def _cut(collection: Any, bracket: str, share: int) -> list[IdRange]:
    sample = collection.aggregate(
        [
            {"$match": {"_id": {"$type": bracket}}},
            {"$sample": {"size": share * SAMPLE_PER_PART}},
            {"$project": {"_id": 1}},
        ]
    )
    ids = sorted(
        {
            doc["_id"]
            for doc in sample
            if isinstance(doc["_id"], _ORDERED[bracket]) and encodable(doc["_id"])
        }
    )  # (a string that was not UTF-8 cannot be sent back as a bound)
    bounds: list[Any] = []
    for i in range(1, share):
        bound = ids[len(ids) * i // share] if ids else None
        if bound is not None and (not bounds or bound > bounds[-1]):
            bounds.append(bound)
    edges = [None, *bounds, None]
    return [IdRange(bracket, lo, hi) for lo, hi in itertools.pairwise(edges)]


def read_id_range(collection: Any, id_range: IdRange, buckets: int) -> MongoRangeOutput:
    """Read, validate and fold one range (each `_id` is one current document)."""
    counted = {"n": 0}
    candidates, unkeyed = fold(_parsed(collection, id_range, counted))
    return MongoRangeOutput(split(candidates, buckets), unkeyed, counted["n"])


def read_source_range(source: MongoSource, id_range: IdRange, buckets: int) -> RangeOutput:
    """One range read on a connection of its own, as the file ranges' output (no lines: the
    count is of documents; no end: the position is the stream's start point)."""
    with source.collection_handle() as collection:
        output = read_id_range(collection, id_range, buckets)
    return RangeOutput(output.shards, output.unkeyed, output.documents, 0, False)


def plan_source(source: MongoSource, parts: int) -> list[IdRange]:
    with source.collection_handle() as collection:
        return plan_collection(collection, parts)


def _parsed(collection: Any, id_range: IdRange, counted: dict[str, int]) -> Iterator[Positioned]:
    cursor = collection.find(id_range.query(), sort=[("_id", 1)], batch_size=5000)
    batch: list[Any] = []
    for doc in cursor:
        batch.append(event_from_object(doc, where="snapshot", raw="", literal=True))
        if len(batch) >= 5000:
            yield from _positioned(batch, counted)
            batch = []
    yield from _positioned(batch, counted)


def _positioned(events: list[Any], counted: dict[str, int]) -> Iterator[Positioned]:
    for event in parse_events(events):
        counted["n"] += 1
        yield 0, "snapshot", event  # one version per _id: no position is needed
