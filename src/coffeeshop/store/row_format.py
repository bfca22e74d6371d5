"""A table's rows written from a mapping of key -> values (a counted table's sums, `core/groups`)
in the form each dialect sends them: tuples (SQLite's `executemany`), SQL row literals
(MySQL/MariaDB's multi-row statement, `literal_sql`) or COPY text (PostgreSQL, `statements`).

Each form is one list comprehension compiled once per table from its columns' types: one
f-string (or tuple) per row and no call per value. Integers are written with the format `d`
(anything else raises instead of reaching the SQL); dates and texts, which repeat from row to
row (a batch has a few days and a few dozen products), are encoded once each and kept in a
small cache (`Encoded`, bounded). Text is never spliced into SQL as it is: a literal is hex
(`X'…'`), COPY text escapes its backslash, tab, newline and carriage return.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Date, Integer, String, Table
from sqlalchemy.types import TypeEngine

from coffeeshop.core.receipt_codec import compile_function

# Values an `Encoded` cache keeps before it starts again (dates and product names: a few
# hundred bytes each at most, so well under a megabyte).
CACHE_LIMIT = 4096

Sums = Mapping[Any, Any]  # key -> values (tuples of them, or bare values: `RowFormat`)


class Encoded(dict[Any, str]):
    """value -> its encoded text, computed on the first look-up of each value (`__missing__`)
    and kept for the next ones; emptied when it holds `limit` values (memory stays bounded)."""

    __slots__ = ("encode", "limit")

    def __init__(self, encode: Callable[[Any], str], limit: int = CACHE_LIMIT) -> None:
        super().__init__()
        self.encode = encode
        self.limit = limit

    def __missing__(self, value: Any) -> str:
        if len(self) >= self.limit:
            self.clear()
        text = self[value] = self.encode(value)
        return text


def iso_date(day: dt.date) -> str:
    if type(day) is not dt.date:
        raise TypeError(f"not a date: {type(day).__name__}")
    return day.isoformat()


def hex_literal(text: str) -> str:
    """A text as a MySQL/MariaDB literal: its UTF-8 bytes in hex (nothing to escape)."""
    if type(text) is not str:
        raise TypeError(f"no text literal for {type(text).__name__}")
    return f"X'{text.encode('utf-8').hex()}'"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(text: str) -> str:
    """A text as a field of PostgreSQL's COPY text format."""
    if type(text) is not str:
        raise TypeError(f"no COPY field for {type(text).__name__}")
    return text.translate(_COPY_ESCAPES)


# The column types a row format writes, and what it calls each.
_KINDS: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (Date, "date"),
    (Integer, "int"),
    (String, "text"),
)


def _kind(table: Table, name: str) -> str | None:
    column_type = table.c[name].type
    return next((kind for base, kind in _KINDS if isinstance(column_type, base)), None)


def supported(table: Table, columns: Sequence[str]) -> bool:
    """Whether every column of `columns` has a row format (dates, integers, texts)."""
    return all(_kind(table, name) is not None for name in columns)


# Per form: how a value `{v}` of each kind is written inside the row, and the caches it uses.
_TUPLE = {"int": "{v}", "date": "_day[{v}]", "text": "{v}"}
_LITERAL = {"int": "{{{v}:d}}", "date": "'{{_day[{v}]}}'", "text": "{{_text[{v}]}}"}
_COPY = {"int": "{{{v}:d}}", "date": "{{_day[{v}]}}", "text": "{{_copy[{v}]}}"}


class RowFormat:
    """The rows of `table` from a mapping whose keys are tuples of the `key` columns' values
    and whose values are sequences of the `values` columns' (in `columns` order). `bare`: a
    key of one column is its value itself, not a 1-tuple, and a value likewise (as
    `TableRows` holds them)."""

    def __init__(
        self, table: Table, key: Sequence[str], values: Sequence[str], *, bare: bool = False
    ) -> None:
        self.table = table
        self.columns: tuple[str, ...] = (*key, *values)
        found = [_kind(table, name) for name in self.columns]
        kinds = [kind for kind in found if kind is not None]
        if len(kinds) != len(found):
            raise TypeError(f"{table.name}: no row format for {self.columns}")
        cells = _cells("k", len(key), bare) + _cells("v", len(values), bare)
        namespace = {
            "_day": Encoded(iso_date),
            "_text": Encoded(hex_literal),
            "_copy": Encoded(copy_field),
        }

        def written(forms: dict[str, str], separator: str) -> str:
            return separator.join(
                forms[kind].format(v=cell) for kind, cell in zip(kinds, cells, strict=True)
            )

        loop = " for k, v in rows.items()]"
        tuple_body = "[(" + written(_TUPLE, ", ") + ",)" + loop
        literal_body = "[f" + repr("(" + written(_LITERAL, ",") + ")") + loop
        copy_body = '"".join([f' + repr(written(_COPY, "\t") + "\n") + loop + ")"
        self.tuples: Callable[[Sums], list[tuple[Any, ...]]] = compile_function(
            "tuples", "rows", tuple_body, namespace
        )
        self.literals: Callable[[Sums], list[str]] = compile_function(
            "literals", "rows", literal_body, namespace
        )
        self.copy_text: Callable[[Sums], str] = compile_function(
            "copy_text", "rows", copy_body, namespace
        )


def _cells(name: str, count: int, bare: bool) -> list[str]:
    return [name] if bare and count == 1 else [f"{name}[{i}]" for i in range(count)]
