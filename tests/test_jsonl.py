"""Behaviour of the JSONL source: `decode_line` and `JsonlSource` over real files."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from coffeeshop.core.events import Delete, Event, Parsed, Skip, Unreadable, Upsert
from coffeeshop.core.plan import parse_events
from coffeeshop.core.receipts import InvalidReceipt, parse_receipt
from coffeeshop.errors import ConfigError, SourceChanged
from coffeeshop.sources import jsonl
from coffeeshop.sources.base import BatchLimits, SourceBatch
from coffeeshop.sources.jsonl import MAX_LINE_BYTES, JsonlSource, decode_line

WHERE = "line 1 (byte 0)"
BOM = b"\xef\xbb\xbf"
# A batch closes on size only, never on time, unless a test says otherwise.
NO_WAIT_LIMIT = 3600.0


def receipt(n: int, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": n,
        "Store_ID": 3,
        "transactionDate": "2024-03-01",
        "transactionTime": "07:30",
        "total_price": "12.50",
        "items": [{"product_name": "Latte", "product_quantity": 1}],
    }
    doc.update(overrides)
    return doc


def line(n: int, **overrides: Any) -> bytes:
    return json.dumps(receipt(n, **overrides)).encode() + b"\n"


def decode(data: bytes) -> Event | None:
    return decode_line(data, where=WHERE)


def read(
    path: Path,
    position: str | None = None,
    *,
    max_events: int = 5000,
    max_wait: float = NO_WAIT_LIMIT,
) -> list[SourceBatch]:
    with JsonlSource(path) as source:
        source.open(position)
        limits = BatchLimits(max_events=max_events, max_wait=max_wait, poll_interval=0.01)
        return list(source.batches(limits, follow=False, stop=threading.Event()))


def events_of(batches: list[SourceBatch]) -> list[Event]:
    return [event for batch in batches for event in batch.events]


def offset_of(position: str) -> int:
    return json.loads(position)["offset"]


def line_of(position: str) -> int:
    return json.loads(position)["line"]


def keys(events: list[Event]) -> list[str]:
    return [event.key for event in events]  # type: ignore[union-attr]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "receipts.jsonl"


@pytest.fixture(autouse=True)
def general_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read every line the general way (a document is an `Upsert` with its text
    and values), unless marked `fast_path`: the usual receipt's fast way is held to the
    general way line by line in `test_fast_receipt.py`."""
    if request.node.get_closest_marker("fast_path") is None:
        monkeypatch.setattr(jsonl, "usual_receipt_line", lambda _text, _where: None)


@pytest.mark.fast_path
def test_the_usual_receipt_line_comes_validated_and_any_other_document_as_an_upsert() -> None:
    valid = decode(line(1).rstrip(b"\n"))
    assert isinstance(valid, Parsed) and valid.receipt is not None
    assert (valid.key, valid.receipt_id, valid.where, valid.raw) == ("int:1", "1", WHERE, "")
    assert valid.receipt == parse_receipt(receipt(1))
    data = line(2, total_price=-1).rstrip(b"\n")
    invalid = decode(data)
    assert isinstance(invalid, Upsert)
    assert (invalid.key, invalid.raw, invalid.doc) == (
        "int:2",
        data.decode(),
        receipt(2, total_price=-1),
    )


@pytest.mark.fast_path
def test_a_file_read_the_fast_way_gives_the_same_receipts_and_positions(path: Path) -> None:
    path.write_bytes(BOM + line(1) + line(2, Store_ID="x") + b"{not json\n" + line(3).rstrip(b"\n"))
    fast = read(path, max_events=2)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(jsonl, "usual_receipt_line", lambda _text, _where: None)
        slow = read(path, max_events=2)
    assert [b.position for b in fast] == [b.position for b in slow]
    assert [parse_events(b.events) for b in fast] == [parse_events(b.events) for b in slow]
    assert [type(e) for e in events_of(fast)] == [Parsed, Upsert, Unreadable, Parsed]


# -- decode_line --------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b" ", b"\t", b"   \t ", b"\r", b" \r"])
def test_blank_line_decodes_to_none(data: bytes) -> None:
    assert decode(data) is None


def test_document_line_decodes_to_upsert_with_raw_text_and_where() -> None:
    data = line(1).rstrip(b"\n")
    event = decode_line(data, where="line 9 (byte 99)")
    assert isinstance(event, Upsert)
    assert event.key == "int:1"
    assert event.doc == receipt(1)
    assert event.raw == data.decode()
    assert event.where == "line 9 (byte 99)"


def test_crlf_line_ending_is_removed() -> None:
    data = line(1).rstrip(b"\n")
    event = decode(data + b"\r")
    assert isinstance(event, Upsert)
    assert event.raw == data.decode()
    assert not event.raw.endswith("\r")


