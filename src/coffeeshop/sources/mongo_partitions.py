"""Partitioned reading of a MongoDB collection: disjoint `_id` ranges that cover it once.

MongoDB compares values of different BSON types by type order, and a `$gte`/`$lt` query
matches only values of the bound's own type bracket. So the plan splits the `_id`s by type
bracket (`$type`): numbers, strings, ObjectIds and dates (the `_id` types of real
collections, whose order Python shares) are cut at quantiles of a sample of their `_id`s
(`$sample`), so the ranges are of similar size; every other BSON type is one more range (the
`$nor` of those four), so together the ranges cover every BSON type. Each range is a plain
`find` with `_id` bounds on the `_id` index; together they return each document exactly
once. Plain PyMongo calls only.

Strings compare with the collection's default collation (a case-insensitive one puts "a"
before "B", Python's code-point order the other way round), in queries and on the `_id`
index alike: the sampled `_id`s are therefore sorted by the server (`$sort` in the same
aggregation, which uses that collation), and Python never compares two bounds. So the
bounds increase in the server's order and the ranges stay disjoint whatever the collation.

Every call is retried with the source's own policy (`MongoSource.read_retrying`: which
errors are transient, the backoff, the log line): the plan's counts and sample, and each
range read, which goes on after the last `_id` it read (`documents_after`, as the
single-process snapshot does) instead of reading the whole range again.

A partitioned read hands over to the change stream like the single-process snapshot: the
stream's start point is taken first (`MongoSource.start_position`), then the ranges are read,
each by a reader that connects to the URI itself (`MongoTarget`: what crosses to a worker is
the URI and names, never a client), and first checks that the collection there is the one
whose start point was taken (its UUID and replica set name, `mongo.history`): a worker that
reaches another server or a collection created again fails the run (`SourceChanged`). A
change made while the ranges are read is seen by the stream too; applying it again is
harmless (the engine is idempotent).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId

from coffeeshop.core.events import event_from_object
from coffeeshop.core.partials import Candidate, Positioned, Unkeyed, fold, split
from coffeeshop.core.plan import parse_events
from coffeeshop.errors import SourceChanged, SourceHistoryLost
from coffeeshop.redact import mask_url
from coffeeshop.retry import Retrying
from coffeeshop.sources.mongo import MongoSource
from coffeeshop.sources.mongo.codec import encodable
from coffeeshop.sources.mongo.snapshot import documents_after
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
RANGE_BATCH = 5000  # documents per reply when a range is read (and events per parsed chunk)


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
    history: dict[str, str] = field(default_factory=dict)  # the planned collection's identity

    @classmethod
    def of(cls, source: MongoSource, history: dict[str, str]) -> MongoTarget:
        return cls(source.uri, source.database, source.collection, history)

    def source(self) -> MongoSource:
        return MongoSource(self.uri, database=self.database, collection=self.collection)

    def __repr__(self) -> str:  # a task's parameters may be logged: never the password
        return f"MongoTarget({mask_url(self.uri)!r}, {self.database!r}, {self.collection!r})"


@dataclass(frozen=True, slots=True)
class MongoPart:
    """One `_id` range of a plan, with what a worker needs to connect and check the
    collection (`MongoTarget`)."""

    target: MongoTarget
    id_range: IdRange

    def reopen(self) -> MongoSource:
        return self.target.source()


@dataclass(frozen=True, slots=True)
class CollectionPlan:
    """The ranges of a collection; they hand over to its change stream at `start`, the start
    point taken before they were planned."""

    start: str
    parts: list[MongoPart]

    def handover(self, heads: list[RangeOutput]) -> str:
        return self.start


def plan_partitions(source: MongoSource, parts: int) -> CollectionPlan:
    """The change stream's start point first, then the `_id` ranges (see the module's text)."""
    start = source.start_position()
    target = MongoTarget.of(source, history_of(start))
    return CollectionPlan(start, [MongoPart(target, r) for r in plan_source(source, parts)])


@dataclass(slots=True)
class MongoRangeOutput:
    shards: list[dict[str, Candidate]]
    unkeyed: list[Unkeyed] = field(default_factory=list)
    documents: int = 0


def plan_collection(collection: Any, parts: int, retrying: Retrying) -> list[IdRange]:
    """About `parts` ranges over the collection's `_id`s (more when many type brackets hold
    documents: each non-empty bracket is at least one range)."""
    what = "plan the partitions"
    total = retrying.call(collection.estimated_document_count, what) or 1
    ranges: list[IdRange] = []
    for bracket in _ORDERED:
        query = {"_id": {"$type": bracket}}
        count = retrying.call(functools.partial(collection.count_documents, query), what)
        if count:
            share = max(1, round(parts * count / total))
            ranges.extend(
                _cut(collection, bracket, share, retrying) if share > 1 else [IdRange(bracket)]
            )
    rest = IdRange(REST).query()
    if retrying.call(lambda: collection.count_documents(rest, limit=1), what):
        ranges.append(IdRange(REST))
    return ranges


def _cut(collection: Any, bracket: str, share: int, retrying: Retrying) -> list[IdRange]:
    pipeline = [
        {"$match": {"_id": {"$type": bracket}}},
        {"$sample": {"size": share * SAMPLE_PER_PART}},
        {"$project": {"_id": 1}},
        {"$sort": {"_id": 1}},  # in the server's order: its collation, not Python's
    ]
    sample = retrying.call(lambda: list(collection.aggregate(pipeline)), "plan the partitions")
    ids = [
        doc["_id"]
        for doc in sample
        if isinstance(doc["_id"], _ORDERED[bracket]) and encodable(doc["_id"])
    ]  # (a string that was not UTF-8 cannot be sent back as a bound)
    bounds: list[Any] = []
    for i in range(1, share):
        bound = ids[len(ids) * i // share] if ids else None
        if bound is not None and (not bounds or bound != bounds[-1]):
            bounds.append(bound)
    edges = [None, *bounds, None]
    return [IdRange(bracket, lo, hi) for lo, hi in itertools.pairwise(edges)]


def read_id_range(
    collection: Any, id_range: IdRange, buckets: int, retrying: Retrying
) -> MongoRangeOutput:
    """Read, validate and fold one range (each `_id` is one current document)."""
    counted = {"n": 0}
    candidates, unkeyed = fold(_parsed(collection, id_range, counted, retrying))
    return MongoRangeOutput(split(candidates, buckets), unkeyed, counted["n"])


def read_source_range(
    source: MongoSource, id_range: IdRange, buckets: int, history: dict[str, str]
) -> RangeOutput:
    """One range read on a connection of its own, as the file ranges' output (no lines: the
    count is of documents; no end: the position is the stream's start point), after checking
    that the collection is the one of `history` (the identity in the start position)."""
    stop = threading.Event()
    with _planned_collection(source, history) as collection:
        output = read_id_range(collection, id_range, buckets, source.read_retrying(stop))
    return RangeOutput(output.shards, output.unkeyed, output.documents, 0, False)


@contextlib.contextmanager
def _planned_collection(source: MongoSource, history: dict[str, str]) -> Iterator[Any]:
    """The collection, refused when it is not the planned one (another server or replica set
    behind the URI on this worker, the collection dropped and created again)."""
    with contextlib.ExitStack() as stack:
        try:
            collection = stack.enter_context(source.collection_handle(history))
        except SourceHistoryLost as exc:
            raise SourceChanged(
                f"on worker {socket.gethostname()}: {exc}; it is not the collection the "
                "coordinator read, so nothing was written"
            ) from None
        yield collection


def history_of(start: str) -> dict[str, str]:
    """The collection's identity kept in a start position (`mongo.history.with_identity`)."""
    return dict(json.loads(start).get("history") or {})


def plan_source(source: MongoSource, parts: int) -> list[IdRange]:
    stop = threading.Event()
    with source.collection_handle() as collection:
        return plan_collection(collection, parts, source.read_retrying(stop))


def _parsed(
    collection: Any, id_range: IdRange, counted: dict[str, int], retrying: Retrying
) -> Iterator[Positioned]:
    documents = documents_after(
        collection,
        id_range.query(),
        None,
        batch_size=RANGE_BATCH,
        retrying=retrying,
        stop=retrying.stop,
        what=f"read the {id_range.bracket} _id range",
    )
    batch: list[Any] = []
    for doc in documents:
        batch.append(event_from_object(doc, where="snapshot", raw="", literal=True))
        if len(batch) >= RANGE_BATCH:
            yield from _positioned(batch, counted)
            batch = []
    yield from _positioned(batch, counted)


def _positioned(events: list[Any], counted: dict[str, int]) -> Iterator[Positioned]:
    for event in parse_events(events):
        counted["n"] += 1
        yield 0, "snapshot", event  # one version per _id: no position is needed
