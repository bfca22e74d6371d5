"""Sources of receipt changes: each yields batches of events with a resume position."""

from __future__ import annotations

import stat
from pathlib import Path

from coffeeshop.errors import ConfigError
from coffeeshop.redact import mask_url
from coffeeshop.sources.base import Source

MONGO_SCHEMES = ("mongodb://", "mongodb+srv://")


def open_source(
    spec: str | None,
    *,
    database: str = "coffeeshop",
    collection: str = "receipt",
    full_document: str = "updateLookup",
    wait_for_collection: bool = False,
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
            spec,
            database=database,
            collection=collection,
            full_document=full_document,
            wait_for_collection=wait_for_collection,
        )
    from coffeeshop.sources.jsonl import JsonlSource

    path = Path(spec).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"source file {mask_url(spec)} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot use source {mask_url(spec)}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"source {spec} is a directory, not a JSONL file")
    if not stat.S_ISREG(mode):
        # A FIFO would block the reader forever (and `--follow` needs a file that keeps its
        # bytes); a device or socket is no file to resume in either.
        raise ConfigError(
            f"source {spec} is {_kind(mode)}, not a regular file: write the receipts to a "
            "file (or pass a mongodb:// URI)"
        )
    return JsonlSource(spec)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