def test_numbers_with_a_fraction_decode_exactly_as_decimal() -> None:
    event = decode(b'{"_id": 1, "total_price": 12.345, "q": 2, "big": 0.1}')
    assert isinstance(event, Upsert)
    assert event.doc["total_price"] == Decimal("12.345")
    assert type(event.doc["total_price"]) is Decimal
    assert event.doc["q"] == 2
    assert type(event.doc["q"]) is int
    assert event.doc["big"] == Decimal("0.1")


@pytest.mark.parametrize(
    ("data", "byte", "column"),
    [
        (b"\xff{}", "0xff", 1),
        (b'{"_id": 1, "n": "\xc3"}', "0xc3", 18),  # truncated two-byte sequence
        (b'{"_id": 1, "n": "\x80"}', "0x80", 18),  # lone continuation byte
        (b'{"_id": 1, "n": "\xc0\xaf"}', "0xc0", 18),  # overlong encoding
        (b'{"_id": 1, "n": "\xed\xa0\x80"}', "0xed", 18),  # UTF-8-encoded surrogate
        (b'{"_id": 1, "n": "\xe2\x82"}', "0xe2", 18),
        (b'{"_id": 1, "n": "caf\xe9"}', "0xe9", 21),  # Latin-1, not UTF-8
    ],
)
def test_invalid_utf8_is_unreadable_naming_byte_and_column(
    data: bytes, byte: str, column: int
) -> None:
    event = decode(data)
    assert isinstance(event, Unreadable)
    assert event.reason == f"not valid UTF-8: byte {byte} at column {column}"
    assert event.where == WHERE
    # The raw text keeps every byte, escaped, so it can be stored and shown.
    assert "\\x" in event.raw
    event.raw.encode("utf-8")


@pytest.mark.parametrize(
    ("data", "message", "column"),
    [
        (b'{"_id": 1,}', "Expecting property name enclosed in double quotes", 11),
        (b'{"_id": 1', "Expecting ',' delimiter", 10),
        (b'{"_id": 1} x', "Extra data", 12),
        (b"{'_id': 1}", "Expecting property name enclosed in double quotes", 2),
        (b'{"_id": 01}', "Expecting ',' delimiter", 10),
        (b'{"_id": undefined}', "Expecting value", 9),
        (b'{"_id": ObjectId("65e1f0a0a1b2c3d4e5f60718")}', "Expecting value", 9),
    ],
)
def test_invalid_json_is_unreadable_with_message_and_column(
    data: bytes, message: str, column: int
) -> None:
    event = decode(data)
    assert isinstance(event, Unreadable)
    assert event.reason == f"invalid JSON: {message} (column {column})"
    assert event.raw == data.decode()


def test_line_of_invalid_json_reports_the_column_in_characters_after_multibyte_text() -> None:
    event = decode('{"n": "☕☕", x}'.encode())
    assert isinstance(event, Unreadable)
    assert event.reason == (
        "invalid JSON: Expecting property name enclosed in double quotes (column 13)"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"_id": 1, "items": ' + b"[{" * 5_000 + b"}]" * 5_000 + b"}",
        b"[" * 10_000,  # deep and unterminated
    ],
    ids=["arrays", "objects", "inside-a-receipt", "unterminated"],
)
def test_deeply_nested_json_is_unreadable_without_crashing(data: bytes) -> None:
    event = decode(data)
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("invalid JSON")


def test_deeply_nested_json_reports_nesting_depth() -> None:
    event = decode(b"[" * 10_000 + b"]" * 10_000)
    assert event == Unreadable(
        reason="invalid JSON: nested too deeply",
        where=WHERE,
        raw=("[" * 10_000 + "]" * 10_000),
    )


def test_integer_with_too_many_digits_is_unreadable() -> None:
    event = decode(b'{"_id": 1, "total_price": ' + b"9" * 5000 + b"}")
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("invalid JSON: ")


