"""Every decoder the pipeline has is total: any input gives events, never an exception.

The decoders, each fed the same hostile input (issue 18.1):

- the file reader (`JsonlSource.batches`, which frames lines and calls `decode_line`), its
  validation (`parse_events`) and the read-ahead process's transport (`pack`/`unpack`);
- the partitioned reader of `sync --backfill-workers` / `reconcile --workers` (`plan_file` +
  `read_range`), which must agree with the file reader line for line;
- the read-ahead process itself (`read_ahead`: a forked reader, its pipe, the parent);
- the MongoDB document path: documents as PyMongo hands them over (dicts of native BSON values)
  through `event_from_object` and `parse_events`, as the change stream, the polling fallback,
  the snapshot and the partitioned collection reader call them.

Inputs: arbitrary bytes; JSON with extreme numbers (exponents of up to 25 digits: far outside
`Decimal`'s ±999999999999999999, integers over Python's 4,300-digit limit), nesting thousands
deep, characters of every Unicode plane and lone surrogates (escaped, and as raw CESU-8 bytes);
documents of every BSON type with extreme values. The outcome of each line or document is one
event: a valid receipt, or a quarantine outcome (an invalid receipt or unreadable input with a
reason), a delete or a skip.

More examples: COFFEESHOP_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_decoders_total.py
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import (
    Binary,
    Code,
    DatetimeMS,
    DBRef,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    Timestamp,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz import (
    INVALID_REASON,
    UNREADABLE_REASON,
    check_receipt,
    encodable,
    render,  # the same JSON rendering of a drawn tree (raw numbers kept as written)
)

from coffeeshop.core.events import Delete, Skip, Unreadable, event_from_object
from coffeeshop.core.plan import Parsed, ParsedEvent, parse_events
from coffeeshop.pipeline.readahead import pack, read_ahead, read_inline, unpack
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.sources.partitions import plan_file, read_range

EXAMPLES = int(os.environ.get("COFFEESHOP_FUZZ_EXAMPLES", "0"))


def examples(default: int) -> Any:
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


# -- the outcome every decoder must give -----------------------------------------------------------


def check_outcome(event: ParsedEvent) -> str:
    """One event, checked: a valid receipt or a quarantine outcome with a reason (or a delete
    or skip); returns its kind."""
    if isinstance(event, Parsed):
        assert isinstance(event.key, str) and event.key
        if event.receipt is not None:
            check_receipt(event.receipt, event.key)
            return "valid"
        assert isinstance(event.reason, str) and INVALID_REASON.match(event.reason), event.reason
        assert encodable(event.reason) and encodable(event.raw)
        return "invalid"
    if isinstance(event, Unreadable):
        assert UNREADABLE_REASON.match(event.reason), event.reason
        assert encodable(event.reason) and encodable(event.raw)
        return "unreadable"
    if isinstance(event, Delete):
        assert event.key
        return "delete"
    assert isinstance(event, Skip) and event.note
    return "skip"


def outcome_of(event: ParsedEvent) -> tuple[Any, ...]:
    """What a decoder made of a line, apart from where it says it was."""
    if isinstance(event, Parsed):
        return ("parsed", event.key, event.receipt_id, event.receipt, event.reason, event.raw)
    if isinstance(event, Unreadable):
        return ("unreadable", event.reason, event.raw)
    if isinstance(event, Delete):
        return ("delete", event.key, event.receipt_id)
    return ("skip", event.note)


# -- strategies: hostile JSON text ----------------------------------------------------------------

ISSUE_NUMBERS = [
    "1e9999999999999999999",
    "1e-99999999999999999999",
    "1E+1000000000000000000",
    "-1e-99999999999999999999",
    "0e99999999999999999999",
    "1e999999999999999999",  # the largest exponent an exact decimal takes
    "1e-999999999999999999",
    "1e1000000000000000000",  # one past it
    "9" * 4301,  # an integer past Python's digit limit
    "NaN",
    "-Infinity",
    "-0.0",
    "1e400",
]
numbers = st.one_of(
    st.sampled_from(ISSUE_NUMBERS),
    st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,25})?", fullmatch=True),
)
# A character of any of the 17 planes (unassigned and private-use ones included), or a lone
# surrogate.
any_plane = st.integers(0, 16).flatmap(
    lambda plane: st.integers(plane << 16, (plane << 16) | 0xFFFF)
)
characters = st.one_of(
    any_plane.map(chr),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.characters(),
)
texts = st.one_of(
    st.text(characters, max_size=10),
    st.sampled_from(["Latte", "Café Crème", "Cafe\u0301 Cre\u0300me", "2026-12-01", "08:00"]),
)
FIELDS = ["_id", "Store_ID", "transactionDate", "transactionTime", "total_price", "items"]
keys = st.one_of(
    st.sampled_from([*FIELDS, "product_name", "product_quantity", "product_price", "$oid"]),
    st.sampled_from(["$numberDecimal", "$numberDouble", "$numberLong", "$date", "operationType"]),
    texts,
)
scalars = st.one_of(st.none(), st.booleans(), texts, numbers.map(lambda t: ("raw", t)))


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda v: ("arr", v)),
        st.lists(st.tuples(keys, children), max_size=4).map(lambda v: ("obj", v)),
    )


values = st.recursive(scalars, _containers, max_leaves=10)


@st.composite
def receipt_like(draw: st.DrawFn) -> Any:
    """A receipt whose fields are mostly right, one or more replaced by a hostile value (an
    extreme number in a field validation ignores, too), maybe inside a change event."""
    pairs: list[tuple[str, Any]] = [
        ("_id", draw(st.one_of(st.just("r1"), values))),
        ("Store_ID", ("raw", "3")),
        ("transactionDate", "2026-12-01"),
        ("transactionTime", "08:00"),
        ("total_price", ("raw", "10")),
        (
            "items",
            ("arr", [("obj", [("product_name", "Latte"), ("product_quantity", ("raw", "1"))])]),
        ),
    ]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(pairs)))
        pairs.insert(at, (draw(keys), draw(st.one_of(numbers.map(lambda t: ("raw", t)), values))))
    document = ("obj", pairs)
    if draw(st.booleans()):
        return document
    operation = draw(st.sampled_from(["insert", "replace", "update", "delete"]))
    return (
        "obj",
        [
            ("operationType", operation),
            ("documentKey", ("obj", [("_id", draw(st.one_of(st.just("r1"), values)))])),
            ("fullDocument", document),
        ],
    )


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested up to 5,000 deep, in arrays or objects, around an extreme number."""
    depth = draw(st.integers(1, 5000))
    inner = draw(numbers)
    opener, closer = draw(
        st.sampled_from([("[", "]"), ('{"a": ', "}"), ('{"$numberDecimal": ', "}")])
    )
    return ("raw", opener * depth + inner + closer * depth)


