"""Rows as CSV (RFC 4180): a header line, then one line per row, in the JSON's field order.

Money keeps its exact digits (`12.50`), dates are ISO, times RFC 3339 in UTC, a missing
value is an empty field. A text field that a spreadsheet would run as a formula (it starts
with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as OWASP advises
(`coffeeshop.csv_cells`, shared with `coffeeshop tables --format csv`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import typing
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from coffeeshop.api.render import format_time
from coffeeshop.csv_cells import guard_formula

MEDIA_TYPE = "text/csv; charset=utf-8"


def wants_csv(format_param: str | None, accept: str | None) -> bool:
    """`?format=csv`, or an Accept header that asks for CSV and not for JSON."""
    if format_param is not None:
        return format_param == "csv"
    if not accept:
        return False
    accept = accept.lower()
    return "text/csv" in accept and "application/json" not in accept


def columns_of(response_model: Any) -> list[str]:
    """The field names of a route's `list[Model]` response model."""
    args = typing.get_args(response_model)
    model = args[0] if args else response_model
    return list(model.model_fields)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return guard_formula(str(value))


def dumps_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    return out.getvalue().encode("utf-8", "surrogateescape")
