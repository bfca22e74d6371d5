"""The validation rules of a receipt's fields: limits, and one parser per field.

Pure: no database, web or orchestration code. Each parser returns the field in
canonical form or raises `InvalidReceipt` naming the field and the problem.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from unicodedata import normalize

from bson import Decimal128

from coffeeshop.core.receipt_values import (
    _as_integer,
    _is_encodable,
    _native,
    _preview,
    _type_name,
)

MAX_STORE_ID = 2**31 - 1
MAX_QUANTITY = 2**31 - 1
MAX_NAME_LENGTH = 100
# DECIMAL(12,2): the largest total a receipt can carry.
MAX_TOTAL = Decimal("9999999999.99")
CENT = Decimal("0.01")


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME_RE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?", re.ASCII)
_DIGITS_RE = re.compile(r"\d+", re.ASCII)
_DAYS: dict[str, dt.date] = {}  # valid date texts read so far, up to `_DAYS_KEPT`
_DAYS_KEPT = 4096
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


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING: Any = _Missing()


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
        day = _DAYS.get(date_value) if type(date_value) is str else None
        if day is None:
            day = _parse_day(date_value)
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


def _parse_day(text: str) -> dt.date:
    """A "YYYY-MM-DD" date's day (kept in `_DAYS`: a feed's receipts share a few days)."""
    if not _DATE_RE.fullmatch(text):
        raise InvalidReceipt(
            "transactionDate", f'must be a "YYYY-MM-DD" date, got {_type_name(text)}'
        )
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidReceipt("transactionDate", f"{text!r} is not a real calendar date") from None
    if type(text) is str and len(_DAYS) < _DAYS_KEPT:
        _DAYS[text] = day
    return day


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
        # The usual item (an object with an ASCII name and an int quantity) is checked by
        # `usual_name`, with the same rules; anything else goes through `_parse_item`.
        if type(item) is dict:
            quantity: Any = item.get("product_quantity")
            usual = usual_name(item.get("product_name"), quantity)
            if usual is not None:  # (then `quantity` is an int)
                totals[usual] = totals.get(usual, 0) + quantity
                continue
        name, quantity = _parse_item(index, item)
        totals[name] = totals.get(name, 0) + quantity
    return tuple(sorted(totals.items()))


def usual_name(name: Any, quantity: Any) -> str | None:
    """The canonical name of the usual item line (an ASCII name and an int quantity that
    `_parse_item` accepts), or None for any other line, which `_parse_item` then reads (and
    says what is wrong with it): the same rules, without building an error's text."""
    # (ASCII text is NFC already)
    if (
        type(name) is str
        and type(quantity) is int
        and 0 < quantity <= MAX_QUANTITY
        and name.isascii()
    ):
        canonical: str = name.strip()
        if canonical and len(canonical) <= MAX_NAME_LENGTH and "\x00" not in canonical:
            return canonical
    return None


def _parse_item(index: int, item: Any) -> tuple[str, int]:
    """One item line: its name in canonical form and its quantity."""
    where = f"items[{index}]"
    if type(item) is not dict and not isinstance(item, Mapping):
        raise InvalidReceipt(where, f"must be an object, got {_type_name(item)}")
    name = item.get("product_name", _MISSING)
    if name is _MISSING:
        raise InvalidReceipt(f"{where}.product_name", "missing")
    if type(name) is not str and not isinstance(name, str):
        raise InvalidReceipt(f"{where}.product_name", f"must be a string, got {_type_name(name)}")
    name = name.strip()
    if not name.isascii():  # (ASCII text is NFC already: the usual name costs nothing)
        if not _is_encodable(name):
            raise InvalidReceipt(f"{where}.product_name", "contains a lone UTF-16 surrogate")
        # One product, however its accents were encoded: `Café` with a precomposed é
        # (NFC) and with e + U+0301 (NFD) are the same name, stored as NFC.
        name = normalize("NFC", name)
    if not name:
        raise InvalidReceipt(f"{where}.product_name", "is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidReceipt(
            f"{where}.product_name",
            f"is {len(name)} characters long, at most {MAX_NAME_LENGTH} are allowed",
        )
    if "\x00" in name:
        raise InvalidReceipt(f"{where}.product_name", "contains a NUL character")
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
    return name, quantity