def test_line_longer_than_the_limit_is_unreadable_and_kept_as_prefix_length_and_hash() -> None:
    data = b"x" * (MAX_LINE_BYTES + 1)
    event = decode(data)
    assert isinstance(event, Unreadable)
    assert event.reason.startswith(f"line is {MAX_LINE_BYTES + 1} bytes long")
    digest = hashlib.sha256(data).hexdigest()
    assert event.reason.endswith(
        f" [raw input cut to its first 65,536 characters: the input is {MAX_LINE_BYTES + 1:,} "
        f"bytes, sha256 {digest}]"
    )
    assert event.raw == "x" * 65_536


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_a_line_over_the_limit_is_skipped_while_read_and_reading_goes_on(
    path: Path, eol: bytes
) -> None:
    """The reader never holds the whole line: it keeps a prefix, counts and hashes the rest,
    and the lines after it (and the positions) are exactly as if it had been read whole."""
    long = b'{"_id": 1, "pad": "' + "é".encode() * (MAX_LINE_BYTES // 2 + 3) + b'"}'
    path.write_bytes(line(1).replace(b"\n", eol) + long + eol + line(2).replace(b"\n", eol))
    batches = read(path, max_events=1)
    events = events_of(batches)
    assert [type(e) for e in events] == [Upsert, Unreadable, Upsert]
    bad = events[1]
    assert isinstance(bad, Unreadable)
    start = len(line(1)) + len(eol) - 1
    assert bad.where == f"line 2 (byte {start})"
    assert bad.reason.startswith(f"line is {len(long)} bytes long, more than {MAX_LINE_BYTES}")
    assert bad.reason.endswith(f"{len(long):,} bytes, sha256 {hashlib.sha256(long).hexdigest()}]")
    assert bad.raw == long.decode()[:65_536]
    assert events[2].where == f"line 3 (byte {start + len(long) + len(eol)})"
    # The position after the long line resumes at the third line.
    assert offset_of(batches[1].position) == start + len(long) + len(eol)
    assert line_of(batches[1].position) == 2
    assert keys(events_of(read(path, batches[1].position))) == keys([events[2]])


def test_invalid_utf8_and_invalid_json_keep_a_prefix_with_length_and_hash() -> None:
    data = b'{"_id": 1, "x": "' + b"\xe9" * 100_000 + b'"}'
    event = decode(data)
    assert isinstance(event, Unreadable)
    assert event.raw == data.decode("utf-8", "backslashreplace")[:65_536]
    assert event.reason.startswith("not valid UTF-8: byte 0xe9 at column 18 [raw input cut")
    assert event.reason.endswith(f"sha256 {hashlib.sha256(data).hexdigest()}]")
    quotes = b'"' * 100_000
    event = decode(quotes)
    assert isinstance(event, Unreadable)
    assert event.raw == '"' * 65_536
    assert event.reason.startswith("invalid JSON: Extra data (column 3) [raw input cut")
    short = b'{"_id": 1, "x": "\xe9"}'
    event = decode(short)
    assert isinstance(event, Unreadable)
    assert event.raw == short.decode("utf-8", "backslashreplace")
    assert "[raw input cut" not in event.reason


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"[]", "an array"),
        (b'[{"_id": 1}]', "an array"),
        (b'"receipt"', "a string"),
        (b"42", "a number"),
        (b"4.5", "a number"),
        (b"NaN", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_line_that_is_not_a_json_object_is_unreadable(data: bytes, kind: str) -> None:
    event = decode(data)
    assert event == Unreadable(
        reason=f"expected a JSON object, got {kind}", where=WHERE, raw=data.decode()
    )


def test_line_without_id_is_unreadable() -> None:
    event = decode(b'{"Store_ID": 3}')
    assert isinstance(event, Unreadable)
    assert event.reason == "document has no _id"


def test_line_with_invalid_oid_is_unreadable() -> None:
    event = decode(b'{"_id": {"$oid": "not-an-object-id"}, "Store_ID": 3}')
    assert isinstance(event, Unreadable)
    assert event.reason.startswith("_id: cannot be read: ")
    assert "not-an-object-id" in event.reason


@pytest.mark.parametrize(
    ("total", "fragment"),
    [
        (b"NaN", "must be finite, got NaN"),
        (b"Infinity", "must be finite, got Infinity"),
        (b"-Infinity", "must be finite, got -Infinity"),
        (b"1e400", "must be at most 9999999999.99"),
        (b"-1e400", "must be ≥ 0"),
        (b'{"$numberDouble": "NaN"}', "must be finite"),
        (b'{"$numberDecimal": "Infinity"}', "must be finite"),
    ],
)
def test_non_finite_or_huge_total_is_an_upsert_that_fails_validation(
    total: bytes, fragment: str
) -> None:
    event = decode(b'{"_id": 1, "Store_ID": 3, "total_price": ' + total + b"}")
    assert isinstance(event, Upsert)
    with pytest.raises(InvalidReceipt) as info:
        parse_receipt(receipt(1, total_price=event.doc["total_price"]))
    assert info.value.field == "total_price"
    assert fragment in info.value.reason


def test_total_written_as_json_number_keeps_its_decimal_digits() -> None:
    data = json.dumps(receipt(1, total_price=0)).replace('"total_price": 0', '"total_price": 0.005')
    event = decode(data.encode())
    assert isinstance(event, Upsert)
    assert parse_receipt(event.doc).cents == 1


def test_escaped_surrogate_pair_decodes_to_one_emoji_name() -> None:
    data = json.dumps(receipt(1, items=[{"product_name": "🍩", "product_quantity": 1}]))
    assert "\\ud83c\\udf69" in data  # json.dumps escapes non-ASCII as surrogate pairs
    event = decode(data.encode())
    assert isinstance(event, Upsert)
    assert parse_receipt(event.doc).items == (("🍩", 1),)


def test_escaped_lone_surrogate_in_name_is_read_but_rejected_by_validation() -> None:
    data = json.dumps(receipt(1)).replace("Latte", "Latte\\ud800")
    event = decode(data.encode())
    assert isinstance(event, Upsert)
    with pytest.raises(InvalidReceipt, match="lone UTF-16 surrogate"):
        parse_receipt(event.doc)


def test_escaped_nul_in_name_is_read_but_rejected_by_validation() -> None:
    data = json.dumps(receipt(1)).replace("Latte", "Lat\\u0000te")
    event = decode(data.encode())
    assert isinstance(event, Upsert)
    with pytest.raises(InvalidReceipt, match="NUL"):
        parse_receipt(event.doc)


def test_change_event_lines_decode_to_their_events() -> None:
    delete = decode(b'{"operationType": "delete", "documentKey": {"_id": {"$numberLong": "7"}}}')
    update = decode(b'{"operationType": "update", "documentKey": {"_id": 7}, "fullDocument": null}')
    insert = decode(b'{"operationType": "insert", "fullDocument": {"_id": 7}}')
    assert delete == Delete(key="int:7", receipt_id="7", where=WHERE)
    assert isinstance(update, Skip)
    assert isinstance(insert, Upsert)
    assert insert.key == "int:7"


# -- JsonlSource: opening -----------------------------------------------------------------------


def test_missing_file_raises_config_error(path: Path) -> None:
    source = JsonlSource(path)
    with pytest.raises(ConfigError, match="does not exist"):
        source.open(None)


def test_missing_file_with_a_position_raises_config_error(path: Path) -> None:
    path.write_bytes(line(1))
    position = read(path)[-1].position
    path.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        JsonlSource(path).open(position)


def test_source_name_includes_the_resolved_path(path: Path) -> None:
    assert JsonlSource(path).name == f"jsonl:{path.resolve()}"


def test_empty_file_yields_no_batches(path: Path) -> None:
    path.write_bytes(b"")
    assert read(path) == []


# -- JsonlSource: reading everything ------------------------------------------------------------


def test_reads_all_lines_in_bounded_batches_with_increasing_positions(path: Path) -> None:
    lines = [line(n) for n in range(1, 11)]
    path.write_bytes(b"".join(lines))

    batches = read(path, max_events=3)

    assert [len(batch.events) for batch in batches] == [3, 3, 3, 1]
    events = events_of(batches)
    assert keys(events) == [f"int:{n}" for n in range(1, 11)]
    starts = [sum(map(len, lines[:i])) for i in range(10)]
    assert [event.where for event in events] == [
        f"line {i + 1} (byte {starts[i]})" for i in range(10)
    ]
    offsets = [offset_of(batch.position) for batch in batches]
    assert offsets == [starts[3], starts[6], starts[9], path.stat().st_size]
    assert [line_of(batch.position) for batch in batches] == [3, 6, 9, 10]


def test_batch_size_never_exceeds_max_events(path: Path) -> None:
    path.write_bytes(b"".join(line(n) for n in range(50)))
    for max_events in (1, 2, 7, 50, 51):
        batches = read(path, max_events=max_events)
        assert all(1 <= len(batch.events) <= max_events for batch in batches)
        assert len(events_of(batches)) == 50
        offsets = [offset_of(batch.position) for batch in batches]
        assert offsets == sorted(set(offsets))


def test_zero_max_wait_closes_a_batch_after_every_event(path: Path) -> None:
    path.write_bytes(b"".join(line(n) for n in range(4)))
    batches = read(path, max_wait=0)
    assert [len(batch.events) for batch in batches] == [1, 1, 1, 1]


def test_blank_lines_are_skipped_but_counted(path: Path) -> None:
    first, second = line(1), line(2)
    path.write_bytes(b"\n" + first + b"\n \n" + second + b"\n")

    batches = read(path)

    events = events_of(batches)
    assert keys(events) == ["int:1", "int:2"]
    assert events[0].where == "line 2 (byte 1)"
    assert events[1].where == f"line 5 (byte {1 + len(first) + 3})"
    assert offset_of(batches[-1].position) == path.stat().st_size
    assert line_of(batches[-1].position) == 6


def test_file_of_only_blank_lines_moves_the_position_without_events(path: Path) -> None:
    path.write_bytes(b"\n\r\n  \n")
    batches = read(path)
    assert len(batches) == 1
    assert batches[0].events == []
    assert offset_of(batches[0].position) == 6
    assert line_of(batches[0].position) == 3


def test_crlf_file_is_read_with_byte_exact_positions(path: Path) -> None:
    first, second = line(1).replace(b"\n", b"\r\n"), line(2).replace(b"\n", b"\r\n")
    path.write_bytes(first + second)

    batches = read(path)

    events = events_of(batches)
    assert keys(events) == ["int:1", "int:2"]
    assert events[1].where == f"line 2 (byte {len(first)})"
    assert all(not event.raw.endswith("\r") for event in events)  # type: ignore[union-attr]
    assert offset_of(batches[-1].position) == len(first) + len(second)


def test_bad_lines_are_quarantined_in_place_and_reading_continues(path: Path) -> None:
    path.write_bytes(line(1) + b"{not json\n" + b"\xff\n" + b"[1]\n" + line(2))

    events = events_of(read(path))

    assert [type(event) for event in events] == [Upsert, Unreadable, Unreadable, Unreadable, Upsert]
    assert [event.where.split(" (")[0] for event in events] == [f"line {n}" for n in range(1, 6)]


def test_lines_larger_than_a_read_chunk_and_split_across_chunks_are_read_whole(
    path: Path,
) -> None:
    # 1 MiB reads: a long line spans several; thousands of lines straddle chunk boundaries.
    long_name = "x" * 100
    big = json.dumps(receipt(0, note="y" * (3 << 20))).encode() + b"\n"
    lines = [big] + [line(n, items=[{"product_name": long_name, "product_quantity": n}])
                     for n in range(1, 12_001)]  # fmt: skip
    path.write_bytes(b"".join(lines))

    events = events_of(read(path))

    assert len(events) == 12_001
    assert keys(events) == [f"int:{n}" for n in range(12_001)]
    assert all(isinstance(event, Upsert) for event in events)
    assert events[-1].where == f"line 12001 (byte {path.stat().st_size - len(lines[-1])})"


# -- JsonlSource: UTF-8 byte order mark ---------------------------------------------------------


def test_byte_order_mark_on_the_first_line_is_ignored(path: Path) -> None:
    first = line(1)
    path.write_bytes(BOM + first + line(2))

    batches = read(path)

    events = events_of(batches)
    assert keys(events) == ["int:1", "int:2"]
    assert events[0].where == "line 1 (byte 0)"
    assert events[0].raw == first.rstrip(b"\n").decode()  # type: ignore[union-attr]
    assert events[1].where == f"line 2 (byte {len(BOM) + len(first)})"
    assert offset_of(batches[-1].position) == path.stat().st_size


def test_byte_order_mark_later_in_the_file_is_not_stripped(path: Path) -> None:
    path.write_bytes(line(1) + BOM + line(2))
    events = events_of(read(path))
    assert isinstance(events[0], Upsert)
    assert isinstance(events[1], Unreadable)


def test_restart_after_a_byte_order_mark_continues_after_the_position(path: Path) -> None:
    path.write_bytes(BOM + line(1) + line(2) + line(3))
    first = read(path, max_events=1)[0]
    events = events_of(read(path, first.position))
    assert keys(events) == ["int:2", "int:3"]


# -- JsonlSource: the last line -----------------------------------------------------------------


def test_complete_last_line_without_newline_is_read(path: Path) -> None:
    first = line(1)
    last = line(2).rstrip(b"\n")
    path.write_bytes(first + last)

    batches = read(path)

    events = events_of(batches)
    assert keys(events) == ["int:1", "int:2"]
    assert events[1].where == f"line 2 (byte {len(first)})"
    assert offset_of(batches[-1].position) == path.stat().st_size


def test_complete_last_line_with_crlf_but_no_newline_is_read(path: Path) -> None:
    path.write_bytes(line(1) + line(2).rstrip(b"\n") + b"\r")
    assert keys(events_of(read(path))) == ["int:1", "int:2"]


@pytest.mark.parametrize(
    "partial",
    [b'{"_id": 2, "Store_ID"', b"{", b'{"_id": 2, "items": [', b'{"_id": "ab', b'{"_id": 2} {'],
)
def test_partial_last_line_is_not_read_and_not_passed(path: Path, partial: bytes) -> None:
    first = line(1)
    path.write_bytes(first + partial)

    batches = read(path)

    assert keys(events_of(batches)) == ["int:1"]
    assert offset_of(batches[-1].position) == len(first)


def test_file_holding_only_a_partial_line_yields_nothing(path: Path) -> None:
    path.write_bytes(b'{"_id": 1, "Sto')
    assert read(path) == []


def test_partial_last_line_is_read_once_the_writer_completes_it(path: Path) -> None:
    first, second = line(1), line(2)
    path.write_bytes(first + second[:15])
    position = read(path)[-1].position

    with path.open("ab") as file:
        file.write(second[15:] + line(3))

    events = events_of(read(path, position))
    assert keys(events) == ["int:2", "int:3"]
    assert events[0].where == f"line 2 (byte {len(first)})"
    assert events[0].doc == receipt(2)  # type: ignore[union-attr]


# -- JsonlSource: restarting from a committed position ------------------------------------------


def test_restart_from_a_committed_position_continues_after_it(path: Path) -> None:
    lines = [line(n) for n in range(1, 8)]
    path.write_bytes(b"".join(lines))
    committed = read(path, max_events=3)[0]
    assert keys(committed.events) == ["int:1", "int:2", "int:3"]

    rest = events_of(read(path, committed.position))

    assert keys(rest) == [f"int:{n}" for n in range(4, 8)]
    assert rest[0].where == f"line 4 (byte {sum(map(len, lines[:3]))})"


def test_restart_at_the_end_reads_only_appended_lines(path: Path) -> None:
    path.write_bytes(line(1) + line(2))
    end = read(path)[-1].position
    assert read(path, end) == []

    with path.open("ab") as file:
        file.write(line(3))

    batches = read(path, end)
    assert keys(events_of(batches)) == ["int:3"]
    assert events_of(batches)[0].where.startswith("line 3 ")


def test_position_survives_more_than_the_fingerprinted_head(path: Path) -> None:
    path.write_bytes(b"".join(line(n) for n in range(40)))  # well over 1 KiB
    middle = read(path, max_events=20)[0].position
    with path.open("ab") as file:
        file.write(line(40))
    assert keys(events_of(read(path, middle))) == [f"int:{n}" for n in range(20, 41)]


def test_position_is_a_json_record_of_offset_line_and_fingerprints(path: Path) -> None:
    path.write_bytes(line(1))
    saved = json.loads(read(path)[-1].position)
    assert set(saved) == {"offset", "line", "head", "tail", "open"}
    assert (saved["offset"], saved["line"], saved["open"]) == (path.stat().st_size, 1, False)


def test_position_without_the_open_field_is_still_accepted(path: Path) -> None:
    # Positions committed before the "open" field existed mean a line-aligned offset.
    path.write_bytes(line(1) + line(2))
    saved = json.loads(read(path, max_events=1)[0].position)
    del saved["open"]
    rest = events_of(read(path, json.dumps(saved)))
    assert keys(rest) == ["int:2"]
    assert rest[0].where == f"line 2 (byte {len(line(1))})"


def test_truncated_file_raises_source_changed_on_open(path: Path) -> None:
    first = line(1)
    path.write_bytes(first + line(2) + line(3))
    position = read(path)[-1].position

    path.write_bytes(first)

    with pytest.raises(SourceChanged, match="truncated or replaced"):
        JsonlSource(path).open(position)


def test_emptied_file_raises_source_changed_on_open(path: Path) -> None:
    path.write_bytes(line(1))
    position = read(path)[-1].position
    path.write_bytes(b"")
    with pytest.raises(SourceChanged):
        JsonlSource(path).open(position)


def test_rewritten_file_of_the_same_size_raises_source_changed_on_open(path: Path) -> None:
    path.write_bytes(line(1) + line(2))
    position = read(path)[-1].position

    path.write_bytes(line(7) + line(8))  # same length, different content

    with pytest.raises(SourceChanged, match="no longer matches"):
        JsonlSource(path).open(position)


def test_replaced_file_with_new_content_before_the_position_raises_source_changed(
    path: Path, tmp_path: Path
) -> None:
    path.write_bytes(line(1) + line(2))
    position = read(path)[-1].position
    replacement = tmp_path / "new.jsonl"
    replacement.write_bytes(line(5) + line(6) + line(7) + line(8))
    os.replace(replacement, path)

    with pytest.raises(SourceChanged, match="no longer matches"):
        JsonlSource(path).open(position)


def test_changed_tail_just_before_the_position_raises_source_changed(path: Path) -> None:
    lines = [line(n) for n in range(10, 40)]
    path.write_bytes(b"".join(lines))
    position = read(path)[-1].position

    # Same size; only the last line's final bytes (inside the fingerprinted tail) differ.
    mocha = line(39, items=[{"product_name": "Mocha", "product_quantity": 1}])
    assert len(mocha) == len(lines[-1])
    path.write_bytes(b"".join(lines[:-1]) + mocha)

    with pytest.raises(SourceChanged):
        JsonlSource(path).open(position)


def test_nothing_is_read_after_source_changed(path: Path) -> None:
    path.write_bytes(line(1) + line(2))
    position = read(path)[-1].position
    path.write_bytes(line(3))
    source = JsonlSource(path)
    with pytest.raises(SourceChanged, match="Nothing was read"):
        source.open(position)
    source.close()


# -- JsonlSource: following a growing file ------------------------------------------------------


def test_follow_picks_up_lines_appended_by_a_writer(path: Path) -> None:
    path.write_bytes(line(1))
    stop = threading.Event()
    # The test can never hang, and a loaded machine has minutes: it ends when all 5 arrived.
    watchdog = threading.Timer(120, stop.set)
    split = line(5)

    def writer() -> None:
        time.sleep(0.05)
        with path.open("ab") as file:
            for n in (2, 3, 4):
                file.write(line(n))
                file.flush()
                time.sleep(0.02)
            file.write(split[:20])  # a line written in two parts
            file.flush()
            time.sleep(0.05)
            file.write(split[20:])
            file.flush()

    thread = threading.Thread(target=writer)
    received: list[Event] = []
    limits = BatchLimits(max_events=100, max_wait=0.01, poll_interval=0.01)
    with JsonlSource(path) as source:
        source.open(None)
        watchdog.start()
        thread.start()
        try:
            for batch in source.batches(limits, follow=True, stop=stop):
                received.extend(batch.events)
                if len(received) >= 5:
                    stop.set()
        finally:
            watchdog.cancel()
            thread.join()

    assert keys(received) == ["int:1", "int:2", "int:3", "int:4", "int:5"]
    assert received[-1].doc == receipt(5)  # type: ignore[union-attr]
    assert received[-1].where == f"line 5 (byte {4 * len(line(1))})"


def test_follow_stops_when_stop_is_already_set(path: Path) -> None:
    path.write_bytes(line(1))
    stop = threading.Event()
    stop.set()
    with JsonlSource(path) as source:
        source.open(None)
        assert list(source.batches(BatchLimits(), follow=True, stop=stop)) == []


def test_follow_raises_source_changed_when_the_file_is_truncated(path: Path) -> None:
    path.write_bytes(line(1) + line(2))
    limits = BatchLimits(poll_interval=0.01)
    with JsonlSource(path) as source:
        source.open(None)
        batches = source.batches(limits, follow=True, stop=threading.Event())
        assert len(next(batches).events) == 2

        path.write_bytes(b"")

        with pytest.raises(SourceChanged, match="truncated"):
            next(batches)


def test_follow_raises_source_changed_when_the_file_is_replaced(path: Path, tmp_path: Path) -> None:
    path.write_bytes(line(1))
    with JsonlSource(path) as source:
        source.open(None)
        batches = source.batches(
            BatchLimits(poll_interval=0.01), follow=True, stop=threading.Event()
        )
        next(batches)
        replacement = tmp_path / "new.jsonl"
        replacement.write_bytes(line(1) + line(2))
        os.replace(replacement, path)

        with pytest.raises(SourceChanged, match="replaced or removed"):
            next(batches)


def test_follow_raises_source_changed_when_the_file_is_removed(path: Path) -> None:
    path.write_bytes(line(1))
    with JsonlSource(path) as source:
        source.open(None)
        batches = source.batches(
            BatchLimits(poll_interval=0.01), follow=True, stop=threading.Event()
        )
        next(batches)
        path.unlink()

        with pytest.raises(SourceChanged, match="replaced or removed"):
            next(batches)


# -- decode errors, odd paths and unterminated last lines ---------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"_id": 1, "n": "a\tb"}', "invalid JSON: Invalid control character at (column 19)"),
        (b'{"_id": "ab', "invalid JSON: Unterminated string starting at (column 9)"),
        (b'{"_id": "\\x"}', "invalid JSON: Invalid \\escape (column 10)"),
    ],
    ids=["control-character", "unterminated-string", "invalid-escape"],
)
def test_invalid_json_messages_ending_in_at_read_cleanly(data: bytes, reason: str) -> None:
    event = decode(data)
    assert isinstance(event, Unreadable)
    assert event.reason == reason
    assert "at at" not in event.reason


