"""Text cells of CSV that a spreadsheet opens as text: the one guard of every CSV we write
(the API's `?format=csv` and `coffeeshop tables --format csv`).

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would run as a formula
in a spreadsheet (CSV injection); it gets a leading `'`, as OWASP advises. Pure, no imports:
the CLI uses it without loading the API.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard_formula(text: str) -> str:
    """`text` as a cell a spreadsheet shows as text, never runs."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
