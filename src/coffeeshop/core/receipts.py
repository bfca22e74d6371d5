"""Parse and validate one receipt document into an exact, canonical `Receipt`.

Pure: imports no database, web or orchestration code. Accepts both native BSON
values (as PyMongo returns them) and MongoDB Extended JSON wrappers (as
`mongoexport` writes them), so a receipt read from a file and the same receipt
read from MongoDB give the same `Receipt`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from bson import Decimal128, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS

MAX_STORE_ID = 2**31 - 1
MAX_QUANTITY = 2**31 - 1
MAX_NAME_LENGTH = 100
# DECIMAL(12,2): the largest total a receipt can carry.
MAX_TOTAL = Decimal("9999999999.99")
CENT = Decimal("0.01")
MAX_KEY_BYTES = 200
# Numbers with more digits than this are never a valid Store_ID or quantity, and keys
# of such numbers use scientific notation: no value is ever written out digit by digit.
_HUGE_DIGITS = 30
HUGE = 10**_HUGE_DIGITS
# normalize() under the default context would round past 28 digits (and overflow past
# 1e999999): keys must never merge two different numbers.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?", re.ASCII)
_OID_RE = re.compile(r"[0-9a-fA-F]{24}", re.ASCII)
_DIGITS_RE = re.compile(r"\d+", re.ASCII)
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


class InvalidReceipt(ValueError):
    """A receipt that breaks a validation rule. `field` names where, `problem` says what."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class Receipt:
    """The part of a receipt the analytics need, in canonical form.

    `items` is sorted by name with quantities of repeated names added, so two
    documents that mean the same thing compare equal.
    """

    key: str
    store_id: int
    day: dt.date
    hour: int
    cents: int
    items: tuple[tuple[str, int], ...]

    @property
    def total(self) -> Decimal:
        return Decimal(self.cents).scaleb(-2)

    @property
    def units(self) -> int:
        return sum(quantity for _, quantity in self.items)

    @property
    def month(self) -> str:
        return f"{self.day.year:04d}-{self.day.month:02d}"


def parse_receipt(doc: Mapping[str, Any], *, key: str | None = None) -> Receipt:
    """Validate `doc` and return its `Receipt`; raise `InvalidReceipt` naming the field.

    `key`, when the caller already computed `receipt_key(doc["_id"])`, saves doing it twice.
    """
    if type(doc) is not dict and not isinstance(doc, Mapping):
        raise InvalidReceipt("document", f"expected an object, got {_type_name(doc)}")
    if "_id" not in doc:
        raise InvalidReceipt("_id", "missing")
    if key is None:
        key = receipt_key(doc["_id"])
    store_id = _parse_store_id(doc.get("Store_ID", _MISSING))
    day, hour = _parse_when(
        doc.get("transactionDate", _MISSING), doc.get("transactionTime", _MISSING)
    )
    cents = _parse_total(doc.get("total_price", _MISSING))
    items = _parse_items(doc.get("items", _MISSING))
    return Receipt(key=key, store_id=store_id, day=day, hour=hour, cents=cents, items=items)


# -- receipt identity ---------------------------------------------------------------------------


def receipt_key(value: Any) -> str:
    """A canonical text key for an `_id` of any BSON type; `InvalidReceipt` if unreadable.

    Numbers are keyed by value, as MongoDB's `_id` index compares them (3, 3.0
    and NumberLong(3) are the same receipt), inside compound `_id`s too. An ObjectId
    written as Extended JSON keys the same as the native ObjectId. Keys longer than
    `MAX_KEY_BYTES` bytes are replaced by a SHA-256 digest so they fit an index.
    """
    if type(value) is dict and len(value) == 1:
        oid = value.get("$oid")
        if type(oid) is str and _OID_RE.fullmatch(oid):
            return f"oid:{oid.lower()}"
    try:
        key = _top_key(_nativize(value))
    except Exception as exc:  # any unreadable _id is a validation failure, never a crash
        raise InvalidReceipt("_id", f"cannot be read: {_message(exc)}") from None
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"sha256:{digest}"
    return key


def _top_key(value: Any) -> str:
    if isinstance(value, ObjectId):
        return f"oid:{value}"
    if isinstance(value, str):
        return f"str:{value}"
    if isinstance(value, bool):
        return f"bool:{str(value).lower()}"
    if isinstance(value, int):
        return f"int:{value}"
    if isinstance(value, float | Decimal | Decimal128):
        return _number_key(value)
    return "doc:" + _token(value)