def test_byte_order_mark_on_a_single_unterminated_line_is_ignored(path: Path) -> None:
    data = line(1).rstrip(b"\n")
    path.write_bytes(BOM + data)
    batches = read(path)
    events = events_of(batches)
    assert keys(events) == ["int:1"]
    assert events[0].where == "line 1 (byte 0)"
    assert events[0].raw == data.decode()  # type: ignore[union-attr]
    assert offset_of(batches[-1].position) == len(BOM + data)


def test_byte_order_mark_on_a_single_unterminated_partial_line_is_not_read(path: Path) -> None:
    path.write_bytes(BOM + b'{"_id": 1, "Sto')
    assert read(path) == []


def test_directory_source_raises_config_error_on_open(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    source = JsonlSource(folder)
    try:
        with pytest.raises(ConfigError) as info:
            source.open(None)
    finally:
        source.close()
    message = str(info.value)
    assert str(folder) in message
    assert "not a regular file" in message or "is a directory" in message


def test_line_numbers_stay_right_after_an_unterminated_last_line_is_completed(
    path: Path,
) -> None:
    first = line(1).rstrip(b"\n")
    path.write_bytes(first)
    position = read(path)[-1].position
    assert json.loads(position)["open"] is True
    assert (offset_of(position), line_of(position)) == (len(first), 1)

    with path.open("ab") as file:
        file.write(b"\n" + line(2) + line(3))

    batches = read(path, position)
    events = events_of(batches)
    assert keys(events) == ["int:2", "int:3"]
    assert events[0].where == f"line 2 (byte {len(first) + 1})"
    assert events[1].where == f"line 3 (byte {len(first) + 1 + len(line(2))})"
    assert line_of(batches[-1].position) == 3
    assert json.loads(batches[-1].position)["open"] is False


def test_completed_unterminated_line_is_not_read_twice_and_crlf_completes_it(
    path: Path,
) -> None:
    first = line(1).rstrip(b"\n")
    path.write_bytes(first)
    position = read(path)[-1].position

    with path.open("ab") as file:
        file.write(b"\r\n" + line(2))

    events = events_of(read(path, position))
    assert keys(events) == ["int:2"]
    assert events[0].where == f"line 2 (byte {len(first) + 2})"


def test_unterminated_last_line_then_newline_in_one_session_counts_lines_right(
    path: Path,
) -> None:
    # Read the unterminated line, then keep reading from the same source object.
    first = line(1).rstrip(b"\n")
    path.write_bytes(first)
    with JsonlSource(path) as source:
        source.open(None)
        limits = BatchLimits(max_events=5000, max_wait=NO_WAIT_LIMIT, poll_interval=0.01)
        assert keys(
            events_of(list(source.batches(limits, follow=False, stop=threading.Event())))
        ) == ["int:1"]
        with path.open("ab") as file:
            file.write(b"\n" + line(2))
        batches = list(source.batches(limits, follow=False, stop=threading.Event()))
    events = events_of(batches)
    assert keys(events) == ["int:2"]
    assert events[0].where == f"line 2 (byte {len(first) + 1})"
    assert line_of(batches[-1].position) == 2


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        (b'{"operationType": "delete", "documentKey": {"_id": {"$oid": "zz"}}}', "zz"),
        (b'{"operationType": "delete", "documentKey": {"_id": {"$oid": null}}}', "$oid"),
        (b'{"operationType": "delete", "documentKey": {"_id": {"$numberLong": "x"}}}', "'x'"),
    ],
    ids=["invalid-oid", "null-oid", "invalid-numberLong"],
)
def test_unkeyable_delete_line_is_quarantined_and_reading_continues(
    path: Path, bad: bytes, detail: str
) -> None:
    path.write_bytes(line(1) + bad + b"\n" + line(2))
    events = events_of(read(path))
    assert [type(event) for event in events] == [Upsert, Unreadable, Upsert]
    unreadable = events[1]
    assert isinstance(unreadable, Unreadable)
    assert unreadable.reason.startswith("documentKey._id: cannot be read: ")
    assert detail in unreadable.reason
    assert unreadable.where == f"line 2 (byte {len(line(1))})"
    assert unreadable.raw == bad.decode()


