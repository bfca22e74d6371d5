"""How BSON read from MongoDB is decoded: every value MongoDB can store decodes.

PyMongo's defaults stop a whole batch (`InvalidBSON`) on one value Python cannot hold:
a date outside years 1–9999 (MongoDB stores any 64-bit count of milliseconds) or a string
that is not valid UTF-8 (the server does not check it on insert). Here such a date decodes
as `bson.DatetimeMS` (in-range dates stay naive UTC `datetime`s) and such a string keeps its
bytes as lone surrogates (`surrogateescape`); the receipt rules then quarantine a receipt
whose date or product name is one of them, naming its `_id`, and its neighbours apply.

Every collection the source reads is taken through `collection()`, so the snapshot, the
change stream, polling and the partitioned reader decode alike.
"""

from __future__ import annotations

from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.json_util import CANONICAL_JSON_OPTIONS, JSONOptions

CODEC_OPTIONS: CodecOptions[Any] = CodecOptions(
    tz_aware=False,  # naive UTC datetimes, as the receipt parser expects
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
    unicode_decode_error_handler="surrogateescape",
)

# Extended JSON in checkpoints: dates outside Python's range read back as `DatetimeMS`.
JSON_OPTIONS: JSONOptions = CANONICAL_JSON_OPTIONS.with_options(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO
)


def collection(client: Any, database: str, name: str) -> Any:
    """The collection `database.name` of `client`, decoding every value (see above)."""
    return client[database].get_collection(name, codec_options=CODEC_OPTIONS)


def to_text(value: Any) -> str:
    """A BSON value as canonical Extended JSON (a string that was not UTF-8 is escaped)."""
    return bson.json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


def from_text(text: str) -> Any:
    return bson.json_util.loads(text, json_options=JSON_OPTIONS)


def id_bytes(doc_id: Any) -> bytes:
    """A comparable byte key of an `_id`: its BSON, or for an `_id` holding a string that
    was not UTF-8 (which PyMongo cannot encode back) its Extended JSON behind `json:` (no
    BSON document starts with those bytes: they would give a length over 1 GB)."""
    try:
        return bson.encode({"_id": doc_id})
    except UnicodeEncodeError:
        return b"json:" + to_text({"_id": doc_id}).encode("ascii")


def id_of(key: bytes) -> Any:
    """The `_id` of an `id_bytes` key."""
    if key.startswith(b"json:"):
        return from_text(key[5:].decode("ascii"))["_id"]
    return bson.decode(key, codec_options=CODEC_OPTIONS)["_id"]


def encodable(value: Any) -> bool:
    """Whether PyMongo can send `value` back in a query (not so a string that was not UTF-8)."""
    return not id_bytes(value).startswith(b"json:")


def document_bytes(doc: Any) -> bytes:
    """A document's bytes, to tell whether it changed (its Extended JSON if not encodable)."""
    try:
        return bson.encode(doc)
    except UnicodeEncodeError:
        return to_text(doc).encode("ascii")
