"""The rhythm of traffic: twelve stores with a character of their own, and the live arrival rate.

Each demo store has a profile (`STORES`): when it is open on each weekday, how busy each of
its days is, its hour curve on weekdays and at weekends, and its size. An airport opens at
dawn and trades around the clock, an office park is shut at weekends, a museum café is closed
on Mondays, a cinema café peaks in the evening. The simulated history (`ReceiptGenerator`)
and the demo's live traffic (`TrafficModel`) draw from the same profiles (`Rhythm`), so live
receipts continue the history's rhythm: no store ever sells outside its opening hours.

Times are local wall-clock times in the configured zone (naive datetimes).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from random import Random

__all__ = [
    "STORES",
    "Rhythm",
    "StoreProfile",
    "TrafficModel",
    "cut_hours",
    "day_volume",
    "hour_shares",
    "poisson",
    "rhythm",
]

Hours = tuple[int, int]  # open from the first hour up to (not including) the second; (0, 0): shut
CLOSED: Hours = (0, 0)


def _curve(*peaks: tuple[float, float], width: float = 1.3, base: float = 0.4) -> tuple[float, ...]:
    """24 hourly weights: a low base plus a bell around each (hour, height) peak."""
    return tuple(
        round(
            base
            + sum(height * math.exp(-(((h + 0.5 - at) / width) ** 2) / 2) for at, height in peaks),
            3,
        )
        for h in range(24)
    )


def _week(weekdays: Hours, saturday: Hours, sunday: Hours) -> tuple[Hours, ...]:
    return (weekdays,) * 5 + (saturday, sunday)


@dataclass(frozen=True, slots=True)
class StoreProfile:
    """A store's character: its name, opening hours (Monday first), relative volume of each
    weekday (0: shut), hour curves (weekdays, weekend) and size (1.0: an ordinary store)."""

    name: str
    hours: tuple[Hours, ...]
    days: tuple[float, ...]
    weekday_curve: tuple[float, ...]
    weekend_curve: tuple[float, ...]
    size: float

    def is_open(self, weekday: int, hour: int) -> bool:
        first, end = self.hours[weekday]
        return self.days[weekday] > 0 and first <= hour < end

    def hour_weights(self, weekday: int) -> list[float]:
        """The store's share of each hour of a `weekday` (0 when shut; they add up to 1)."""
        curve = self.weekday_curve if weekday < 5 else self.weekend_curve
        weights = [curve[h] if self.is_open(weekday, h) else 0.0 for h in range(24)]
        total = sum(weights)
        return [w / total for w in weights] if total else weights


