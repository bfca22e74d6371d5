"""msgspec's C decoder for the JSON text of a line, where it provably reads the text as the
standard library's decoder of `jsonl.read_json` does (numbers with a fraction or an exponent
as exact `Decimal`s, from the number's own text): the same values at a fraction of the cost.

Anything else is `MISSED`, and `read_json` decodes the text itself, with the standard
library, which also names every failure: a reason in quarantine is the same either way. What
msgspec rejects is missed (`NaN`, `Infinity`, lone surrogates, malformed text, numbers out of
`Decimal`'s range); a text that could reach either decoder's limits is never tried:
- longer than Python's limit of digits in an integer's text (a shorter text holds no such
  integer; msgspec has no such limit, so the two would disagree on one);
- with more `[` and `{` than `MAX_OPENERS` (so nesting is far from the recursion limit, where
  the two decoders, which count their depth differently, stop at different depths).
`tests/test_fast_json.py` holds the two decoders to the same values, types included.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any, Final

import msgspec

MAX_OPENERS = 200  # `[` and `{` in a text (in its strings too: counted, not parsed)
_INT_DIGITS = 4300  # Python's default limit of digits in an integer's text


class _Missed:
    """The type of `MISSED`."""

    def __repr__(self) -> str:
        return "MISSED"


MISSED: Final = _Missed()
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def max_chars() -> int:
    """The longest text tried: none may hold an integer over Python's digit limit (the
    limit in force now: PYTHONINTMAXSTRDIGITS or `sys.set_int_max_str_digits` may lower it)."""
    limit = sys.get_int_max_str_digits()
    return min(limit, _INT_DIGITS) if limit else _INT_DIGITS


def within_limits(text: str) -> bool:
    """Whether `text` is far from both decoders' limits (digits, nesting): only then is it
    tried (a text of at most `MAX_OPENERS` characters cannot have more openers)."""
    if len(text) > max_chars():
        return False
    return len(text) <= MAX_OPENERS or text.count("[") + text.count("{") <= MAX_OPENERS


def decode(text: str) -> Any:
    """The value of `text` as `read_json` reads it, or `MISSED` (it then decodes it itself)."""
    if not within_limits(text):
        return MISSED
    try:
        return _DECODER.decode(text)
    except Exception:  # msgspec.DecodeError, or Decimal refusing a number: the slow path says why
        return MISSED
