"""Fuzz the parser layer: `decode_line` + `parse_events` on arbitrary lines.

Properties:

- Any line (arbitrary bytes, mutated valid receipts, or arbitrary JSON-ish text with
  Extended JSON `$`-keys, Unicode, lone surrogates, duplicate keys, NaN/Infinity and huge or
  tiny numbers) gives, without raising, either nothing (a blank line) or one event that is a
  valid `Parsed` receipt, an invalid `Parsed` / `Unreadable` with a non-empty reason naming
  the field or the problem, a `Delete` or a `Skip`. Every text bound for the database is
  valid UTF-8 and fits its column, a valid receipt satisfies every validation rule, the same
  line always gives the same outcome, and the outcome survives the read-ahead process's
  pack/pickle/unpack unchanged.
- Any valid receipt document (native BSON values as PyMongo returns them), written as a JSONL
  line the way `mongoexport` does (relaxed or canonical Extended JSON, ASCII-escaped or raw
  UTF-8, LF or CRLF) and read back through `JsonlSource`, gives exactly the `Receipt` that
  `parse_receipt` gives for the document itself.

By default each test runs a few hundred examples (about 15 s in all). For a long run set
COFFEESHOP_FUZZ_EXAMPLES, the number of examples per test:

    COFFEESHOP_FUZZ_EXAMPLES=100000 .venv/bin/pytest tests/test_fuzz.py

Numbers are generated with at most 3-digit exponents and 40-digit mantissas, to keep examples
small; huge exponents have their own stall tests in test_hostile_input.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pickle
import re
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128, Int64, ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffeeshop.core.events import Delete, Skip, Unreadable, Upsert
from coffeeshop.core.plan import Parsed, ParsedEvent, parse_events
from coffeeshop.core.receipts import (
    MAX_NAME_LENGTH,
    MAX_QUANTITY,
    MAX_STORE_ID,
    MAX_TOTAL,
    Receipt,
    parse_receipt,
    receipt_key,
)
from coffeeshop.pipeline.readahead import pack, unpack
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource, decode_line

EXAMPLES = int(os.environ.get("COFFEESHOP_FUZZ_EXAMPLES", "0"))
WHERE = "line 7 (byte 1234)"


def fuzz_settings(default: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,  # stalls are the job of test_hostile_input; inputs here stay bounded
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# -- the invariants every outcome must satisfy ----------------------------------------------------

FIELD = (
    r"(_id|Store_ID|transactionDate|transactionTime|total_price"
    r"|items(\[\d+\](\.product_(name|quantity))?)?|document)"
)
INVALID_REASON = re.compile(rf"^{FIELD}: \S")
UNREADABLE_REASON = re.compile(
    r"^(not valid UTF-8: byte 0x[0-9a-f]{2} at column \d+"
    r"|invalid JSON: \S"
    r"|line is \d+ bytes long"
    r"|expected a JSON object, got (an array|a string|a number|null|a boolean)$"
    r"|document has no _id$"
    r"|(documentKey\.)?_id: cannot be read: "
    r"|unsupported change event operationType "
    r"|delete event has no documentKey\._id$"
    r"|(insert|replace|update) event has no (fullDocument|_id)"
    r")"
)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def outcome(line: bytes) -> list[ParsedEvent] | None:
    """What the pipeline makes of one line, checked against every invariant."""
    event = decode_line(line, where=WHERE)
    blank = not (line[:-1] if line.endswith(b"\r") else line).strip()
    if event is None:
        assert blank, line
        return None
    assert not blank, line
    assert event.where == WHERE
    if isinstance(event, Upsert):
        check_key(event.key, event.receipt_id)
    parsed = parse_events([event])
    assert len(parsed) == 1
    check_event(parsed[0])
    return parsed


def check_key(key: str, receipt_id: str) -> None:
    assert key and isinstance(key, str)
    assert len(key.encode("utf-8", "surrogatepass")) <= 255  # VARBINARY(255)
    assert isinstance(receipt_id, str) and len(receipt_id) <= 255 and encodable(receipt_id)


def check_event(event: ParsedEvent) -> None:
    assert event.where == WHERE
    if isinstance(event, Parsed):
        check_key(event.key, event.receipt_id)
        if event.receipt is None:
            assert isinstance(event.reason, str) and event.reason
            assert INVALID_REASON.match(event.reason), event.reason
            assert encodable(event.reason) and encodable(event.raw)
        else:
            assert event.reason is None
            check_receipt(event.receipt, event.key)
    elif isinstance(event, Unreadable):
        assert isinstance(event.reason, str) and event.reason
        assert UNREADABLE_REASON.match(event.reason), event.reason
        assert encodable(event.reason) and encodable(event.raw)
    elif isinstance(event, Delete):
        check_key(event.key, event.receipt_id)
    else:
        assert isinstance(event, Skip) and event.note


def check_receipt(receipt: Receipt, key: str) -> None:
    assert receipt.key == key
    assert 0 <= receipt.store_id <= MAX_STORE_ID
    assert 0 <= receipt.hour <= 23
    assert isinstance(receipt.day, dt.date)
    assert 0 <= receipt.cents <= int(MAX_TOTAL * 100)
    names = [name for name, _ in receipt.items]
    assert names == sorted(set(names))
    for name, quantity in receipt.items:
        assert 1 <= len(name) <= MAX_NAME_LENGTH and name == name.strip()
        assert "\x00" not in name and encodable(name)
        assert 1 <= quantity <= MAX_QUANTITY


def check_line(line: bytes) -> None:
    first = outcome(line)
    assert outcome(line) == first, "the same line must give the same outcome"
    if first is not None:
        carried = unpack(pickle.loads(pickle.dumps(pack(first))))
        assert carried == first, "the read-ahead process must carry the outcome unchanged"


# -- strategies: lines of bytes -------------------------------------------------------------------

VALID = (
    b'{"_id": {"$oid": "6650c7e2a1b2c3d4e5f60718"}, "Store_ID": 3, '
    b'"transactionDate": "2026-11-20", "transactionTime": "08:15:42", "total_price": 12.5, '
    b'"items": [{"product_name": "Latte", "product_quantity": 2, "product_price": 4.2}]}'
)
INTERESTING = [
    b"\x00",
    b"\xff",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\r",
    b"\\",
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"$",
    b"-",
    b"0",
    b"1e999",
    b"NaN",
    b"\\u0000",
    b"\\ud800",
    b"\xf0\x9f\xa5\x90",
    b"\xe2\x80\xa8",
    b"\xc2\xa0",
    b" ",
    b"null",
    b"true",
]
no_newline = st.binary(max_size=400).map(lambda b: b.replace(b"\n", b""))


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    """A valid receipt line with a few bytes inserted, deleted or replaced."""
    data = bytearray(VALID)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(st.sampled_from(INTERESTING), st.binary(min_size=1, max_size=4)))
        piece = piece.replace(b"\n", b"")
        if action == "insert":
            data[at:at] = piece
        elif action == "delete":
            del data[at : at + len(piece)]
        else:
            data[at : at + len(piece)] = piece
    return bytes(data)


# -- strategies: JSON-ish documents, rendered with full control of the text ------------------------
# A value is a Python scalar, ("raw", token) for a number token written as is, ("arr", [...])
# or ("obj", [(key, value), ...]) — a list of pairs, so keys can repeat.

number_tokens = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,39})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "-0.0", "1e400", "1e-400", "2.675"]),
    st.sampled_from(["9999999999.99", "9999999999.995", "2147483647", "2147483648", "1e2"]),
)
texts = st.one_of(
    st.text(max_size=12),  # includes lone surrogates
    st.sampled_from(["", " ", "Latte", " Latte ", "\u200b", "e\u0301", "🥐", "\ud800", "3"]),
    st.sampled_from(["2026-11-20", "2024-02-29", "2023-02-29", "08:15", "24:00", "7:05"]),
    st.sampled_from(["6650c7e2a1b2c3d4e5f60718", "12.50", " 12.50", "12,50", "abc", "1.5"]),
    st.text(min_size=95, max_size=110, alphabet="ab☕"),
)
scalars = st.one_of(st.none(), st.booleans(), texts, number_tokens.map(lambda t: ("raw", t)))
EXT_KEYS = [
    "$oid",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$date",
    "$binary",
    "$uuid",
    "$regularExpression",
    "$timestamp",
    "$minKey",
    "$maxKey",
    "$code",
    "$scope",
    "$symbol",
    "$undefined",
    "$dbPointer",
    "$ref",
    "$id",
    "$db",
    "$regex",
    "$options",
    "base64",
    "subType",
    "pattern",
    "options",
    "t",
    "i",
]
FIELDS = [
    "_id",
    "Store_ID",
    "transactionDate",
    "transactionTime",
    "total_price",
    "items",
    "product_name",
    "product_quantity",
    "operationType",
    "fullDocument",
    "documentKey",
]
keys = st.one_of(st.sampled_from(EXT_KEYS), st.sampled_from(FIELDS), st.text(max_size=6))


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda v: ("arr", v)),
        st.lists(st.tuples(keys, children), max_size=4).map(lambda v: ("obj", v)),
        st.tuples(st.sampled_from(EXT_KEYS), children).map(lambda kv: ("obj", [kv])),
    )


values = st.recursive(scalars, _extend, max_leaves=12)
OPERATIONS = ["insert", "replace", "update", "delete", "drop", "invalidate", "Insert"]


def _raw(*tokens: str) -> list[Any]:
    return [("raw", t) for t in tokens]


# Per field: valid but unusual forms (the first is the plain one), mixed with arbitrary values.
ODD_FORMS: dict[str, list[Any]] = {
    "_id": [
        *_raw("901", "901.0", '{"$numberLong": "901"}', '{"$numberDecimal": "9.01E+2"}'),
        *_raw('{"$oid": "6650c7e2a1b2c3d4e5f60718"}', '{"$date": "2026-11-20T08:00:00Z"}'),
        *_raw('{"$binary": {"base64": "AAEC", "subType": "00"}}', "[1, 2]", '{"a": null}'),
        "r-901",
        "",
        None,
    ],
    "Store_ID": [*_raw("7", "7.0", "1e1", "-0", '{"$numberInt": "7"}', "2147483647"), "07"],
    "transactionDate": [
        "2026-11-20",
        "2024-02-29",
        *_raw('{"$date": "2026-11-20T23:30:00-05:00"}', '{"$date": {"$numberLong": "0"}}'),
    ],
    "transactionTime": ["08:15:42", "00:00", "23:59", "23:59:59"],
    "total_price": [
        *_raw("12.50", "0", "-0.0", "12.345", "0.005", "1e-400", "9999999999.99"),
        *_raw('{"$numberDecimal": "12.345"}', '{"$numberDouble": "2.5"}'),
        "12.5",
        ".5",
    ],
    "items": [
        ("arr", [("obj", [("product_name", "Latte"), ("product_quantity", ("raw", "1"))])]),
        ("arr", []),
        (
            "arr",
            [
                ("obj", [("product_name", " 🥐 "), ("product_quantity", ("raw", "2.0"))]),
                ("obj", [("product_name", "e\u0301"), ("product_quantity", ("raw", "1e1"))]),
            ],
        ),
    ],
}


@st.composite
def field_values(draw: st.DrawFn, name: str) -> Any:
    roll = draw(st.integers(0, 9))
    if roll < 6:
        return ODD_FORMS[name][0]
    if roll < 8:
        return draw(st.sampled_from(ODD_FORMS[name]))
    return draw(values)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Mostly receipt- or change-shaped objects, each field possibly odd, wrong or missing."""
    shape = draw(st.sampled_from(["receipt", "receipt", "receipt", "change", "any"]))
    if shape == "any":
        return draw(values)
    pairs = [(name, draw(field_values(name))) for name in ODD_FORMS if draw(st.integers(0, 19))]
    if draw(st.booleans()):
        pairs.insert(draw(st.integers(0, len(pairs))), (draw(keys), draw(values)))  # extra/dup
    if shape == "receipt":
        return ("obj", pairs)
    operation = draw(
        st.one_of(st.sampled_from(OPERATIONS), values)
        if draw(st.integers(0, 3)) == 0
        else st.sampled_from(OPERATIONS[:4])
    )
    change: list[tuple[str, Any]] = [
        ("operationType", operation),
        ("documentKey", draw(st.one_of(st.just(("obj", [("_id", ("raw", "901"))])), values))),
        ("fullDocument", draw(st.one_of(st.just(("obj", pairs)), st.none(), values))),
    ]
    return ("obj", [kv for kv in change if draw(st.integers(0, 5))])