_ORDINARY_WEEK = (0.92, 0.94, 0.97, 1.0, 1.08, 1.25, 1.15)
_ALL_DAY = (0, 24)
STORES: tuple[StoreProfile, ...] = (
    StoreProfile(
        "Airport", (_ALL_DAY,) * 7, (1.0, 0.95, 0.95, 1.0, 1.15, 1.05, 1.2),
        _curve((6, 4.0), (12, 1.6), (17.5, 2.2), width=1.6, base=0.2),
        _curve((7, 3.5), (11, 2.0), (16.5, 2.6), width=1.8, base=0.2), 1.7,
    ),
    StoreProfile(
        "Central Station", _week((5, 24), (6, 24), (7, 23)),
        (1.05, 1.05, 1.05, 1.05, 1.1, 0.8, 0.7),
        _curve((7.5, 9.0), (12.5, 2.5), (17.5, 6.0), width=1.0),
        _curve((10, 3.0), (14, 2.5), (18, 2.0), width=2.0), 1.5,
    ),
    StoreProfile(
        "Office Park", _week((7, 18), (9, 14), CLOSED), (1.0, 1.05, 1.05, 1.0, 0.85, 0.2, 0.0),
        _curve((8.5, 8.0), (12.5, 6.0), (15.5, 2.0), width=0.9),
        _curve((10.5, 2.0), width=1.5), 1.2,
    ),
    StoreProfile(
        "Downtown", _week((7, 20), (8, 20), (9, 18)), _ORDINARY_WEEK,
        _curve((8, 7.0), (13, 4.5), (17, 2.0), width=1.1),
        _curve((10.5, 6.0), (14, 3.5), width=1.8), 1.3,
    ),
    StoreProfile(
        "University", _week((8, 21), (10, 16), CLOSED), (1.1, 1.1, 1.05, 1.0, 0.8, 0.35, 0.0),
        _curve((10.5, 6.0), (14.5, 5.0), (19, 1.5), width=1.4),
        _curve((12, 2.0), width=2.0), 0.9,
    ),
    StoreProfile(
        "Harbour", _week((8, 19), (8, 20), (8, 20)), (0.8, 0.8, 0.85, 0.9, 1.0, 1.5, 1.45),
        _curve((11, 4.0), (15.5, 4.5), width=1.5),
        _curve((11.5, 6.0), (15.5, 6.5), width=1.7), 0.8,
    ),
    StoreProfile(
        "Old Town", _week((8, 19), (8, 19), (9, 18)), (0.85, 0.85, 0.9, 0.95, 1.05, 1.5, 1.4),
        _curve((9, 4.0), (13, 3.0), (16, 2.5), width=1.4),
        _curve((11, 7.0), (15, 4.0), width=1.6), 1.1,
    ),
    StoreProfile(
        "Market Square", _week((7, 17), (7, 15), CLOSED), (0.4, 1.0, 1.0, 1.0, 1.2, 1.6, 0.0),
        _curve((9.5, 6.0), (12.5, 2.5), width=1.3),
        _curve((9.5, 8.0), (12, 3.0), width=1.3), 0.7,
    ),
    StoreProfile(
        "Riverside", _week((9, 18), (9, 19), (9, 19)), (0.75, 0.75, 0.8, 0.85, 1.0, 1.6, 1.7),
        _curve((11, 2.0), (15, 5.0), width=1.4),
        _curve((12, 4.0), (15.5, 7.0), width=1.5), 0.6,
    ),
    StoreProfile(
        "Museum", (CLOSED,) + ((10, 18),) * 6, (0.0, 0.8, 0.85, 0.9, 1.0, 1.5, 1.6),
        _curve((11.5, 4.0), (14.5, 5.0), width=1.2),
        _curve((12, 5.0), (15, 6.0), width=1.4), 0.5,
    ),
    StoreProfile(
        "Park Lane", _week((7, 19), (8, 18), (8, 18)), _ORDINARY_WEEK,
        _curve((7.5, 5.0), (9.5, 5.0), (13, 2.5), width=1.1),
        _curve((9.5, 6.0), (13, 3.0), width=1.6), 0.8,
    ),
    StoreProfile(
        "Cinema Quarter", _week((12, 24), (11, 24), (11, 23)),
        (0.7, 0.75, 0.85, 1.0, 1.35, 1.6, 1.1),
        _curve((14, 1.5), (20, 6.0), width=1.6),
        _curve((15, 3.0), (20.5, 6.5), width=1.8), 0.7,
    ),
)  # fmt: skip


MONTH_VOLUME: tuple[float, ...] = (
    0.9, 0.92, 0.97, 1.0, 1.02, 1.0, 0.95, 0.94, 1.01, 1.03, 1.05, 1.14,
)  # fmt: skip
_MEAN_MONTH = sum(MONTH_VOLUME) / 12
# The live demo never goes quieter than this (receipts/s), so the dashboard moves within a few
# seconds at any hour; the extra receipts go to the stores open at that moment.
LIVE_FLOOR = 0.4