def _token(value: Any) -> str:
    """A JSON-like canonical text of a nested `_id` value, numbers normalised by value."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float | Decimal | Decimal128):
        return '{"$num":"' + _number_key(value) + '"}'
    if isinstance(value, ObjectId):
        return '{"$oid":"' + str(value) + '"}'
    if isinstance(value, Mapping):
        return "{" + ",".join(json.dumps(str(k)) + ":" + _token(v) for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_token(v) for v in value) + "]"
    return json_util.dumps(value, json_options=CANONICAL_JSON_OPTIONS)


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


def _nativize(value: Any) -> Any:
    """Turn Extended JSON wrappers nested anywhere in `value` into native BSON values."""
    if isinstance(value, Mapping):
        converted = {k: _nativize(v) for k, v in value.items()}
        if "$oid" in converted and not isinstance(converted["$oid"], str):
            raise ValueError("$oid must be a 24-character hex string")
        return json_util.object_hook(converted)
    if isinstance(value, list | tuple):
        return [_nativize(v) for v in value]
    return value


def render_document(doc: Any) -> str:
    """A document as relaxed Extended JSON (what `mongoexport` writes), for quarantine."""
    try:
        return json_util.dumps(_bson_ready(doc), json_options=RELAXED_JSON_OPTIONS)
    except Exception:
        return repr(doc)


def _bson_ready(value: Any) -> Any:
    """Decimals (how JSONL numbers with a fraction arrive) as plain numbers where a float
    shows them exactly, else as Decimal128, which BSON can show."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else Decimal128(value)
    if isinstance(value, Mapping):
        return {k: _bson_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bson_ready(v) for v in value]
    return value


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def display_id(value: Any) -> str:
    """A short, readable rendering of an `_id` for operators."""
    if type(value) is dict and len(value) == 1 and type(value.get("$oid")) is str:
        return str(value["$oid"])[:200]
    value = _native(value)
    if isinstance(value, ObjectId | str):
        text = str(value)
    elif isinstance(value, int | float | Decimal | Decimal128) and not isinstance(value, bool):
        text = _preview(value)
    else:
        try:
            text = json_util.dumps(_bson_ready(_nativize(value)))
        except Exception:
            text = repr(value)
    if not _is_encodable(text):
        text = text.encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= 200 else text[:197] + "..."


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- field parsers --------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING: Any = _Missing()
# Types that are never Extended JSON wrappers: `_native` returns them untouched.
_PLAIN = frozenset({int, str, float, Decimal, bool, type(None), list, dt.datetime})


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {_preview(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int | float | Decimal):
        return f"the number {_preview(value)}"
    return type(value).__name__


def _preview(value: Any) -> str:
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return "a number with thousands of digits"
    return text if len(text) <= 40 else text[:37] + "..."


def _native(value: Any) -> Any:
    """Resolve a one-key Extended JSON wrapper (`{"$numberInt": "3"}`) to its BSON value."""
    if type(value) in _PLAIN:
        return value
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(k, str) and k.startswith("$") for k in value)
    ):
        try:
            return _nativize(value)
        except Exception:
            return value
    return value


def _as_integer(value: Any) -> int | None:
    """The integer `value` holds, or None. Integral values far beyond any column (1e5000)
    come back as ±HUGE instead of being written out digit by digit."""
    if type(value) is int:
        return value
    value = _native(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, Decimal128):
        value = value.to_decimal()
    if isinstance(value, Decimal) and value.is_finite():
        if value.adjusted() > _HUGE_DIGITS:
            return HUGE if value > 0 else -HUGE  # integral: its exponent is positive
        if value == value.to_integral_value():
            return int(value)
    return None


def _parse_store_id(value: Any) -> int:
    if value is _MISSING:
        raise InvalidReceipt("Store_ID", "missing")
    number = _as_integer(value)
    if number is None and isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        number = int(value) if len(value) <= 20 else MAX_STORE_ID + 1
    if number is None:
        raise InvalidReceipt(
            "Store_ID", f"must be an integer ≥ 0 (or a string of digits), got {_type_name(value)}"
        )
    if number < 0:
        raise InvalidReceipt("Store_ID", f"must be ≥ 0, got {_preview(number)}")
    if number > MAX_STORE_ID:
        raise InvalidReceipt("Store_ID", f"must be at most {MAX_STORE_ID}, got {_preview(value)}")
    return number


