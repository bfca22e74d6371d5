"""Behaviour of `core.events.event_from_object`: documents and change events to events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from bson import Int64, ObjectId
from hypothesis import given
from hypothesis import strategies as st

from coffeeshop.core.events import Delete, Skip, Unreadable, Upsert, event_from_object
from coffeeshop.core.receipts import receipt_key

OID_HEX = "65e1f0a0a1b2c3d4e5f60718"
WHERE = "line 7 (byte 420)"
RAW = '{"raw": "text"}'

RECEIPT = {
    "_id": {"$oid": OID_HEX},
    "Store_ID": 3,
    "transactionDate": "2024-03-01",
    "transactionTime": "07:30",
    "total_price": "12.50",
    "items": [{"product_name": "Latte", "product_quantity": 1}],
}


def to_event(obj: Any) -> Any:
    return event_from_object(obj, where=WHERE, raw=RAW)


def change(operation: Any, **fields: Any) -> dict[str, Any]:
    return {"_id": {"_data": "8263A1"}, "operationType": operation, **fields}


# -- plain documents ----------------------------------------------------------------------------


def test_plain_document_is_an_upsert_of_itself() -> None:
    event = to_event(RECEIPT)

    assert event == Upsert(
        key=f"oid:{OID_HEX}", receipt_id=OID_HEX, doc=RECEIPT, where=WHERE, raw=RAW
    )


def test_upsert_keeps_the_document_unchanged_even_when_invalid() -> None:
    doc = {"_id": 5, "Store_ID": -1}  # validation is parse_receipt's job, not the event's
    event = to_event(doc)
    assert isinstance(event, Upsert)
    assert event.doc is doc


@pytest.mark.parametrize(
    ("id_value", "key", "receipt_id"),
    [
        (ObjectId(OID_HEX), f"oid:{OID_HEX}", OID_HEX),
        ({"$oid": OID_HEX}, f"oid:{OID_HEX}", OID_HEX),
        ("r-42", "str:r-42", "r-42"),
        (42, "int:42", "42"),
        (Int64(42), "int:42", "42"),
        ({"$numberLong": "42"}, "int:42", "42"),
        ({"$numberDouble": "42.0"}, "int:42", "42.0"),
    ],
)
def test_upsert_key_and_display_id_follow_the_id(id_value: Any, key: str, receipt_id: str) -> None:
    event = to_event({"_id": id_value})
    assert isinstance(event, Upsert)
    assert (event.key, event.receipt_id) == (key, receipt_id)


def test_document_without_id_is_unreadable() -> None:
    doc = dict(RECEIPT)
    del doc["_id"]

    event = to_event(doc)

    assert event == Unreadable(reason="document has no _id", where=WHERE, raw=RAW)


def test_empty_object_is_unreadable() -> None:
    assert to_event({}) == Unreadable(reason="document has no _id", where=WHERE, raw=RAW)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([RECEIPT], "an array"),
        ([], "an array"),
        ("receipt", "a string"),
        ("", "a string"),
        (42, "a number"),
        (Decimal("4.5"), "a number"),
        (Decimal("NaN"), "a number"),
        (None, "null"),
        (True, "a boolean"),
        (False, "a boolean"),
    ],
)
def test_non_object_is_unreadable_naming_its_json_kind(value: Any, kind: str) -> None:
    event = to_event(value)
    assert event == Unreadable(reason=f"expected a JSON object, got {kind}", where=WHERE, raw=RAW)


@pytest.mark.parametrize("bad_oid", ["zz", "", "65e1f0a0", OID_HEX + "00", "g" * 24, 42, [1], None])
def test_document_with_invalid_oid_is_unreadable(bad_oid: Any) -> None:
    event = to_event({"_id": {"$oid": bad_oid}, "Store_ID": 3})
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("_id: cannot be read: ")
    assert len(event.reason) > len("_id: cannot be read: ")
    assert (event.where, event.raw) == (WHERE, RAW)


def test_document_with_unconvertible_extended_json_id_is_unreadable() -> None:
    event = to_event({"_id": {"$numberLong": "not a number"}})
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("_id: cannot be read: ")
    assert "not a number" in event.reason


# -- change events: insert / replace / update ---------------------------------------------------


@pytest.mark.parametrize("operation", ["insert", "replace", "update"])
def test_change_event_with_full_document_is_an_upsert_of_it(operation: str) -> None:
    event = to_event(
        change(operation, documentKey={"_id": {"$oid": OID_HEX}}, fullDocument=RECEIPT)
    )

    assert event == Upsert(
        key=f"oid:{OID_HEX}", receipt_id=OID_HEX, doc=RECEIPT, where=WHERE, raw=RAW
    )


@pytest.mark.parametrize("operation", ["insert", "replace", "update"])
def test_full_document_without_id_takes_it_from_the_document_key(operation: str) -> None:
    full = {k: v for k, v in RECEIPT.items() if k != "_id"}

    event = to_event(change(operation, documentKey={"_id": 9}, fullDocument=full))

    assert isinstance(event, Upsert)
    assert event.key == "int:9"
    assert event.doc == {"_id": 9, **full}
    assert "_id" not in full  # the input is not modified


def test_full_document_id_wins_over_document_key() -> None:
    event = to_event(change("insert", documentKey={"_id": 1}, fullDocument={"_id": 2}))
    assert isinstance(event, Upsert)
    assert event.key == "int:2"


@pytest.mark.parametrize("operation", ["insert", "replace", "update"])
def test_full_document_without_any_id_is_unreadable(operation: str) -> None:
    event = to_event(change(operation, fullDocument={"Store_ID": 3}))
    assert event == Unreadable(reason=f"{operation} event has no _id", where=WHERE, raw=RAW)


def test_update_whose_document_no_longer_exists_is_skipped() -> None:
    event = to_event(change("update", documentKey={"_id": 1}, fullDocument=None))
    assert event == Skip(note="update of a document that no longer exists", where=WHERE)


@pytest.mark.parametrize("operation", ["insert", "replace", "update"])
def test_change_event_without_full_document_field_is_unreadable(operation: str) -> None:
    # No fullDocument at all: the change stream was opened without updateLookup, so the
    # receipt's content is unknown. Skipping it would silently lose the change.
    event = to_event(change(operation, documentKey={"_id": 1}))
    assert isinstance(event, Unreadable)
    assert event.reason.startswith(f"{operation} event has no fullDocument")
    assert "updateLookup" in event.reason
    assert (event.where, event.raw) == (WHERE, RAW)


@pytest.mark.parametrize("operation", ["insert", "replace"])
def test_insert_or_replace_with_null_full_document_is_unreadable(operation: str) -> None:
    event = to_event(change(operation, documentKey={"_id": 1}, fullDocument=None))
    assert event == Unreadable(
        reason=f"{operation} event has no fullDocument object", where=WHERE, raw=RAW
    )


@pytest.mark.parametrize("full", [[RECEIPT], "doc", 3, True])
@pytest.mark.parametrize("operation", ["insert", "replace", "update"])
def test_full_document_that_is_not_an_object_is_unreadable(operation: str, full: Any) -> None:
    event = to_event(change(operation, documentKey={"_id": 1}, fullDocument=full))
    assert isinstance(event, Unreadable)
    assert event.reason == f"{operation} event has no fullDocument object"


def test_change_event_with_invalid_oid_in_full_document_is_unreadable() -> None:
    event = to_event(change("insert", fullDocument={"_id": {"$oid": "zz"}}))
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("_id: cannot be read: ")
    assert "zz" in event.reason


# -- change events: delete ----------------------------------------------------------------------


def test_delete_with_document_key_is_a_delete() -> None:
    event = to_event(change("delete", documentKey={"_id": {"$oid": OID_HEX}}))
    assert event == Delete(key=f"oid:{OID_HEX}", receipt_id=OID_HEX, where=WHERE)


@pytest.mark.parametrize(
    "id_value", [3, 3.0, Int64(3), {"$numberLong": "3"}, {"$numberInt": "3"}, Decimal("3")]
)
def test_delete_key_matches_the_upsert_key_of_the_same_receipt(id_value: Any) -> None:
    deleted = to_event(change("delete", documentKey={"_id": id_value}))
    inserted = to_event({"_id": 3})
    assert isinstance(deleted, Delete)
    assert deleted.key == inserted.key == receipt_key(3)


def test_delete_of_string_id_does_not_match_number_id() -> None:
    deleted = to_event(change("delete", documentKey={"_id": "3"}))
    assert isinstance(deleted, Delete)
    assert deleted.key != to_event({"_id": 3}).key


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"documentKey": None},
        {"documentKey": {}},
        {"documentKey": {"store": 1}},
        {"documentKey": "abc"},
        {"documentKey": [{"_id": 1}]},
        {"fullDocument": {"_id": 1}},  # a delete's id comes only from documentKey
    ],
)
def test_delete_without_document_key_id_is_unreadable(fields: dict[str, Any]) -> None:
    event = to_event(change("delete", **fields))
    assert event == Unreadable(reason="delete event has no documentKey._id", where=WHERE, raw=RAW)


def test_a_null_id_is_an_id_a_delete_can_name() -> None:
    event = to_event(change("delete", documentKey={"_id": None}))
    assert isinstance(event, Delete)
    assert event.key == to_event({"_id": None}).key


# -- other operation types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    ["drop", "rename", "dropDatabase", "invalidate", "Insert", "DELETE", "", None, 1, True],
)
def test_unknown_operation_type_is_unreadable(operation: Any) -> None:
    event = to_event(change(operation, documentKey={"_id": 1}, fullDocument={"_id": 1}))
    assert event == Unreadable(
        reason=f"unsupported change event operationType {operation!r}", where=WHERE, raw=RAW
    )


def test_object_with_operation_type_is_read_as_a_change_event_even_with_id() -> None:
    event = to_event({"_id": 1, "operationType": "drop"})
    assert isinstance(event, Unreadable)
    assert "operationType" in event.reason


# -- properties ---------------------------------------------------------------------------------

_keys = st.text(max_size=6).filter(lambda k: not k.startswith("$") and k != "_id")
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=10),
)


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(_keys, children, max_size=3)
        ),
        max_leaves=10,
    )


# Numbers with a fraction (Decimal, as JSONL decodes them) anywhere in the input ...
_json = _nested(st.one_of(_scalars, st.decimals(min_value=-(10**9), max_value=10**9)))
# ... and in a delete's documentKey._id, with Extended JSON wrappers that may not be keyable.
_wrappers = st.one_of(
    st.builds(lambda s: {"$oid": s}, st.one_of(st.none(), st.text(max_size=24))),
    st.builds(lambda s: {"$numberLong": s}, st.text(max_size=5)),
    st.builds(lambda s: {"$numberDouble": s}, st.text(max_size=5)),
)
_keyable = _nested(st.one_of(_scalars, st.decimals(min_value=-(10**9), max_value=10**9), _wrappers))
_operations = st.sampled_from(["insert", "replace", "update", "delete", "drop", "invalidate"])
_change_events = st.fixed_dictionaries(
    {"operationType": _operations},
    optional={
        "documentKey": st.one_of(_json, st.fixed_dictionaries({"_id": _keyable})),
        "fullDocument": st.one_of(
            _json, st.fixed_dictionaries({"_id": _json}, optional={"x": _json})
        ),
    },
)


@given(st.one_of(_json, _change_events))
def test_every_decoded_json_value_maps_to_exactly_one_event(obj: Any) -> None:
    event = event_from_object(obj, where=WHERE, raw=RAW)

    assert isinstance(event, Upsert | Delete | Unreadable | Skip)
    assert event.where == WHERE
    if isinstance(event, Upsert | Unreadable):
        assert event.raw == RAW
    if isinstance(event, Upsert):
        assert "_id" in event.doc
        assert event.key == receipt_key(event.doc["_id"])
    if isinstance(event, Delete):
        assert obj["operationType"] == "delete"
    if isinstance(event, Skip):
        # Only an update whose fullDocument is present and null is skipped.
        assert obj["operationType"] == "update"
        assert "fullDocument" in obj
        assert obj["fullDocument"] is None
    upserting = isinstance(obj, dict) and obj.get("operationType") in {
        "insert",
        "replace",
        "update",
    }
    if upserting and "fullDocument" not in obj:
        assert isinstance(event, Unreadable)
        assert "updateLookup" in event.reason


# -- unkeyable ids, null $oid, odd operation types ----------------------------------------------


@pytest.mark.parametrize(
    ("bad_id", "detail"),
    [
        ({"$oid": "zz"}, "not a valid ObjectId"),  # bson.errors.InvalidId
        ({"$oid": None}, "$oid"),
        ({"$numberLong": "x"}, "invalid literal"),  # ValueError
        ({"store": {"$oid": "zz"}}, "not a valid ObjectId"),  # inside a compound _id
    ],
    ids=["invalid-oid", "null-oid", "invalid-numberLong", "compound-with-invalid-oid"],
)
def test_delete_with_unkeyable_document_key_is_unreadable(bad_id: Any, detail: str) -> None:
    event = to_event(change("delete", documentKey={"_id": bad_id}))
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("documentKey._id: cannot be read: ")
    assert detail in event.reason
    assert (event.where, event.raw) == (WHERE, RAW)
    # The same _id in a plain document gives the same reason, without the prefix.
    plain = to_event({"_id": bad_id})
    assert isinstance(plain, Unreadable)
    assert event.reason == f"documentKey.{plain.reason}"


def test_delete_of_compound_id_with_a_fraction_matches_its_upsert() -> None:
    # A compound _id read from JSONL holds Decimal for numbers with a fraction.
    compound = {"store": 1, "n": Decimal("1.5")}
    deleted = to_event(change("delete", documentKey={"_id": compound}))
    inserted = to_event({"_id": {"store": 1, "n": 1.5}})
    assert isinstance(deleted, Delete)
    assert isinstance(inserted, Upsert)
    assert deleted.key == inserted.key == receipt_key(compound)
    assert deleted.key != receipt_key({"store": 1, "n": Decimal("2.5")})


def test_document_with_null_oid_is_unreadable() -> None:
    first = to_event({"_id": {"$oid": None}, "Store_ID": 3})
    second = to_event({"_id": {"$oid": None}, "Store_ID": 3})
    assert isinstance(first, Unreadable), first
    assert first.reason.startswith("_id: cannot be read: ")
    assert first == second


@pytest.mark.parametrize(
    "operation",
    [["insert"], {"op": "insert"}, [], {}, Decimal("1.5")],
    ids=["array", "object", "empty-array", "empty-object", "decimal"],
)
def test_unhashable_or_non_string_operation_type_is_unreadable(operation: Any) -> None:
    event = to_event(change(operation, documentKey={"_id": 1}, fullDocument={"_id": 1}))
    assert event == Unreadable(
        reason=f"unsupported change event operationType {operation!r}", where=WHERE, raw=RAW
    )
