"""How receipts and keys are written in the database, and small helpers every writer uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from coffeeshop.core import receipt_codec
from coffeeshop.core.receipts import Receipt

CHUNK = 900  # bound parameters per IN (...) list; SQLite's oldest limit is 999

RECEIPT_COLUMNS = receipt_codec.NAMES
encode_receipt = receipt_codec.receipt_params
receipt_row = receipt_codec.receipt_row  # the same values as a tuple, in `RECEIPT_COLUMNS` order
decode_receipt = receipt_codec.read_receipt  # from the values of `READ_COLUMNS`
READ_COLUMNS = receipt_codec.READ_COLUMNS


encode_key = receipt_codec.encode_key
decode_key = receipt_codec.decode_key


# How a column's value is written in a SQL literal, by what it holds: text and bytes in hex
# (nothing to escape, whatever the bytes), integers as digits.
_LITERALS: dict[type, str] = {
    bytes: "X'{{{v}.hex()}}'",
    str: "X'{{{v}.encode('utf-8').hex()}}'",
    int: "{{{v}}}",
}


def _literal_writer() -> Callable[[Receipt, str], str]:
    """An f-string of the row's literal, compiled once from the columns."""
    parts = (
        _LITERALS[c.kind.stored].format(v=receipt_codec.encoded(c)) for c in receipt_codec.COLUMNS
    )
    body = "f" + repr("(" + ",".join(parts) + ")")
    return receipt_codec.compile_function(
        "receipt_literal", "receipt, receipt_id", body, receipt_codec.NAMESPACE
    )


receipt_literal = _literal_writer()
receipt_literal.__doc__ = "`encode_receipt` written straight as a SQL row literal (`literal_sql`)."


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
