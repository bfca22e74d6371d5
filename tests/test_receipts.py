"""Behaviour of `coffeeshop.core.receipts`: validation rules, Extended JSON, identity keys."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from coffeeshop.core import receipt_ids, receipt_values
from coffeeshop.core.receipts import (
    MAX_KEY_BYTES,
    MAX_TOTAL,
    InvalidReceipt,
    Receipt,
    display_id,
    parse_receipt,
    receipt_key,
)
from coffeeshop.sources.jsonl import decode_line

OID_HEX = "65e1f0a0a1b2c3d4e5f60718"
MAX_INT32 = 2**31 - 1
UTC = dt.UTC


def make_doc(**overrides: Any) -> dict[str, Any]:
    """A valid receipt; keyword arguments replace fields (pass `_id` via `**{"_id": ...}`)."""
    doc: dict[str, Any] = {
        "_id": 1,
        "Store_ID": 3,
        "transactionDate": "2024-03-01",
        "transactionTime": "07:30:00",
        "total_price": "12.50",
        "items": [{"product_name": "Latte", "product_quantity": 2}],
    }
    doc.update(overrides)
    return doc


def without(field: str) -> dict[str, Any]:
    doc = make_doc()
    del doc[field]
    return doc


def rejection(doc: Any) -> InvalidReceipt:
    with pytest.raises(InvalidReceipt) as info:
        parse_receipt(doc)
    exc = info.value
    # The message always names the field first: "field: problem".
    assert exc.reason == str(exc) == f"{exc.field}: {exc.problem}"
    return exc


def assert_rejected(doc: Any, field: str, fragment: str) -> InvalidReceipt:
    exc = rejection(doc)
    assert exc.field == field
    assert fragment in exc.reason
    return exc


def with_items(*items: Any) -> dict[str, Any]:
    return make_doc(items=list(items))


def item(name: Any = "Latte", quantity: Any = 1) -> dict[str, Any]:
    return {"product_name": name, "product_quantity": quantity}


# -- the happy path -----------------------------------------------------------------------------


def test_valid_receipt_parses_to_canonical_receipt() -> None:
    receipt = parse_receipt(make_doc())

    assert receipt == Receipt(
        key="int:1",
        store_id=3,
        day=dt.date(2024, 3, 1),
        hour=7,
        cents=1250,
        items=(("Latte", 2),),
    )


def test_receipt_exposes_total_units_and_month() -> None:
    receipt = parse_receipt(
        make_doc(total_price="12.345", items=[item("Latte", 2), item("Mocha", 3)])
    )

    assert receipt.cents == 1235
    assert isinstance(receipt.cents, int)
    assert receipt.total == Decimal("12.35")
    assert receipt.units == 5
    assert receipt.month == "2024-03"


def test_receipt_is_immutable() -> None:
    receipt = parse_receipt(make_doc())
    with pytest.raises(AttributeError):
        receipt.cents = 0  # type: ignore[misc]


def test_unknown_top_level_fields_are_ignored() -> None:
    assert parse_receipt(make_doc(customer="Ann", loyalty={"points": 3})) == parse_receipt(
        make_doc()
    )


def test_invalid_receipt_is_a_value_error_with_field_problem_and_reason() -> None:
    exc = InvalidReceipt("Store_ID", "missing")
    assert isinstance(exc, ValueError)
    assert exc.field == "Store_ID"
    assert exc.problem == "missing"
    assert exc.reason == "Store_ID: missing"


@pytest.mark.parametrize("value", [None, [], "receipt", 3, [("_id", 1)]])
def test_non_object_document_is_rejected(value: Any) -> None:
    assert_rejected(value, "document", "expected an object")


# -- missing fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["_id", "Store_ID", "transactionDate", "transactionTime", "total_price", "items"]
)
def test_missing_field_is_rejected_naming_it(field: str) -> None:
    exc = assert_rejected(without(field), field, "missing")
    assert exc.reason == f"{field}: missing"


def test_first_invalid_field_is_reported_in_spec_order() -> None:
    doc = make_doc(Store_ID=-1, total_price="abc", items=None)
    assert rejection(doc).field == "Store_ID"


# -- _id ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (ObjectId(OID_HEX), f"oid:{OID_HEX}"),
        ("receipt-42", "str:receipt-42"),
        (42, "int:42"),
        (Int64(42), "int:42"),
    ],
)
def test_any_bson_id_type_identifies_the_receipt(value: Any, key: str) -> None:
    assert parse_receipt(make_doc(_id=value)).key == key


# -- Store_ID -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (3, 3),
        (MAX_INT32, MAX_INT32),
        (3.0, 3),
        ("3", 3),
        ("0003", 3),
        ("0", 0),
        (str(MAX_INT32), MAX_INT32),
        (Int64(3), 3),
        (Decimal128("3"), 3),
        (Decimal128("3.00"), 3),
        (Decimal("3.0"), 3),
        ({"$numberInt": "3"}, 3),
        ({"$numberLong": "3"}, 3),
        ({"$numberDouble": "3.0"}, 3),
        ({"$numberDecimal": "3"}, 3),
    ],
)
def test_store_id_accepts_integral_values_in_any_encoding(value: Any, expected: int) -> None:
    assert parse_receipt(make_doc(Store_ID=value)).store_id == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (True, "got a boolean"),
        (False, "got a boolean"),
        (None, "got null"),
        (3.5, "got the number 3.5"),
        (float("nan"), "must be an integer"),
        (float("inf"), "must be an integer"),
        ("-3", "got the string '-3'"),
        (" 3", "got the string ' 3'"),
        ("3 ", "must be an integer"),
        ("3\n", "must be an integer"),
        ("3.0", "got the string '3.0'"),
        ("", "must be an integer"),
        ("three", "must be an integer"),
        ("٣", "must be an integer"),  # Arabic-Indic digit three: not an ASCII digit
        ("３", "must be an integer"),  # full-width digit three
        ("0x1F", "must be an integer"),
        ([3], "got a list"),
        ({"id": 3}, "got an object"),
        ({"$numberDouble": "3.5"}, "must be an integer"),
        ({"$numberDecimal": "3.5"}, "must be an integer"),
        ({"$numberInt": "three"}, "must be an integer"),
        (Decimal128("NaN"), "must be an integer"),
    ],
)
def test_store_id_rejects_non_integers(value: Any, fragment: str) -> None:
    exc = assert_rejected(make_doc(Store_ID=value), "Store_ID", fragment)
    assert "must be an integer ≥ 0 (or a string of digits)" in exc.reason


@pytest.mark.parametrize(
    "value", [-1, -1.0, Int64(-1), {"$numberLong": "-1"}, Decimal128("-1"), -(2**40)]
)
def test_store_id_rejects_negative_numbers(value: Any) -> None:
    assert_rejected(make_doc(Store_ID=value), "Store_ID", "must be ≥ 0, got -")


@pytest.mark.parametrize(
    "value",
    [MAX_INT32 + 1, str(MAX_INT32 + 1), Int64(2**40), {"$numberLong": str(2**40)}, 1e20, 10**40],
)
def test_store_id_rejects_values_above_int32(value: Any) -> None:
    assert_rejected(make_doc(Store_ID=value), "Store_ID", f"must be at most {MAX_INT32}")


# -- transactionDate / transactionTime ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2000-02-29", dt.date(2000, 2, 29)),
        ("2024-12-31", dt.date(2024, 12, 31)),
        ("0001-01-01", dt.date(1, 1, 1)),
        ("9999-12-31", dt.date(9999, 12, 31)),
    ],
)
def test_date_string_that_is_a_real_date_is_accepted(text: str, expected: dt.date) -> None:
    assert parse_receipt(make_doc(transactionDate=text)).day == expected


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29",
        "1900-02-29",
        "2024-02-30",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-01-32",
        "0000-01-01",
    ],
)
def test_date_string_that_is_not_a_calendar_date_is_rejected(text: str) -> None:
    assert_rejected(
        make_doc(transactionDate=text), "transactionDate", "is not a real calendar date"
    )


@pytest.mark.parametrize(
    "text",
    [
        "2024-3-1",
        "24-03-01",
        "2024/03/01",
        "20240301",
        "2024-03-01T07:30:00",
        "2024-03-01 ",
        " 2024-03-01",
        "2024-03-01\n",
        "２０２４-03-01",
        "",
    ],
)
def test_date_string_not_in_yyyy_mm_dd_form_is_rejected(text: str) -> None:
    assert_rejected(make_doc(transactionDate=text), "transactionDate", '"YYYY-MM-DD"')


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (20240301, "got the number 20240301"),
        (None, "got null"),
        (True, "got a boolean"),
        (["2024-03-01"], "got a list"),
        (dt.date(2024, 3, 1), "got date"),
        ({"$date": "not a date"}, "got an object"),
        ({"$date": {"$numberLong": "99999999999999999"}}, "got an object"),  # out of range
    ],
)
def test_date_of_wrong_type_is_rejected(value: Any, fragment: str) -> None:
    exc = assert_rejected(make_doc(transactionDate=value), "transactionDate", fragment)
    assert '"YYYY-MM-DD" string or a date' in exc.reason


MOMENT = dt.datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
MOMENT_MS = int(MOMENT.timestamp() * 1000)


@pytest.mark.parametrize(
    "value",
    [
        MOMENT,
        MOMENT.replace(tzinfo=None),  # PyMongo's default: naive, meaning UTC
        MOMENT.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))),
        {"$date": {"$numberLong": str(MOMENT_MS)}},  # canonical Extended JSON
        {"$date": "2024-03-01T23:30:00Z"},  # relaxed Extended JSON
        {"$date": "2024-03-01T23:30:00.000Z"},
        {"$date": "2024-03-02T01:30:00+02:00"},
        {"$date": MOMENT_MS},  # legacy Extended JSON
    ],
)
def test_bson_datetime_gives_utc_day_and_hour_when_time_absent(value: Any) -> None:
    doc = without("transactionTime")
    doc["transactionDate"] = value

    receipt = parse_receipt(doc)

    assert (receipt.day, receipt.hour) == (dt.date(2024, 3, 1), 23)


def test_datetime_in_another_zone_is_converted_to_utc_day_across_midnight() -> None:
    local = dt.datetime(2024, 3, 1, 1, 15, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    doc = without("transactionTime")
    doc["transactionDate"] = local

    receipt = parse_receipt(doc)

    assert (receipt.day, receipt.hour) == (dt.date(2024, 2, 29), 23)


def test_transaction_time_overrides_the_hour_of_a_datetime_date() -> None:
    receipt = parse_receipt(make_doc(transactionDate=MOMENT, transactionTime="08:15"))
    assert (receipt.day, receipt.hour) == (dt.date(2024, 3, 1), 8)


def test_invalid_transaction_time_is_rejected_even_with_datetime_date() -> None:
    doc = make_doc(transactionDate=MOMENT, transactionTime="25:00")
    assert_rejected(doc, "transactionTime", '"HH:MM:SS" or "HH:MM"')


def test_null_transaction_time_is_not_the_same_as_absent() -> None:
    doc = make_doc(transactionDate=MOMENT, transactionTime=None)
    assert_rejected(doc, "transactionTime", "got null")


def test_transaction_time_is_required_with_a_date_string() -> None:
    assert_rejected(without("transactionTime"), "transactionTime", "missing")


@pytest.mark.parametrize(
    ("text", "hour"),
    [
        ("00:00", 0),
        ("00:00:00", 0),
        ("07:30", 7),
        ("09:05:59", 9),
        ("19:59:59", 19),
        ("23:59", 23),
        ("23:59:59", 23),
    ],
)
def test_valid_transaction_time_gives_the_hour(text: str, hour: int) -> None:
    assert parse_receipt(make_doc(transactionTime=text)).hour == hour


@pytest.mark.parametrize(
    "value",
    [
        "24:00",
        "24:00:00",
        "23:60",
        "12:00:60",
        "7:30",
        "07:3",
        "0730",
        "07:30:00.5",
        "07:30:00Z",
        " 07:30",
        "07:30\n",
        "07",
        "",
        "０７:30",
        7,
        7.5,
        None,
        True,
        {"hour": 7},
    ],
)
def test_invalid_transaction_time_is_rejected(value: Any) -> None:
    assert_rejected(make_doc(transactionTime=value), "transactionTime", '"HH:MM:SS" or "HH:MM"')


# -- total_price --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        (0, 0),
        (12, 1200),
        (12.5, 1250),
        (12.345, 1235),
        (2.675, 268),  # half-up on the written number, not on the binary double
        (1.005, 101),
        (0.005, 1),
        (0.004, 0),
        ("0.005", 1),
        ("0.0049999", 0),
        ("12.345", 1235),
        ("12.344999", 1234),
        ("12", 1200),
        ("12.", 1200),
        (".5", 50),
        ("+5", 500),
        ("1e2", 10000),
        ("1.5E-1", 15),
        ("-0", 0),
        ("0.00", 0),
        (Decimal("12.345"), 1235),
        (Decimal128("12.345"), 1235),
        (Int64(7), 700),
        ({"$numberInt": "7"}, 700),
        ({"$numberLong": "7"}, 700),
        ({"$numberDouble": "12.345"}, 1235),
        ({"$numberDecimal": "12.345"}, 1235),
        ({"$numberDecimal": "0.005"}, 1),
        ("9999999999.99", 999999999999),
        (Decimal128("9999999999.99"), 999999999999),
        (9999999999.99, 999999999999),
    ],
)
def test_total_is_rounded_half_up_to_integer_cents(value: Any, cents: int) -> None:
    receipt = parse_receipt(make_doc(total_price=value))
    assert receipt.cents == cents
    assert type(receipt.cents) is int


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (" 12.50", "must be a decimal number"),
        ("12.50 ", "must be a decimal number"),
        ("12 .50", "must be a decimal number"),
        ("12,50", "must be a decimal number"),
        ("$12.50", "must be a decimal number"),
        ("", "must be a decimal number"),
        ("abc", "must be a decimal number"),
        ("NaN", "must be a decimal number"),
        ("Infinity", "must be a decimal number"),
        ("1e", "must be a decimal number"),
        ("0x10", "must be a decimal number"),
        ("１２", "must be a decimal number"),  # full-width digits
        ("12.50\n", "must be a decimal number"),
        (True, "must be a number, got a boolean"),
        (None, "must be a number, got null"),
        ([12], "must be a number, got a list"),
        ({"amount": 12}, "must be a number, got an object"),
        ({"$numberInt": "twelve"}, "must be a number, got an object"),
    ],
)
def test_total_that_is_not_a_number_is_rejected(value: Any, fragment: str) -> None:
    assert_rejected(make_doc(total_price=value), "total_price", fragment)


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("sNaN"),
        Decimal128("NaN"),
        Decimal128("Infinity"),
        {"$numberDouble": "NaN"},
        {"$numberDouble": "Infinity"},
        {"$numberDouble": "-Infinity"},
        {"$numberDecimal": "NaN"},
        {"$numberDecimal": "-Infinity"},
    ],
)
def test_total_that_is_not_finite_is_rejected(value: Any) -> None:
    assert_rejected(make_doc(total_price=value), "total_price", "must be finite")


@pytest.mark.parametrize(
    "value", [-1, -0.01, "-0.001", "-12.50", Decimal128("-0.01"), {"$numberDecimal": "-5"}]
)
def test_negative_total_is_rejected(value: Any) -> None:
    assert_rejected(make_doc(total_price=value), "total_price", "must be ≥ 0")


@pytest.mark.parametrize(
    "value",
    [
        "9999999999.991",  # would round down to the maximum, but is above it
        "9999999999.995",
        "10000000000",
        10**10,
        1e10,
        1e300,
        "1e400",
        Decimal("1E+400"),
        Decimal128("1E+100"),
    ],
)
def test_total_above_decimal_12_2_is_rejected(value: Any) -> None:
    assert_rejected(make_doc(total_price=value), "total_price", "must be at most 9999999999.99")


def test_total_message_previews_long_values() -> None:
    exc = assert_rejected(make_doc(total_price="9" * 80), "total_price", "must be at most")
    assert exc.reason.endswith("...")
    assert len(exc.reason) < 120


# -- items --------------------------------------------------------------------------------------


def test_empty_items_list_is_allowed() -> None:
    receipt = parse_receipt(make_doc(items=[]))
    assert receipt.items == ()
    assert receipt.units == 0


def test_items_as_tuple_is_accepted() -> None:
    assert parse_receipt(make_doc(items=(item("Latte", 2),))).items == (("Latte", 2),)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "got null"),
        ({}, "got an object"),
        ({"product_name": "Latte", "product_quantity": 1}, "got an object"),
        ("Latte", "got the string 'Latte'"),
        (b"Latte", "must be a list"),
        (3, "got the number 3"),
        (True, "got a boolean"),
    ],
)
def test_items_that_are_not_a_list_are_rejected(value: Any, fragment: str) -> None:
    exc = assert_rejected(make_doc(items=value), "items", fragment)
    assert "must be a list" in exc.reason


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("Latte", "got the string"),
        (None, "got null"),
        ([item()], "got a list"),
        (2, "got the number"),
    ],
)
def test_item_that_is_not_an_object_is_rejected(value: Any, fragment: str) -> None:
    exc = assert_rejected(with_items(item(), value), "items[1]", fragment)
    assert "must be an object" in exc.reason


def test_duplicate_names_are_merged_and_items_sorted() -> None:
    receipt = parse_receipt(
        with_items(item("Mocha", 1), item("Latte", 2), item("Americano", 1), item("Latte", 3))
    )
    assert receipt.items == (("Americano", 1), ("Latte", 5), ("Mocha", 1))
    assert receipt.units == 7


def test_names_are_stripped_before_merging() -> None:
    receipt = parse_receipt(with_items(item("  Latte", 1), item("Latte\t", 2), item("\nLatte ", 4)))
    assert receipt.items == (("Latte", 7),)


def test_names_compare_exactly_without_case_or_accent_folding() -> None:
    receipt = parse_receipt(with_items(item("Latte"), item("latte"), item("Latté"), item("LATTE")))
    assert dict(receipt.items) == {"Latte": 1, "latte": 1, "Latté": 1, "LATTE": 1}


def test_composed_and_decomposed_accents_are_one_product_named_in_nfc() -> None:
    """Issue 18.15: `Café Crème` typed on a Mac (NFD) and on a PC (NFC) looked the same and
    were two products; a name is normalised to NFC."""
    composed, decomposed = "Caf\u00e9 Cr\u00e8me", "Cafe\u0301 Cre\u0300me"
    receipt = parse_receipt(with_items(item(composed), item(decomposed, 2)))
    assert receipt.items == ((composed, 3),)
    assert parse_receipt(with_items(item(decomposed))).items == ((composed, 1),)


@pytest.mark.parametrize(
    ("name", "nfc"),
    [
        ("Cafe\u0301\u0301", "Caf\u00e9\u0301"),  # one mark composes, the stacked one stays
        ("\u212b", "\u00c5"),  # ANGSTROM SIGN is canonically Å
        ("\u1100\u1161", "\uac00"),  # Hangul jamo compose into a syllable
        ("x\u0301", "x\u0301"),  # no precomposed x-acute: unchanged
        ("\uff2c\uff41\uff54\uff54\uff45", "\uff2c\uff41\uff54\uff54\uff45"),  # NFC, not NFKC
    ],
)
def test_names_are_normalised_to_nfc_only(name: str, nfc: str) -> None:
    assert parse_receipt(with_items(item(name))).items == ((nfc, 1),)


def test_the_length_limit_counts_the_nfc_name() -> None:
    assert parse_receipt(with_items(item("e\u0301" * 100))).items == (("\u00e9" * 100, 1),)


def test_other_item_fields_are_ignored() -> None:
    receipt = parse_receipt(
        with_items({"product_name": "Latte", "product_quantity": 1, "price": "x", "size": None})
    )
    assert receipt.items == (("Latte", 1),)


@pytest.mark.parametrize(
    "name",
    [
        "☕ Flat white",
        "🍩🍩",  # 4-byte UTF-8 characters
        "👩‍👩‍👧 family pack",  # zero-width joiner sequence
        "🇫🇷 croissant",  # regional indicator pair
        "قهوة عربية",  # right-to-left text
        "עוגה",
        "Latte\u200b",  # zero-width space is a character, not stripped whitespace
        "\u200b",
        "\ufeffLatte",  # zero-width no-break space is not whitespace either
        "Caf\u00e9\u0301",  # a stacked combining mark (in NFC: e + two marks would compose)
        "抹茶ラテ",
        "a",
    ],
)
def test_unicode_names_are_kept_exactly(name: str) -> None:
    assert parse_receipt(with_items(item(name, 2))).items == ((name, 2),)


def test_name_of_exactly_100_characters_is_accepted() -> None:
    name = "x" * 100
    assert parse_receipt(with_items(item(name))).items == ((name, 1),)


def test_name_of_101_characters_is_rejected() -> None:
    exc = assert_rejected(with_items(item("x" * 101)), "items[0].product_name", "is 101 characters")
    assert "at most 100" in exc.reason


def test_name_length_is_counted_after_stripping() -> None:
    name = "x" * 100
    assert parse_receipt(with_items(item(f"   {name}\t\n"))).items == ((name, 1),)


def test_name_of_100_four_byte_emoji_is_accepted_and_101_rejected() -> None:
    assert parse_receipt(with_items(item("🍩" * 100))).items == (("🍩" * 100, 1),)
    assert_rejected(with_items(item("🍩" * 101)), "items[0].product_name", "is 101 characters")


def test_name_length_counts_combining_marks_as_characters() -> None:
    # x + U+0301 has no precomposed form: two characters in NFC too.
    assert parse_receipt(with_items(item("x\u0301" * 50))).items == (("x\u0301" * 50, 1),)
    exc = assert_rejected(with_items(item("x\u0301" * 51)), "items[0].product_name", "is 102")
    assert "at most 100" in exc.reason


@pytest.mark.parametrize("name", ["", " ", "   ", "\t\n", "\u3000", "\xa0\u2003"])
def test_empty_or_whitespace_name_is_rejected(name: str) -> None:
    assert_rejected(with_items(item(name)), "items[0].product_name", "is empty")


@pytest.mark.parametrize("name", ["\x00", "Lat\x00te", "Latte\x00", "\x00Latte"])
def test_name_with_nul_is_rejected(name: str) -> None:
    assert_rejected(with_items(item(name)), "items[0].product_name", "contains a NUL character")


@pytest.mark.parametrize("name", ["\ud800", "Latte\udfff", "\ud83c\udf69"])
def test_name_with_lone_surrogate_is_rejected(name: str) -> None:
    # "\ud83c\udf69" in a Python str is two lone surrogates, not the 🍩 they would pair into.
    assert_rejected(with_items(item(name)), "items[0].product_name", "lone UTF-16 surrogate")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (5, "got the number 5"),
        (None, "got null"),
        (True, "got a boolean"),
        (["Latte"], "got a list"),
        ({"$numberInt": "1"}, "got an object"),
        (b"Latte", "must be a string"),
    ],
)
def test_name_that_is_not_a_string_is_rejected(value: Any, fragment: str) -> None:
    exc = assert_rejected(with_items(item(value)), "items[0].product_name", fragment)
    assert "must be a string" in exc.reason


def test_missing_name_is_rejected_with_item_index() -> None:
    doc = with_items(item(), item(), {"product_quantity": 1})
    assert_rejected(doc, "items[2].product_name", "missing")


def test_missing_quantity_is_rejected_with_item_index() -> None:
    assert_rejected(
        with_items(item(), {"product_name": "Mocha"}), "items[1].product_quantity", "missing"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (2.0, 2),
        (Int64(3), 3),
        (Decimal("4"), 4),
        (Decimal("4.00"), 4),
        (Decimal128("5"), 5),
        ({"$numberInt": "6"}, 6),
        ({"$numberLong": "7"}, 7),
        ({"$numberDouble": "8.0"}, 8),
        ({"$numberDecimal": "9"}, 9),
        (MAX_INT32, MAX_INT32),
    ],
)
def test_quantity_accepts_integral_values_in_any_encoding(value: Any, expected: int) -> None:
    assert parse_receipt(with_items(item("Latte", value))).items == (("Latte", expected),)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (0, "got the number 0"),
        (-1, "got the number -1"),
        (0.0, "got the number 0"),
        (2.5, "got the number 2.5"),
        (True, "got a boolean"),
        (False, "got a boolean"),
        (None, "got null"),
        ("2", "got the string '2'"),
        ([2], "got a list"),
        (float("nan"), "must be an integer"),
        (float("inf"), "must be an integer"),
        ({"$numberDecimal": "2.5"}, "must be an integer"),
        ({"$numberInt": "0"}, "got the number 0"),
        ({"$numberInt": "two"}, "got an object"),
    ],
)
def test_quantity_that_is_not_a_positive_integer_is_rejected(value: Any, fragment: str) -> None:
    exc = assert_rejected(with_items(item("Latte", value)), "items[0].product_quantity", fragment)
    assert "must be an integer ≥ 1" in exc.reason


@pytest.mark.parametrize("value", [MAX_INT32 + 1, Int64(2**40), {"$numberLong": str(2**40)}])
def test_quantity_above_int32_is_rejected(value: Any) -> None:
    assert_rejected(
        with_items(item("Latte", value)),
        "items[0].product_quantity",
        f"must be at most {MAX_INT32}",
    )


def test_error_reports_the_first_bad_item() -> None:
    doc = with_items(item(), item("Mocha", 0), item("", 1))
    assert rejection(doc).field == "items[1].product_quantity"


# -- the same receipt in every encoding ---------------------------------------------------------


NATIVE = {
    "_id": ObjectId(OID_HEX),
    "Store_ID": Int64(7),
    "transactionDate": MOMENT,
    "total_price": Decimal128("12.345"),
    "items": [
        {"product_name": "Latte", "product_quantity": 2},
        {"product_name": "Mocha", "product_quantity": 1.0},
        {"product_name": "Latte", "product_quantity": Int64(1)},
    ],
}
EXPECTED = Receipt(
    key=f"oid:{OID_HEX}",
    store_id=7,
    day=dt.date(2024, 3, 1),
    hour=23,
    cents=1235,
    items=(("Latte", 3), ("Mocha", 1)),
)


def test_native_bson_document_parses() -> None:
    assert parse_receipt(NATIVE) == EXPECTED


@pytest.mark.parametrize(
    "options", [CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS], ids=["canonical", "relaxed"]
)
def test_extended_json_export_parses_to_the_same_receipt(options: Any) -> None:
    line = json_util.dumps(NATIVE, json_options=options)
    # As a JSONL source reads it: plain JSON, numbers with a fraction as Decimal.
    assert parse_receipt(json.loads(line, parse_float=Decimal)) == EXPECTED
    assert parse_receipt(json.loads(line)) == EXPECTED
    event = decode_line(line.encode(), where="line 1")
    assert parse_receipt(event.doc) == EXPECTED  # type: ignore[union-attr]


def test_handwritten_canonical_extended_json_parses() -> None:
    doc = {
        "_id": {"$oid": OID_HEX},
        "Store_ID": {"$numberInt": "7"},
        "transactionDate": {"$date": {"$numberLong": str(MOMENT_MS)}},
        "total_price": {"$numberDouble": "12.345"},
        "items": [
            {"product_name": "Latte", "product_quantity": {"$numberLong": "3"}},
            {"product_name": "Mocha", "product_quantity": {"$numberDecimal": "1"}},
        ],
    }
    assert parse_receipt(doc) == EXPECTED


# -- receipt_key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        3,
        3.0,
        Int64(3),
        Decimal("3"),
        Decimal("3.000"),
        Decimal128("3"),
        Decimal128("3.0"),
        Decimal128("0.3E1"),
        {"$numberInt": "3"},
        {"$numberLong": "3"},
        {"$numberDouble": "3.0"},
        {"$numberDecimal": "3.00"},
    ],
)
def test_numbers_equal_in_value_have_the_same_key(value: Any) -> None:
    assert receipt_key(value) == receipt_key(3) == "int:3"


@pytest.mark.parametrize(
    "value",
    [0.5, Decimal("0.50"), Decimal128("0.5"), {"$numberDouble": "0.5"}, {"$numberDecimal": "5E-1"}],
)
def test_fractional_numbers_equal_in_value_have_the_same_key(value: Any) -> None:
    assert receipt_key(value) == receipt_key(0.5)


@pytest.mark.parametrize(
    "value", [0, -0.0, 0.0, Decimal("-0"), Decimal128("-0"), {"$numberDouble": "-0.0"}]
)
def test_negative_zero_keys_as_zero(value: Any) -> None:
    assert receipt_key(value) == receipt_key(0) == "int:0"


@pytest.mark.parametrize("value", [ObjectId(OID_HEX), {"$oid": OID_HEX}, {"$oid": OID_HEX.upper()}])
def test_extended_json_object_id_keys_as_native_object_id(value: Any) -> None:
    assert receipt_key(value) == f"oid:{OID_HEX}"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("3", 3),
        ("3", {"$numberInt": "3"}),
        (True, 1),
        (False, 0),
        (3, 3.5),
        (3, 4),
        (OID_HEX, ObjectId(OID_HEX)),
        ({"$oid": OID_HEX}, OID_HEX),
        ("Receipt", "receipt"),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # embedded field order matters in MongoDB
        (None, "null"),
        (2**53 + 1, float(2**53)),
    ],
)
def test_different_ids_have_different_keys(a: Any, b: Any) -> None:
    assert receipt_key(a) != receipt_key(b)


def test_key_of_compound_id_is_stable_and_matches_its_extended_json() -> None:
    native = {"store": 3, "n": "A-17"}
    assert receipt_key(native) == receipt_key({"store": {"$numberInt": "3"}, "n": "A-17"})
    assert receipt_key(native) == receipt_key({"store": Int64(3), "n": "A-17"})
    assert receipt_key(native).startswith("doc:")
    assert receipt_key(native) != receipt_key({"store": 3, "n": "A-18"})


def test_key_of_nan_is_well_defined() -> None:
    assert receipt_key(float("nan")) == receipt_key({"$numberDouble": "NaN"})


def test_long_key_is_replaced_by_a_digest() -> None:
    long_a, long_b = "a" * 500, "a" * 499 + "b"
    key = receipt_key(long_a)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", key)
    assert receipt_key(long_a) == key
    assert receipt_key(long_b) != key


def test_key_at_the_byte_limit_is_kept_and_one_over_is_hashed() -> None:
    fits = "x" * (MAX_KEY_BYTES - len("str:"))
    assert receipt_key(fits) == f"str:{fits}"
    assert receipt_key(fits + "x").startswith("sha256:")


def test_key_limit_counts_utf8_bytes_not_characters() -> None:
    emoji = "🍩" * 60  # 60 characters, 240 bytes
    assert receipt_key(emoji).startswith("sha256:")


def test_key_of_string_with_lone_surrogate_does_not_crash() -> None:
    assert receipt_key("\ud800") == "str:\ud800"
    assert receipt_key("\ud800" * 100).startswith("sha256:")


# -- display_id ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (ObjectId(OID_HEX), OID_HEX),
        ("r-1", "r-1"),
        (42, "42"),
        (Int64(42), "42"),
        (42.0, "42.0"),
        (42.5, "42.5"),
        (Decimal("42.0"), "42.0"),
        ({"$numberInt": "42"}, "42"),
        ({"$numberLong": "42"}, "42"),
        ({"$numberDouble": "42.0"}, "42.0"),
        ({"$numberDecimal": "42.50"}, "42.50"),
        (True, "true"),
        (None, "null"),
        ({"store": 3}, '{"store": 3}'),
    ],
)
def test_display_id_is_short_and_readable(value: Any, text: str) -> None:
    assert display_id(value) == text


def test_display_id_cuts_long_ids() -> None:
    text = display_id("x" * 500)
    assert len(text) == 200
    assert text.endswith("...")


def test_display_id_of_compound_id_with_a_fraction_read_from_jsonl_is_json() -> None:
    event = decode_line(b'{"_id": {"store": 1, "n": 1.5}}', where="line 1")
    text = event.receipt_id  # type: ignore[union-attr]
    assert text == display_id({"store": 1, "n": Decimal("1.5")})
    assert "Decimal(" not in text
    assert json.loads(text, parse_float=Decimal) == {"store": 1, "n": Decimal("1.5")}


def test_display_id_escapes_lone_surrogates_so_it_can_be_encoded() -> None:
    text = display_id("a\ud800")
    assert text == "a\\ud800"
    text.encode("utf-8")


# -- properties ---------------------------------------------------------------------------------

# Integers are bounded to keep examples small; integral values past Python's int/str
# conversion limit (4300 digits) are added explicitly: as JSONL gives them (Decimal) and
# as Extended JSON text. (A huge Python int cannot be a hypothesis value: its repr raises.)
_ints = st.integers(min_value=-(2**70), max_value=2**70)
_huge_numbers = st.sampled_from([Decimal("1e5000"), Decimal("-1e5000"), Decimal("9" * 5000)])
_decimals = st.one_of(
    st.decimals(min_value=-(10**15), max_value=10**15, allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")]),
)
_timezones = st.builds(
    dt.timezone, st.timedeltas(min_value=dt.timedelta(hours=-23), max_value=dt.timedelta(hours=23))
)
# Aware datetimes whose UTC value is a representable datetime (as every BSON datetime is).
_aware_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=_timezones
)
_plain_keys = st.text(max_size=5).filter(lambda k: not k.startswith("$"))
_number_text = st.one_of(
    _ints.map(str),
    st.floats().map(repr),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "1e5000", "9" * 5000, "-0", "", "x"]),
    st.text(max_size=8),
)
_wrappers = st.one_of(
    st.builds(lambda s: {"$numberInt": s}, _number_text),
    st.builds(lambda s: {"$numberLong": s}, _number_text),
    st.builds(lambda s: {"$numberDouble": s}, _number_text),
    st.builds(lambda s: {"$numberDecimal": s}, _number_text),
    st.builds(lambda s: {"$date": s}, st.one_of(st.text(max_size=30), _ints)),
    st.builds(lambda s: {"$date": {"$numberLong": s}}, _number_text),
    st.builds(lambda s: {"$date": s.isoformat()}, _aware_datetimes),
    st.builds(lambda s: {"$oid": s}, st.text(max_size=30)),
    st.builds(lambda s: {"$unknown": s}, _ints),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    _huge_numbers,
    st.floats(),
    st.text(max_size=20),
    _decimals,
    st.builds(ObjectId),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.decimals(min_value=-(10**12), max_value=10**12, places=3).map(Decimal128),
    st.datetimes(),
    _aware_datetimes,
    _wrappers,
)
json_like = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(["product_name", "product_quantity"]), st.text(max_size=8)),
            children,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
_valid_names = st.text(min_size=1, max_size=20).filter(
    lambda s: s.strip() and "\x00" not in s and not any("\ud800" <= c <= "\udfff" for c in s)
)
_valid_items = st.lists(
    st.fixed_dictionaries({"product_name": _valid_names, "product_quantity": st.integers(1, 1000)}),
    max_size=5,
)
# Keyable `_id` values and arbitrary ones (unkeyable ones must raise InvalidReceipt("_id")).
_ids = st.one_of(
    _ints,
    st.text(max_size=30),
    st.builds(ObjectId),
    st.floats(),
    st.none(),
    st.dictionaries(_plain_keys, st.one_of(_ints, st.text(max_size=5)), max_size=3),
    _wrappers,
    json_like,
)
documents = st.fixed_dictionaries(
    {"_id": _ids},
    optional={
        "Store_ID": st.one_of(st.integers(0, MAX_INT32), json_like),
        "transactionDate": st.one_of(st.dates().map(dt.date.isoformat), json_like),
        "transactionTime": st.one_of(st.times().map(lambda t: t.strftime("%H:%M:%S")), json_like),
        "total_price": st.one_of(st.decimals(0, 10**6, places=3).map(str), json_like),
        "items": st.one_of(
            _valid_items,
            st.lists(
                st.one_of(
                    json_like,
                    st.fixed_dictionaries(
                        {"product_name": json_like, "product_quantity": json_like}
                    ),
                ),
                max_size=4,
            ),
            json_like,
        ),
        "extra": json_like,
    },
)

FIELD_RE = re.compile(
    r"document|_id|Store_ID|transactionDate|transactionTime|total_price|items"
    r"|items\[\d+\](\.product_name|\.product_quantity)?"
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_parse_receipt_returns_a_valid_receipt_or_raises_invalid_receipt(doc: Any) -> None:
    try:
        receipt = parse_receipt(doc)
    except InvalidReceipt as exc:
        assert FIELD_RE.fullmatch(exc.field), exc.field
        assert exc.reason.startswith(f"{exc.field}: ")
        return
    assert 0 <= receipt.store_id <= MAX_INT32
    assert 0 <= receipt.hour <= 23
    assert 0 <= receipt.cents <= 999_999_999_999
    assert list(receipt.items) == sorted(receipt.items)
    assert len({name for name, _ in receipt.items}) == len(receipt.items)
    for name, quantity in receipt.items:
        assert 1 <= len(name) <= 100
        assert name == name.strip()
        assert quantity >= 1


@settings(max_examples=200, deadline=None)
@given(json_like)
def test_parse_receipt_on_arbitrary_values_raises_only_invalid_receipt(value: Any) -> None:
    with contextlib.suppress(InvalidReceipt):
        parse_receipt(value)


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_receipt_key_returns_a_bounded_key_or_raises_invalid_receipt_for_id(value: Any) -> None:
    try:
        key = receipt_key(value)
    except InvalidReceipt as exc:
        assert exc.field == "_id"
        assert exc.reason.startswith("_id: cannot be read: ")
        return
    assert key == receipt_key(value)
    assert len(key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


def _half_up_cents(amount: Decimal) -> int:
    """Independent oracle: floor(x * 100 + 1/2) in exact rational arithmetic."""
    return math.floor(Fraction(amount) * 100 + Fraction(1, 2))


@given(st.decimals(min_value=0, max_value=MAX_TOTAL, allow_nan=False, allow_infinity=False))
def test_total_rounding_matches_decimal_quantize_half_up(amount: Decimal) -> None:
    expected = int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP).scaleb(2))
    assert expected == _half_up_cents(amount)
    assert parse_receipt(make_doc(total_price=amount)).cents == expected
    assert parse_receipt(make_doc(total_price=str(amount))).cents == expected
    _sign, digits, exponent = amount.as_tuple()
    if len(digits) <= 34 and -6176 <= int(exponent) <= 6111:
        assert parse_receipt(make_doc(total_price=Decimal128(amount))).cents == expected
        wrapper = {"$numberDecimal": str(amount)}
        assert parse_receipt(make_doc(total_price=wrapper)).cents == expected


@given(st.floats(min_value=0, max_value=9_999_999_999.99))
def test_float_total_rounds_half_up_on_its_shortest_decimal_form(value: float) -> None:
    expected = _half_up_cents(Decimal(repr(value)))
    assert parse_receipt(make_doc(total_price=value)).cents == expected
    assert parse_receipt(make_doc(total_price={"$numberDouble": repr(value)})).cents == expected


@given(st.integers(min_value=0, max_value=999_999_999_999), st.integers(0, 4))
def test_exact_cents_round_trip_through_text(cents: int, extra_zeros: int) -> None:
    text = f"{cents // 100}.{cents % 100:02d}" + "0" * extra_zeros
    receipt = parse_receipt(make_doc(total_price=text))
    assert receipt.cents == cents
    assert receipt.total == Decimal(text)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_ids_key_by_value_in_every_encoding(n: int) -> None:
    key = receipt_key(n)
    assert key == f"int:{n}"
    assert receipt_key(Int64(n)) == key
    assert receipt_key({"$numberLong": str(n)}) == key
    assert receipt_key(Decimal128(str(n))) == key
    assert receipt_key({"$numberDecimal": str(n)}) == key
    if abs(n) <= 2**53:
        assert receipt_key(float(n)) == key
        assert receipt_key({"$numberDouble": repr(float(n))}) == key
    if -(2**31) <= n < 2**31:
        assert receipt_key({"$numberInt": str(n)}) == key
    assert receipt_key(str(n)) != key


@given(st.text(max_size=300))
def test_string_ids_never_collide_with_other_strings(text: str) -> None:
    assume(text != "x")
    assert receipt_key(text) != receipt_key("x")
    assert len(receipt_key(text).encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES


@given(st.integers(min_value=0, max_value=MAX_INT32))
def test_store_id_accepts_every_int32_in_every_encoding(n: int) -> None:
    for value in (n, str(n), float(n), Int64(n), {"$numberLong": str(n)}, Decimal128(str(n))):
        assert parse_receipt(make_doc(Store_ID=value)).store_id == n


@given(st.dates())
def test_every_calendar_date_string_is_accepted(day: dt.date) -> None:
    assert parse_receipt(make_doc(transactionDate=day.isoformat())).day == day


@given(st.times(), st.booleans())
def test_every_clock_time_gives_its_hour(moment: dt.time, seconds: bool) -> None:
    text = moment.strftime("%H:%M:%S" if seconds else "%H:%M")
    assert parse_receipt(make_doc(transactionTime=text)).hour == moment.hour


@given(st.one_of(st.datetimes(), _aware_datetimes))
def test_datetime_dates_are_taken_in_utc(moment: dt.datetime) -> None:
    doc = without("transactionTime")
    doc["transactionDate"] = moment
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC)
    receipt = parse_receipt(doc)
    assert (receipt.day, receipt.hour) == (utc.date(), utc.hour)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Latte", "latte", "Mocha", "🍩", "Café"]), st.integers(1, 10**6)
        ),
        max_size=12,
    )
)
def test_items_merge_repeated_names_and_sum_quantities(pairs: list[tuple[str, int]]) -> None:
    receipt = parse_receipt(with_items(*(item(name, quantity) for name, quantity in pairs)))
    expected: Counter[str] = Counter()
    for name, quantity in pairs:
        expected[name] += quantity
    assert receipt.items == tuple(sorted(expected.items()))
    assert receipt.units == sum(q for _, q in pairs)


@given(st.text(min_size=1, max_size=110))
def test_name_is_accepted_exactly_when_its_stripped_form_is_valid(raw: str) -> None:
    name = raw.strip()
    valid = (
        1 <= len(name) <= 100
        and "\x00" not in name
        and not any("\ud800" <= c <= "\udfff" for c in name)
    )
    if valid:
        assert parse_receipt(with_items(item(raw))).items == ((name, 1),)
    else:
        assert rejection(with_items(item(raw))).field == "items[0].product_name"


# -- unkeyable, huge and compound values ----------------------------------------------------


@pytest.mark.parametrize(
    ("bad_id", "detail"),
    [
        ({"$oid": "zz"}, "not a valid ObjectId"),  # bson.errors.InvalidId
        ({"$oid": "65e1f0a0"}, "not a valid ObjectId"),  # too short
        ({"$oid": None}, "$oid"),  # would be ObjectId(None): a new random id each time
        ({"$oid": 42}, "$oid"),
        ({"$numberLong": "x"}, "invalid literal"),  # ValueError from json_util
        ({"n": {"$oid": "zz"}}, "not a valid ObjectId"),  # inside a compound _id
        # past Python's str-conversion limit
        pytest.param(10**5000, "integer string conversion", id="int-5001-digits"),
    ],
)
def test_unkeyable_id_is_rejected_as_invalid_receipt(bad_id: Any, detail: str) -> None:
    exc = assert_rejected(make_doc(_id=bad_id), "_id", "_id: cannot be read: ")
    assert exc.reason.startswith("_id: cannot be read: ")
    assert detail in exc.problem
    with pytest.raises(InvalidReceipt) as info:
        receipt_key(bad_id)
    assert info.value.field == "_id"
    assert info.value.reason == exc.reason


def test_receipt_key_of_unrecognised_dollar_object_does_not_recurse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    nativize = receipt_values._nativize  # receipt_ids calls it by this name

    def counting_nativize(value: Any) -> Any:
        nonlocal calls
        calls += 1
        return nativize(value)

    monkeypatch.setattr(receipt_ids, "_nativize", counting_nativize)
    key = receipt_key({"$unknown": 1})
    assert calls <= 3, f"_nativize called {calls} times"
    assert key.startswith("doc:")
    assert receipt_key({"$unknown": 1}) == key
    assert receipt_key({"$unknown": 2}) != key


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b'"Store_ID": 1e5000', "Store_ID"),
        (b'"Store_ID": -1e5000', "Store_ID"),
        (b'"Store_ID": "' + b"9" * 5000 + b'"', "Store_ID"),
        (
            b'"items": [{"product_name": "Latte", "product_quantity": 1e5000}]',
            "items[0].product_quantity",
        ),
    ],
)
def test_huge_integral_values_are_rejected_as_invalid_receipt(line: bytes, field: str) -> None:
    base = (
        b'{"_id": 1, "Store_ID": 3, "transactionDate": "2024-03-01", "transactionTime": "07:30",'
        b' "total_price": 1, "items": [], '
    )
    event = decode_line(base + line + b"}", where="line 1")
    exc = rejection(event.doc)  # type: ignore[union-attr]
    assert exc.field == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("Store_ID", 10**5000, id="store-int"),
        pytest.param("Store_ID", -(10**5000), id="store-negative-int"),
        pytest.param("Store_ID", Decimal("1e5000"), id="store-decimal"),
        pytest.param("items", [item("Latte", 10**5000)], id="quantity-int"),
        pytest.param("items", [item("Latte", Decimal("1e5000"))], id="quantity-decimal"),
    ],
)
def test_huge_native_integers_are_rejected_as_invalid_receipt(field: str, value: Any) -> None:
    exc = rejection(make_doc(**{field: value}))
    assert exc.field == ("Store_ID" if field == "Store_ID" else "items[0].product_quantity")


@pytest.mark.parametrize(
    "value",
    [
        {"a": Int64(1)},
        {"a": {"$numberLong": "1"}},
        {"a": {"$numberInt": "1"}},
        {"a": 1.0},
        {"a": {"$numberDouble": "1.0"}},
        {"a": Decimal("1.00")},
        {"a": Decimal128("1")},
        {"a": {"$numberDecimal": "1.0"}},
    ],
)
def test_compound_ids_with_equal_numbers_have_the_same_key(value: Any) -> None:
    assert receipt_key(value) == receipt_key({"a": 1})
    assert receipt_key(value).startswith("doc:")
    assert receipt_key({"store": Int64(1), "n": 2}) == receipt_key({"store": 1, "n": 2.0})


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {"a": "1"}),
        ({"a": 1}, {"a": True}),
        ({"a": 1.5}, {"a": 1}),
        ({"a": [1, 2]}, {"a": [2, 1]}),
        ({"a": 1}, {"b": 1}),
    ],
)
def test_compound_ids_with_different_values_have_different_keys(a: Any, b: Any) -> None:
    assert receipt_key(a) != receipt_key(b)


def test_compound_id_with_a_fraction_read_from_jsonl_keys_by_value() -> None:
    # JSONL numbers with a fraction are read as Decimal: same key as the float or Decimal128.
    key = receipt_key({"n": Decimal("1.5")})
    assert key.startswith("doc:")
    assert key == receipt_key({"n": 1.5}) == receipt_key({"n": Decimal128("1.50")})
    assert key != receipt_key({"n": Decimal("2.5")})
    assert parse_receipt(make_doc(_id={"n": Decimal("1.5")})).key == key


_ITEM_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=2**31 + 3),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.sampled_from(
        [
            "Latte",
            " Latte ",
            "",
            " ",
            "Café",
            "Cafe\u0301",
            "x" * 100,
            "x" * 101,
            "a\x00b",
            "\udc80",
            "\u00a0Tea\u00a0",
            "\t",
            2**31 - 1,
            2**31,
            Decimal("2"),
            Decimal("2.5"),
        ]
    ),
)


_NAMES = st.one_of(
    st.sampled_from(
        ["Latte", " Tea ", "", "x" * 100, "x" * 101, " " + "x" * 100, "a\x00b", "Café"]
    ),
    st.text(st.characters(max_codepoint=127), max_size=4),
    st.text(max_size=4),
    _ITEM_VALUES,
)
_QUANTITIES = st.one_of(
    st.sampled_from([0, -1, 1, 2, 2**31 - 1, 2**31, True, 1.0, 2.5, Decimal("3"), "2"]),
    _ITEM_VALUES,
)


@given(
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"product_name": _NAMES, "product_quantity": _QUANTITIES}),
            st.dictionaries(
                st.sampled_from(["product_name", "product_quantity", "other"]),
                _ITEM_VALUES,
                max_size=3,
            ),
            _ITEM_VALUES,
        ),
        max_size=4,
    )
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_the_usual_items_checked_inline_follow_the_same_rules_as_any_item(items: list) -> None:
    """`_parse_items` checks the usual item (ASCII name, int quantity) inline: for any list,
    it returns or refuses exactly as the full per-item rules (`_parse_item`) do."""
    from coffeeshop.core.receipt_rules import _parse_item, _parse_items

    def reference() -> tuple[tuple[str, int], ...]:
        totals: dict[str, int] = {}
        for index, item in enumerate(items):
            name, quantity = _parse_item(index, item)
            totals[name] = totals.get(name, 0) + quantity
        return tuple(sorted(totals.items()))

    try:
        expected: Any = reference()
    except InvalidReceipt as exc:
        expected = exc.reason
    try:
        got: Any = _parse_items(items)
    except InvalidReceipt as exc:
        got = exc.reason
    assert got == expected


_EDGE_NAMES: list[Any] = [
    "Latte",
    " Tea ",
    "",
    " ",
    "x" * 100,
    "x" * 101,
    " " + "x" * 100 + " ",
    "a\x00b",
]
_EDGE_NAMES += ["Café", "Cafe\u0301", "\u00a0Tea\u00a0", "\udc80", 5, None]
_EDGE_QUANTITIES = [0, -1, 1, 2**31 - 1, 2**31, True, 1.0, 2.5, Decimal("3"), "2", None]


@pytest.mark.parametrize("name", _EDGE_NAMES)
def test_each_edge_item_is_read_inline_as_the_full_rules_read_it(name: Any) -> None:
    from coffeeshop.core.receipt_rules import _parse_item, _parse_items

    for quantity in _EDGE_QUANTITIES:
        item = {"product_name": name, "product_quantity": quantity}
        try:
            expected: Any = (_parse_item(0, item),)
        except InvalidReceipt as exc:
            expected = exc.reason
        try:
            got: Any = _parse_items([item])
        except InvalidReceipt as exc:
            got = exc.reason
        assert got == expected, item
