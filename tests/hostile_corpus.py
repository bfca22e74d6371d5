"""A corpus of bad and odd input lines for `test_hostile_input.py`, built byte by byte.

Every `Case` is one kind of hostile input: the raw bytes of one or more lines (no line
ends: the test writes the file), where they go, and what the pipeline must do with them:

- accepted: the line is a receipt (or change) per the README's validation rules; `receipts`
  states its contribution by hand (store, day, hour, cents, items, key), so the expected
  tables never come from the code under test;
- quarantined: kept in `cs_quarantine` with a reason matching `reason` (a regex naming the
  field or the problem) and a position that says "line N (byte B)";
- skipped: a change that touches no receipt (an update whose document is gone);
- ignored: blank lines, neither counted nor quarantined.

The valid receipts around the hostile lines (`NEIGHBOURS`) must come through untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import bson
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
from helpers import receipt

from coffeeshop.core.receipts import Receipt, receipt_key

BOM = b"\xef\xbb\xbf"
OID = "6650c7e2a1b2c3d4e5f60718"

# -- the valid receipts around every hostile line ------------------------------------------------

NEIGHBOURS: list[dict[str, Any]] = [
    receipt("n1", store=1, date="2026-11-23", time="08:05:00", total="4.20", items=[("Latte", 1)]),
    receipt(42, store=2, date="2026-11-17", time="12:30", total=7.25, items=[("Espresso", 2)]),
    receipt("n3", store=1, date="2026-10-31", time="23:59:59", total=0, items=[]),
    receipt("n4", store=3, date="2026-11-24", time="07:00", total="15.00", items=[("Latte", 3)]),
]
# How many neighbours come before the hostile lines (placement "middle").
BEFORE = 2


def neighbour_lines() -> list[bytes]:
    return [json.dumps(doc).encode() for doc in NEIGHBOURS]


# -- building hostile lines --------------------------------------------------------------------


def j(value: Any) -> bytes:
    """A JSON value as UTF-8 bytes (non-ASCII written raw, not escaped)."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def items(*pairs: tuple[str, Any]) -> bytes:
    return j([{"product_name": name, "product_quantity": qty} for name, qty in pairs])


def raw_items(*pairs: tuple[bytes, bytes]) -> bytes:
    """Items from raw JSON fragments: (name token, quantity token)."""
    return (
        b"["
        + b", ".join(
            b'{"product_name": ' + name + b', "product_quantity": ' + qty + b"}"
            for name, qty in pairs
        )
        + b"]"
    )


_DEFAULT: dict[str, bytes] = {
    "_id": b"901",
    "Store_ID": b"7",
    "transactionDate": b'"2026-11-20"',
    "transactionTime": b'"08:15:42"',
    "total_price": b"12.50",
    "items": b'[{"product_name": "Latte", "product_quantity": 1, "product_price": 12.5}]',
}


def doc(**fields: bytes | None) -> bytes:
    """A receipt line from raw JSON fragments; a field given as None is left out."""
    merged = {**_DEFAULT, **fields}
    parts = [j(name) + b": " + value for name, value in merged.items() if value is not None]
    return b"{" + b", ".join(parts) + b"}"


def change(operation: Any, **fields: Any) -> bytes:
    return j({"operationType": operation, **fields})


def R(
    *,
    key: str = "int:901",
    store: int = 7,
    date: str = "2026-11-20",
    hour: int = 8,
    total: str = "12.50",
    sold: dict[str, int] | None = None,
) -> Receipt:
    """An expected receipt, stated by hand (defaults: what `doc()` holds)."""
    cents = Decimal(total).scaleb(2)
    assert cents == cents.to_integral_value(), total
    return Receipt(
        key=key,
        store_id=store,
        day=dt.date.fromisoformat(date),
        hour=hour,
        cents=int(cents),
        items=tuple(sorted((sold if sold is not None else {"Latte": 1}).items())),
    )


# -- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    lines: Sequence[bytes]
    outcome: str  # accepted | quarantined | skipped | ignored | mixed
    note: str = ""  # the rule observed, for readers and the report
    receipts: Sequence[Receipt] = ()  # hostile receipts expected in the tables
    removes: Sequence[str] = ()  # neighbour keys the hostile lines delete or replace
    reason: str | None = None  # regex every quarantine reason must match (re.search)
    reasons: Sequence[str] | None = None  # one regex per quarantined line, in order
    receipt_id: str | None = None  # expected cs_quarantine.receipt_id (None: not checked)
    counts: tuple[int, int, int] | None = None  # (applied, quarantined, skipped) of the case
    placement: str = "middle"  # middle | first (before every neighbour)
    eol: bytes = b"\n"  # the line end of every line of the file
    mariadb: bool = False  # also run on MariaDB
    slow: bool = False  # a big input: larger time budget
    xfail: str | None = None  # "BUG: ..." when the case exposes a defect
    xfail_mariadb: str | None = None  # "BUG: ..." on MariaDB only
    bad: Sequence[int] | None = None  # indexes of the quarantined lines (default: per outcome)

    def quarantined_lines(self) -> list[int]:
        if self.bad is not None:
            return list(self.bad)
        return list(range(len(self.lines))) if self.outcome == "quarantined" else []

    def expected_counts(self) -> tuple[int, int, int]:
        if self.counts is not None:
            return self.counts
        n = len(self.lines)
        return {
            "accepted": (n, 0, 0),
            "quarantined": (0, n, 0),
            "skipped": (0, 0, n),
            "ignored": (0, 0, 0),
        }[self.outcome]


def quarantined(id: str, line: bytes, reason: str, **kw: Any) -> Case:
    return Case(id, [line], "quarantined", reason=reason, **kw)


def accepted(id: str, lines: bytes | Sequence[bytes], *expect: Receipt, **kw: Any) -> Case:
    lines = [lines] if isinstance(lines, bytes) else list(lines)
    return Case(id, lines, "accepted", receipts=expect or (R(),), **kw)