@st.composite
def json_lines(draw: st.DrawFn) -> bytes:
    value = draw(st.one_of(receipt_like(), values, deep(), receipt_like()))
    text = render(value, ascii_only=draw(st.booleans()))
    # Raw UTF-8; a lone surrogate then becomes CESU-8 bytes (invalid UTF-8).
    return text.encode("utf-8", "surrogatepass").replace(b"\n", b"\\n")


lines = st.one_of(
    json_lines(),
    json_lines(),
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
)


# -- the file decoders ----------------------------------------------------------------------------


def read_file(path: Path) -> list[ParsedEvent]:
    """The file reader, as `sync --once` and `reconcile` read: every batch, validated."""
    source = JsonlSource(path)
    source.open(None)
    try:
        limits = BatchLimits(max_events=7)
        return [
            event
            for batch in read_inline(source, limits, follow=False, stop=threading.Event())
            for event in batch.events
        ]
    finally:
        source.close()


def read_partitions(path: Path, parts: int) -> list[tuple[Any, ...]]:
    """The partitioned reader: every range's outcomes (valid and invalid receipts folded by
    key, unreadable input as it came)."""
    found: list[tuple[Any, ...]] = []
    ranges = plan_file(path, parts)
    for part in ranges:
        output = read_range(part, 2)
        for shard in output.shards:
            for candidate in shard.values():
                found.append(("candidate", candidate))
        for unkeyed in output.unkeyed:
            found.append(("unkeyed", unkeyed))
    return found


def blank(number: int, line: bytes, crlf: bool) -> bool:
    """Whether a line is blank as the README says: after one CR before its newline, and a
    byte-order mark at the start of the file."""
    data = line + b"\r" if crlf else line
    data = data.removesuffix(b"\r")
    if number == 0:
        data = data.removeprefix(b"\xef\xbb\xbf")
    return not data.strip()


def write(tmp_path: Path, many: list[bytes], eol: bytes) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_bytes(b"".join(line + eol for line in many))
    return path


@examples(300)
@given(many=st.lists(lines, min_size=1, max_size=6), crlf=st.booleans(), parts=st.integers(1, 4))
def test_the_file_and_partitioned_readers_give_an_outcome_for_every_line(
    tmp_path: Path, many: list[bytes], crlf: bool, parts: int
) -> None:
    path = write(tmp_path, many, b"\r\n" if crlf else b"\n")
    events = read_file(path)
    assert len(events) == sum(1 for n, line in enumerate(many) if not blank(n, line, crlf))
    kinds = [check_outcome(event) for event in events]
    # The read-ahead process's transport carries every outcome unchanged.
    assert unpack(pack(events)) == events
    # The partitioned reader reads every line too, with no error, whatever the cuts.
    found = read_partitions(path, parts)
    unreadable = sum(1 for kind in kinds if kind == "unreadable")
    assert sum(1 for kind, _ in found if kind == "unkeyed") == unreadable