@pytest.mark.parametrize("operation", ["insert", "replace", "update"])
def test_change_line_without_full_document_is_unreadable(operation: str) -> None:
    bad = b'{"operationType": "%s", "documentKey": {"_id": 7}}' % operation.encode()
    event = decode(bad)
    assert isinstance(event, Unreadable)
    assert "no fullDocument" in event.reason
    assert "updateLookup" in event.reason


# -- following: inotify, and polling where it cannot be had --------------------------------------


def follow_until(source: JsonlSource, limits: BatchLimits, count: int, write: Any) -> list[Event]:
    """Follow `source` in this thread while `write()` appends from another, until `count`
    events came; a watchdog ends the wait after a generous deadline."""
    stop = threading.Event()
    watchdog = threading.Timer(60, stop.set)
    received: list[Event] = []
    thread = threading.Thread(target=write)
    watchdog.start()
    try:
        for batch in source.batches(limits, follow=True, stop=stop):
            received.extend(batch.events)
            if not thread.is_alive() and not thread.ident:
                thread.start()  # after the first (empty or initial) batch: the reader waits
            if len(received) >= count:
                break
    finally:
        watchdog.cancel()
        if thread.ident:
            thread.join()
    return received


def follow_an_append(path: Path, limits: BatchLimits) -> tuple[list[Event], bool]:
    """Line 1, then line 2 appended once the follower waits: the events it gave, and
    whether it had an inotify watch."""
    path.write_bytes(line(1))

    def writer() -> None:
        with path.open("ab") as file:
            file.write(line(2))

    with JsonlSource(path) as source:
        source.open(None)
        received = follow_until(source, limits, 2, writer)
        return received, source._watch is not None


