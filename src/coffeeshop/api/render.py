"""JSON with exact money: a `Decimal` is written as a JSON number with its own digits
(`Decimal("12.50")` -> `12.50`), never through a binary float."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

_text = json.JSONEncoder(ensure_ascii=False).encode
_ascii_text = json.JSONEncoder(ensure_ascii=True).encode


def dumps(value: Any) -> bytes:
    """`value` (dicts, lists, str, int, Decimal, float, bool, None, date, datetime) as JSON."""
    parts: list[str] = []
    if _is_rows(value):
        _write_rows(value, parts, _text)
    else:
        _write(value, parts, _text)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in some text: escape it instead
        parts.clear()
        _write(value, parts, _ascii_text)
        return "".join(parts).encode("ascii")


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(row) is dict for row in value)


def _write_rows(rows: list[dict[str, Any]], out: list[str], text: Any) -> None:
    """A list of flat dicts with the same keys (query results): keys encoded once, each value
    by its type. Falls back to the general writer for anything else."""
    keys = list(rows[0])
    heads = [("{" if n == 0 else ",") + text(key) + ":" for n, key in enumerate(keys)]
    out.append("[")
    for n, row in enumerate(rows):
        if n:
            out.append(",")
        if len(row) != len(keys):
            _write(row, out, text)
            continue
        for head, key in zip(heads, keys, strict=True):
            out.append(head)
            value = row[key]
            kind = type(value)
            if kind is str:
                out.append(text(value))
            elif kind is int:
                out.append(str(value))
            elif kind is Decimal and value.is_finite():
                out.append(str(value))  # always a JSON number, with exactly these digits
            else:
                _write(value, out, text)
        out.append("}")
    out.append("]")


def _write(value: Any, out: list[str], text: Any) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(text(value))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value}")
        out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        out.append(repr(value))
    elif isinstance(value, dt.datetime):
        out.append(f'"{format_time(value)}"')
    elif isinstance(value, dt.date):
        out.append(f'"{value.isoformat()}"')
    elif isinstance(value, Mapping):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            if n:
                out.append(",")
            out.append(text(str(key)))
            out.append(":")
            _write(item, out, text)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out, text)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")


def format_time(value: dt.datetime) -> str:
    """RFC 3339 in UTC with a `Z`; naive datetimes are taken as UTC (how the engine stores them)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"