def _utf8_error(line: bytes, byte: int) -> str:
    col = line.index(bytes([byte])) + 1
    return rf"^not valid UTF-8: byte 0x{byte:02x} at column {col}$"


def _deep(depth: int, open_: bytes = b"[", close: bytes = b"]", inner: bytes = b"") -> bytes:
    return open_ * depth + inner + close * depth


NAME_100 = "A" + "b" * 98 + "Z"
NAME_101 = NAME_100 + "!"
EMOJI_100 = "🥐" * 100
FIVE_MB = 5 * 1024 * 1024
TEN_THOUSAND = [(f"Item {i:05d}", 1 + i % 3) for i in range(10_000)]
SEVENTEEN_MIB = 17 << 20
THREE_MIB_AND_A_BIT = 3_400_000
EIGHT_MIB = 8 << 20
# 100,000 distinct names of 100 characters: a 14 MB line, valid by every field rule.
HUNDRED_THOUSAND = [(f"Product {i:06d} " + "x" * 85, 1) for i in range(100_000)]

BAD_TIME = r'^transactionTime: must be "HH:MM:SS" or "HH:MM", got '
BAD_DATE = r'^transactionDate: must be a "YYYY-MM-DD"'
BAD_QTY = r"^items\[0\]\.product_quantity: must be an integer ≥ 1, got "
NOT_NUMBER = r"^total_price: must be a number, got an object$"


