"""Read BSON values and their MongoDB Extended JSON wrappers, for receipt parsing.

Pure: no database, web or orchestration code. Shared by the field rules
(`receipt_rules`) and the identity keys (`receipt_ids`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bson import DatetimeMS, Decimal128, json_util

# Numbers with more digits than this are never a valid Store_ID or quantity, and keys
# of such numbers use scientific notation: no value is ever written out digit by digit.
_HUGE_DIGITS = 30
HUGE: int = 10**_HUGE_DIGITS

# Types that are never Extended JSON wrappers: `_native` returns them untouched.
_PLAIN = frozenset({int, str, float, Decimal, bool, type(None), list, dt.datetime})


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
    if isinstance(value, int | float | Decimal | Decimal128):
        return f"the number {_preview(value)}"
    if isinstance(value, DatetimeMS):
        return out_of_range(value)
    return type(value).__name__


def out_of_range(value: DatetimeMS) -> str:
    """A BSON date Python cannot hold (outside years 1-9999), said with its value."""
    ms = int(value)
    year = 1970 + ms / 31_556_952_000  # milliseconds in a mean Gregorian year
    return f"a date outside years 1-9999 ({ms} ms from 1970, about year {year:.0f})"


def _preview(value: Any) -> str:
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except ValueError:  # an integer past Python's digit limit for str()
        return "a number with thousands of digits"
    return text if len(text) <= 40 else text[:37] + "..."


def _repr(value: Any) -> str:
    """`repr(value)`, which never fails: a document from a driver may hold an integer past
    Python's 4,300-digit `str()` limit, or nest deeper than the interpreter recurses."""
    try:
        return repr(value)
    except (ValueError, RecursionError):
        return f"<{type(value).__name__} too large or too deeply nested to show>"


def _message(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _is_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