@dataclass(frozen=True, slots=True)
class Rhythm:
    """The traffic of a chain of `stores` stores: store n has the profile STORES[(n-1) % 12]
    (beyond 12 a copy at a size of its own). `cells[weekday][hour * stores + store - 1]` is
    that store's and hour's share of the weekday's receipts (they add up to 1)."""

    stores: int
    sizes: tuple[float, ...]
    day_weights: tuple[float, ...]  # the chain's volume per weekday; 1.0 on an average day
    cells: tuple[tuple[float, ...], ...]

    @classmethod
    def build(cls, stores: int) -> Rhythm:
        profiles = [profile_of(store) for store in range(1, stores + 1)]
        sizes = tuple(
            p.size
            if n <= len(STORES)
            else p.size * Random(f"coffeeshop-store:{n}").uniform(0.5, 1.5)
            for n, p in enumerate(profiles, start=1)
        )
        pairs = list(zip(sizes, profiles, strict=True))
        totals = [sum(size * p.days[wd] for size, p in pairs) for wd in range(7)]
        mean = sum(totals) / 7
        cells = []
        for wd in range(7):
            per_store = [p.hour_weights(wd) for p in profiles]
            cells.append(
                tuple(
                    sizes[i] * profiles[i].days[wd] * per_store[i][h] / totals[wd]
                    for h in range(24)
                    for i in range(stores)
                )
            )
        return cls(stores, sizes, tuple(t / mean for t in totals), tuple(cells))

    def hour_shares(self, weekday: int) -> tuple[float, ...]:
        """The share of a `weekday`'s receipts in each hour (they add up to 1)."""
        row, n = self.cells[weekday], self.stores
        return tuple(sum(row[h * n : h * n + n]) for h in range(24))

    def store_weights(self, weekday: int, hour: int) -> tuple[float, ...]:
        """How the receipts of an hour split over the stores (0: shut then)."""
        return self.cells[weekday][hour * self.stores : (hour + 1) * self.stores]

    def cell_cum(self, weekday: int) -> list[float]:
        return _cell_cum(self.stores, weekday)


def profile_of(store: int) -> StoreProfile:
    """The profile of store `store` (1-based; beyond the twelve, they repeat)."""
    return STORES[(store - 1) % len(STORES)]


@cache
def rhythm(stores: int) -> Rhythm:
    return Rhythm.build(stores)


@cache
def _cell_cum(stores: int, weekday: int) -> list[float]:
    return list(accumulate(rhythm(stores).cells[weekday]))


def day_volume(day: dt.date, stores: int = len(STORES)) -> float:
    """A day's relative volume (weekday × month; 1.0 on an average day of the year)."""
    return rhythm(stores).day_weights[day.weekday()] * MONTH_VOLUME[day.month - 1] / _MEAN_MONTH


def hour_shares(day: dt.date, stores: int = len(STORES)) -> tuple[float, ...]:
    """The share of `day`'s receipts in each hour of the day (they add up to 1)."""
    return rhythm(stores).hour_shares(day.weekday())


def hour_cut(until: dt.datetime) -> list[float]:
    """The part of each hour of `until`'s day before `until` (1, a fraction, then 0)."""
    into = (until.minute * 60 + until.second) / 3600
    return [1.0 if h < until.hour else into if h == until.hour else 0.0 for h in range(24)]


def cut_hours(shares: tuple[float, ...], until: dt.datetime) -> list[float]:
    """`shares` of the hours before `until` (the hour it falls in, pro rata)."""
    return [share * part for share, part in zip(shares, hour_cut(until), strict=True)]


@dataclass(frozen=True, slots=True)
class TrafficModel:
    """How many receipts arrive when: the rhythm the simulated history has, as a rate.

    `per_day` receipts on an average day over `stores` stores; a given day gets
    `per_day * day_volume(day)`, spread over its hours and stores by the profiles. The demo
    seeds its history from the same numbers (`expected`) and draws its live traffic from
    `rate`, so live receipts continue the history. `floor` (receipts/s) is the least the
    rate ever is: the live demo's floor keeps the dashboard moving at night.
    """

    per_day: float
    stores: int = len(STORES)
    floor: float = 0.0

    def __post_init__(self) -> None:
        if not self.per_day > 0:
            raise ValueError(f"per_day must be a positive number, got {self.per_day!r}")
        if not self.floor >= 0:
            raise ValueError(f"floor must be a number >= 0, got {self.floor!r}")

    def rate(self, moment: dt.datetime) -> float:
        """Expected receipts per second at `moment` (naive local time)."""
        day = moment.date()
        shares = hour_shares(day, self.stores)
        rhythm_rate = self.per_day * day_volume(day, self.stores) * shares[moment.hour] / 3600
        return max(self.floor, rhythm_rate)

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
