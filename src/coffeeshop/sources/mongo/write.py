"""The generator's MongoDB target: apply generated JSONL lines to a collection."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from bson import json_util

from coffeeshop.errors import SourceUnavailable
from coffeeshop.retry import StopSignal
from coffeeshop.sources.mongo.errors import describe, hosts, transient

ClientFactory = Callable[[], Any]


def write_lines(
    uri: str,
    lines: Iterator[str],
    *,
    database: str = "coffeeshop",
    collection: str = "receipt",
    rate: float | None = None,
    stop: StopSignal | None = None,
    client_factory: ClientFactory | None = None,
) -> int:
    """Apply generated JSONL lines to a collection: documents are inserted (`insert_many`
    in chunks, or steadily at `rate` lines per second), change events become
    `replace_one` / `delete_one`, in order. Returns the lines applied."""
    from pymongo import MongoClient

    client = (client_factory or (lambda: MongoClient(uri, serverSelectionTimeoutMS=10_000)))()
    coll = client[database][collection]
    pending: list[dict[str, Any]] = []
    applied = 0
    chunk = 1000 if rate is None else max(1, min(1000, round(rate / 20)))
    started = time.monotonic()

    def flush() -> None:
        if pending:
            coll.insert_many(pending, ordered=True)
            pending.clear()

    try:
        for line in lines:
            if stop is not None and stop.is_set():
                break
            obj = json_util.loads(line)
            operation = obj.get("operationType")
            if operation is None:
                pending.append(obj)
            else:
                flush()
                _apply_change(coll, obj)
            applied += 1
            if len(pending) >= chunk:
                flush()
            if rate is not None:
                delay = started + applied / rate - time.monotonic()
                if delay > 0:
                    flush()
                    if stop is not None:
                        stop.wait(delay)
                    else:
                        time.sleep(delay)
        flush()
    except Exception as exc:
        if transient(exc) or exc.__class__.__module__.startswith("pymongo"):
            raise SourceUnavailable(f"cannot write to {hosts(uri)}: {describe(exc)}") from None
        raise
    finally:
        client.close()
    return applied


def _apply_change(coll: Any, change: dict[str, Any]) -> None:
    """A generated change event: the document replaced (or inserted), or deleted."""
    key = change["documentKey"]["_id"]
    if change["operationType"] == "delete":
        coll.delete_one({"_id": key})
    else:
        coll.replace_one({"_id": key}, change["fullDocument"], upsert=True)
