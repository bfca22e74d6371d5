"""Parse and validate one receipt document into an exact, canonical `Receipt`.

Pure: imports no database, web or orchestration code. Accepts both native BSON
values (as PyMongo returns them) and MongoDB Extended JSON wrappers (as
`mongoexport` writes them), so a receipt read from a file and the same receipt
read from MongoDB give the same `Receipt`. The field rules live in `receipt_rules`,
identity keys and renderings in `receipt_ids`, value reading in `receipt_values`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coffeeshop.core.receipt_ids import MAX_KEY_BYTES, display_id, receipt_key, render_document
from coffeeshop.core.receipt_rules import (
    _MISSING,
    CENT,
    MAX_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_STORE_ID,
    MAX_TOTAL,
    InvalidReceipt,
    _parse_item,
    _parse_items,
    _parse_store_id,
    _parse_total,
    _parse_when,
    usual_name,
)
from coffeeshop.core.receipt_values import _type_name

__all__ = [
    "CENT",
    "MAX_KEY_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_QUANTITY",
    "MAX_STORE_ID",
    "MAX_TOTAL",
    "InvalidReceipt",
    "Receipt",
    "display_id",
    "parse_receipt",
    "receipt_key",
    "render_document",
]


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
        return month_of(self.day)


@functools.lru_cache(maxsize=4096)
def month_of(day: dt.date) -> str:
    """A day's month as the tables key it (`2026-11`): a batch's receipts share a few days,
    so a cache skips formatting it for every receipt."""
    return f"{day.year:04d}-{day.month:02d}"


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


def usual_receipt(
    key: str,
    store_id: Any,
    date: Any,
    time: Any,
    total: Any,
    lines: Iterable[tuple[Any, Any]],
) -> Receipt | None:
    """The `Receipt` `parse_receipt` makes of a document of these fields (its item lines as
    (product_name, product_quantity) pairs, each from an object that has both), when every
    field passes its rule; None otherwise, for `parse_receipt` to read the document itself
    (and to say what is wrong with it). The same rules, for a decoder that hands over the
    fields without the document."""
    try:
        store = _parse_store_id(store_id)
        day, hour = _parse_when(date, time)
        cents = _parse_total(total)
        totals: dict[str, int] = {}
        for index, (name, quantity) in enumerate(lines):
            canonical = usual_name(name, quantity)
            if canonical is None:  # (an accented name, say): the whole rule
                item = {"product_name": name, "product_quantity": quantity}
                canonical, quantity = _parse_item(index, item)
            totals[canonical] = totals.get(canonical, 0) + quantity
    except InvalidReceipt:
        return None
    return Receipt(key, store, day, hour, cents, tuple(sorted(totals.items())))