def test_follow_is_woken_by_inotify_not_by_its_poll_interval(path: Path) -> None:
    """With a poll interval of ten minutes, only the operating system's word can bring the
    appended line within the watchdog's minute."""
    received, watched = follow_an_append(path, BatchLimits(poll_interval=600))
    assert keys(received) == ["int:1", "int:2"] and watched


def test_follow_polls_where_inotify_cannot_be_had(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coffeeshop.sources.jsonl.FileWatch.open", lambda *a, **k: None)
    received, watched = follow_an_append(path, BatchLimits(poll_interval=0.01))
    assert keys(received) == ["int:1", "int:2"] and not watched


@pytest.mark.parametrize("inotify", [True, False])
def test_follow_still_detects_a_replaced_file(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inotify: bool
) -> None:
    if not inotify:
        monkeypatch.setattr("coffeeshop.sources.jsonl.FileWatch.open", lambda *a, **k: None)
    path.write_bytes(line(1))
    # Polling every ten minutes would not notice within the test: inotify must.
    limits = BatchLimits(poll_interval=600 if inotify else 0.01)
    with JsonlSource(path) as source:
        source.open(None)
        batches = source.batches(limits, follow=True, stop=threading.Event())
        next(batches)
        assert (source._watch is not None) is inotify
        replacement = tmp_path / "new.jsonl"
        replacement.write_bytes(line(1) + line(2))
        os.replace(replacement, path)
        with pytest.raises(SourceChanged, match="replaced or removed"):
            next(batches)