def _parse_when(date_value: Any, time_value: Any) -> tuple[dt.date, int]:
    if date_value is _MISSING:
        raise InvalidReceipt("transactionDate", "missing")
    date_value = _native(date_value)
    if isinstance(date_value, dt.datetime):
        if date_value.tzinfo is not None:
            date_value = date_value.astimezone(dt.UTC)
        day = date_value.date()
        if time_value is _MISSING:
            return day, date_value.hour
    elif isinstance(date_value, str):
        if not _DATE_RE.fullmatch(date_value):
            raise InvalidReceipt(
                "transactionDate", f'must be a "YYYY-MM-DD" date, got {_type_name(date_value)}'
            )
        try:
            day = dt.date.fromisoformat(date_value)
        except ValueError:
            raise InvalidReceipt(
                "transactionDate", f"{date_value!r} is not a real calendar date"
            ) from None
    else:
        raise InvalidReceipt(
            "transactionDate",
            f'must be a "YYYY-MM-DD" string or a date, got {_type_name(date_value)}',
        )
    if time_value is _MISSING:
        raise InvalidReceipt("transactionTime", "missing")
    if not isinstance(time_value, str) or not (match := _TIME_RE.fullmatch(time_value)):
        raise InvalidReceipt(
            "transactionTime", f'must be "HH:MM:SS" or "HH:MM", got {_type_name(time_value)}'
        )
    return day, int(match.group(1))


def _parse_total(value: Any) -> int:
    """Return `total_price` in cents, rounded half-up."""
    if value is _MISSING:
        raise InvalidReceipt("total_price", "missing")
    value = _native(value)
    amount: Decimal
    if isinstance(value, bool):
        raise InvalidReceipt("total_price", "must be a number, got a boolean")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        # repr() is the shortest text that reads back as this float: the number as written.
        amount = Decimal(repr(value))
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, Decimal128):
        amount = value.to_decimal()
    elif isinstance(value, str):
        if not _DECIMAL_RE.fullmatch(value):
            raise InvalidReceipt(
                "total_price", f"must be a decimal number, got {_type_name(value)}"
            )
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise InvalidReceipt(
                "total_price", f"must be a decimal number, got {_type_name(value)}"
            ) from None
    else:
        raise InvalidReceipt("total_price", f"must be a number, got {_type_name(value)}")
    if not amount.is_finite():
        raise InvalidReceipt("total_price", f"must be finite, got {amount}")
    if amount < 0:
        raise InvalidReceipt("total_price", f"must be ≥ 0, got {_preview(amount)}")
    if amount > MAX_TOTAL:
        raise InvalidReceipt("total_price", f"must be at most {MAX_TOTAL}, got {_preview(amount)}")
    return int(amount.quantize(CENT, rounding=ROUND_HALF_UP).scaleb(2))


def _parse_items(value: Any) -> tuple[tuple[str, int], ...]:
    if value is _MISSING:
        raise InvalidReceipt("items", "missing")
    if type(value) is not list and (
        not isinstance(value, Sequence) or isinstance(value, str | bytes)
    ):
        raise InvalidReceipt("items", f"must be a list, got {_type_name(value)}")
    totals: dict[str, int] = {}
    for index, item in enumerate(value):
        where = f"items[{index}]"
        if type(item) is not dict and not isinstance(item, Mapping):
            raise InvalidReceipt(where, f"must be an object, got {_type_name(item)}")
        name = item.get("product_name", _MISSING)
        if name is _MISSING:
            raise InvalidReceipt(f"{where}.product_name", "missing")
        if type(name) is not str and not isinstance(name, str):
            raise InvalidReceipt(
                f"{where}.product_name", f"must be a string, got {_type_name(name)}"
            )
        name = name.strip()
        if not name:
            raise InvalidReceipt(f"{where}.product_name", "is empty")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidReceipt(
                f"{where}.product_name",
                f"is {len(name)} characters long, at most {MAX_NAME_LENGTH} are allowed",
            )
        if "\x00" in name:
            raise InvalidReceipt(f"{where}.product_name", "contains a NUL character")
        if not name.isascii() and not _is_encodable(name):
            raise InvalidReceipt(f"{where}.product_name", "contains a lone UTF-16 surrogate")
        raw_quantity = item.get("product_quantity", _MISSING)
        if raw_quantity is _MISSING:
            raise InvalidReceipt(f"{where}.product_quantity", "missing")
        quantity = _as_integer(raw_quantity)
        if quantity is None or quantity < 1:
            raise InvalidReceipt(
                f"{where}.product_quantity",
                f"must be an integer ≥ 1, got {_type_name(_native(raw_quantity))}",
            )
        if quantity > MAX_QUANTITY:
            raise InvalidReceipt(
                f"{where}.product_quantity",
                f"must be at most {MAX_QUANTITY}, got {_preview(quantity)}",
            )
        totals[name] = totals.get(name, 0) + quantity
    return tuple(sorted(totals.items()))
