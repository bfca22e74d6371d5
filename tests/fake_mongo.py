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

Only what `MongoSource` calls exists: `client[db][coll]`, `client.admin.command("hello")`,
`client.close()`, `collection.find(filter, sort=, batch_size=, limit=)` with a filter
of `{}` or `{"_id": {"$gt": x}}` (documents of one `_id` type), and
`collection.watch(full_document=, resume_after=, max_await_time_ms=, batch_size=)`
returning a stream with `try_next()`, `resume_token`, `close()` and `with`.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from bson import Timestamp
from pymongo.errors import OperationFailure

EPOCH = 1_795_000_000  # clusterTime seconds of position 0 (late November 2026)


def token(position: int) -> dict[str, str]:
    """The resume token of a position (the fake's tokens are just numbered)."""
    return {"_data": f"{position:04d}"}


def position_of(resume_token: Any) -> int:
    return int(resume_token["_data"])


# -- change events (without _id, clusterTime and wallTime: the fake stamps those) ----------------


def insert(doc: dict[str, Any]) -> dict[str, Any]:
    return {"operationType": "insert", "documentKey": {"_id": doc["_id"]}, "fullDocument": doc}


def replace(doc: dict[str, Any]) -> dict[str, Any]:
    return {"operationType": "replace", "documentKey": {"_id": doc["_id"]}, "fullDocument": doc}


def update(doc_id: Any, full_document: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """An update; `full_document` is the looked-up document, None if it is gone by then."""
    return {
        "operationType": "update",
        "documentKey": {"_id": doc_id},
        "updateDescription": {"updatedFields": fields, "removedFields": []},
        "fullDocument": full_document,
    }


def delete(doc_id: Any) -> dict[str, Any]:
    return {"operationType": "delete", "documentKey": {"_id": doc_id}}


def drop() -> dict[str, Any]:
    return {"operationType": "drop"}


def invalidate() -> dict[str, Any]:
    return {"operationType": "invalidate"}


# -- client ---------------------------------------------------------------------------------------


class FakeClient:
    """`FakeClient(docs, timeline)`: one collection, whatever database and name are asked for."""

    def __init__(
        self, collection_docs: list[dict[str, Any]], script: list[Any], *, replica_set: bool = True
    ) -> None:
        self.collection = FakeCollection(collection_docs, script)
        self.replica_set = replica_set
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
        self._client.opened.append((self._name, collection))
        return self._client.collection


class _Admin:
    def __init__(self, client: FakeClient) -> None:
        self._client = client

    def command(self, name: str) -> dict[str, Any]:
        assert name == "hello", f"the fake only answers 'hello', not {name!r}"
        if self._client.replica_set:
            return {"isWritablePrimary": True, "setName": "rs0", "ok": 1.0}
        return {"isWritablePrimary": True, "ok": 1.0}  # a standalone: no setName


# -- collection ---------------------------------------------------------------------------------


class FakeCollection:
    def __init__(self, docs: list[dict[str, Any]], script: list[Any]) -> None:
        self.docs = copy.deepcopy(docs)  # the current documents
        self.script = script  # the timeline; tests may append to it
        self.now = 0  # the furthest position reached: steps before it have happened
        self.oldest = 0  # positions before this are no longer in the oplog
        self.calls: list[tuple[str, dict[str, Any]]] = []  # ("find"|"watch", arguments)

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
    ) -> FakeCursor:
        self.calls.append(
            ("find", {"filter": filter, "sort": sort, "batch_size": batch_size, "limit": limit})
        )
        assert sort in (None, [("_id", 1)]), f"unsupported sort {sort!r}"
        docs = sorted(self.docs, key=lambda d: d["_id"])
        if filter:
            assert list(filter) == ["_id"] and list(filter["_id"]) == ["$gt"], filter
            after = filter["_id"]["$gt"]
            docs = [d for d in docs if d["_id"] > after]
        elif filter != {}:
            raise AssertionError(f"unsupported filter {filter!r}")
        if limit:
            docs = docs[:limit]
        return FakeCursor(copy.deepcopy(docs))

    def watch(
        self,
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
                    "full_document": full_document,
                    "resume_after": copy.deepcopy(resume_after),
                    "max_await_time_ms": max_await_time_ms,
                    "batch_size": batch_size,
                },
            )
        )
        if resume_after is None:
            return FakeChangeStream(self, max(self.now, self.oldest), None, max_await_time_ms)
        start = position_of(resume_after)
        if start < self.oldest:
            raise OperationFailure(
                "Resume of change stream was not possible, as the resume point may no longer "
                "be in the oplog.",
                code=286,
            )
        return FakeChangeStream(self, start, resume_after, max_await_time_ms)

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
        full = step.get("fullDocument")
        if operation != "delete" and full is not None:
            self.docs.append(copy.deepcopy(full))


class FakeCursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self._docs = docs
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._docs)

    def close(self) -> None:
        self.closed = True


class FakeChangeStream:
    def __init__(
        self,
        collection: FakeCollection,
        start: int,
        resume_after: Any,
        max_await_time_ms: int | None,
    ) -> None:
        self._collection = collection
        self._position = start
        self._await = (max_await_time_ms or 0) / 1000
        # Like PyMongo: the resume_after token until something is read, or for a new
        # stream the initial post-batch token (the current end of the oplog).
        self._token = copy.deepcopy(resume_after) if resume_after is not None else token(start)
        self.closed = False

    @property
    def resume_token(self) -> dict[str, str] | None:
        return copy.deepcopy(self._token)

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
            self._position = index + 1
            if first_time:
                coll._happen(index, step)
            if isinstance(step, BaseException):
                if first_time:
                    raise step
                continue  # an error that already happened is not replayed
            if step is None:
                self._token = token(index + 1)  # the post-batch token of an empty getMore
                return None
            change = copy.deepcopy(step)
            change["_id"] = token(index + 1)
            change["clusterTime"] = Timestamp(EPOCH + index + 1, 1)
            change["wallTime"] = dt.datetime.fromtimestamp(EPOCH + index + 1, dt.UTC).replace(
                tzinfo=None
            )
            self._token = copy.deepcopy(change["_id"])
            return change

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeChangeStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
