"""A scripted stand-in for the small part of PyMongo that `MongoSource` uses.

No MongoDB server runs in these tests, and mongomock has no change streams, so this
fake plays a *timeline*: a list of steps that happen, in order, after the start of
the collection's history. A step is one of

- a change event (build it with `insert`, `replace`, `update`, `delete`, `drop`,
  `invalidate`): the fake stamps it with its resume token `_id`, `clusterTime` and
  `wallTime` when it is read;
- `None`: a getMore that found no change (an idle poll); the stream's resume token
  then becomes that step's post-batch token;
- an exception instance (`AutoReconnect(...)`, `OperationFailure(..., code=286)`, …):
  `try_next()` raises it.

Every step has a position: step `i` ends at position `i + 1`, and `token(p)` is the
resume token of position `p` (`token(0)` is the start of the history). A change's
`_id` and a `None`'s post-batch token are the token of the position after the step.

A step *happens* once, the first time any stream reaches it: a change then updates
the collection's documents (what `find` returns), and an exception is raised. A
stream resumed from an earlier token replays the changes after it (as the oplog
would) but not exceptions, which already happened. `watch()` without `resume_after`
starts "now", at the furthest position any stream reached. Positions before
`collection.oldest` have fallen off the oplog (`roll_oplog`): resuming from them makes
`watch()` raise ChangeStreamHistoryLost (286), as the server's aggregate does. When the
timeline is exhausted the stream is idle (`try_next()` returns None), so a
follow-mode loop runs until its stop event is set.

Only what `MongoSource` and the partitioned reader call exists: `client[db][coll]`,
`client[db].get_collection(name, codec_options=)`, `client[db].list_collections(filter=)`,
`client[db].list_collection_names()`, `client.admin.command("hello" | "isMaster")`,
`client.close()`,
`collection.find(filter, sort=, batch_size=, limit=, hint=, min=)`, `collection.find_one()`,
`collection.count_documents(filter, limit=)`, `collection.estimated_document_count()`,
`collection.aggregate([{"$match"}, {"$sample"}, {"$project": {"_id": 1}}, {"$sort"}])`
and `collection.watch(full_document=, resume_after=, max_await_time_ms=, batch_size=)`
returning a stream with `try_next()`, `resume_token`, `close()` and `with`.

`find` compares `_id`s as the server does: in BSON type order (numbers < strings < objects
< binary < ObjectId < booleans < dates), and `$gt` / `$lt` only match values of the same
type ("type bracketing"); `$type` takes the aliases "number", "string", "objectId", "date".
A collection may have a default collation (`FakeClient(..., collation=…)`, reported by
`listCollections`): strings then compare case-insensitively in queries, sorts and `min()`,
as the server's do with a strength 1 or 2 collation.
Like PyMongo, a `find` cursor gets its first batch with the `find` itself (which PyMongo
retries once) and every further batch with a `getMore`, which the driver never retries:
an exception put in `collection.command_faults` is raised by the next find / count /
aggregate command (None: that one succeeds), and one in `collection.getmore_faults` is
raised by the next getMore of any cursor (AutoReconnect, NetworkTimeout, CursorNotFound
(43), …); a callable put there is called by it (a getMore that blocks, as one does on a
network that went silent without a reset).

Decoding is PyMongo's: a document may be stored as raw BSON (`bson.RawBSONDocument`, built
with `raw(...)` from values Python cannot hold: a date past year 9999, bytes that are not
UTF-8), and every document and change event that holds one is decoded on the way out with the
codec options the collection was taken with (`get_collection(codec_options=)`; PyMongo's
strict defaults otherwise, which raise `InvalidBSON` as the driver does). The collection
exists only under its namespace (`FakeClient(namespace=)`), with a UUID that `recreate()`
changes (a drop and create, a restore). A change event larger than `max_event_bytes` (16 MiB,
the server's limit) cannot be sent: the getMore that reaches it fails with
BSONObjectTooLarge (10334), every time; a `watch([{"$project": …}])` that leaves it smaller
reads it.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import bson
from bson import Binary, DatetimeMS, Decimal128, ObjectId, Timestamp
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument
from pymongo.errors import OperationFailure

EPOCH = 1_795_000_000  # clusterTime seconds of position 0 (late November 2026)
MAX_EVENT_BYTES = 16 * 1024 * 1024  # BSONObjectMaxUserSize

# How the fake itself reads raw documents (to match and sort their `_id`s): every value.
_LENIENT: CodecOptions[Any] = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_MS,
    unicode_decode_error_handler="surrogateescape",
)


class RawDocument(RawBSONDocument):
    """A document stored as BSON bytes; `doc[field]` (how the fake matches and sorts) reads
    every value, and `bson.encode` writes its bytes as they are."""

    def __getitem__(self, field: str) -> Any:
        return bson.decode(self.raw, codec_options=_LENIENT)[field]

    def __deepcopy__(self, memo: Any) -> RawDocument:
        return self  # bytes: immutable


def raw(doc: dict[str, Any] | bytes) -> RawDocument:
    """A document stored as BSON bytes (`bytes`: hand-made BSON, such as a string that is
    not UTF-8, which `bson.encode` cannot make)."""
    data = doc if isinstance(doc, bytes) else bson.encode(doc)
    return RawDocument(data, codec_options=_LENIENT.with_options(document_class=RawDocument))


def decoded(value: Any, options: CodecOptions[Any]) -> Any:
    """`value` as the driver hands it out: a document holding raw BSON is decoded with
    `options` (InvalidBSON under strict ones), anything else copied."""
    if isinstance(value, RawBSONDocument) or (
        isinstance(value, dict) and any(isinstance(v, RawBSONDocument) for v in value.values())
    ):
        return bson.decode(bson.encode(value), codec_options=options)
    return copy.deepcopy(value)


def token(position: int) -> dict[str, str]:
    """The resume token of a position (the fake's tokens are just numbered)."""
    return {"_data": f"{position:04d}"}


def position_of(resume_token: Any) -> int:
    return int(resume_token["_data"])


# -- change events (without _id, clusterTime and wallTime: the fake stamps those) ----------------


def insert(doc: dict[str, Any]) -> dict[str, Any]:
    return {"operationType": "insert", "documentKey": key_document(doc), "fullDocument": doc}


def replace(doc: dict[str, Any]) -> dict[str, Any]:
    return {"operationType": "replace", "documentKey": key_document(doc), "fullDocument": doc}


def update(
    doc_id: Any, full_document: dict[str, Any] | None, *, image: bool = True, **fields: Any
) -> dict[str, Any]:
    """An update; `full_document` is the looked-up document, None if it is gone by then.
    `image=False`: the document becomes `full_document`, but the event has no post-image
    (`fullDocument: null` under `whenAvailable`: not recorded, or expired)."""
    change = {
        "operationType": "update",
        "documentKey": {"_id": doc_id},
        "updateDescription": {"updatedFields": fields, "removedFields": []},
        "fullDocument": full_document,
    }
    if not image:
        change |= {"fullDocument": None, "_applied": full_document}
    return change


def delete(doc_id: Any) -> dict[str, Any]:
    return {"operationType": "delete", "documentKey": {"_id": doc_id}}


def drop() -> dict[str, Any]:
    return {"operationType": "drop"}


def invalidate() -> dict[str, Any]:
    return {"operationType": "invalidate"}


# -- client ---------------------------------------------------------------------------------------


# -- BSON comparison order -----------------------------------------------------------------------

_BRACKETS: tuple[tuple[type | tuple[type, ...], int], ...] = (
    (type(None), 1),
    (bool, 8),  # before int: a bool is an int in Python
    ((int, float, Decimal128), 2),
    (str, 3),
    (dict, 4),
    ((bytes, Binary), 6),
    (ObjectId, 7),
    ((dt.datetime, DatetimeMS), 9),
    (Timestamp, 10),
)


def bracket(value: Any) -> int:
    """The rank of a value's type in MongoDB's comparison order."""
    for kinds, rank in _BRACKETS:
        if isinstance(value, kinds):
            return rank
    raise AssertionError(f"the fake does not order {type(value).__name__} values")


def bson_key(value: Any, collation: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """A sort key that orders values as MongoDB orders `_id`s; strings by `collation` (the
    fake knows case-insensitive ones, strength 1 or 2: "a" < "B" < "c"), else by code point
    ("B" < "a" < "c")."""
    rank = bracket(value)
    if rank == 3 and collation is not None:
        assert collation.get("strength") in (1, 2), f"the fake only folds case: {collation}"
        return (rank, value.casefold())
    if rank == 2:
        return (rank, value.to_decimal() if isinstance(value, Decimal128) else value)
    if rank == 9:  # dates: milliseconds, whether Python can hold them or not
        return (rank, int(value if isinstance(value, DatetimeMS) else DatetimeMS(value)))
    if rank == 4:
        return (rank, tuple((k, bson_key(v)) for k, v in value.items()))
    if rank == 6:
        return (rank, len(value), bytes(value))
    if rank == 10:
        return (rank, value.time, value.inc)
    if rank == 1:
        return (rank,)
    return (rank, value)


_TYPE_RANKS = {"number": 2, "string": 3, "objectId": 7, "date": 9}


def _matches(doc_id: Any, filter: dict[str, Any], collation: dict[str, Any] | None = None) -> bool:
    """The filters the source sends: `{}`, `{"_id": {"$gt"|"$gte"|"$lt"|"$type": x}}`,
    `{"$nor": [...]}`, `{"_id": x}`."""
    for field, condition in filter.items():
        if field == "$nor":
            if any(_matches(doc_id, clause, collation) for clause in condition):
                return False
            continue
        assert field == "_id", filter
        if not isinstance(condition, dict):
            if bracket(condition) != bracket(doc_id) or bson_key(doc_id, collation) != bson_key(
                condition, collation
            ):
                return False
            continue
        for op, bound in condition.items():
            if op == "$type":
                if bracket(doc_id) != _TYPE_RANKS[bound]:
                    return False
                continue
            if bracket(bound) != bracket(doc_id):  # type bracketing
                return False
            mine, theirs = bson_key(doc_id, collation), bson_key(bound, collation)
            ok = {"$gt": mine > theirs, "$gte": mine >= theirs, "$lt": mine < theirs}[op]
            if not ok:
                return False
    return True


class FakeClient:
    """`FakeClient(docs, timeline)`: one collection, whatever database and name are asked for.

    `replica_set=False`: a standalone server (no change streams). `hello=False`: a server
    older than 4.4.2 that only knows `isMaster`. `post_images`: whether the collection has
    `changeStreamPreAndPostImages` enabled (what `listCollections` reports). `namespace`:
    the only (database, collection) that exists; `set_name`: the replica set's name."""

    def __init__(
        self,
        collection_docs: list[Any],  # documents: dicts, or RawBSONDocuments
        script: list[Any],
        *,
        replica_set: bool = True,
        hello: bool = True,
        post_images: bool = False,
        collation: dict[str, Any] | None = None,
        namespace: tuple[str, str] = ("coffeeshop", "receipt"),
        set_name: str = "rs0",
    ) -> None:
        self.collection = FakeCollection(collection_docs, script, collation=collation)
        self.namespace = namespace
        self.set_name = set_name
        self.replica_set = replica_set
        self.hello = hello
        self.post_images = post_images
        self.commands: list[str] = []
        self.admin = _Admin(self)
        self.opened: list[tuple[str, str]] = []  # (database, collection) asked for
        self.closed = 0

    def __getitem__(self, database: str) -> _Database:
        return _Database(self, database)

    def close(self) -> None:
        self.closed += 1


class _Database:
    def __init__(self, client: FakeClient, name: str) -> None:
        self._client, self._name = client, name

    def __getitem__(self, collection: str) -> FakeCollection:
        return self.get_collection(collection, codec_options=DEFAULT_CODEC_OPTIONS)

    def get_collection(
        self, name: str, *, codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS
    ) -> FakeCollection:
        """The collection (an empty one outside the namespace, as a server reads a collection
        that does not exist); it decodes with `codec_options` from now on."""
        self._client.opened.append((self._name, name))
        found = self._client.collection if self._exists(name) else FakeCollection([], [])
        found.codec_options = codec_options
        return found

    def _exists(self, name: str) -> bool:
        return (self._name, name) == self._client.namespace

    def list_collection_names(self) -> list[str]:
        database, name = self._client.namespace
        return [name] if self._name == database else []

    def list_collections(self, *, filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        options: dict[str, Any] = {}
        if self._client.post_images:
            options["changeStreamPreAndPostImages"] = {"enabled": True}
        if self._client.collection.collation is not None:
            options["collation"] = dict(self._client.collection.collation)
        name = (filter or {}).get("name", self._client.namespace[1])
        if not self._exists(name):
            return []
        info = {"readOnly": False, "uuid": Binary(self._client.collection.uuid.bytes, 4)}
        return [{"name": name, "type": "collection", "options": options, "info": info}]


class _Admin:
    def __init__(self, client: FakeClient) -> None:
        self._client = client

    def command(self, name: str) -> dict[str, Any]:
        assert name in ("hello", "isMaster"), f"the fake only answers hello/isMaster, not {name!r}"
        self._client.commands.append(name)
        if name == "hello" and not self._client.hello:  # MongoDB 4.4.0 / 4.4.1
            raise OperationFailure("no such command: 'hello'", code=59)
        if self._client.replica_set:
            return {"isWritablePrimary": True, "setName": self._client.set_name, "ok": 1.0}
        return {"isWritablePrimary": True, "ok": 1.0}  # a standalone: no setName


def key_document(doc: Any) -> Any:
    """`{"_id": …}` of a document (raw BSON for a raw document: its `_id` may be a value only
    raw BSON holds, such as a string that is not UTF-8)."""
    if not isinstance(doc, RawBSONDocument):
        return {"_id": copy.deepcopy(doc["_id"])}
    doc_id = doc["_id"]
    if isinstance(doc_id, str):  # written by hand: bson.encode refuses a lone surrogate
        data = doc_id.encode("utf-8", "surrogateescape") + b"\x00"
        element = b"\x02_id\x00" + len(data).to_bytes(4, "little") + data
        return raw((len(element) + 5).to_bytes(4, "little") + element + b"\x00")
    return raw({"_id": doc_id})


def _projection(pipeline: list[dict[str, Any]] | None) -> list[str] | None:
    """The fields an inclusion `$project` (the only stage the fake takes) keeps."""
    if not pipeline:
        return None
    ((stage,),) = [tuple(step.items()) for step in pipeline]
    op, fields = stage
    assert op == "$project" and all(v == 1 for v in fields.values()), pipeline
    return list(fields)


# -- collection ---------------------------------------------------------------------------------


class FakeCollection:
    def __init__(
        self,
        docs: list[dict[str, Any]],
        script: list[Any],
        *,
        collation: dict[str, Any] | None = None,
    ) -> None:
        self.docs = copy.deepcopy(docs)  # the current documents
        # The collection's default collation: queries, sorts and the `_id` index use it.
        self.collation = collation
        # Raised by the next commands (find, count, estimated count, aggregate), in turn: a
        # network error the driver's own single retry of a read did not get past (None: that
        # command succeeds).
        self.command_faults: list[BaseException | None] = []
        self.script = script  # the timeline; tests may append to it
        self.now = 0  # the furthest position reached: steps before it have happened
        self.oldest = 0  # positions before this are no longer in the oplog
        self.calls: list[tuple[str, dict[str, Any]]] = []  # ("find"|"watch", arguments)
        # Whether change streams show PyMongo's reply buffer (`stream._cursor._data`).
        self.replies = False
        self.getmore_faults: list[Any] = []  # raised by the next getMores, in turn
        self.getmores = 0
        self.codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS
        self.uuid = uuid.UUID(int=1)  # listCollections' info.uuid
        self.max_event_bytes = MAX_EVENT_BYTES

    def recreate(self, docs: list[Any]) -> None:
        """The collection is dropped and created again with `docs` (or restored from a backup,
        or its node restarted without its data): a new UUID, and no drop event in the oplog,
        which still accepts the old resume tokens."""
        self.docs = copy.deepcopy(docs)
        self.uuid = uuid.UUID(int=self.uuid.int + 1)

    @property
    def watch_calls(self) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == "watch"]

    @property
    def find_calls(self) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == "find"]

    def find(
        self,
        filter: dict[str, Any],  # PyMongo's name
        *,
        sort: list[tuple[str, int]] | None = None,
        batch_size: int = 0,
        limit: int = 0,
        hint: list[tuple[str, int]] | None = None,
        min: list[tuple[str, Any]] | None = None,
    ) -> FakeCursor:
        arguments: dict[str, Any] = {
            "filter": copy.deepcopy(filter),
            "sort": sort,
            "batch_size": batch_size,
            "limit": limit,
        }
        if hint is not None or min is not None:
            arguments |= {"hint": hint, "min": copy.deepcopy(min)}
        self.calls.append(("find", arguments))
        self._fault()
        bson.encode({"filter": filter, "min": min or []})  # PyMongo sends BSON: this may raise
        assert sort in (None, [("_id", 1)]), f"unsupported sort {sort!r}"
        docs = sorted(self.docs, key=lambda d: self._key(d["_id"]))
        docs = [d for d in docs if _matches(d["_id"], filter, self.collation)]
        if min is not None:  # inclusive lower bound on the index, across every type
            assert hint == [("_id", 1)], "min() needs hint() on the index (PyMongo 4)"
            ((field, low),) = min
            assert field == "_id"
            docs = [d for d in docs if self._key(d["_id"]) >= self._key(low)]
        if limit:
            docs = docs[:limit]
        return FakeCursor(self, list(docs), batch_size)

    def find_one(self, filter: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(("find_one", {"filter": copy.deepcopy(filter)}))
        for d in self.docs:
            if _matches(d["_id"], filter):
                return decoded(d, self.codec_options)  # type: ignore[no-any-return,unused-ignore]
        return None

    def count_documents(self, filter: dict[str, Any], *, limit: int = 0) -> int:
        self.calls.append(("count_documents", {"filter": copy.deepcopy(filter)}))
        self._fault()
        n = sum(1 for d in self.docs if _matches(d["_id"], filter, self.collation))
        return min(n, limit) if limit else n

    def estimated_document_count(self) -> int:
        self.calls.append(("estimated_document_count", {}))
        self._fault()
        return len(self.docs)

    def _fault(self) -> None:
        if self.command_faults and (fault := self.command_faults.pop(0)) is not None:
            raise fault

    def _key(self, value: Any) -> tuple[Any, ...]:
        return bson_key(value, self.collation)

    def aggregate(self, pipeline: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """`$match` on `_id`, `$sample` (seeded: the same plan every run), `$project` to `_id`,
        `$sort` by `_id` (with the collection's collation)."""
        self.calls.append(("aggregate", {"pipeline": copy.deepcopy(pipeline)}))
        self._fault()
        docs = self.docs
        for stage in pipeline:
            ((op, argument),) = stage.items()
            if op == "$match":
                docs = [d for d in docs if _matches(d["_id"], argument, self.collation)]
            elif op == "$sample":
                docs = random.Random(len(docs)).sample(docs, min(argument["size"], len(docs)))
            elif op == "$sort":
                assert argument == {"_id": 1}, stage
                docs = sorted(docs, key=lambda d: self._key(decoded(d, self.codec_options)["_id"]))
            else:
                assert op == "$project" and argument == {"_id": 1}, stage
                docs = [key_document(d) for d in docs]
        return iter([decoded(d, self.codec_options) for d in docs])

    def watch(
        self,
        pipeline: list[dict[str, Any]] | None = None,
        *,
        full_document: str | None = None,
        resume_after: Any = None,
        max_await_time_ms: int | None = None,
        batch_size: int | None = None,
    ) -> FakeChangeStream:
        self.calls.append(
            (
                "watch",
                {
                    **({"pipeline": pipeline} if pipeline else {}),
                    "full_document": full_document,
                    "resume_after": copy.deepcopy(resume_after),
                    "max_await_time_ms": max_await_time_ms,
                    "batch_size": batch_size,
                },
            )
        )
        project = _projection(pipeline)
        if resume_after is None:
            return FakeChangeStream(
                self, max(self.now, self.oldest), None, max_await_time_ms, project
            )
        start = position_of(resume_after)
        if start < self.oldest:
            raise OperationFailure(
                "Resume of change stream was not possible, as the resume point may no longer "
                "be in the oplog.",
                code=286,
            )
        return FakeChangeStream(self, start, resume_after, max_await_time_ms, project)

    def roll_oplog(self, position: int) -> None:
        """Time passes with no stream reading: the steps before `position` happen (changes
        reach the documents, exceptions are lost) and fall off the oplog."""
        for index in range(self.now, position):
            self._happen(index, self.script[index])
        self.oldest = position

    def _happen(self, index: int, step: Any) -> None:
        """Step `index` happens (first reached): apply a change to the documents."""
        self.now = index + 1
        if not isinstance(step, dict):
            return
        operation = step["operationType"]
        if operation == "drop":
            self.docs = []
            return
        if operation not in ("insert", "replace", "update", "delete"):
            return
        doc_id = step["documentKey"]["_id"]
        self.docs = [d for d in self.docs if d["_id"] != doc_id]
        full = step["_applied"] if "_applied" in step else step.get("fullDocument")
        if operation != "delete" and full is not None:
            self.docs.append(copy.deepcopy(full))


class FakeCursor:
    """The first batch comes with the find; each further batch costs a getMore, which raises
    the collection's next `getmore_faults` entry, if any (and the cursor is then dead)."""

    def __init__(self, collection: FakeCollection, docs: list[dict[str, Any]], batch: int) -> None:
        self._collection = collection
        self._docs = docs
        self._batch = batch or 101  # the server's default first batch
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        options = self._collection.codec_options
        for start in range(0, len(self._docs), self._batch):
            if start:  # the previous batch is used up: getMore
                self._collection.getmores += 1
                if self._collection.getmore_faults:
                    fault = self._collection.getmore_faults.pop(0)
                    if callable(fault) and not isinstance(fault, BaseException):
                        fault()  # a getMore that hangs on a dead network: it blocks
                    else:
                        self.closed = True
                        raise fault
            # the driver decodes a whole batch at once: one bad value fails all of it
            yield from [decoded(d, options) for d in self._docs[start : start + self._batch]]

    def close(self) -> None:
        self.closed = True


class _Reply:
    def __init__(self, data: list[Any]) -> None:
        self._data = data


class FakeChangeStream:
    def __init__(
        self,
        collection: FakeCollection,
        start: int,
        resume_after: Any,
        max_await_time_ms: int | None,
        project: list[str] | None = None,
    ) -> None:
        self._collection = collection
        self._project = project
        self._position = start
        self._await = (max_await_time_ms or 0) / 1000
        # Like PyMongo: the resume_after token until something is read, or for a new
        # stream the initial post-batch token (the current end of the oplog).
        self._token = copy.deepcopy(resume_after) if resume_after is not None else token(start)
        self.closed = False

    @property
    def resume_token(self) -> dict[str, str] | None:
        return copy.deepcopy(self._token)

    @property
    def _cursor(self) -> Any:
        """PyMongo's command cursor under the stream, as far as `buffered()` looks: its
        `_data`, the changes of the last server reply not yet returned. The fake's reply
        holds the run of changes up to the next idle getMore, error or end of the script.
        Only with `collection.replies` (else absent: the source cannot see the buffer)."""
        if not self._collection.replies:
            raise AttributeError("_cursor")
        script = self._collection.script
        end = self._position
        while end < len(script) and isinstance(script[end], dict):
            end += 1
        return _Reply(script[self._position : end])

    def try_next(self) -> dict[str, Any] | None:
        assert not self.closed, "try_next() on a closed change stream"
        coll = self._collection
        while True:
            index = self._position
            if index >= len(coll.script):  # exhausted: idle, like an empty getMore
                time.sleep(min(self._await, 0.005))
                return None
            step = coll.script[index]
            first_time = index >= coll.now
            if first_time:
                coll._happen(index, step)
            if isinstance(step, dict) and self._size(index, step) > coll.max_event_bytes:
                raise OperationFailure(
                    "Executor error during getMore :: caused by :: BSONObjectTooLarge: "
                    "BSONObj size is invalid. Size must be between 0 and 16793600(16MB)",
                    code=10334,
                )
            self._position = index + 1
            if isinstance(step, BaseException):
                if first_time:
                    raise step
                continue  # an error that already happened is not replayed
            if step is None:
                self._token = token(index + 1)  # the post-batch token of an empty getMore
                return None
            change = self._event(index, step)
            self._token = copy.deepcopy(change["_id"])
            return decoded(change, coll.codec_options)  # type: ignore[no-any-return,unused-ignore]

    def _event(self, index: int, step: dict[str, Any]) -> dict[str, Any]:
        """The event of a step as the server sends it: stamped, and projected."""
        change = {k: v for k, v in step.items() if k != "_applied"}
        change["_id"] = token(index + 1)
        change["clusterTime"] = Timestamp(EPOCH + index + 1, 1)
        change["wallTime"] = dt.datetime.fromtimestamp(EPOCH + index + 1, dt.UTC).replace(
            tzinfo=None
        )
        if self._project is not None:
            change = {k: v for k, v in change.items() if k == "_id" or k in self._project}
        return change

    def _size(self, index: int, step: dict[str, Any]) -> int:
        return len(bson.encode(self._event(index, step)))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeChangeStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def mongomock_client() -> Any:
    """A mongomock client the source can use. mongomock keeps Python values, not BSON, so
    it has nothing to decode, and it refuses the codec options the source takes every
    collection with: they are dropped here (decoding is tested with `FakeClient`). It has no
    `listCollections` either: here it is, from the collection names (without a UUID)."""
    import mongomock

    class Client(mongomock.MongoClient):  # type: ignore[misc,unused-ignore]
        def get_database(self, name: str | None = None, **options: Any) -> Any:  # type: ignore[override,unused-ignore]
            database = super().get_database(name, **options)
            plain = database.get_collection

            def get_collection(name: str, codec_options: Any = None, **rest: Any) -> Any:
                return plain(name, **rest)

            def list_collections(filter: dict[str, Any] | None = None) -> list[Any]:
                wanted = (filter or {}).get("name")
                return [
                    {"name": name, "type": "collection", "options": {}, "info": {}}
                    for name in database.list_collection_names()
                    if wanted in (None, name)
                ]

            setattr(database, "get_collection", get_collection)  # noqa: B010
            setattr(database, "list_collections", list_collections)  # noqa: B010 (not in mongomock)
            return database

    return Client()
