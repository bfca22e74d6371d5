"""`sources/fast_receipt`: the usual receipt line, decoded into its fields and validated in one
step, is handed on exactly as the general way hands it on (`read_json`, `event_from_object`,
`parse_events`: the same key, id, receipt and position), or it is left to the general way
(None), which then also names what is wrong with it, so every quarantine reason is what it
was without the fast path.

Inputs: every line of the hostile-input corpus, the drawn JSON of `test_decoders_total` and
`test_fuzz`, a generated feed with replacements, deletes and invalid receipts, and edge cases
of the fast path's own limits (keys it does not name, numbers in keys no rule reads, items,
change events)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import CASES
from hypothesis import given
from hypothesis import strategies as st
from test_decoders_total import ISSUE_NUMBERS, examples
from test_decoders_total import json_lines as hostile_json_lines
from test_fuzz import json_lines as receipt_json_lines

from coffeeshop.core.events import Event, Parsed
from coffeeshop.core.plan import ParsedEvent, parse_events
from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.writer import write_jsonl
from coffeeshop.sources import jsonl
from coffeeshop.sources.fast_receipt import usual_receipt_line

WHERE = "line 7 (byte 700)"


def general(text: str) -> ParsedEvent | None:
    """What the general way makes of a line: its event, validated."""
    original = jsonl.usual_receipt_line
    jsonl.usual_receipt_line = lambda _text, _where: None  # type: ignore[assignment]
    try:
        event: Event | None = jsonl.decode_line(text.encode("utf-8", "surrogatepass"), where=WHERE)
    finally:
        jsonl.usual_receipt_line = original
    if event is None:
        return None
    (parsed,) = parse_events([event])
    return parsed


def check(text: str) -> bool:
    """The fast path leaves `text` alone, or hands on what the general way does (a valid
    receipt); True when it took the line."""
    fast = usual_receipt_line(text, WHERE)
    if fast is None:
        return False
    slow = general(text)
    assert isinstance(slow, Parsed) and slow.receipt is not None, (
        f"fast path accepted {text[:100]!r}; the general way says {slow!r:.200}"
    )
    assert fast == slow, f"{text[:100]!r}: fast {fast!r:.200}, general {slow!r:.200}"
    return True


def corpus_texts() -> list[str]:
    texts = []
    for case in CASES:
        for line in case.lines:
            try:
                texts.append(line.rstrip(b"\r\n").decode("utf-8"))
            except UnicodeDecodeError:  # never reaches a JSON decoder
                continue
    return texts


def test_every_hostile_corpus_line_is_read_the_same() -> None:
    texts = corpus_texts()
    assert len(texts) > 300
    taken = [text for text in texts if check(text)]
    assert len(taken) > 20  # the corpus exercises the fast path, not only the general way


@examples(400)
@given(st.one_of(hostile_json_lines(), receipt_json_lines()))
def test_drawn_json_is_read_the_same(line: bytes) -> None:
    try:
        text = line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return
    check(text)


def test_a_generated_feed_is_read_the_same_and_mostly_fast(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    generator = ReceiptGenerator(
        seed=24,
        stores=5,
        start=dt.date(2025, 1, 1),
        days=30,
        update_share=0.1,
        delete_share=0.05,
        invalid_share=0.05,
    )
    write_jsonl(path, 2000, generator=generator, append=False)
    texts = path.read_text(encoding="utf-8").splitlines()
    taken = [text for text in texts if check(text)]
    # Every valid receipt and every replacement carrying one goes the fast way.
    assert len(taken) >= 0.8 * len(texts)
    assert any(text.startswith('{"operationType"') for text in taken)


RECEIPT: dict[str, Any] = {
    "_id": {"$oid": "6650c7e2a1b2c3d4e5f60718"},
    "Store_ID": 3,
    "transactionDate": "2024-02-29",
    "transactionTime": "07:05:00",
    "total_price": 12.345,
    "items": [
        {"product_name": " Latte ", "product_quantity": 2, "product_price": 4.5},
        {"product_name": "Cafe\u0301 Crème", "product_quantity": 1, "product_price": 3.35},
        {"product_name": "Latte", "product_quantity": 1},
    ],
}


def line(**changes: Any) -> str:
    doc = {**RECEIPT, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not None}, ensure_ascii=False)


@pytest.mark.parametrize(
    "text",
    [
        line(),
        line(total_price="12.35"),
        line(total_price=7),
        line(Store_ID="12"),
        line(Store_ID={"$numberInt": "4"}),
        line(_id=17),
        line(_id="abc"),
        line(_id=None),
        json.dumps(
            {
                "operationType": "replace",
                "documentKey": {"_id": 1},
                "fullDocument": {**RECEIPT, "_id": 1},
            }
        ),
        json.dumps({"operationType": "insert", "fullDocument": RECEIPT}),
        json.dumps({"operationType": "update", "documentKey": {"_id": 1}, "fullDocument": None}),
        json.dumps(
            {
                "operationType": "replace",
                "documentKey": {"_id": 9},
                "fullDocument": {k: v for k, v in RECEIPT.items() if k != "_id"},
            }
        ),
        json.dumps({"operationType": "delete", "documentKey": {"_id": 1}}),
        json.dumps({"operationType": "drop", "fullDocument": RECEIPT}),
        json.dumps({"operationType": ["replace"], "fullDocument": RECEIPT}),
        json.dumps({**RECEIPT, "operationType": "replace"}),
        line(items=[{"product_name": "Latte", "product_quantity": 1, "note": "x"}]),
        line(items=[{"product_name": "Latte"}]),
        line(items=[{"product_quantity": 1}]),
        line(items=[{"product_name": "Latte", "product_quantity": True}]),
        line(items=[{"product_name": "Latte", "product_quantity": 1.0}]),
        line(items=[{"product_name": "Latte", "product_quantity": 0}]),
        line(items=[{"product_name": "", "product_quantity": 1}]),
        line(items=[{"product_name": "x" * 101, "product_quantity": 1}]),
        line(items=[{"product_name": "a\u0000b", "product_quantity": 1}]),
        line(items=[["Latte", 1]]),
        line(items=[]),
        line(items={"product_name": "Latte", "product_quantity": 1}),
        line(transactionDate="2023-02-30"),
        line(transactionDate="２０２４-02-29"),
        line(transactionTime="24:00"),
        line(transactionTime="07:05"),
        line(total_price=-1),
        line(total_price=1e10),
        line(cashier="Ann"),
    ],
)
def test_edge_cases_are_read_the_same(text: str) -> None:
    check(text)


@pytest.mark.parametrize("number", ISSUE_NUMBERS)
def test_a_number_the_general_way_refuses_in_a_key_no_rule_reads_is_left_to_it(
    number: str,
) -> None:
    for text in (
        line().replace('"product_price": 4.5', f'"product_price": {number}'),
        line()[:-1] + f', "note": {number}}}',
        json.dumps({"operationType": "replace", "fullDocument": RECEIPT, "clusterTime": 0})[:-1]
        + f', "x": {number}}}',
    ):
        check(text)
    refused = line().replace('"product_price": 4.5', '"product_price": 1e9999999999999999999')
    assert usual_receipt_line(refused, WHERE) is None
    unreadable = general(refused)
    assert unreadable is not None and not isinstance(unreadable, Parsed)


def test_duplicate_keys_keep_their_last_value_both_ways() -> None:
    text = line()[:-1] + ', "Store_ID": "x"}'
    assert usual_receipt_line(text, WHERE) is None
    text = line()[:-1] + ', "Store_ID": 9}'
    assert check(text)
    fast = usual_receipt_line(text, WHERE)
    assert fast is not None and fast.receipt is not None and fast.receipt.store_id == 9


def test_the_usual_receipt_is_read_fast_with_exact_cents_and_canonical_items() -> None:
    fast = usual_receipt_line(line(), WHERE)
    assert fast is not None and fast.receipt is not None
    assert fast.key == "oid:6650c7e2a1b2c3d4e5f60718"
    assert fast.receipt_id == "6650c7e2a1b2c3d4e5f60718"
    assert fast.where == WHERE and fast.raw == "" and fast.reason is None
    assert fast.receipt.cents == 1235  # 12.345 rounded half-up, from the number's own text
    assert fast.receipt.items == (("Café Crème", 1), ("Latte", 3))
    assert (fast.receipt.day, fast.receipt.hour) == (dt.date(2024, 2, 29), 7)
