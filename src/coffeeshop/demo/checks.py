"""The receipt generator's options, checked, and its clock: the wall-clock time in a zone."""

from __future__ import annotations

import datetime as dt

__all__ = ["check_count", "check_options", "local_now"]

_LAST_OID_DAY = dt.date(2106, 2, 6)  # the 4-byte ObjectId timestamp runs out on 2106-02-07


def local_now(zone: dt.tzinfo | None = None) -> dt.datetime:
    """The wall-clock time now in `zone` (None: the machine's), naive, to the second."""
    return dt.datetime.now(zone).replace(tzinfo=None, microsecond=0)


def check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")


def check_options(
    stores: int,
    days: int,
    start: dt.date | None,
    until: dt.datetime | None,
    shares: dict[str, float],
    today: dt.date,
) -> dt.date:
    """Raise ValueError on an option out of range; return the first day."""
    if isinstance(stores, bool) or not isinstance(stores, int) or stores < 1:
        raise ValueError(f"stores must be an integer >= 1, got {stores!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be an integer >= 1, got {days!r}")
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0.0 and 1.0, got {share!r}")
    extra = sum(shares.values())
    if extra >= 1.0:
        raise ValueError(
            "update_share + delete_share + invalid_share must be below 1.0 "
            f"(they are shares of all lines, the rest being new receipts), got {extra!r}"
        )
    if start is None:
        start = today - dt.timedelta(days=days - 1)
    if isinstance(start, dt.datetime):
        start = start.date()
    end = start + dt.timedelta(days=days - 1)
    if start < dt.date(1970, 1, 1) or end > _LAST_OID_DAY:
        raise ValueError(
            f"the date range {start}..{end} must lie within 1970-01-01..{_LAST_OID_DAY} "
            "(the span of an ObjectId timestamp)"
        )
    if until is not None and until.date() != end:
        raise ValueError(f"until must fall on the last day {end}, got {until!r}")
    return start