def render(value: Any, ascii_only: bool) -> str:
    if isinstance(value, tuple):
        kind, body = value
        if kind == "raw":
            return body
        if kind == "arr":
            return "[" + ", ".join(render(v, ascii_only) for v in body) + "]"
        return (
            "{"
            + ", ".join(
                json.dumps(k, ensure_ascii=ascii_only) + ": " + render(v, ascii_only)
                for k, v in body
            )
            + "}"
        )
    return json.dumps(value, ensure_ascii=ascii_only)  # str, bool, None


@st.composite
def json_lines(draw: st.DrawFn) -> bytes:
    """JSON text of a document: non-ASCII escaped (lone surrogates as \\udxxx escapes) or raw
    UTF-8 (lone surrogates then become invalid CESU-8 bytes), with an optional CR."""
    text = render(draw(documents()), ascii_only=draw(st.booleans()))
    data = text.encode("utf-8", "surrogatepass")
    return data + (b"\r" if draw(st.booleans()) else b"")


# -- the parser never fails -----------------------------------------------------------------------


@fuzz_settings(1500)
@given(no_newline)
def test_arbitrary_bytes_never_raise(line: bytes) -> None:
    check_line(line)


@fuzz_settings(1500)
@given(mutated_lines())
def test_mutated_receipt_lines_never_raise(line: bytes) -> None:
    check_line(line)


