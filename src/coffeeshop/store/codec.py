"""How receipts and keys are written in the database, and small helpers every writer uses."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from coffeeshop.core.partials import receipt_row
from coffeeshop.core.receipts import Receipt

CHUNK = 900  # bound parameters per IN (...) list; SQLite's oldest limit is 999

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
RECEIPT_COLUMNS = ("key", "receipt_id", "store_id", "day", "hour", "cents", "lines")


def encode_key(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")


def decode_key(raw: Any) -> str:
    return bytes(raw).decode("utf-8", "surrogatepass")


def encode_receipt(receipt: Receipt, receipt_id: str) -> dict[str, Any]:
    return dict(zip(RECEIPT_COLUMNS, receipt_row(receipt, receipt_id), strict=True))


def receipt_literal(receipt: Receipt, receipt_id: str) -> str:
    """`encode_receipt` written straight as a SQL row literal (see `literal_sql`)."""
    day = receipt.day
    key = receipt.key.encode("utf-8", "surrogatepass").hex()
    return (
        f"(X'{key}',X'{receipt_id[:255].encode('utf-8').hex()}',{receipt.store_id},"
        f"{day.year * 10000 + day.month * 100 + day.day},{receipt.hour},{receipt.cents},"
        f"X'{_JSON.encode(receipt.items).encode('utf-8').hex()}')"
    )


def decode_receipt(key: str, store_id: int, day: int, hour: int, cents: int, lines: str) -> Receipt:
    return Receipt(
        key=key,
        store_id=store_id,
        day=dt.date(day // 10000, day // 100 % 100, day % 100),
        hour=hour,
        cents=cents,
        items=tuple((name, quantity) for name, quantity in json.loads(lines)),
    )


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
