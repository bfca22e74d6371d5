"""Receipt identity: a canonical key for any `_id`, and readable renderings of documents.

Pure: no database, web or orchestration code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

from bson import Code, Decimal128, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS

from coffeeshop.core.receipt_rules import InvalidReceipt
from coffeeshop.core.receipt_values import (
    _HUGE_DIGITS,
    HUGE,
    _bson_ready,
    _is_encodable,
    _message,
    _native,
    _nativize,
    _preview,
    _repr,
)

MAX_KEY_BYTES = 200

# normalize() under the default context would round past 28 digits (and overflow past
# 1e999999): keys must never merge two different numbers.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

_OID_RE = re.compile(r"[0-9a-fA-F]{24}", re.ASCII)


def receipt_key(value: Any, *, literal: bool = False) -> str:
    """A canonical text key for an `_id` of any BSON type; `InvalidReceipt` if unreadable.

    Numbers are keyed by value, as MongoDB's `_id` index compares them (3, 3.0
    and NumberLong(3) are the same receipt), inside compound `_id`s too. Keys longer than
    `MAX_KEY_BYTES` bytes are replaced by a SHA-256 digest so they fit an index.

    `literal=False` (JSONL input): Extended JSON wrappers are read as the BSON values they
    spell (`{"$oid": X}` keys as `ObjectId(X)`). `literal=True` (values decoded from BSON,
    read from MongoDB): an embedded document is only ever a document, so one spelled like
    Extended JSON keeps a key of its own (its `$`-keys are written `$$…`); the keys of every
    other value (ObjectId, numbers, strings, compound `_id`s) are the same in both modes.
    """
    if not literal and type(value) is dict and len(value) == 1:
        oid = value.get("$oid")
        if type(oid) is str and _OID_RE.fullmatch(oid):
            return f"oid:{oid.lower()}"
    try:
        key = _top_key(value if literal else _nativize(value), literal)
    except Exception as exc:  # any unreadable _id is a validation failure, never a crash
        raise InvalidReceipt("_id", f"cannot be read: {_message(exc)}") from None
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"sha256:{digest}"
    return key


def _top_key(value: Any, literal: bool) -> str:
    if isinstance(value, ObjectId):
        return f"oid:{value}"
    if isinstance(value, str) and not isinstance(value, Code):  # Code is a str subclass
        return f"str:{value}"
    if isinstance(value, bool):
        return f"bool:{str(value).lower()}"
    if isinstance(value, int):
        return f"int:{value}"
    if isinstance(value, float | Decimal | Decimal128):
        return _number_key(value)
    return "doc:" + _token(value, literal)


def _token(value: Any, literal: bool) -> str:
    """A JSON-like canonical text of a nested `_id` value, numbers normalised by value.
    `literal`: a document's own `$`-keys are written `$$…`, never like the `{"$oid": …}`,
    `{"$num": …}` or Extended JSON tokens of BSON values."""
    if isinstance(value, Code):
        return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float | Decimal | Decimal128):
        return '{"$num":"' + _number_key(value) + '"}'
    if isinstance(value, ObjectId):
        return '{"$oid":"' + str(value) + '"}'
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(
                json.dumps(_field(k, literal)) + ":" + _token(v, literal) for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_token(v, literal) for v in value) + "]"
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


def _field(name: Any, literal: bool) -> str:
    text = str(name)
    return "$" + text if literal and text.startswith("$") else text


def _number_key(value: int | float | Decimal | Decimal128) -> str:
    if isinstance(value, int):
        if -HUGE < value < HUGE:
            return f"int:{value}"
        value = Decimal(value)
    if isinstance(value, Decimal128):
        value = value.to_decimal()
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return f"num:{number}"
    if number.is_zero():
        return "int:0"
    if number.adjusted() <= _HUGE_DIGITS and number == number.to_integral_value():
        return f"int:{number.to_integral_value():f}"
    return f"num:{number.normalize(_EXACT)}"


def render_document(doc: Any) -> str:
    """A document as relaxed Extended JSON (what `mongoexport` writes), for quarantine."""
    try:
        return json_util.dumps(_bson_ready(doc), json_options=RELAXED_JSON_OPTIONS)
    except Exception:
        return _repr(doc)


def display_id(value: Any, *, literal: bool = False) -> str:
    """A short, readable rendering of an `_id` for operators (`literal`: as `receipt_key`)."""
    if not literal and type(value) is dict and len(value) == 1 and type(value.get("$oid")) is str:
        return str(value["$oid"])[:200]
    if not literal:
        value = _native(value)
    if isinstance(value, ObjectId | str) and not isinstance(value, Code):
        text = str(value)
    elif isinstance(value, int | float | Decimal | Decimal128) and not isinstance(value, bool):
        text = _preview(value)
    else:
        try:
            text = json_util.dumps(_bson_ready(value if literal else _nativize(value)))
        except Exception:
            text = _repr(value)
    if not _is_encodable(text):
        text = text.encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= 200 else text[:197] + "..."