@fuzz_settings(1500)
@given(json_lines())
def test_arbitrary_json_documents_never_raise(line: bytes) -> None:
    check_line(line)


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 100_000,
        b'{"_id": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"_id": 1, "items": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}",
        pytest.param(
            b'{"_id": "' + b"\\ud800" * 50 + b'", "Store_ID": -1}',
            id="id-50-lone-surrogates",
        ),
        b'{"_id": {"$date": {"$numberLong": "99999999999999999999"}}}',
        b'{"_id": {"$timestamp": {"t": -1, "i": 2}}}',
        b'{"_id": {"$binary": {"base64": "%%%", "subType": "zz"}}}',
        b'{"_id": {"$regularExpression": {"pattern": "(", "options": "\\ud800"}}}',
        b'{"operationType": "delete", "documentKey": {"_id": {"$oid": 1}}}',
        b'{"operationType": {"$oid": "6650c7e2a1b2c3d4e5f60718"}}',
    ],
    ids=lambda b: b[:30].decode("utf-8", "replace"),
)
def test_known_nasty_lines_never_raise(line: bytes) -> None:
    check_line(line)


# -- a valid document, written and read back, is the same receipt ---------------------------------

NAME_CHARS = st.characters(codec="utf-8", exclude_characters="\x00")
names = st.text(NAME_CHARS, min_size=1, max_size=MAX_NAME_LENGTH).filter(
    lambda s: 1 <= len(s.strip()) <= MAX_NAME_LENGTH
)
millis = st.integers(min_value=-(2**41), max_value=253402300799999)  # years 1900..9999


