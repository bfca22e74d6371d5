"""JSON text of one line, read exactly: numbers with a fraction as `Decimal`, and every
failure, whatever the text, one `BadJson` (the one decoder of the JSONL file reader and of its
partitions, so neither can raise anything else on any input)."""

from __future__ import annotations

import contextlib
import json
from decimal import MAX_EMAX, MIN_EMIN, Decimal
from typing import Any

from coffeeshop.sources import fast_json

# Numbers with a fraction (and NaN/Infinity, rejected later) become exact Decimals.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal)


class BadJson(ValueError):
    """A line that is not JSON a receipt can come from; `whole` when its text is complete
    (a number out of range) rather than cut short or malformed (which a writer still
    appending a last line without its newline may yet complete)."""

    def __init__(self, reason: str, *, whole: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.whole = whole


def read_json(text: str) -> Any:
    """The value of one line's JSON text, numbers with a fraction as exact Decimals; every
    failure, whatever the text, is a `BadJson` (the one decoder of the file and its
    partitions, so neither can raise anything else on any input). `fast_json` reads most
    texts, the standard library the rest."""
    value = fast_json.decode(text)
    if value is not fast_json.MISSED:
        return value
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise BadJson("nested too deeply", whole=False) from None
    except json.JSONDecodeError as exc:
        raise BadJson(f"{exc.msg} (column {exc.colno})", whole=False) from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise BadJson(str(exc), whole=True) from None
    except ArithmeticError:  # decimal.InvalidOperation: an exponent past Decimal's range
        raise BadJson(_out_of_range(text), whole=True) from None


def _out_of_range(text: str) -> str:
    """Why `Decimal` refused a number of `text` (read again to name it: the error path only)."""
    refused: list[str] = []

    def exact(token: str) -> Decimal:
        try:
            return Decimal(token)
        except ArithmeticError:
            refused.append(token)
            raise

    with contextlib.suppress(ArithmeticError, ValueError, RecursionError):
        json.JSONDecoder(parse_float=exact, parse_constant=Decimal).decode(text)
    number = refused[0] if refused else "a number"
    if len(number) > 40:
        number = number[:37] + "..."
    return (
        f"the number {number} is out of range: exact decimals take exponents from "
        f"{MIN_EMIN} to {MAX_EMAX}"
    )


def is_whole_json(data: bytes) -> bool:
    """Whether `data`, a last line without its newline, is complete: JSON text, or text that
    is whole but unreadable (a number out of range). A line cut short is not."""
    try:
        read_json(data.decode("utf-8").rstrip("\r"))
    except BadJson as exc:
        return exc.whole
    except UnicodeDecodeError:  # maybe cut inside a character
        return False
    return True
