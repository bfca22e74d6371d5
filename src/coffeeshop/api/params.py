"""Query parameters of each endpoint: validated, bounded, and normalized into a cache key.

Unknown parameters are rejected (a typo such as `month_form` must not silently return
everything), and every value reaches the database only as a bound parameter.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_LIMIT = 10_000
# Each /quarantine entry carries up to 1,000 characters of raw text: 1,000 entries keep a page
# under ~13 MB even when every character is written as an escape (12 bytes at worst).
MAX_QUARANTINE_LIMIT = 1_000
MAX_OFFSET = 1_000_000_000
MAX_STORE_ID = 2**31 - 1

# The first and last year of the calendar are refused: an endpoint computes from a date (a
# week back, the next day, the end of a month), which must exist. A range with a margin of
# a year covers every such step, for every endpoint, present and future.
FIRST_DAY = dt.date(2, 1, 1)
LAST_DAY = dt.date(9998, 12, 31)
_YEAR = r"(000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
# Published in the OpenAPI document: the shape and the range of years.
_MONTH = rf"^{_YEAR}-(0[1-9]|1[0-2])$"
_DAY = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
# Checked first, so that a wrong shape and a year out of range get different words.
_MONTH_SHAPE = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
_DAY_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _month(value: str) -> str:
    if not re.fullmatch(_MONTH_SHAPE, value):
        raise ValueError("must be a month as YYYY-MM, e.g. 2026-01")
    if not FIRST_DAY.year <= int(value[:4]) <= LAST_DAY.year:
        raise ValueError(
            f"{value} is out of range: a month must be between {FIRST_DAY.isoformat()[:7]} "
            f"and {LAST_DAY.isoformat()[:7]}"
        )
    return value


def _day(value: str) -> str:
    if not re.fullmatch(_DAY_SHAPE, value):
        raise ValueError("must be a date as YYYY-MM-DD, e.g. 2026-11-01")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a date on the calendar") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(
            f"{value} is out of range: a date must be between {FIRST_DAY.isoformat()} "
            f"and {LAST_DAY.isoformat()}"
        )
    return value


# The patterns are published in the OpenAPI document and checked by the validators, which say
# what is wrong in words rather than by quoting a regular expression.
Month = Annotated[
    str,
    Field(
        max_length=7,
        json_schema_extra={"pattern": _MONTH},
        description="A month, YYYY-MM (inclusive).",
        examples=["2026-01"],
    ),
    AfterValidator(_month),
]
Day = Annotated[
    str,
    Field(
        max_length=10,
        json_schema_extra={"pattern": _DAY, "format": "date"},
        description="A date, YYYY-MM-DD (inclusive).",
        examples=["2026-11-01"],
    ),
    AfterValidator(_day),
]
StoreId = Annotated[int, Field(ge=0, le=MAX_STORE_ID, description="Only this store.", examples=[3])]


Limit = Annotated[
    int | None, Field(ge=1, le=MAX_LIMIT, description=f"At most this many rows (1–{MAX_LIMIT:,}).")
]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Skip this many rows first.")]
Format = Annotated[
    Literal["json", "csv"],
    Field(description="`csv`: the rows as CSV with a header line (also `Accept: text/csv`)."),
]


class Params(BaseModel):
    """Every pair of fields `X_from` and `X_to` is a range, checked here: a start after its end
    is a mistake, a 422 naming both rather than `[]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Self:
        for first, last in _range_pairs(type(self)):
            start, end = getattr(self, first), getattr(self, last)
            if start is not None and end is not None and start > end:  # ISO text orders as time
                raise ValueError(f"{first} ({start}) is after {last} ({end})")
        return self

    def key(self) -> tuple[Any, ...]:
        """The normalized parameters: equal requests (in any spelling) get equal keys."""
        return tuple(getattr(self, name) for name in type(self).model_fields)


class SummaryParams(Params):
    as_of_from: Day | None = Field(None, description="First day (YYYY-MM-DD, inclusive).")
    as_of_to: Day | None = Field(None, description="Last day (YYYY-MM-DD, inclusive).")
    limit: Limit = None
    offset: Offset = 0
    format: Format = "json"


class StoreMonthlyParams(Params):
    store_id: StoreId | None = Field(None, description="Only this store.")
    month_from: Month | None = Field(None, description="First month (YYYY-MM, inclusive).")
    month_to: Month | None = Field(None, description="Last month (YYYY-MM, inclusive).")
    limit: Limit = None
    offset: Offset = 0
    format: Format = "json"


class ItemParams(Params):
    order: Literal["total_sold", "item_name"] = Field(
        "total_sold",
        description="`total_sold`: best sellers first (ties by name); `item_name`: by name as "
        "people read it (case and accents ignored, then the exact name).",
    )
    limit: Limit = None
    offset: Offset = 0
    format: Format = "json"


class StoreParams(Params):
    """Of the per-store endpoints, /store_peak_hours and /store_hours."""

    store_id: StoreId | None = Field(None, description="Only this store.")
    limit: Limit = None
    offset: Offset = 0
    format: Format = "json"


class RangeParams(Params):
    """A range of days (both included), optionally of one store."""

    store_id: StoreId | None = Field(None, description="Only this store.")
    day_from: Day | None = Field(None, description="First day (YYYY-MM-DD, inclusive).")
    day_to: Day | None = Field(None, description="Last day (YYYY-MM-DD, inclusive).")
    limit: Limit = None
    offset: Offset = 0
    format: Format = "json"


class QuarantineParams(Params):
    source: str | None = Field(
        None, min_length=1, max_length=255, description="Only entries from this source."
    )
    limit: int = Field(  # a bounded default and maximum: the quarantine can be large
        100,
        ge=1,
        le=MAX_QUARANTINE_LIMIT,
        description=f"At most this many entries (1–{MAX_QUARANTINE_LIMIT:,}).",
    )
    offset: Offset = 0
    format: Format = "json"


@functools.cache
def _range_pairs(model: type[Params]) -> tuple[tuple[str, str], ...]:
    """The (`X_from`, `X_to`) field pairs of `model`, in the order of its fields."""
    names = model.model_fields
    starts = [name for name in names if name.endswith("_from")]
    return tuple((first, f"{first[:-5]}_to") for first in starts if f"{first[:-5]}_to" in names)


def as_date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value is not None else None
