"""The `cs_receipts` row, declared once: its columns, their SQL types and how each field of a
`Receipt` is encoded and decoded. Every form a receipt takes on its way to and from the
database is generated from `COLUMNS`: the row tuple (`receipt_row`, `row_to_receipt`), the
statement parameters (`receipt_params`), the reader's tuples (`READ_COLUMNS`,
`read_receipt`), the reader process's pipe (`pack_receipt`, `unpack_receipt`); the store
generates its SQL literals, LOAD DATA lines and schema from the same columns.

Pure. The functions are compiled once at import from each kind's expression templates
(`{v}` is the value), so a row is built as fast as a hand-written tuple, and a `Receipt`
field that no column carries stops the import instead of being dropped on the way.
Adding a field: the field on `Receipt` (no default) and its column below; `cs_receipts`
then needs a migration step (`store/migrations.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from coffeeshop.core.receipts import Receipt

Row = tuple[Any, ...]  # a `cs_receipts` row: the values of `COLUMNS`, in order

ID_FIELD = "receipt_id"  # the column taken from the document's id, beside the receipt


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of column: its portable SQL type, what it holds (`bytes`, `str` or `int`:
    its SQL literal and LOAD DATA forms follow from that), and Python expressions turning a
    field's value into the column's and back, and into a picklable value and back."""

    sql: str
    stored: type
    encode: str = "{v}"
    decode: str = "{v}"
    wire: str = "{v}"
    unwire: str = "{v}"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    field: str  # the `Receipt` attribute it carries, or `ID_FIELD`


KEY = Kind("key", bytes, encode="_encode_key({v})", decode="_decode_key({v})")
ID = Kind("varchar255", str, encode="{v}[:255]")
INT = Kind("int", int)
SMALLINT = Kind("smallint", int)
BIGINT = Kind("bigint", int)
DAY = Kind(  # a date as the integer YYYYMMDD; over the pipe as its ordinal
    "int",
    int,
    encode="_day_number({v})",
    decode="_date_of({v})",
    wire="{v}.toordinal()",
    unwire="_from_ordinal({v})",
)
LINES = Kind("longtext", str, encode="_json({v})", decode="_lines({v})")  # [[name, qty], ...]

COLUMNS: tuple[Column, ...] = (
    Column("key", KEY, "key"),
    Column("receipt_id", ID, ID_FIELD),
    Column("store_id", INT, "store_id"),
    Column("day", DAY, "day"),
    Column("hour", SMALLINT, "hour"),
    Column("cents", BIGINT, "cents"),
    Column("lines", LINES, "items"),
)

NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
INDEX: dict[str, int] = {c.name: i for i, c in enumerate(COLUMNS)}
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Receipt))
# What reading a receipt back needs: every column but the document's id.
READ_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.field != ID_FIELD)

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _fast_json() -> Callable[[Any], str]:
    """`_JSON.encode` without its per-call set-up: the C encoder the standard library builds
    on every call, built once (a receipt's lines are encoded in half the time). The plain
    `encode` where that encoder is missing or writes anything else."""
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return _JSON.encode
    chunks = make(None, _JSON.default, basestring, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    sample = (('Crème \\ "☕"\n\udc80', 2), ("", 0), ("x", -1))
    return encode if encode(sample) == _JSON.encode(sample) else _JSON.encode


def encode_key(key: str) -> bytes:
    """A receipt key as stored: its UTF-8 bytes (a lone surrogate of an odd `_id` kept)."""
    return key.encode("utf-8", "surrogatepass")


def decode_key(raw: Any) -> str:
    return bytes(raw).decode("utf-8", "surrogatepass")  # a driver may return memoryview


def day_number(day: dt.date) -> int:
    """A day as the `day` column holds it (YYYYMMDD): what a range of days is queried by."""
    return day.year * 10000 + day.month * 100 + day.day


def date_of(number: int) -> dt.date:
    """`day_number` undone."""
    return dt.date(number // 10000, number // 100 % 100, number % 100)


def decode_lines(text: str | bytes) -> tuple[tuple[str, int], ...]:
    return tuple(map(tuple, json.loads(text)))


encode_lines = _fast_json()  # a receipt's items as stored: [[name, quantity], ...]

NAMESPACE: dict[str, Any] = {
    "Receipt": Receipt,
    "_json": encode_lines,
    "_lines": decode_lines,
    "_day_number": day_number,
    "_date_of": date_of,
    "_encode_key": encode_key,
    "_decode_key": decode_key,
    "_from_ordinal": dt.date.fromordinal,
}


def check(columns: Iterable[Column], fields: tuple[str, ...]) -> None:
    """Every `Receipt` field in exactly one column, none with a default (a positional
    constructor then breaks loudly instead of filling a field in); the key first (rows sort
    by it)."""
    columns = tuple(columns)
    carried = [c.field for c in columns if c.field != ID_FIELD]
    missing = [f for f in fields if f not in carried]
    unknown = [f for f in carried if f not in fields]
    twice = sorted({f for f in carried if carried.count(f) > 1})
    defaults = [
        f.name
        for f in dataclasses.fields(Receipt)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    problems = [
        f"{what} {names}"
        for what, names in (
            ("not carried", missing),
            ("not on Receipt", unknown),
            ("carried twice", twice),
            ("with a default", defaults),
        )
        if names
    ]
    if not columns or columns[0].kind is not KEY:
        problems.append("the key is not the first column (rows sort by it)")
    if problems:
        raise TypeError(
            "cs_receipts' columns do not match Receipt: "
            + "; ".join(problems)
            + " (core/receipt_codec.py COLUMNS)"
        )


def encoded(column: Column, receipt: str = "receipt", receipt_id: str = "receipt_id") -> str:
    """The expression of `column`'s value, given the names of a receipt and its id."""
    source = receipt_id if column.field == ID_FIELD else f"{receipt}.{column.field}"
    return "(" + column.kind.encode.format(v=source) + ")"


def compile_function(name: str, params: str, body: str, namespace: dict[str, Any]) -> Any:
    """`def name(params): return body`, compiled once with `namespace` as its globals."""
    scope = dict(namespace)
    exec(f"def {name}({params}):\n    return {body}\n", scope)
    return scope[name]


def _receipt_from(value_of: Callable[[Column], str]) -> str:
    """`Receipt(...)` positionally in field order, each field from `value_of(its column)`."""
    return "Receipt(" + ", ".join(value_of(_BY_FIELD[f]) for f in FIELDS) + ")"


def _decoded(column: Column, source: str) -> str:
    return "(" + column.kind.decode.format(v=source) + ")"


check(COLUMNS, FIELDS)

_ID_AT = INDEX[next(c.name for c in COLUMNS if c.field == ID_FIELD)]
_READ_AT = {name: i for i, name in enumerate(READ_COLUMNS)}
_FIELD_AT = {f: i for i, f in enumerate(FIELDS)}
_BY_FIELD = {c.field: c for c in COLUMNS}

receipt_row: Callable[[Receipt, str], Row] = compile_function(
    "receipt_row",
    "receipt, receipt_id",
    "(" + "".join(encoded(c) + ", " for c in COLUMNS) + ")",
    NAMESPACE,
)
receipt_row.__doc__ = "A receipt and its document's id as its `cs_receipts` row."

row_to_receipt: Callable[[Row], tuple[Receipt, str]] = compile_function(
    "row_to_receipt",
    "row",
    _receipt_from(lambda c: _decoded(c, f"row[{INDEX[c.name]}]"))
    + f", {_decoded(COLUMNS[_ID_AT], f'row[{_ID_AT}]')}",
    NAMESPACE,
)

receipt_params: Callable[[Receipt, str], dict[str, Any]] = compile_function(
    "receipt_params",
    "receipt, receipt_id",
    "{" + ", ".join(f"{c.name!r}: {encoded(c)}" for c in COLUMNS) + "}",
    NAMESPACE,
)
receipt_params.__doc__ = "`receipt_row` as a statement's parameters, by column name."

read_receipt: Callable[[Row], Receipt] = compile_function(
    "read_receipt",
    "row",
    _receipt_from(lambda c: _decoded(c, f"row[{_READ_AT[c.name]}]")),
    NAMESPACE,
)
read_receipt.__doc__ = "A receipt from the values of `READ_COLUMNS`, as a driver returns them."


def wire_values(receipt: str) -> str:
    """The expressions of a receipt's picklable values, in field order, comma-separated: over
    the reader process's pipe a receipt is plain values, several times cheaper to pickle
    than the dataclass (`pipeline/readahead.py` puts them in its event tuples)."""
    return ", ".join(_BY_FIELD[f].kind.wire.format(v=f"{receipt}.{f}") for f in FIELDS)


def receipt_from_wire(packed: str, start: int) -> str:
    """The expression of the receipt whose `wire_values` start at `packed[start]`."""
    return _receipt_from(
        lambda c: c.kind.unwire.format(v=f"{packed}[{start + _FIELD_AT[c.field]}]")
    )


pack_receipt: Callable[[Receipt], tuple[Any, ...]] = compile_function(
    "pack_receipt", "receipt", f"({wire_values('receipt')},)", NAMESPACE
)
unpack_receipt: Callable[[tuple[Any, ...]], Receipt] = compile_function(
    "unpack_receipt", "packed", receipt_from_wire("packed", 0), NAMESPACE
)


def getter(*names: str) -> Callable[[Row], Any]:
    """The values of the columns `names` from a row (`operator.itemgetter`)."""
    return itemgetter(*(INDEX[name] for name in names))
