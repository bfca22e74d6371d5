"""The snapshot: the whole collection in `_id` order, in batches, resumable.

PyMongo retries the `find` but never a `getMore`: a failure while reading goes on after
the last `_id` read, with `min()` on the `_id` index, which (unlike `$gt`) also covers
every BSON type that sorts after it (`documents_after`, which the partitioned reader's
`_id` ranges use too). Each batch's position records that `_id`, so a
restart continues there too; the last batch carries the stream's position instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from coffeeshop.core.events import event_from_object
from coffeeshop.retry import Retrying, StopSignal
from coffeeshop.sources.base import BatchLimits, SourceBatch
from coffeeshop.sources.batching import MicroBatch
from coffeeshop.sources.mongo.codec import encodable
from coffeeshop.sources.mongo.errors import MongoRetrying, opened
from coffeeshop.sources.mongo.position import encode, id_key, position

log = logging.getLogger("coffeeshop.mongo")


def read_snapshot(
    coll: Any,
    name: str,
    *,
    resume: Any,
    after: Any,
    limits: BatchLimits,
    stop: StopSignal,
    retrying: MongoRetrying,
) -> Iterator[SourceBatch]:
    """The collection after `after` (None: from the start); the stream will start at `resume`."""
    if after is None:
        log.info("reading a snapshot of %s (then streaming changes from before it)", name)
    else:
        log.info("continuing the snapshot of %s after _id %s", name, encode(after))
    count = 0
    batch = MicroBatch(limits, timed=False)
    last_id: Any = after
    for doc in documents_after(
        coll,
        {},
        after,
        batch_size=limits.max_events,
        retrying=retrying,
        stop=stop,
        what="read the snapshot",
    ):
        if stop.is_set():
            return
        if encodable(doc_id := doc.get("_id")):  # else a restart's `min()` could not be sent
            last_id = doc_id
        if batch.add(event_from_object(doc, where="snapshot", raw="", literal=True)):
            count += len(batch)
            yield SourceBatch(batch.take(), position("snapshot", resume=resume, after=last_id))
    count += len(batch)
    # The last snapshot batch already carries the stream position: once it commits,
    # a restart streams instead of reading the snapshot again.
    yield SourceBatch(batch.take(), position("stream", resume=resume))
    log.info("snapshot of %s done: %d document(s)", name, count)


def documents_after(
    coll: Any,
    query: dict[str, Any],
    after: Any,
    *,
    batch_size: int,
    retrying: Retrying,
    stop: StopSignal,
    what: str,
) -> Iterator[Any]:
    """The documents matching `query`, in `_id` order, after the `_id` `after` (None: from
    the start). A failure (the driver never retries a `getMore`) is retried with `retrying`
    from the last `_id` read: `min()` on the `_id` index (inclusive, so that one is
    skipped), which also covers every BSON type sorting later and compares strings with the
    index's collation, the collection's default one, as the query's bounds are."""
    last_id = after
    while True:
        options: dict[str, Any] = {"sort": [("_id", 1)], "batch_size": batch_size}
        if last_id is not None:
            options |= {"hint": [("_id", 1)], "min": [("_id", last_id)]}
        skip = id_key(last_id) if last_id is not None else None
        cursor = coll.find(query, **options)
        try:
            read = 0
            for doc in opened(cursor, stop):
                doc_id = doc.get("_id")
                if skip is not None:
                    first, skip = skip, None
                    if id_key(doc_id) == first:
                        continue
                if encodable(doc_id):  # else the next `min()` could not be sent
                    last_id = doc_id
                read += 1
                if read % batch_size == 0:
                    retrying.succeeded()  # a batch came: the next failure is a first one
                yield doc
            return
        except Exception as exc:
            retrying.failed(exc, what)
        finally:
            cursor.close()
