"""Change events: what every source produces and the engine consumes.

Pure: a source turns what it reads into these values; nothing here touches I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coffeeshop.core.receipt_values import _repr
from coffeeshop.core.receipts import InvalidReceipt, Receipt, display_id, receipt_key


@dataclass(frozen=True, slots=True)
class Upsert:
    """An insert, replace or update: `doc` is the receipt's full current document.

    `raw` is the input as read, kept in quarantine if the receipt is invalid; a source
    may leave it empty, and the document is then rendered as Extended JSON only if needed.
    """

    key: str
    receipt_id: str
    doc: Mapping[str, Any]
    where: str
    raw: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """An upsert after validation: its receipt, or the reason it is invalid.

    The raw input is kept only for an invalid receipt (it goes to quarantine). A source whose
    decoder validates the usual receipt as it reads it hands it on as this (the JSONL file's:
    `sources/fast_receipt.py`); `plan.parse_events` validates every other upsert.
    """

    key: str
    receipt_id: str
    receipt: Receipt | None
    reason: str | None
    where: str
    raw: str


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    receipt_id: str
    where: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Input that cannot be tied to a receipt: kept in quarantine with the reason."""

    reason: str
    where: str
    raw: str


@dataclass(frozen=True, slots=True)
class Skip:
    """A position the source moved past that changes no receipt (reported, not kept)."""

    note: str
    where: str


Event = Upsert | Parsed | Delete | Unreadable | Skip

CHANGE_OPERATIONS = frozenset({"insert", "replace", "update", "delete"})
_ABSENT: Any = object()


def event_from_object(obj: Any, *, where: str, raw: str, literal: bool = False) -> Event:
    """Map one decoded input object to an event.

    A plain document is an insert (or a replace when its `_id` is known); an
    object with `operationType` is a MongoDB change event. `literal`: the object was
    decoded from BSON (read from MongoDB), so its `_id` is keyed as it is, never read as
    Extended JSON (see `receipt_key`).
    """
    if not isinstance(obj, Mapping):
        return Unreadable(
            reason=f"expected a JSON object, got {_json_kind(obj)}", where=where, raw=raw
        )
    if "operationType" in obj:
        return _event_from_change(obj, where=where, raw=raw, literal=literal)
    if "_id" not in obj:
        return Unreadable(reason="document has no _id", where=where, raw=raw)
    return _upsert(obj, where=where, raw=raw, literal=literal)


def _upsert(doc: Mapping[str, Any], *, where: str, raw: str, literal: bool) -> Event:
    try:
        key = receipt_key(doc["_id"], literal=literal)
    except InvalidReceipt as exc:  # an _id that cannot be keyed is unreadable, not fatal
        return Unreadable(reason=exc.reason, where=where, raw=raw)
    receipt_id = display_id(doc["_id"], literal=literal)
    return Upsert(key=key, receipt_id=receipt_id, doc=doc, where=where, raw=raw)


def _event_from_change(change: Mapping[str, Any], *, where: str, raw: str, literal: bool) -> Event:
    operation = change.get("operationType")
    # A str exactly: BSON's Code is a str subclass (and unhashable when it has a scope).
    if type(operation) is not str or operation not in CHANGE_OPERATIONS:
        return Unreadable(
            reason=f"unsupported change event operationType {_repr(operation)}",
            where=where,
            raw=raw,
        )
    document_key = change.get("documentKey")
    key_id: Any = _ABSENT  # an _id of null is a real (if odd) _id
    if isinstance(document_key, Mapping) and "_id" in document_key:
        key_id = document_key["_id"]
    if operation == "delete":
        if key_id is _ABSENT:
            return Unreadable(reason="delete event has no documentKey._id", where=where, raw=raw)
        try:
            key = receipt_key(key_id, literal=literal)
        except InvalidReceipt as exc:
            return Unreadable(reason=f"documentKey.{exc.reason}", where=where, raw=raw)
        return Delete(key=key, receipt_id=display_id(key_id, literal=literal), where=where)
    if "fullDocument" not in change:
        return Unreadable(
            reason=f"{operation} event has no fullDocument (open the change stream with "
            "full_document='updateLookup')",
            where=where,
            raw=raw,
        )
    full = change["fullDocument"]
    if full is None and operation == "update":
        # The document was deleted before the update could be looked up: its
        # delete event follows, so this update changes nothing.
        return Skip(note="update of a document that no longer exists", where=where)
    if not isinstance(full, Mapping):
        return Unreadable(
            reason=f"{operation} event has no fullDocument object", where=where, raw=raw
        )
    if "_id" not in full:
        if key_id is _ABSENT:
            return Unreadable(reason=f"{operation} event has no _id", where=where, raw=raw)
        full = {"_id": key_id, **full}
    return _upsert(full, where=where, raw=raw, literal=literal)


def _json_kind(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "a boolean"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, list):
        return "an array"
    return "a number"