@examples(300)
@given(line=lines)
def test_a_last_line_without_its_newline_never_raises(tmp_path: Path, line: bytes) -> None:
    """`--once` and the last partition test whether a last line is whole: total as well."""
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.write_bytes(b'{"_id": "before", "Store_ID": 1}\n' + line)
    events = read_file(path)
    for event in events:
        check_outcome(event)
    read_partitions(path, 2)


@examples(15)
@given(many=st.lists(lines, min_size=1, max_size=12))
def test_the_read_ahead_process_gives_what_the_inline_reader_gives(
    tmp_path: Path, many: list[bytes]
) -> None:
    path = write(tmp_path, many, b"\n")
    inline = read_file(path)
    source = JsonlSource(path)
    source.open(None)
    try:
        batches = read_ahead(
            source, BatchLimits(max_events=5), follow=False, stop=threading.Event()
        )
        forked = [event for batch in batches for event in batch.events]
    finally:
        source.close()
    assert [outcome_of(e) for e in forked] == [outcome_of(e) for e in inline]


@pytest.mark.parametrize("number", ISSUE_NUMBERS)
def test_each_issue_number_anywhere_in_a_line_is_an_outcome(tmp_path: Path, number: str) -> None:
    """The numbers of the issue in every field, in a field validation ignores and in a
    change event: each line one outcome, read alike by every file decoder."""
    many = [
        render(("obj", [("_id", "x"), (name, ("raw", number))]), ascii_only=True).encode()
        for name in [*FIELDS, "product_price", "note"]
    ]
    many.append(
        b'{"operationType": "update", "documentKey": {"_id": 1}, "fullDocument": {"_id": '
        + number.encode()
        + b"}}"
    )
    path = write(tmp_path, many, b"\n")
    events = read_file(path)
    assert len(events) == len(many)
    for event in events:
        check_outcome(event)
    read_partitions(path, 3)


# -- the MongoDB document path -------------------------------------------------------------------

DECIMAL128_EXTREMES = [
    "1E+6111",
    "-1E-6176",
    "9.999999999999999999999999999999999E+6144",
    "NaN",
    "-sNaN",
    "Infinity",
    "-0E-6176",
    "12.345",
]
native_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(DECIMAL128_EXTREMES).map(Decimal128),
    # Decimals at the edges of their range (how a JSONL number with a fraction arrives).
    st.sampled_from(
        [
            "1E+999999999999999999",
            "-1E-999999999999999999",
            "9.99E+999999999999999999",
            "0E+999999999999999999",
            "sNaN",
            "-NaN",
            "Infinity",
            "1" * 5000 + ".5",
        ]
    ).map(Decimal),
    st.integers(5000, 5100).map(lambda digits: 10**digits),  # past the 4,300-digit str() limit
)
bson_scalars = st.one_of(
    st.none(),
    st.booleans(),
    texts,
    native_numbers,
    st.builds(ObjectId),
    st.datetimes(timezones=st.one_of(st.none(), st.just(dt.UTC))),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(DatetimeMS),
    st.binary(max_size=8).map(lambda b: Binary(b, 0)),
    st.binary(max_size=8),
    st.just(Regex("(", "i")),
    st.just(Code("x", {"a": 1})),
    st.builds(Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.sampled_from([MinKey(), MaxKey()]),
    st.just(DBRef("c", 1)),
    st.uuids(),
)


def _bson_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    )


bson_values = st.recursive(bson_scalars, _bson_containers, max_leaves=10)


@st.composite
def bson_documents(draw: st.DrawFn) -> Any:
    """A receipt document as PyMongo returns it, fields replaced or added with any BSON value,
    maybe nested hundreds deep, maybe as a change event."""
    document: dict[str, Any] = {
        "_id": draw(st.one_of(st.builds(ObjectId), bson_values)),
        "Store_ID": 3,
        "transactionDate": "2026-12-01",
        "transactionTime": "08:00",
        "total_price": Decimal128("10.00"),
        "items": [{"product_name": "Latte", "product_quantity": 1}],
    }
    for _ in range(draw(st.integers(0, 3))):
        document[draw(keys)] = draw(bson_values)
    if draw(st.integers(0, 4)) == 0:
        nested: Any = draw(native_numbers)
        for _ in range(draw(st.integers(1, 2000))):
            nested = {"a": nested} if draw(st.booleans()) else [nested]
        document[draw(st.sampled_from(FIELDS))] = nested
    shape = draw(st.sampled_from(["document", "document", "change", "any"]))
    if shape == "document":
        return document
    if shape == "any":
        return draw(bson_values)
    return {
        "operationType": draw(st.sampled_from(["insert", "replace", "update", "delete"])),
        "documentKey": {"_id": document["_id"]},
        "fullDocument": draw(st.one_of(st.just(document), st.none(), bson_values)),
    }


@examples(1000)
@given(document=bson_documents())
def test_every_mongodb_document_gives_an_outcome(document: Any) -> None:
    event = event_from_object(document, where="change stream", raw="")
    [parsed] = parse_events([event])
    check_outcome(parsed)
    assert unpack(pack([parsed])) == [parsed]
