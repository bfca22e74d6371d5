"""The rhythm of traffic: receipts per weekday, month and hour, and the live arrival rate.

The simulated history (`ReceiptGenerator`) and the demo's live traffic (`TrafficModel`)
follow the same numbers, so live receipts continue the history's rhythm.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from random import Random

__all__ = ["TrafficModel", "cut_hours", "day_volume", "hour_shares", "poisson"]

# Relative traffic per hour of the day, on weekdays and at weekends.
WEEKDAY_HOURS: tuple[float, ...] = (
    0.15, 0.08, 0.04, 0.03, 0.06, 0.5,  # 0-5: almost nothing
    3.5, 10.0, 12.0, 7.5, 5.0, 5.5,  # 6-11: morning rush 7-9
    8.5, 7.5, 4.5, 4.2, 4.4, 4.0,  # 12-17: lunch bump 12-13
    2.8, 1.9, 1.4, 0.9, 0.5, 0.25,  # 18-23: quiet evening
)  # fmt: skip
WEEKEND_HOURS: tuple[float, ...] = (
    0.3, 0.18, 0.08, 0.04, 0.04, 0.15,
    1.2, 3.5, 7.5, 11.0, 12.5, 11.0,
    10.0, 9.0, 7.0, 6.5, 5.5, 4.5,
    3.4, 2.6, 2.0, 1.4, 0.8, 0.45,
)  # fmt: skip
# Relative volume of a whole day, Monday to Sunday, and by month.
WEEKDAY_VOLUME: tuple[float, ...] = (0.92, 0.94, 0.97, 1.0, 1.08, 1.25, 1.15)
MONTH_VOLUME: tuple[float, ...] = (
    0.9, 0.92, 0.97, 1.0, 1.02, 1.0, 0.95, 0.94, 1.01, 1.03, 1.05, 1.14,
)  # fmt: skip

_SHARES = tuple(tuple(w / sum(hours) for w in hours) for hours in (WEEKDAY_HOURS, WEEKEND_HOURS))
_MEAN_VOLUME = sum(WEEKDAY_VOLUME) / 7 * sum(MONTH_VOLUME) / 12


def day_volume(day: dt.date) -> float:
    """A day's relative volume (weekday × month; 1.0 on an average day of the year)."""
    return WEEKDAY_VOLUME[day.weekday()] * MONTH_VOLUME[day.month - 1] / _MEAN_VOLUME


def hour_shares(day: dt.date) -> tuple[float, ...]:
    """The share of `day`'s receipts in each hour of the day (they add up to 1)."""
    return _SHARES[day.weekday() >= 5]


def cut_hours(shares: tuple[float, ...], until: dt.datetime) -> list[float]:
    """`shares` of the hours before `until` (the hour it falls in, pro rata)."""
    into = (until.minute * 60 + until.second) / 3600
    return [
        share if hour < until.hour else share * into if hour == until.hour else 0.0
        for hour, share in enumerate(shares)
    ]


@dataclass(frozen=True, slots=True)
class TrafficModel:
    """How many receipts arrive when: the rhythm the simulated history has, as a rate.

    `per_day` receipts on an average day; a given day gets `per_day * day_volume(day)`,
    spread over its hours by `hour_shares(day)`. The demo seeds its history from the same
    numbers (`expected`) and draws its live traffic from `rate`, so live receipts continue the
    history instead of drowning it: the same receipts per day, peak hours and weekly rhythm.
    """

    per_day: float

    def __post_init__(self) -> None:
        if not self.per_day > 0:
            raise ValueError(f"per_day must be a positive number, got {self.per_day!r}")

    def rate(self, moment: dt.datetime) -> float:
        """Expected receipts per second at `moment` (naive local time)."""
        day = moment.date()
        return self.per_day * day_volume(day) * hour_shares(day)[moment.hour] / 3600

    def expected(self, start: dt.datetime, end: dt.datetime) -> float:
        """Expected receipts between two moments (naive local time)."""
        total = 0.0
        moment = start
        while moment < end:
            next_hour = moment.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
            upto = min(end, next_hour)
            total += self.rate(moment) * (upto - moment).total_seconds()
            moment = upto
        return total

    def arrivals(self, moment: dt.datetime, seconds: float, rng: Random) -> int:
        """A random number of receipts arriving in the `seconds` after `moment` (Poisson)."""
        return poisson(rng, self.expected(moment, moment + dt.timedelta(seconds=seconds)))


def poisson(rng: Random, mean: float) -> int:
    """A Poisson-distributed count with the given mean."""
    if mean <= 0.0:
        return 0
    if mean > 50.0:  # normal approximation, exact enough at this size
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit = math.exp(-mean)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