def bson_datetime(ms: int, aware: bool) -> dt.datetime:
    value = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    return value if aware else value.replace(tzinfo=None)


datetimes = st.builds(bson_datetime, millis, st.booleans())
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
ids = st.one_of(
    st.binary(min_size=12, max_size=12).map(ObjectId),
    st.text(NAME_CHARS, max_size=300),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    finite_floats,
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: Decimal128(str(d))),
    datetimes,
    st.binary(max_size=20),
    st.none(),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "store"]), st.integers(0, 9), max_size=2),
)
store_ids = st.one_of(
    st.integers(min_value=0, max_value=MAX_STORE_ID),
    st.integers(min_value=0, max_value=MAX_STORE_ID).map(Int64),
    st.integers(min_value=0, max_value=2**24).map(float),
    st.integers(min_value=0, max_value=MAX_STORE_ID).map(str),
    st.integers(min_value=0, max_value=MAX_STORE_ID).map(lambda n: Decimal128(str(n))),
)
money = st.decimals(min_value=0, max_value=MAX_TOTAL, places=4, allow_nan=False)
totals = st.one_of(
    money.map(lambda d: Decimal128(str(d))),
    money.map(str),
    st.integers(min_value=0, max_value=9_999_999_999),
    st.floats(min_value=0, max_value=1e9, allow_nan=False).map(lambda f: round(f, 2)),
)
quantities = st.one_of(
    st.integers(min_value=1, max_value=MAX_QUANTITY),
    st.integers(min_value=1, max_value=MAX_QUANTITY).map(Int64),
    st.integers(min_value=1, max_value=2**24).map(float),
)
times = st.builds(
    lambda h, m, s: f"{h:02d}:{m:02d}" + ("" if s is None else f":{s:02d}"),
    st.integers(0, 23),
    st.integers(0, 59),
    st.none() | st.integers(0, 59),
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": draw(ids), "Store_ID": draw(store_ids)}
    if draw(st.booleans()):
        doc["transactionDate"] = draw(st.dates(dt.date(1900, 1, 1))).isoformat()
        doc["transactionTime"] = draw(times)
    else:
        doc["transactionDate"] = draw(datetimes)
        if draw(st.booleans()):
            doc["transactionTime"] = draw(times)
    doc["total_price"] = draw(totals)
    doc["items"] = [
        {"product_name": name, "product_quantity": qty, "product_price": draw(finite_floats)}
        for name, qty in draw(st.lists(st.tuples(names, quantities), max_size=5))
    ]
    return doc


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "line.jsonl"


def read_back(path: Path) -> list[ParsedEvent]:
    source = JsonlSource(path)
    source.open(None)
    try:
        events = [
            event
            for batch in source.batches(BatchLimits(), follow=False, stop=threading.Event())
            for event in batch.events
        ]
    finally:
        source.close()
    return parse_events(events)


@fuzz_settings(300)
@given(
    valid_documents(),
    st.sampled_from([RELAXED_JSON_OPTIONS, CANONICAL_JSON_OPTIONS]),
    st.booleans(),
    st.sampled_from([b"\n", b"\r\n", b""]),
)
def test_a_valid_document_read_back_from_a_file_is_the_same_receipt(
    scratch: Path, doc: dict[str, Any], options: Any, ascii_only: bool, eol: bytes
) -> None:
    expected = parse_receipt(doc)  # the document is valid by construction
    line = json_util.dumps(doc, json_options=options, ensure_ascii=ascii_only).encode("utf-8")
    with open(scratch, "wb") as f:
        f.write(line + eol)  # no line end: the last line, applied by --once as complete JSON
    [event] = read_back(scratch)
    assert isinstance(event, Parsed), event
    assert event.reason is None, (event.reason, line[:300])
    assert event.receipt == expected
    assert event.key == receipt_key(doc["_id"])


def test_round_trip_strategies_really_make_valid_documents() -> None:
    """A sanity check of the generator above: one fixed draw parses (a base64 id included)."""
    doc = {
        "_id": base64.b64decode("AAEC"),
        "Store_ID": "7",
        "transactionDate": "2026-11-20",
        "transactionTime": "08:15",
        "total_price": Decimal128("12.345"),
        "items": [{"product_name": " 🥐 ", "product_quantity": 2.0}],
    }
    assert parse_receipt(doc).cents == 1235
    assert parse_receipt(doc).items == (("🥐", 2),)
    assert Decimal(parse_receipt(doc).total) == Decimal("12.35")
