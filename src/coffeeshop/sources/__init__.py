"""Sources of receipt changes: each yields batches of events with a resume position.

This module is the one place that maps a source spec (what `--source`, `COFFEESHOP_SOURCE`
or `MONGO_URI` hold) to its kind: a URI by its scheme (`mongodb://…`), anything else as a
path (a JSONL file). A kind is registered once, with the function that opens it; every
command and flow asks here (`kind_of`, `open_source`, `portable_spec`, `is_uri`) instead
of looking at the spec itself.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from coffeeshop.errors import ConfigError
from coffeeshop.redact import mask_url
from coffeeshop.sources.base import Source


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """The settings a kind may use besides its spec (MongoDB's names and modes)."""

    database: str = "coffeeshop"
    collection: str = "receipt"
    full_document: str = "updateLookup"
    wait_for_collection: bool = False


def _as_is(spec: str) -> str:
    return spec


@dataclass(frozen=True, slots=True)
class SourceKind:
    """A kind of source: its name, the URI schemes that name it (none: a file path), the
    function that opens one, and `portable`: the spec that still names the same source in
    another working directory or process (a path made absolute; a URI as it is)."""

    name: str
    open: Callable[[str, SourceOptions], Source]
    schemes: tuple[str, ...] = ()
    portable: Callable[[str], str] = _as_is

    def uri_examples(self) -> str:
        return " or ".join(f"{scheme}://…" for scheme in self.schemes)


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_BY_SCHEME: dict[str, SourceKind] = {}
_PATH_KINDS: list[SourceKind] = []  # the kind of a spec without a scheme: the last registered


def register(kind: SourceKind) -> SourceKind:
    """Name `kind` by its schemes (or, without any, as the kind of a plain path)."""
    taken = [scheme for scheme in kind.schemes if scheme in _BY_SCHEME]
    if taken:
        raise ValueError(f"source scheme {taken[0]}:// is already registered")
    for scheme in kind.schemes:
        _BY_SCHEME[scheme] = kind
    if not kind.schemes:
        _PATH_KINDS.append(kind)
    return kind


def unregister(kind: SourceKind) -> None:
    """Forget `kind` (a test's own kind, once the test is done)."""
    for scheme in kind.schemes:
        _BY_SCHEME.pop(scheme, None)
    if kind in _PATH_KINDS:
        _PATH_KINDS.remove(kind)


def kind_of(spec: str) -> SourceKind:
    """The kind a spec names: a registered URI scheme, else a path; an unknown scheme is a
    `ConfigError` naming the known ones."""
    match = _SCHEME.match(spec)
    if match is None:
        return _PATH_KINDS[-1]
    kind = _BY_SCHEME.get(match.group(1))
    if kind is None:
        known = ", ".join(f"{scheme}://" for scheme in _BY_SCHEME)
        raise ConfigError(
            f"unknown source scheme {match.group(1)!r} in {mask_url(spec)}: "
            f"a source is a JSONL file or a URI ({known})"
        )
    return kind


def is_uri(spec: str) -> bool:
    """Whether `spec` names a source by a registered URI scheme (not a file)."""
    return bool(kind_of(spec).schemes)


def portable_spec(spec: str) -> str:
    """The spec as another process, in another working directory, must be given it."""
    return kind_of(spec).portable(spec)


def open_source(spec: str | None, options: SourceOptions | None = None) -> Source:
    """The source a spec names (see `kind_of`), opened with `options`."""
    if not spec:
        uris = " or ".join(f"{scheme}://…" for scheme in _BY_SCHEME)
        raise ConfigError(
            f"no source given: pass --source FILE.jsonl or {uris}, "
            "or set COFFEESHOP_SOURCE or MONGO_URI"
        )
    return kind_of(spec).open(spec, options or SourceOptions())


# -- the built-in kinds (imported when opened: `coffeeshop --help` stays light) --------------


def _open_mongo(spec: str, options: SourceOptions) -> Source:
    from coffeeshop.sources.mongo import MongoSource

    return MongoSource(
        spec,
        database=options.database,
        collection=options.collection,
        full_document=options.full_document,
        wait_for_collection=options.wait_for_collection,
    )


def _absolute(spec: str) -> str:
    return str(Path(spec).expanduser().resolve())


def _open_jsonl(spec: str, _options: SourceOptions) -> Source:
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


JSONL = register(SourceKind("jsonl", _open_jsonl, portable=_absolute))
MONGODB = register(SourceKind("mongodb", _open_mongo, schemes=("mongodb", "mongodb+srv")))