def _cases() -> list[Case]:
    c: list[Case] = []
    add = c.append

    # -- bytes and framing ----------------------------------------------------------------------
    line = doc(items=b'[{"product_name": "Caf\xe9", "product_quantity": 1}]')
    add(quarantined("invalid-utf8-latin1-byte", line, _utf8_error(line, 0xE9)))
    line = doc(items=b'[{"product_name": "\xc0\xafetc", "product_quantity": 1}]')
    add(quarantined("invalid-utf8-overlong-slash", line, _utf8_error(line, 0xC0)))
    line = doc(items=b'[{"product_name": "x\xed\xa0\x80", "product_quantity": 1}]')
    add(quarantined("invalid-utf8-cesu-surrogate", line, _utf8_error(line, 0xED)))
    line = doc(items=b'[{"product_name": "Caf\xc3", "product_quantity": 1}]')
    add(quarantined("invalid-utf8-truncated-sequence", line, _utf8_error(line, 0xC3)))
    add(
        accepted(
            "bom-on-line-1",
            BOM + doc(),
            placement="first",
            note="a UTF-8 BOM at byte 0 of the file is skipped (README: BOM accepted)",
        )
    )
    add(
        quarantined(
            "bom-mid-file",
            BOM + doc(),
            r"^invalid JSON: Expecting value \(column 1\)$",
            note="only a BOM at byte 0 of the file is a byte-order mark; one mid-file means "
            "files were concatenated, and the line is not JSON: quarantined, never guessed",
        )
    )
    add(accepted("crlf-one-line", doc() + b"\r", note="a CR before the LF is dropped"))
    add(accepted("crlf-whole-file", doc(), eol=b"\r\n"))
    add(
        quarantined(
            "crlf-file-bad-line-raw-without-cr",
            b"{oops",
            r"^invalid JSON: Expecting property name enclosed in double quotes \(column 2\)$",
            eol=b"\r\n",
        )
    )
    add(
        quarantined(
            "cr-only-separator",
            doc(_id=b"902") + b"\r" + doc(_id=b"903"),
            r"^invalid JSON: Extra data \(column \d+\)$",
            note="only LF ends a line: two documents joined by a bare CR are one bad line",
        )
    )
    add(quarantined("nul-byte-after-object", doc() + b"\x00", r"^invalid JSON: Extra data"))
    add(
        quarantined(
            "nul-byte-inside-string",
            doc(items=b'[{"product_name": "Lat\x00te", "product_quantity": 1}]'),
            r"^invalid JSON: Invalid control character at",
        )
    )
    add(
        quarantined(
            "nul-escaped-in-name",
            doc(items=b'[{"product_name": "Lat\\u0000te", "product_quantity": 1}]'),
            r"^items\[0\]\.product_name: contains a NUL character$",
            receipt_id="901",
        )
    )
    add(quarantined("nul-only-line", b"\x00", r"^invalid JSON: Expecting value \(column 1\)$"))
    add(
        Case(
            "blank-and-whitespace-lines",
            [b"", b"   \t ", b"\x0b\x0c", b"\r"],
            "ignored",
            note="blank and ASCII-whitespace-only lines are skipped: not counted, not kept",
        )
    )
    add(
        Case(
            "blank-lines-still-count-in-line-numbers",
            [b"", b" \t", b"{oops"],
            "mixed",
            counts=(0, 1, 0),
            bad=[2],
            reason=r"^invalid JSON: Expecting property name",
        )
    )
    add(
        quarantined(
            "nbsp-only-line",
            b"\xc2\xa0",
            r"^invalid JSON: Expecting value \(column 1\)$",
            note="U+00A0 is not JSON whitespace: a line holding only it is not blank",
        )
    )
    add(
        accepted(
            "u2028-and-nel-inside-name",
            doc(items=items(("Lat\u2028te", 1), ("Mo\u0085cha", 1))),
            R(sold={"Lat\u2028te": 1, "Mo\u0085cha": 1}),
            note="only LF splits lines (not U+2028, U+0085 as str.splitlines would)",
            mariadb=True,
        )
    )
    add(
        quarantined(
            "truncated-json-mid-file",
            doc()[:-20],
            r"^invalid JSON: ",
        )
    )

    # -- JSON syntax ----------------------------------------------------------------------------
    add(
        accepted(
            "duplicate-keys-last-wins",
            b'{"_id": 901, "total_price": 99, "Store_ID": 7, "transactionDate": "2026-11-20", '
            b'"transactionTime": "08:15", "items": [{"product_name": "Latte", '
            b'"product_quantity": 1}], "total_price": 12.50}',
            note="duplicate keys: the last one wins, as Python's json does",
        )
    )
    add(
        accepted(
            "duplicate-id-last-wins",
            b'{"_id": "n1", "_id": 903, "Store_ID": 7, "transactionDate": "2026-11-20", '
            b'"transactionTime": "08:15", "total_price": 12.50, "items": '
            b'[{"product_name": "Latte", "product_quantity": 1}]}',
            R(key="int:903"),
            note='the last _id wins: the line is receipt 903 and leaves "n1" alone',
        )
    )
    add(quarantined("trailing-garbage", doc() + b" xyz", r"^invalid JSON: Extra data"))
    add(
        quarantined(
            "two-objects-on-one-line",
            doc(_id=b"902") + doc(_id=b"903"),
            r"^invalid JSON: Extra data",
        )
    )
    add(
        Case(
            "json5-isms",
            [b"{'_id': 901}", doc()[:-1] + b",}", b"// a comment", b"{_id: 901}"],
            "quarantined",
            reasons=[
                r"^invalid JSON: Expecting property name enclosed in double quotes \(column 2\)$",
                r"^invalid JSON: ",  # the wording for a trailing comma differs by Python version
                r"^invalid JSON: Expecting value \(column 1\)$",
                r"^invalid JSON: Expecting property name enclosed in double quotes \(column 2\)$",
            ],
        )
    )
    add(
        quarantined(
            "nesting-10000-deep-array",
            _deep(10_000),
            r"^invalid JSON: nested too deeply$",
        )
    )
    add(
        quarantined(
            "nesting-10000-deep-inside-receipt",
            doc(note=_deep(10_000, b'{"a": ', b"}", b"1")),
            r"^invalid JSON: nested too deeply$",
        )
    )
    add(
        quarantined(
            "nesting-in-items",
            doc(items=b"[" + _deep(50) + b"]"),
            r"^items\[0\]: must be an object, got a list$",
            receipt_id="901",
        )
    )
    add(
        quarantined(
            "nesting-900-deep-id",
            doc(_id=_deep(900, inner=b"1")),
            r"^(_id: cannot be read: maximum recursion depth exceeded"
            r"|invalid JSON: nested too deeply$)",
            note="parses as JSON (near Python's recursion limit, so how deep the caller's stack "
            "is decides which reason), but an _id this deep cannot be keyed: quarantined",
        )
    )
    for token, kind in [
        (b"[]", "an array"),
        (b'"x"', "a string"),
        (b"42", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ]:
        name = kind.split()[-1]
        add(quarantined(f"not-an-object-{name}", token, rf"^expected a JSON object, got {kind}$"))
    add(quarantined("empty-object", b"{}", r"^document has no _id$"))

    # -- money ----------------------------------------------------------------------------------
    for name, token, shown in [
        ("NaN", b"NaN", "NaN"),
        ("Infinity", b"Infinity", "Infinity"),
        ("minus-Infinity", b"-Infinity", "-Infinity"),
    ]:
        add(
            quarantined(
                f"total-{name}",
                doc(total_price=token),
                rf"^total_price: must be finite, got {shown}$",
                receipt_id="901",
                mariadb=True,
            )
        )
    add(
        quarantined(
            "total-1e400",
            doc(total_price=b"1e400"),
            r"^total_price: must be at most 9999999999\.99, got 1E\+400$",
            mariadb=True,
        )
    )
    # Issue 18.1: an exponent past Decimal's ±999999999999999999 raised InvalidOperation out
    # of the reader, even in a field validation ignores: sync died on every restart.
    out_of_range = r"^invalid JSON: the number {} is out of range: exact decimals take exponents"
    for case_id, line, number in [
        (
            "number-exponent-past-range-in-product-price",
            doc(
                items=b'[{"product_name": "Latte", "product_quantity": 1, '
                b'"product_price": 1e9999999999999999999}]'
            ),
            "1e9999999999999999999",
        ),
        (
            "number-exponent-past-range-in-total",
            doc(total_price=b"1E+1000000000000000000"),
            "1E+1000000000000000000",
        ),
        (
            "number-tiny-exponent-in-ignored-field",
            doc(note=b"-1e-99999999999999999999"),
            "-1e-99999999999999999999",
        ),
        (
            "number-zero-huge-exponent-store-id",
            doc(Store_ID=b"0e99999999999999999999"),
            "0e99999999999999999999",
        ),
        (
            "number-exponent-past-range-in-id",
            doc(_id=b"1e-99999999999999999999"),
            "1e-99999999999999999999",
        ),
        (
            "number-exponent-past-range-in-change-event",
            b'{"operationType": "replace", "documentKey": {"_id": 901}, "fullDocument": '
            + doc(total_price=b"12.5e-10000000000000000000")
            + b"}",
            "12.5e-10000000000000000000",
        ),
    ]:
        add(
            quarantined(
                case_id,
                line,
                out_of_range.format(re.escape(number)),
                note="a number no exact decimal holds makes the line unreadable: quarantined "
                "with the number named, its neighbours applied",
                mariadb=True,
            )
        )
    add(
        accepted(
            "total-negative-zero",
            [doc(total_price=b"-0"), doc(_id=b"902", total_price=b"-0.0")],
            R(total="0.00"),
            R(key="int:902", total="0.00"),
            note="-0 and -0.0 are zero, not negative: accepted as 0.00",
            mariadb=True,
        )
    )
    add(
        quarantined(
            "total-string-with-spaces",
            doc(total_price=b'" 12.50"'),
            r"^total_price: must be a decimal number, got the string ' 12\.50'$",
            mariadb=True,
        )
    )
    add(
        quarantined(
            "total-decimal-comma",
            doc(total_price=b'"12,50"'),
            r"^total_price: must be a decimal number, got the string '12,50'$",
            mariadb=True,
        )
    )
    for token, cents in [
        (b"12.345", "12.35"),
        (b"0.005", "0.01"),
        (b"2.675", "2.68"),
        (b"1.0049999999999999", "1.00"),
        (b'"0.125"', "0.13"),
        (b"1e-400", "0.00"),
        (b'{"$numberDecimal": "12.345"}', "12.35"),
        (b"9999999999.99", "9999999999.99"),
    ]:
        text = token.decode().replace('"', "")
        if text.startswith("{"):
            text = "numberDecimal-12.345"
        add(
            accepted(
                f"total-{text}-half-up",
                doc(total_price=token),
                R(total=cents),
                note="read from the JSON text as an exact decimal, then rounded half-up",
                mariadb=True,
            )
        )
    add(
        quarantined(
            "total-above-max-before-rounding",
            doc(total_price=b"9999999999.994"),
            r"^total_price: must be at most 9999999999\.99, got 9999999999\.994$",
            note="the maximum is checked on the value as written, before rounding to cents",
            mariadb=True,
        )
    )
    add(
        quarantined(
            "total-numberDouble-NaN",
            doc(total_price=b'{"$numberDouble": "NaN"}'),
            r"^total_price: must be finite, got NaN$",
            mariadb=True,
        )
    )

    # -- Store_ID and quantities ----------------------------------------------------------------
    add(
        quarantined(
            "store-id-1e5000",
            doc(Store_ID=b"1e5000"),
            r"^Store_ID: must be at most 2147483647, got 1E\+5000$",
        )
    )
    add(
        quarantined(
            "store-id-5000-digit-string",
            doc(Store_ID=j("9" * 5000)),
            r"^Store_ID: must be at most 2147483647, got '9+\.\.\.$",
        )
    )
    add(
        quarantined(
            "store-id-5000-digit-integer",
            doc(Store_ID=b"9" * 5000),
            r"^invalid JSON: Exceeds the limit \(4300 digits\) for integer string conversion",
            note="Python refuses integers of more than 4300 digits: the line is unreadable",
        )
    )
    for token in (b"true", b"false"):
        add(
            quarantined(
                f"store-id-{token.decode()}",
                doc(Store_ID=token),
                r"^Store_ID: must be an integer ≥ 0 \(or a string of digits\), got a boolean$",
            )
        )
    add(
        quarantined(
            "store-id-arabic-indic-digit",
            doc(Store_ID=j("٣")),
            r"^Store_ID: must be an integer ≥ 0 \(or a string of digits\), got the string '٣'$",
            note="only ASCII digits: int('٣') would be 3 in Python, but the rule says digits",
        )
    )
    add(
        accepted(
            "store-id-odd-but-valid-forms",
            [
                doc(_id=b"901", Store_ID=b'"07"'),
                doc(_id=b"902", Store_ID=b"1e2"),
                doc(_id=b"903", Store_ID=b"-0"),
                doc(_id=b"904", Store_ID=b'{"$numberLong": "9"}'),
            ],
            R(store=7),
            R(key="int:902", store=100),
            R(key="int:903", store=0),
            R(key="int:904", store=9),
            note='"07" is 7, 1e2 is the integral number 100, -0 is 0',
        )
    )
    add(
        quarantined(
            "store-id-numberLong-1.5",
            doc(Store_ID=b'{"$numberLong": "1.5"}'),
            r"^Store_ID: must be an integer ≥ 0 \(or a string of digits\), got an object$",
        )
    )
    for name, token, shown in [
        ("0", b"0", "the number 0"),
        ("minus-1", b"-1", "the number -1"),
        ("1.5", b"1.5", "the number 1.5"),
        ("string-2", b'"2"', "the string '2'"),
        ("null", b"null", "null"),
    ]:
        add(
            quarantined(
                f"quantity-{name}",
                doc(items=raw_items((b'"Latte"', token))),
                BAD_QTY + re.escape(shown) + "$",
                receipt_id="901",
                note="quantity: an integer ≥ 1 (an integral float counts; a string does not)",
            )
        )
    add(
        accepted(
            "quantity-integral-float",
            doc(items=raw_items((b'"Latte"', b"2.0"), (b'"Mocha"', b"1e1"))),
            R(sold={"Latte": 2, "Mocha": 10}),
        )
    )
    add(
        quarantined(
            "quantity-2147483648",
            doc(items=raw_items((b'"Latte"', b"2147483648"))),
            r"^items\[0\]\.product_quantity: must be at most 2147483647, got 2147483648$",
        )
    )
    add(
        accepted(
            "quantity-max-times-30",
            doc(items=items(*[(f"Bulk {i:02d}", 2**31 - 1) for i in range(30)])),
            R(sold={f"Bulk {i:02d}": 2**31 - 1 for i in range(30)}),
            note="every quantity within the limit: the receipt is valid, whatever the sum",
            mariadb=True,
        )
    )
    add(
        Case(
            "total-max-on-10001-receipts",
            [doc(_id=str(9000 + i).encode(), total_price=b"9999999999.99") for i in range(10_001)],
            "accepted",
            receipts=[R(key=f"int:{9000 + i}", total="9999999999.99") for i in range(10_001)],
            note="each total is at the allowed maximum; their store-month sum is 1.0001e14",
            slow=True,
            mariadb=True,
        )
    )

    # -- items ----------------------------------------------------------------------------------
    for name, token, shown in [
        ("string", b'"Latte"', "the string 'Latte'"),
        ("object", b"{}", "an object"),
        ("null", b"null", "null"),
        ("number", b"3", "the number 3"),
    ]:
        add(
            quarantined(
                f"items-not-a-list-{name}",
                doc(items=token),
                r"^items: must be a list, got " + re.escape(shown) + "$",
            )
        )
    add(
        quarantined(
            "item-not-an-object",
            doc(items=b'["Latte"]'),
            r"^items\[0\]: must be an object, got the string 'Latte'$",
        )
    )
    add(
        quarantined(
            "item-name-not-a-string",
            doc(items=raw_items((b'{"$oid": "' + OID.encode() + b'"}', b"1"))),
            r"^items\[0\]\.product_name: must be a string, got an object$",
        )
    )
    add(
        accepted(
            "items-10000",
            doc(items=items(*TEN_THOUSAND)),
            R(sold=dict(TEN_THOUSAND)),
            slow=True,
            mariadb=True,
        )
    )
    add(
        accepted(
            "items-10000-same-name",
            doc(items=items(*[("Latte", 1)] * 10_000)),
            R(sold={"Latte": 10_000}),
            note="repeated names add up",
            slow=True,
        )
    )
    add(
        accepted(
            "line-5mb-valid-padding",
            doc(padding=j("x" * FIVE_MB)),
            note="a 5 MB line under the 16 MiB limit is read like any other",
            slow=True,
        )
    )
    add(
        quarantined(
            "line-5mb-name",
            doc(items=items(("L" * FIVE_MB, 1))),
            rf"^items\[0\]\.product_name: is {FIVE_MB} characters long, at most 100 are allowed$",
            slow=True,
        )
    )
    add(
        quarantined(
            "line-5mb-unterminated-string",
            b'{"_id": 901, "x": "' + b"y" * FIVE_MB,
            r"^invalid JSON: Unterminated string starting at",
            slow=True,
        )
    )

    # -- large lines (issue 10): each one stopped MariaDB syncing for good ----------------------
    add(
        quarantined(
            "line-17mib-valid-json",
            doc(padding=j("x" * SEVENTEEN_MIB)),
            rf"^line is {len(doc(padding=j('x' * SEVENTEEN_MIB))):d} bytes long, more than "
            rf"{16 << 20}",
            note="over the 16 MiB line limit: skipped to its newline, kept as a prefix and hash",
            slow=True,
            mariadb=True,
        )
    )
    line = doc(padding=b'"' + b"\xe9" * THREE_MIB_AND_A_BIT + b'"')
    add(
        quarantined(
            "invalid-utf8-3.2mib",
            line,
            _utf8_error(line, 0xE9),
            note="each bad byte is 4 characters of raw text (\\xe9): 13 MiB before the cap",
            slow=True,
            mariadb=True,
        )
    )
    add(
        quarantined(
            "quotes-8mib",
            b'"' * EIGHT_MIB,
            r"^invalid JSON: Extra data \(column 3\)",
            note="every quote is escaped in SQL: 16 MiB of statement before the cap",
            slow=True,
            mariadb=True,
        )
    )
    add(
        quarantined(
            "receipt-100000-distinct-items-14mb",
            doc(items=items(*HUNDRED_THOUSAND)),
            r"^items: 100000 distinct products take \d+ bytes stored, more than the 1048576 "
            r"one receipt may hold",
            receipt_id="901",
            note="valid by every field rule, but its stored row would not fit a statement",
            slow=True,
            mariadb=True,
        )
    )
    add(
        quarantined(
            "operation-type-1mib",
            change("x" * (1 << 20)),
            r"^unsupported change event operationType 'x+… \[cut from 1,048,617 characters\]$",
            note="a reason quoting the input is cut too (MySQL's TEXT holds 64 KiB)",
            slow=True,
            mariadb=True,
        )
    )

    # -- product names --------------------------------------------------------------------------
    add(
        accepted(
            "name-zero-width-joiner-and-space",
            doc(items=items(("Latte\u200d", 1), ("Latte\u200b", 2), ("\u200b", 3))),
            R(sold={"Latte\u200d": 1, "Latte\u200b": 2, "\u200b": 3}),
            note="zero-width characters are not whitespace: three products besides 'Latte'",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-combining-vs-precomposed",
            doc(items=items(("Cafe\u0301 Cre\u0300me", 1), ("Caf\u00e9 Cr\u00e8me", 2))),
            R(sold={"Caf\u00e9 Cr\u00e8me": 3}),
            note="names are normalised to NFC: e+U+0301 (NFD) and U+00E9 are one product "
            "(issue 18.15; they used to be two identical-looking ones)",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-case-and-accent-variants",
            doc(items=items(("latte", 1), ("LATTE", 2), ("Latté", 3))),
            R(sold={"latte": 1, "LATTE": 2, "Latté": 3}),
            note="names compare exactly (the neighbours' 'Latte' is a fourth product)",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-rtl-and-bidi-override",
            doc(items=items(("קפה הפוך", 1), ("\u202eettaL", 1), ("قهوة", 2))),
            R(sold={"קפה הפוך": 1, "\u202eettaL": 1, "قهوة": 2}),
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-4-byte-emoji",
            doc(items=items(("🥐 Croissant", 1), ("☕", 2), ("👩‍👩‍👧", 1))),
            R(sold={"🥐 Croissant": 1, "☕": 2, "👩‍👩‍👧": 1}),
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-100-emoji",
            doc(items=items((EMOJI_100, 1))),
            R(sold={EMOJI_100: 1}),
            note="100 characters of 4 bytes each fit VARCHAR(100)",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-exactly-100",
            doc(items=items((NAME_100, 1))),
            R(sold={NAME_100: 1}),
            mariadb=True,
        )
    )
    add(
        quarantined(
            "name-101",
            doc(items=items((NAME_101, 1))),
            r"^items\[0\]\.product_name: is 101 characters long, at most 100 are allowed$",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-101-strips-to-100",
            doc(items=items((" " + NAME_100, 1), (NAME_100 + "\t", 2))),
            R(sold={NAME_100: 3}),
            note="length is measured after stripping",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-unicode-whitespace-stripped",
            doc(items=items(("\u00a0Latte", 1), ("Latte\u3000", 1), ("\u2028Latte\u2029", 1))),
            R(sold={"Latte": 3}),
            note="str.strip() strips Unicode whitespace (NBSP, U+3000, U+2028/9) too",
            mariadb=True,
        )
    )
    add(
        quarantined(
            "name-only-whitespace",
            doc(items=items((" \u00a0\t", 1))),
            r"^items\[0\]\.product_name: is empty$",
        )
    )
    add(
        quarantined(
            "name-lone-surrogate-escape",
            doc(items=b'[{"product_name": "Lat\\ud800te", "product_quantity": 1}]'),
            r"^items\[0\]\.product_name: contains a lone UTF-16 surrogate$",
            mariadb=True,
        )
    )
    add(
        accepted(
            "name-surrogate-pair-escape",
            doc(
                items=b'[{"product_name": "\\ud83e\\udd50", "product_quantity": 1}, '
                + b'{"product_name": "\xf0\x9f\xa5\x90", "product_quantity": 2}]'
            ),
            R(sold={"🥐": 3}),
            note="an escaped surrogate pair is the same character as the raw UTF-8",
            mariadb=True,
        )
    )

    # -- dates and times ------------------------------------------------------------------------
    add(
        accepted(
            "date-2024-02-29",
            doc(transactionDate=b'"2024-02-29"'),
            R(date="2024-02-29"),
        )
    )
    add(
        quarantined(
            "date-2023-02-29",
            doc(transactionDate=b'"2023-02-29"'),
            r"^transactionDate: '2023-02-29' is not a real calendar date$",
        )
    )
    add(
        accepted(
            "date-extremes-0001-and-9999",
            [
                doc(transactionDate=b'"0001-01-01"'),
                doc(_id=b"902", transactionDate=b'"9999-12-31"'),
            ],
            R(date="0001-01-01"),
            R(key="int:902", date="9999-12-31"),
            note="any real calendar date, even outside what MariaDB's DATE promises",
            mariadb=True,
        )
    )
    add(quarantined("date-unpadded", doc(transactionDate=b'"2026-1-5"'), BAD_DATE))
    add(
        quarantined("date-fullwidth-digits", doc(transactionDate=j("２０２６-１１-２０")), BAD_DATE)
    )
    add(
        accepted(
            "date-extended-json-with-offset",
            doc(transactionDate=b'{"$date": "2026-11-20T23:30:00-05:00"}', transactionTime=None),
            R(date="2026-11-21", hour=4),
            note="a BSON datetime counts by its UTC date and hour",
        )
    )
    add(
        accepted(
            "date-extended-json-numberLong",
            doc(transactionDate=b'{"$date": {"$numberLong": "1795737600000"}}'),
            R(date="2026-11-27", hour=8),
            note="an explicit transactionTime wins over the datetime's hour",
        )
    )
    add(
        quarantined(
            "date-extended-json-year-10000",
            doc(transactionDate=b'{"$date": {"$numberLong": "253402300800000"}}'),
            BAD_DATE + r" string or a date, got an object$",
        )
    )
    add(
        quarantined(
            "date-extended-json-not-a-date",
            doc(transactionDate=b'{"$date": "not a date"}'),
            BAD_DATE + r" string or a date, got an object$",
        )
    )
    for name, token in [
        ("24:00", b"24:00"),
        ("23:60", b"23:60"),
        ("7:05-single-digit-hour", b"7:05"),
        ("23:59:60-leap-second", b"23:59:60"),
        ("trailing-newline", b"08:15\\n"),
        ("arabic-indic-digits", "٠٨:١٥".encode()),
    ]:
        add(
            quarantined(
                f"time-{name}",
                doc(transactionTime=b'"' + token + b'"'),
                BAD_TIME + r"the string '",
                receipt_id="901",
            )
        )
    add(accepted("time-23:59:59", doc(transactionTime=b'"23:59:59"'), R(hour=23)))

    # -- _id of every BSON type, as Extended JSON ----------------------------------------------
    bson_ids: list[tuple[str, bytes, Any]] = [
        ("objectid", b'{"$oid": "' + OID.encode() + b'"}', ObjectId(OID)),
        ("objectid-uppercase", b'{"$oid": "' + OID.upper().encode() + b'"}', ObjectId(OID)),
        ("string", b'"r-901"', "r-901"),
        ("empty-string", b'""', ""),
        ("int32", b'{"$numberInt": "901"}', 901),
        ("int64", b'{"$numberLong": "9007199254740993"}', Int64(9007199254740993)),
        ("double", b'{"$numberDouble": "901.5"}', 901.5),
        ("decimal128", b'{"$numberDecimal": "901.50"}', Decimal128("901.5")),
        (
            "date",
            b'{"$date": {"$numberLong": "1795737600000"}}',
            dt.datetime(2026, 11, 27),
        ),  # PyMongo returns naive UTC datetimes
        ("binary", b'{"$binary": {"base64": "AAEC", "subType": "00"}}', b"\x00\x01\x02"),
        (
            "uuid",
            b'{"$uuid": "00112233-4455-6677-8899-aabbccddeeff"}',
            Binary(bytes.fromhex("00112233445566778899aabbccddeeff"), 4),
        ),
        ("regex", b'{"$regularExpression": {"pattern": "^a", "options": "i"}}', Regex("^a", "i")),
        ("timestamp", b'{"$timestamp": {"t": 1, "i": 2}}', Timestamp(1, 2)),
        ("minkey", b'{"$minKey": 1}', MinKey()),
        ("maxkey", b'{"$maxKey": 1}', MaxKey()),
        ("code", b'{"$code": "f()"}', Code("f()")),
        (
            "dbpointer",
            b'{"$dbPointer": {"$ref": "c", "$id": {"$oid": "' + OID.encode() + b'"}}}',
            DBRef("c", ObjectId(OID)),
        ),
        ("array", b'[1, "a", {"$numberLong": "2"}]', [1, "a", Int64(2)]),
        ("embedded-document", b'{"store": 7, "seq": {"$numberInt": "1"}}', {"store": 7, "seq": 1}),
        ("null", b"null", None),
        ("unknown-dollar-key", b'{"$foo": 1}', {"$foo": 1}),
        ("lone-surrogate-string", b'"r\\udc00"', "r\udc00"),
        ("long-string-5000", j("k" * 5000), "k" * 5000),
        ("huge-number-1e5000", b"1e5000", Decimal("1e5000")),
    ]
    for name, token, native in bson_ids:
        line = doc(_id=token)
        add(
            accepted(
                f"id-{name}",
                [line, line],  # twice: a stable key makes the second a no-op replace
                R(key=receipt_key(native)),
                note="keyed like the native BSON value PyMongo returns; a repeat is one receipt",
                mariadb=name in {"lone-surrogate-string", "long-string-5000", "binary", "regex"},
            )
        )
    add(
        quarantined(
            "id-50-lone-surrogates-invalid-receipt",
            doc(_id=b'"' + b"\\ud800" * 50 + b'"', Store_ID=b"-1"),
            r"^Store_ID: must be ≥ 0, got -1$",
            mariadb=True,
        )
    )
    add(
        accepted(
            "id-numeric-forms-are-one-receipt",
            [
                doc(_id=b"950", total_price=b"1"),
                doc(_id=b"950.0", total_price=b"2"),
                doc(_id=b'{"$numberInt": "950"}', total_price=b"3"),
                doc(_id=b'{"$numberLong": "950"}', total_price=b"4"),
                doc(_id=b'{"$numberDouble": "950"}', total_price=b"5"),
                doc(_id=b'{"$numberDecimal": "9.50E+2"}', total_price=b"6"),
            ],
            R(key="int:950", total="6.00"),
            note="numbers are keyed by value, as MongoDB's _id index compares them",
        )
    )
    add(
        accepted(
            "id-binary-subtype-4-equals-uuid",
            [
                doc(_id=b'{"$uuid": "00112233-4455-6677-8899-aabbccddeeff"}', total_price=b"1"),
                doc(
                    _id=b'{"$binary": {"base64": "ABEiM0RVZneImaq7zN3u/w==", "subType": "04"}}',
                    total_price=b"2",
                ),
            ],
            R(
                key=receipt_key(Binary(bytes.fromhex("00112233445566778899aabbccddeeff"), 4)),
                total="2.00",
            ),
        )
    )

    # -- Extended JSON with wrong $-keys --------------------------------------------------------
    add(
        quarantined(
            "id-oid-not-hex",
            doc(_id=b'{"$oid": "zz"}'),
            r"^_id: cannot be read: 'zz' is not a valid ObjectId",
        )
    )
    add(
        quarantined(
            "id-oid-extra-field",
            doc(_id=b'{"$oid": "' + OID.encode() + b'", "x": 1}'),
            r"^_id: cannot be read: Bad \$oid, extra field",
        )
    )
    add(
        quarantined(
            "id-numberLong-1.5",
            doc(_id=b'{"$numberLong": "1.5"}'),
            r"^_id: cannot be read: invalid literal for int\(\)",
        )
    )
    add(
        quarantined(
            "total-numberDecimal-abc",
            doc(total_price=b'{"$numberDecimal": "abc"}'),
            NOT_NUMBER,
            mariadb=True,
        )
    )
    add(
        quarantined(
            "total-numberDecimal-and-extra-key",
            doc(total_price=b'{"$numberDecimal": "1", "$x": 1}'),
            NOT_NUMBER,
        )
    )

    # -- change events --------------------------------------------------------------------------
    full = json.loads(doc())
    for op in ("drop", "invalidate", "Insert", 42, None):
        add(
            quarantined(
                f"change-operationType-{op}",
                change(op, fullDocument=full),
                r"^unsupported change event operationType " + re.escape(repr(op)) + "$",
            )
        )
    add(
        Case(
            "delete-unknown-id",
            [change("delete", documentKey={"_id": 123456})],
            "accepted",
            note="a delete of an id never seen changes nothing (and is counted as applied)",
        )
    )
    add(
        Case(
            "delete-by-numberLong-of-int-id",
            [change("delete", documentKey={"_id": {"$numberLong": "42"}})],
            "accepted",
            removes=["int:42"],
        )
    )
    add(
        accepted(
            "replace-by-float-id",
            doc(_id=b"42.0"),
            R(key="int:42"),
            removes=["int:42"],
            note="_id 42.0 is receipt 42: the line replaces it",
        )
    )
    add(
        accepted(
            "insert-event-id-from-documentKey",
            change(
                "insert",
                documentKey={"_id": 901},
                fullDocument={k: v for k, v in full.items() if k != "_id"},
            ),
        )
    )
    add(
        Case(
            "update-of-deleted-document",
            [change("update", documentKey={"_id": 901}, fullDocument=None)],
            "skipped",
        )
    )
    add(
        quarantined(
            "replace-without-fullDocument",
            change("replace", documentKey={"_id": 901}),
            r"^replace event has no fullDocument \(open the change stream with",
        )
    )
    add(
        quarantined(
            "delete-without-documentKey",
            change("delete"),
            r"^delete event has no documentKey\._id$",
        )
    )
    add(
        Case(
            "delete-of-null-id",
            [doc(_id=b"null"), change("delete", documentKey={"_id": None})],
            "accepted",
            counts=(2, 0, 0),
            note="MongoDB allows _id null (one per collection); its delete event must remove it",
        )
    )
    add(
        Case(
            "garbage-lines-10000",
            [b"x%d" % i for i in range(10_000)],
            "quarantined",
            reason=r"^invalid JSON: Expecting value \(column 1\)$",
            slow=True,
            mariadb=True,
        )
    )
    add(
        Case(
            "many-duplicate-lines",
            [doc()] * 1000,
            "accepted",
            receipts=[R()],
            note="1000 copies of one receipt: applied 1000 times, counted once",
        )
    )
    return c


CASES: list[Case] = _cases()


# -- BSON read from MongoDB -----------------------------------------------------------------------
#
# Documents as MongoDB stores them, byte for byte: values PyMongo's strict defaults cannot
# decode (a date outside years 1-9999, a string that is not UTF-8) and `_id`s whose values
# look like Extended JSON. `test_mongo_bson.py` puts each case's documents between the
# neighbours (as BSON) and reads them through every MongoDB path: the snapshot, the change
# stream, polling and the partitioned reader.

BSON_DEFAULT: dict[str, Any] = {
    "_id": 901,
    "Store_ID": 7,
    "transactionDate": "2026-11-20",
    "transactionTime": "08:15:42",
    "total_price": Decimal128("12.50"),
    "items": [{"product_name": "Latte", "product_quantity": 1, "product_price": 12.5}],
}
YEAR_10000_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z
YEAR_MINUS_3_MS = -62_261_827_200_000  # -0003-01-01T00:00:00Z (proleptic Gregorian)
MARK = "\x01not-utf8\x01"  # replaced by bytes that are not UTF-8 (same length: 10 bytes)
NOT_UTF8 = b"\xffnot-utf8\xfe"


def bson_doc(**fields: Any) -> bytes:
    """A receipt as raw BSON (the defaults above); a field given as None is left out, and
    every `MARK` in a string becomes bytes that are not UTF-8 (which `bson.encode` refuses
    to write, but MongoDB stores)."""
    merged = {k: v for k, v in {**BSON_DEFAULT, **fields}.items() if v is not None}
    data = bson.encode(merged)
    assert len(MARK.encode()) == len(NOT_UTF8)
    return data.replace(MARK.encode(), NOT_UTF8)


@dataclass(frozen=True)
class BsonCase:
    id: str
    documents: Sequence[bytes]
    outcome: str  # accepted | quarantined
    receipts: Sequence[Receipt] = ()  # accepted: the receipts expected, stated by hand
    reason: str | None = None  # quarantined: regex the reason must match
    receipt_id: str | None = None  # quarantined: cs_quarantine.receipt_id
    note: str = ""


def _date_ms(ms: int) -> Any:
    return DatetimeMS(ms)


def _bson_cases() -> list[BsonCase]:
    c: list[BsonCase] = []
    add = c.append
    out_of_range = r"^transactionDate: must be a \"YYYY-MM-DD\" string or a date, got a date "
    for name, ms, year in (
        ("year-10000", YEAR_10000_MS, 10000),
        ("year-minus-3", YEAR_MINUS_3_MS, -3),
    ):
        add(
            BsonCase(
                f"bson-date-{name}",
                [bson_doc(transactionDate=_date_ms(ms))],
                "quarantined",
                reason=out_of_range
                + rf"outside years 1-9999 \({ms} ms from 1970, about year {year}\)$",
                receipt_id="901",
                note="PyMongo's default raises InvalidBSON for the whole batch",
            )
        )
    add(
        BsonCase(
            "bson-extra-field-date-2^62",
            [bson_doc(created=_date_ms(2**62))],
            "accepted",
            receipts=[R()],
            note="a field the receipt does not use cannot stop it",
        )
    )
    date_id = _date_ms(2**62)
    add(
        BsonCase(
            "bson-id-date-2^62",
            [bson_doc(_id=date_id)],
            "accepted",
            receipts=[R(key=receipt_key(date_id, literal=True))],
        )
    )
    add(
        BsonCase(
            "bson-name-not-utf8",
            [bson_doc(items=[{"product_name": f"La{MARK}tte", "product_quantity": 1}])],
            "quarantined",
            reason=r"^items\[0\]\.product_name: contains a lone UTF-16 surrogate$",
            receipt_id="901",
            note="decoded with surrogateescape: the bytes are kept, the receipt quarantined",
        )
    )
    add(
        BsonCase(
            "bson-store-id-not-utf8",
            [bson_doc(Store_ID=f"7{MARK}")],
            "quarantined",
            reason=r"^Store_ID: must be an integer ≥ 0 \(or a string of digits\), got the string",
            receipt_id="901",
        )
    )
    add(
        BsonCase(
            "bson-extra-field-not-utf8",
            [bson_doc(cashier=f"Jo{MARK}")],
            "accepted",
            receipts=[R()],
        )
    )
    add(
        BsonCase(
            "bson-id-string-not-utf8",
            [bson_doc(_id=f"r-{MARK}")],
            "accepted",
            receipts=[R(key="str:r-" + NOT_UTF8.decode("utf-8", "surrogateescape"))],
        )
    )
    add(
        BsonCase(
            "bson-quantity-decimal128-nan",
            [bson_doc(items=[{"product_name": "Latte", "product_quantity": Decimal128("NaN")}])],
            "quarantined",
            reason=r"^items\[0\]\.product_quantity: must be an integer ≥ 1, got the number NaN$",
            receipt_id="901",
        )
    )
    # -- _ids spelled like Extended JSON are documents, not the values they spell ---------------
    for name, lookalike, native, native_key in (
        ("oid", {"$oid": OID}, ObjectId(OID), f"oid:{OID}"),
        ("numberLong", {"$numberLong": "5"}, 5, "int:5"),
        ("timestamp", {"$timestamp": {"t": 1, "i": 2}}, Timestamp(1, 2), None),
        ("code", "x", Code("x"), None),
    ):
        keys = [
            receipt_key(lookalike, literal=True),
            native_key or receipt_key(native, literal=True),
        ]
        add(
            BsonCase(
                f"bson-id-{name}-lookalike",
                [bson_doc(_id=lookalike, Store_ID=8), bson_doc(_id=native)],
                "accepted",
                receipts=[R(key=keys[0], store=8), R(key=keys[1])],
                note="two documents, two receipts: one key each",
            )
        )
    return c


BSON_CASES: list[BsonCase] = _bson_cases()
