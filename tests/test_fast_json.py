"""`sources/fast_json`: msgspec reads a line's JSON text exactly as the standard library's
decoder does (same values, same types, the same `Decimal` digits and exponent, key order), or
it leaves the text to it (`MISSED`), so `read_json`'s values and failure reasons, and hence
every quarantine reason, are what they were without it.

Inputs: every line of the hostile-input corpus (`hostile_corpus.py`), the drawn JSON of
`test_decoders_total` (extreme numbers, nesting thousands deep, every Unicode plane, lone
surrogates) and of `test_fuzz` (receipt-shaped documents with odd values), and the boundaries
of the two guards (nesting, integer digits)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hostile_corpus import CASES
from hypothesis import given
from hypothesis import strategies as st
from test_decoders_total import ISSUE_NUMBERS, examples
from test_decoders_total import json_lines as hostile_json_lines
from test_fuzz import json_lines as receipt_json_lines

from coffeeshop.sources import fast_json
from coffeeshop.sources.jsonl import BadJson, read_json

# The standard library's decoder as `read_json` configures it (without the fast path).
STDLIB = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down; a `Decimal` by its digits and exponent
    (`-0.0` is not `0.00`), an object by its keys in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def stdlib_outcome(text: str) -> tuple[str, Any]:
    try:
        return "value", STDLIB.decode(text)
    except (ValueError, ArithmeticError, RecursionError) as exc:
        return "error", type(exc)


def read_outcome(text: str) -> tuple[str, Any]:
    try:
        return "value", read_json(text)
    except BadJson as exc:
        return "error", (exc.reason, exc.whole)


def slow_read_outcome(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    with monkeypatch.context() as m:
        m.setattr(fast_json, "decode", lambda _text: fast_json.MISSED)
        return read_outcome(text)


def check(text: str) -> None:
    """The fast decoder misses `text` or reads what the standard library reads (which
    then also succeeds)."""
    fast = fast_json.decode(text)
    if fast is fast_json.MISSED:
        return
    kind, value = stdlib_outcome(text)
    assert kind == "value", f"msgspec read {text[:80]!r}, which the standard library refuses"
    assert same(fast, value), f"{text[:80]!r}: msgspec {fast!r:.80}, stdlib {value!r:.80}"


def corpus_texts() -> Iterator[str]:
    for case in CASES:
        for line in case.lines:
            data = line.rstrip(b"\r\n")
            try:
                yield data.decode("utf-8")
            except UnicodeDecodeError:  # never reaches a JSON decoder
                continue


def test_every_hostile_corpus_line_reads_the_same() -> None:
    texts = list(corpus_texts())
    assert len(texts) > 300
    read_fast = [t for t in texts if fast_json.decode(t) is not fast_json.MISSED]
    assert len(read_fast) > 100  # the corpus exercises the fast path, not only the fallback
    for text in texts:
        check(text)


def test_every_hostile_corpus_line_gives_read_json_the_same_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for text in corpus_texts():
        if fast_json.decode(text) is fast_json.MISSED:
            continue  # read_json then runs the same code with or without the fast path
        fast = read_outcome(text)
        slow = slow_read_outcome(text, monkeypatch)
        assert fast[0] == slow[0], text[:80]
        if fast[0] == "error":
            assert fast == slow
        else:
            assert same(fast[1], slow[1]), text[:80]


@examples(400)
@given(st.one_of(hostile_json_lines(), receipt_json_lines()))
def test_drawn_json_reads_the_same(line: bytes) -> None:
    try:
        text = line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return
    check(text)


@pytest.mark.parametrize("number", ISSUE_NUMBERS)
def test_each_extreme_number_reads_the_same(number: str) -> None:
    for text in (number, f"[{number}]", f'{{"total_price": {number}}}', f"-{number}"):
        check(text)


@pytest.mark.parametrize("opener,closer", [("[", "]"), ('{"a":', "}")])
def test_nesting_at_and_past_the_guard(opener: str, closer: str) -> None:
    for depth in (1, fast_json.MAX_OPENERS, fast_json.MAX_OPENERS + 1, 990, 1000, 5000):
        text = opener * depth + "1.5" + closer * depth
        check(text)
        missed = fast_json.decode(text) is fast_json.MISSED
        assert missed == (depth > fast_json.MAX_OPENERS)


def test_integers_near_the_digit_limit() -> None:
    limit = fast_json.max_chars()
    for digits in (18, 19, 20, 64, limit - 1, limit, limit + 1, 4300, 4301):
        for text in ("9" * digits, "-" + "9" * digits, "[" + "1" * digits + "]"):
            check(text)
            if len(text) > limit:
                assert fast_json.decode(text) is fast_json.MISSED


def test_a_lowered_digit_limit_lowers_the_longest_text_tried() -> None:
    before = sys.get_int_max_str_digits()
    try:
        sys.set_int_max_str_digits(640)
        assert fast_json.max_chars() == 640
        text = "1" * 641
        assert fast_json.decode(text) is fast_json.MISSED
        sys.set_int_max_str_digits(0)  # unlimited: still no longer than the default limit
        assert fast_json.max_chars() == 4300
    finally:
        sys.set_int_max_str_digits(before)


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", '"\\ud800"', '{"a": -Infinity}', "1e99999999999999999999", "[1,]", ""],
)
def test_what_msgspec_refuses_goes_to_the_standard_library(text: str) -> None:
    assert fast_json.decode(text) is fast_json.MISSED
    check(text)


def test_a_receipt_line_is_read_fast_with_exact_decimals() -> None:
    text = (
        '{"_id": "r1", "Store_ID": 3, "total_price": 12.50, "items": '
        '[{"product_name": "Café", "product_quantity": 2, "product_price": 6.25e0}]}'
    )
    value = fast_json.decode(text)
    assert value is not fast_json.MISSED
    assert same(value, STDLIB.decode(text))
    assert value["total_price"].as_tuple() == Decimal("12.50").as_tuple()
