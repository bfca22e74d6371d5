"""The usual receipt line of a JSONL file, decoded and validated in one step.

A line is almost always a plain receipt document: an `_id`, the four fields and a list of
item objects. msgspec decodes such a line straight into the few fields a receipt is made of
(`_Line`), each value exactly as `json_text.read_json` reads it (numbers with a fraction or
an exponent as `Decimal`s from their own text, the same decoder settings as `fast_json`),
without building the document's dictionaries; `receipts.usual_receipt` then applies the
field rules. Any other line is `None`, and the line goes the general way (`read_json`,
`events.event_from_object`, `plan.parse_events`), which also names what is wrong with it:
- a text `fast_json` would not try (its digit and nesting limits), or one msgspec refuses;
- a key the structs below do not name (so every value of a line tried here is decoded, and
  a number `read_json` refuses anywhere in it makes msgspec refuse the line too);
- not an object, a change event other than an insert, replace or update with its full
  document (`operationType`, `fullDocument`), or a field missing;
- an item that is not an object or lacks a name or quantity, or any field the rules refuse.
Duplicate keys keep their last value in both decoders. `tests/test_fast_receipt.py` holds
this path to the general one, line by line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from coffeeshop.core.events import Parsed
from coffeeshop.core.limits import stored_items_problem
from coffeeshop.core.receipts import InvalidReceipt, display_id, receipt_key, usual_receipt
from coffeeshop.sources.fast_json import within_limits

# Every struct forbids keys it does not name: each value of a line tried here is decoded
# (with the same number hook), so a number `read_json` refuses anywhere, even in a key no
# rule reads, makes msgspec refuse the line too. A line with any other key is not tried.


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    name: Any = msgspec.field(name="product_name")  # both required: a line without one is
    quantity: Any = msgspec.field(name="product_quantity")  # not the usual one
    price: Any = msgspec.field(name="product_price", default=UNSET)  # (no rule reads it)


class _Document(msgspec.Struct, forbid_unknown_fields=True):
    """The fields of a receipt document that its rules read."""

    id: Any = msgspec.field(name="_id", default=UNSET)
    store_id: Any = msgspec.field(name="Store_ID", default=UNSET)
    date: Any = msgspec.field(name="transactionDate", default=UNSET)
    time: Any = msgspec.field(name="transactionTime", default=UNSET)
    total: Any = msgspec.field(name="total_price", default=UNSET)
    items: list[_Item] | UnsetType = UNSET


class _Line(_Document):
    """A line: a receipt document, or a change event carrying one (`fullDocument`)."""

    operation: Any = msgspec.field(name="operationType", default=UNSET)
    document_key: Any = msgspec.field(name="documentKey", default=UNSET)
    full: _Document | UnsetType = msgspec.field(name="fullDocument", default=UNSET)


_DECODER = msgspec.json.Decoder(_Line, float_hook=Decimal)
_UPSERTS = ("insert", "replace", "update")  # the change events that carry a document


def usual_receipt_line(text: str, where: str) -> Parsed | None:
    """The valid receipt of a line of the usual shape, as `parse_events` would hand it on;
    None for every other line (it is then read the general way)."""
    if not within_limits(text):
        return None
    try:
        line = _DECODER.decode(text)
    except Exception:  # malformed, another shape, or Decimal refusing a number
        return None
    doc: _Document | UnsetType = line
    if line.operation is not UNSET:  # a change event: its full document, if it has one
        operation = line.operation
        doc = line.full if type(operation) is str and operation in _UPSERTS else UNSET
    if doc is UNSET or doc.id is UNSET or doc.items is UNSET:
        return None
    if doc.store_id is UNSET or doc.date is UNSET or doc.time is UNSET or doc.total is UNSET:
        return None
    try:
        key = receipt_key(doc.id)
    except InvalidReceipt:
        return None
    lines = [(item.name, item.quantity) for item in doc.items]
    receipt = usual_receipt(key, doc.store_id, doc.date, doc.time, doc.total, lines)
    if receipt is None or stored_items_problem(receipt) is not None:
        return None
    return Parsed(key, display_id(doc.id), receipt, None, where, "")
