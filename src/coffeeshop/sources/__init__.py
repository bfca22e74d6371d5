"""Sources of receipt changes: each yields batches of events with a resume position."""

from __future__ import annotations

from pathlib import Path

from coffeeshop.errors import ConfigError
from coffeeshop.sources.base import Source

MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")


def open_source(
    spec: str | None,
    *,
    database: str = "coffeeshop",
    collection: str = "receipt",
    full_document: str = "updateLookup",
) -> Source:
    """The source a spec names: a `mongodb://` / `mongodb+srv://` URI, or a JSONL file."""
    if not spec:
        raise ConfigError(
            "no source given: pass --source FILE.jsonl or mongodb://…, "
            "or set COFFEESHOP_SOURCE or MONGO_URI"
        )
    if spec.startswith(MONGO_SCHEMES):
        from coffeeshop.sources.mongo import MongoSource

        return MongoSource(
            spec, database=database, collection=collection, full_document=full_document
        )
    from coffeeshop.sources.jsonl import JsonlSource

    if not Path(spec).expanduser().exists():
        raise ConfigError(f"source file {spec} does not exist")
    return JsonlSource(spec)
