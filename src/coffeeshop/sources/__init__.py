"""Sources of receipt changes: each yields batches of events with a resume position."""

from __future__ import annotations

from pathlib import Path

from coffeeshop.errors import ConfigError
from coffeeshop.sources.base import Source


def open_source(spec: str | None) -> Source:
    """The source a spec names: a path to a JSONL file (or, later, a MongoDB URI)."""
    if not spec:
        raise ConfigError("no source given: pass --source FILE.jsonl or set COFFEESHOP_SOURCE")
    if spec.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(
            "MongoDB sources are not supported by this version; export the collection with "
            "`mongoexport` and pass the file"
        )
    from coffeeshop.sources.jsonl import JsonlSource

    if not Path(spec).expanduser().exists():
        raise ConfigError(f"source file {spec} does not exist")
    return JsonlSource(spec)
