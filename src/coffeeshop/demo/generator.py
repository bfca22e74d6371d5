"""Realistic coffee-shop point-of-sale receipts: fast, reproducible, in the original shape.

Used by the demo, the tests and the benchmarks. Pure Python (standard library and
`bson`); imports nothing else from `coffeeshop`.

A receipt looks like the ones the shops' POS writes to MongoDB::

    {"_id": {"$oid": "6650c7e2a1b2c3d4e5f60718"}, "Store_ID": 3,
     "transactionDate": "2026-11-20", "transactionTime": "08:15:42", "total_price": 12.5,
     "items": [{"product_name": "Latte", "product_quantity": 2, "product_price": 4.2}]}

`ReceiptGenerator.iter_lines` writes them as MongoDB relaxed Extended JSON, one per line
(as `mongoexport` does), mixed on request with change events that replace or delete an
earlier receipt and with deliberately invalid receipts. `iter_documents` gives native
documents for `insert_many`. `write_jsonl` writes lines to a file, at full speed or at a
steady rate for a tailing reader.

Rhythms: receipts advance through a date range day by day; each day's volume follows the
weekday (weekends busier), the season and some day-to-day noise; within a day, hours
follow a curve (morning rush 7-9, lunch bump 12-13, quiet evenings, almost nothing 0-5;
weekends start later and peak mid-morning); stores differ in size; what people buy
depends on the time of day. Every money amount is computed in integer cents, so
`total_price` is exactly the sum of `product_quantity * product_price`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import accumulate, islice
from random import Random
from typing import Any

from bson import ObjectId

__all__ = [
    "INVALID_KINDS",
    "MENU",
    "Product",
    "ReceiptGenerator",
    "TrafficModel",
    "format_money",
    "write_jsonl",
    "write_live",
]


@dataclass(frozen=True, slots=True)
class Product:
    """One menu item: its name, its price in cents, its category and how popular it is."""

    name: str
    cents: int
    category: str
    popularity: float

    @property
    def price(self) -> float:
        return self.cents / 100


MENU: tuple[Product, ...] = (
    # Espresso drinks and coffee.
    Product("Espresso", 260, "coffee", 5.0),
    Product("Double Espresso", 320, "coffee", 2.5),
    Product("Americano", 310, "coffee", 7.0),
    Product("Cappuccino", 390, "coffee", 9.0),
    Product("Café Latte", 420, "coffee", 11.0),
    Product("Flat White", 400, "coffee", 6.0),
    Product("Cortado", 360, "coffee", 2.5),
    Product("Macchiato", 340, "coffee", 2.0),
    Product("Mocha", 460, "coffee", 3.5),
    Product("Caramel Macchiato", 480, "coffee", 3.0),
    Product("Iced Latte", 450, "cold", 3.5),
    Product("Cold Brew", 410, "cold", 3.0),
    Product("Filter Coffee", 240, "coffee", 5.5),
    Product("Hot Chocolate", 370, "sweet", 2.5),
    # Teas.
    Product("Chai Latte", 430, "tea", 3.0),
    Product("Matcha Latte", 490, "tea", 2.0),
    Product("English Breakfast Tea", 280, "tea", 2.5),
    Product("Earl Grey", 280, "tea", 1.8),
    Product("Green Tea", 290, "tea", 1.5),
    Product("Peppermint Tea", 270, "tea", 1.2),
    # Pastries and desserts.
    Product("Croissant", 295, "pastry", 6.0),
    Product("Pain au Chocolat", 325, "pastry", 3.5),
    Product("Blueberry Muffin", 310, "pastry", 3.0),
    Product("Cinnamon Roll", 355, "pastry", 2.5),
    Product("Banana Bread", 340, "pastry", 2.0),
    Product("Crème Brûlée", 550, "dessert", 1.2),
    Product("Chocolate Brownie", 320, "dessert", 2.0),
    # Breakfast and sandwiches.
    Product("Bagel with Cream Cheese", 415, "breakfast", 2.5),
    Product("Avocado Toast", 790, "breakfast", 2.0),
    Product("Ham & Cheese Toastie", 695, "sandwich", 3.0),
    Product("Caprese Panini", 745, "sandwich", 2.5),
    Product("Turkey Club", 825, "sandwich", 2.0),
    # Beans and bottles.
    Product("House Blend Beans 250g", 1250, "beans", 0.6),
    Product("Single Origin Ethiopia 250g", 1575, "beans", 0.3),
    Product("Orange Juice", 360, "cold", 1.5),
    Product("Sparkling Water", 195, "cold", 1.2),
)

# Share of quantities 1, 2 and 3 on a receipt line.
QUANTITY_WEIGHTS: tuple[float, ...] = (86.0, 10.0, 4.0)
_QUANTITIES = len(QUANTITY_WEIGHTS)
# Share of receipts with 1..6 lines.
LINE_COUNT_WEIGHTS: tuple[float, ...] = (38.0, 30.0, 16.0, 9.0, 5.0, 2.0)

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

# Dayparts: what sells depends on the hour. 0: morning (5-10), 1: lunch (11-14), 2: later.
_DAYPART_OF_HOUR: tuple[int, ...] = (2,) * 5 + (0,) * 6 + (1,) * 4 + (2,) * 9
_DAYPART_FACTOR: dict[str, tuple[float, float, float]] = {
    "coffee": (1.3, 0.8, 0.8),
    "cold": (0.5, 1.2, 1.3),
    "sweet": (0.7, 0.8, 1.5),
    "tea": (0.8, 0.8, 1.4),
    "pastry": (1.6, 0.6, 0.9),
    "dessert": (0.2, 1.0, 1.6),
    "breakfast": (1.8, 0.5, 0.2),
    "sandwich": (0.2, 3.0, 0.8),
    "beans": (1.0, 1.0, 1.0),
}

# Deliberately invalid receipts, in the order they are emitted (cycling).
INVALID_KINDS: tuple[str, ...] = (
    "negative_total",
    "missing_store",
    "impossible_date",
    "impossible_time",
    "empty_product_name",
    "zero_quantity",
    "items_not_a_list",
    "store_not_a_number",
)

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_LAST_OID_DAY = dt.date(2106, 2, 6)  # the 4-byte ObjectId timestamp runs out on 2106-02-07
_SECONDS_OF_HOUR: tuple[range, ...] = tuple(range(h * 3600, h * 3600 + 3600) for h in range(24))
_HOURS = range(24)
_POOL_LIMIT = 20_000  # receipts kept as targets for later updates and deletes
_LIVE_BATCH = 64
_INVALID_BIT = 1 << 63  # set in the counter part of the _id of invalid receipts only


def format_money(cents: int) -> str:
    """An amount in cents as a JSON number with at most 2 decimals: 420 -> "4.2", 300 -> "3.0".

    The text is exactly what `repr(cents / 100)` gives for any realistic amount, so the JSON
    number reads back as the same float a POS would have stored.
    """
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    if frac % 10 == 0:
        return f"{sign}{whole}.{frac // 10}"
    return f"{sign}{whole}.{frac:02d}"


class _MoneyText(dict[int, str]):
    """Cache: cents -> JSON text."""

    def __missing__(self, cents: int) -> str:
        text = self[cents] = format_money(cents)
        return text


_MONEY = _MoneyText()


@cache
def _clock_texts() -> tuple[str, ...]:
    """The text "HH:MM:SS" of each second of a day."""
    return tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))


@dataclass(slots=True)
class _Batch:
    """Draws for receipts that share a day (simulated) or a moment (live)."""

    day_seconds: int  # Unix time of the day's midnight (simulated); unused when live
    date: str
    seconds: list[int] | None  # second of the day of each receipt, sorted; None when live
    stores: list[int]
    line_counts: list[int]
    picks: list[int]  # menu line codes (product * 3 + quantity - 1), line_counts[i] per receipt


class ReceiptGenerator:
    """Reproducible receipts for `stores` shops over `days` days from `start`.

    The same arguments and seed give byte-identical output (in simulated mode). The
    generator has state: successive calls continue the `_id` counter, so receipts from
    several calls never share an `_id`, and updates and deletes may target receipts of
    earlier calls. Each call spreads its `count` receipts over the whole date range.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        stores: int = 20,
        start: dt.date | None = None,
        days: int = 365,
        update_share: float = 0.0,
        delete_share: float = 0.0,
        invalid_share: float = 0.0,
        live: bool = False,
        ids_until_now: bool = False,
        until: dt.datetime | None = None,
    ) -> None:
        """
        `start`: the first day (None: the `days` days ending today). `live`: stamp each
        receipt with the current local date and time when it is generated instead.
        `ids_until_now`: no ObjectId's time is later than the moment it is generated (for
        a MongoDB target: an `_id` from the future sorts above every real insert made
        before then); the receipt's own date and time are unchanged.
        `until` (naive local time on the last day): the last day ends there, its volume and
        hours cut to the part before that moment (a history that reaches "now").
        `update_share`, `delete_share`, `invalid_share`: the expected share of all emitted
        lines that are replace events, delete events and invalid receipts; the rest are new
        receipts. Their sum must be below 1.
        """
        if isinstance(stores, bool) or not isinstance(stores, int) or stores < 1:
            raise ValueError(f"stores must be an integer >= 1, got {stores!r}")
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"days must be an integer >= 1, got {days!r}")
        shares = {
            "update_share": update_share,
            "delete_share": delete_share,
            "invalid_share": invalid_share,
        }
        for name, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0.0 and 1.0, got {share!r}")
        extra = update_share + delete_share + invalid_share
        if extra >= 1.0:
            raise ValueError(
                "update_share + delete_share + invalid_share must be below 1.0 "
                f"(they are shares of all lines, the rest being new receipts), got {extra!r}"
            )
        if start is None:
            start = dt.date.today() - dt.timedelta(days=days - 1)
        if isinstance(start, dt.datetime):
            start = start.date()
        end = start + dt.timedelta(days=days - 1)
        if start < dt.date(1970, 1, 1) or end > _LAST_OID_DAY:
            raise ValueError(
                f"the date range {start}..{end} must lie within 1970-01-01..{_LAST_OID_DAY} "
                "(the span of an ObjectId timestamp)"
            )
        self.seed = seed
        self.stores = stores
        self.start = start
        self.days = days
        self.update_share = float(update_share)
        self.delete_share = float(delete_share)
        self.invalid_share = float(invalid_share)
        self.live = live
        self.ids_until_now = ids_until_now
        if until is not None and until.date() != end:
            raise ValueError(f"until must fall on the last day {end}, got {until!r}")
        self.until = until

        self._rng = Random(f"coffeeshop-receipts:{seed}")
        self._mix = Random(f"coffeeshop-changes:{seed}")
        setup = Random(f"coffeeshop-setup:{seed}")
        # Store sizes: a few big shops, many ordinary ones, some small kiosks.
        weights = [round(setup.lognormvariate(0.0, 0.55), 3) for _ in range(stores)]
        self.store_weights: tuple[float, ...] = tuple(weights)
        self._store_ids = list(range(1, stores + 1))
        self._store_cum = list(accumulate(weights))
        # _id: 4 bytes of seconds, then 8 bytes: 38 random bits from the seed and a counter.
        self._id_base = setup.getrandbits(38) << 24
        self._serial = 0
        self._invalid_serial = 0
        self._live_second = 0

        self._line_counts = list(range(1, len(LINE_COUNT_WEIGHTS) + 1))
        self._line_count_cum = list(accumulate(LINE_COUNT_WEIGHTS))
        self._hour_cum = (list(accumulate(WEEKDAY_HOURS)), list(accumulate(WEEKEND_HOURS)))
        # Menu line codes: product index * 3 + quantity - 1, with JSON text and cents.
        self._codes = list(range(len(MENU) * _QUANTITIES))
        self._fragments: list[str] = []
        self._line_cents: list[int] = []
        self._line_docs: list[tuple[str, int, float]] = []
        for product in MENU:
            name = json.dumps(product.name, ensure_ascii=False)
            price = format_money(product.cents)
            for quantity in range(1, _QUANTITIES + 1):
                self._fragments.append(
                    f'{{"product_name":{name},"product_quantity":{quantity},'
                    f'"product_price":{price}}}'
                )
                self._line_cents.append(product.cents * quantity)
                self._line_docs.append((product.name, quantity, product.price))
        total_q = sum(QUANTITY_WEIGHTS)
        self._code_cum = [
            list(
                accumulate(
                    product.popularity * _DAYPART_FACTOR[product.category][part] * weight / total_q
                    for product in MENU
                    for weight in QUANTITY_WEIGHTS
                )
            )
            for part in range(3)
        ]
        # Receipts that may still be updated or deleted: [oid, store, date, time, codes].
        self._pool: list[list[Any]] = []
        self._last: list[Any] | None = None

    @property
    def end(self) -> dt.date:
        """The last day of the simulated range."""
        return self.start + dt.timedelta(days=self.days - 1)

    # -- public API ------------------------------------------------------------------------------

    def iter_lines(self, count: int) -> Iterator[str]:
        """`count` new receipts as JSONL lines (no newline), mixed with the requested shares
        of replace events, delete events and invalid receipts."""
        _check_count(count)
        extra = self.update_share + self.delete_share + self.invalid_share
        if extra == 0.0:
            yield from self._insert_lines(count, None)
            return
        remember = self.update_share > 0.0 or self.delete_share > 0.0
        draw = self._mix.random
        sink: list[list[Any]] = []
        for line in self._insert_lines(count, sink):
            yield line
            record = sink.pop()
            self._last = record
            if remember:
                self._keep(record)
            r = draw()
            while r < extra:
                change = self._change_line(r)
                if change is not None:
                    yield change
                r = draw()

    def iter_documents(self, count: int) -> Iterator[dict[str, Any]]:
        """`count` new receipts as native documents for `insert_many` (ObjectId `_id`, float
        prices). Inserts only: the shares of changes and invalid receipts do not apply."""
        _check_count(count)
        line_docs = self._line_docs
        cents_of = self._line_cents
        base = self._id_base
        for batch in self._batches(count):
            pos = 0
            for store, n, (seconds, date, clock_text) in zip(
                batch.stores, batch.line_counts, self._stamps(batch), strict=True
            ):
                codes = batch.picks[pos : pos + n]
                pos += n
                serial = self._serial
                self._serial = serial + 1
                items = []
                cents = 0
                for code in codes:
                    name, quantity, price = line_docs[code]
                    items.append(
                        {"product_name": name, "product_quantity": quantity, "product_price": price}
                    )
                    cents += cents_of[code]
                if self.ids_until_now:
                    seconds = min(seconds, int(time.time()))
                yield {
                    "_id": ObjectId(f"{seconds << 64 | (base + serial):024x}"),
                    "Store_ID": store,
                    "transactionDate": date,
                    "transactionTime": clock_text,
                    "total_price": cents / 100,
                    "items": items,
                }

    # -- receipts --------------------------------------------------------------------------------

    def _batches(self, count: int) -> Iterator[_Batch]:
        """Random draws for `count` receipts: per day and hour (simulated), or small batches
        stamped when used (live)."""
        rng = self._rng
        choices = rng.choices
        if self.live:
            left = count
            while left > 0:
                n = min(left, _LIVE_BATCH)
                left -= n
                part = _DAYPART_OF_HOUR[time.localtime().tm_hour]
                yield self._draw(n, "", 0, None, part)
            return
        last = self.end
        for day, n_day in zip(self._days(), self._day_counts(count), strict=True):
            if not n_day:
                continue
            weekend = day.weekday() >= 5
            if day == last and self.until is not None:
                cut = _cut_hours(hour_shares(day), self.until)
                per_hour = Counter(choices(_HOURS, weights=cut, k=n_day))
            else:
                per_hour = Counter(choices(_HOURS, cum_weights=self._hour_cum[weekend], k=n_day))
            date = day.isoformat()
            day_seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86400
            for hour in _HOURS:
                n = per_hour[hour]
                if n:
                    span = _SECONDS_OF_HOUR[hour]
                    if day == last and self.until is not None and hour == self.until.hour:
                        upto = self.until.minute * 60 + self.until.second
                        span = range(span.start, span.start + max(1, upto))
                    seconds = choices(span, k=n)
                    seconds.sort()
                    yield self._draw(n, date, day_seconds, seconds, _DAYPART_OF_HOUR[hour])

    def _draw(
        self, n: int, date: str, day_seconds: int, seconds: list[int] | None, part: int
    ) -> _Batch:
        choices = self._rng.choices
        stores = choices(self._store_ids, cum_weights=self._store_cum, k=n)
        line_counts = choices(self._line_counts, cum_weights=self._line_count_cum, k=n)
        picks = choices(self._codes, cum_weights=self._code_cum[part], k=sum(line_counts))
        return _Batch(day_seconds, date, seconds, stores, line_counts, picks)

    def _days(self) -> Iterator[dt.date]:
        one = dt.timedelta(days=1)
        day = self.start
        for _ in range(self.days):
            yield day
            day += one

    def _day_counts(self, count: int) -> list[int]:
        """Split `count` over the days by weekday, month and noise (exactly, deterministically)."""
        gauss = self._rng.gauss
        weights = [
            day_volume(day) * max(0.5, gauss(1.0, 0.08)) * self._day_fraction(day)
            for day in self._days()
        ]
        total = sum(weights)
        counts = []
        done = 0
        running = 0.0
        for weight in weights:
            running += weight
            upto = min(count, round(count * running / total))
            counts.append(upto - done)
            done = upto
        counts[-1] += count - done
        return counts

    def _day_fraction(self, day: dt.date) -> float:
        """The share of `day`'s volume that the range covers (less than 1 on an `until` day)."""
        if self.until is None or day != self.end:
            return 1.0
        return sum(_cut_hours(hour_shares(day), self.until))

    def _stamps(self, batch: _Batch) -> Iterator[tuple[int, str, str]]:
        """(Unix seconds for the _id, date, time) of each receipt of `batch`, in order."""
        if batch.seconds is not None:
            clock = _clock_texts()
            for second in batch.seconds:
                yield batch.day_seconds + second, batch.date, clock[second]
            return
        yield from self._live_stamps(len(batch.stores))

    def _live_stamps(self, n: int) -> Iterator[tuple[int, str, str]]:
        """Stamps for `n` receipts from the local wall clock, taken as each one is generated;
        the _id seconds never go backwards, even when the clock does."""
        last_second = -1
        date = clock_text = ""
        for _ in range(n):
            second = int(time.time())
            if second != last_second:
                last_second = second
                local = time.localtime(second)
                date = f"{local.tm_year:04d}-{local.tm_mon:02d}-{local.tm_mday:02d}"
                clock_text = f"{local.tm_hour:02d}:{local.tm_min:02d}:{min(local.tm_sec, 59):02d}"
                self._live_second = max(self._live_second, second)
            yield self._live_second, date, clock_text

    def _insert_lines(self, count: int, sink: list[list[Any]] | None) -> Iterator[str]:
        """The new receipts as JSONL lines; each one's parts also go to `sink` when given."""
        fragments = self._fragments
        fragment_of = fragments.__getitem__
        cents_of = self._line_cents
        cents_get = cents_of.__getitem__
        money = _MONEY
        base = self._id_base
        join = ",".join
        store_ids = self._store_ids
        prefixes: list[str] = []
        prefix_date = None
        until_now = self.ids_until_now
        for batch in self._batches(count):
            picks = batch.picks
            pos = 0
            serial = self._serial
            for store, n, (seconds, date, clock_text) in zip(
                batch.stores, batch.line_counts, self._stamps(batch), strict=True
            ):
                if date != prefix_date:
                    prefix_date = date
                    prefixes = [""] + [
                        f'"}},"Store_ID":{s},"transactionDate":"{date}","transactionTime":"'
                        for s in store_ids
                    ]
                if n == 1:
                    code = picks[pos]
                    pos += 1
                    items = fragments[code]
                    cents = cents_of[code]
                else:
                    codes = picks[pos : pos + n]
                    pos += n
                    items = join(map(fragment_of, codes))
                    cents = sum(map(cents_get, codes))
                if until_now:
                    seconds = min(seconds, int(time.time()))
                oid = f"{seconds << 64 | (base + serial):024x}"
                serial += 1
                self._serial = serial
                if sink is not None:
                    sink.append([oid, store, date, clock_text, picks[pos - n : pos], seconds])
                yield (
                    f'{{"_id":{{"$oid":"{oid}{prefixes[store]}{clock_text}",'
                    f'"total_price":{money[cents]},"items":[{items}]}}'
                )

    def _render(self, oid: str, store: Any, date: str, clock_text: str, codes: list[int]) -> str:
        """One receipt as a JSON line, like `_insert_lines` writes it."""
        items = ",".join(self._fragments[code] for code in codes)
        cents = sum(self._line_cents[code] for code in codes)
        return (
            f'{{"_id":{{"$oid":"{oid}"}},"Store_ID":{store},"transactionDate":"{date}",'
            f'"transactionTime":"{clock_text}","total_price":{_MONEY[cents]},"items":[{items}]}}'
        )

    # -- changes and invalid receipts ------------------------------------------------------------

    def _keep(self, record: list[Any]) -> None:
        """Keep a new receipt as a possible target of later updates and deletes."""
        pool = self._pool
        if len(pool) < _POOL_LIMIT:
            pool.append(record)
        else:  # forget a random older one: it will simply never change
            pool[self._mix.randrange(_POOL_LIMIT)] = record

    def _change_line(self, r: float) -> str | None:
        """The extra line chosen by `r` (below the sum of the shares), or None when there
        is no receipt left to update or delete."""
        if r < self.update_share:
            return self._update_line()
        if r < self.update_share + self.delete_share:
            return self._delete_line()
        return self._invalid_line()

    def _update_line(self) -> str | None:
        pool = self._pool
        if not pool:
            return None
        mix = self._mix
        record = pool[mix.randrange(len(pool))]
        codes: list[int] = list(record[4])
        how = mix.random()
        if how < 0.15 and len(codes) < len(LINE_COUNT_WEIGHTS):
            codes.append(mix.randrange(len(MENU)) * _QUANTITIES)  # one more item
        elif how < 0.3 and len(codes) > 1:
            del codes[mix.randrange(len(codes))]  # an item taken off
        else:  # a quantity corrected
            at = mix.randrange(len(codes))
            product, index = divmod(codes[at], _QUANTITIES)
            index = (index + 1 + mix.randrange(_QUANTITIES - 1)) % _QUANTITIES
            codes[at] = product * _QUANTITIES + index
        record[4] = codes
        oid, store, date, clock_text = record[:4]
        document = self._render(oid, store, date, clock_text, codes)
        return (
            f'{{"operationType":"replace","documentKey":{{"_id":{{"$oid":"{oid}"}}}},'
            f'"fullDocument":{document}}}'
        )

    def _delete_line(self) -> str | None:
        pool = self._pool
        if not pool:
            return None
        at = self._mix.randrange(len(pool))
        record = pool[at]
        pool[at] = pool[-1]
        pool.pop()
        return f'{{"operationType":"delete","documentKey":{{"_id":{{"$oid":"{record[0]}"}}}}}}'

    def _invalid_line(self) -> str:
        """A receipt that breaks one validation rule (the kinds of INVALID_KINDS in turn),
        with an `_id` of its own that no valid receipt ever has."""
        assert self._last is not None
        _, store, date, clock_text, _, seconds = self._last
        mix = self._mix
        kind = INVALID_KINDS[self._invalid_serial % len(INVALID_KINDS)]
        serial = self._invalid_serial
        self._invalid_serial = serial + 1
        n = mix.choices(self._line_counts, cum_weights=self._line_count_cum)[0]
        codes = mix.choices(self._codes, cum_weights=self._code_cum[1], k=n)
        items: Any = []
        for code in codes:
            name, quantity, price = self._line_docs[code]
            items.append(
                {"product_name": name, "product_quantity": quantity, "product_price": price}
            )
        doc: dict[str, Any] = {
            "_id": {"$oid": f"{seconds << 64 | _INVALID_BIT | (self._id_base + serial):024x}"},
            "Store_ID": store,
            "transactionDate": date,
            "transactionTime": clock_text,
            "total_price": sum(self._line_cents[code] for code in codes) / 100,
            "items": items,
        }
        if kind == "negative_total":
            doc["total_price"] = -doc["total_price"]
        elif kind == "missing_store":
            del doc["Store_ID"]
        elif kind == "impossible_date":
            doc["transactionDate"] = "2023-02-30"
        elif kind == "impossible_time":
            doc["transactionTime"] = "25:00"
        elif kind == "empty_product_name":
            items[mix.randrange(len(items))]["product_name"] = ""
        elif kind == "zero_quantity":
            items[mix.randrange(len(items))]["product_quantity"] = 0
        elif kind == "items_not_a_list":
            doc["items"] = items[0]
        else:  # store_not_a_number
            doc["Store_ID"] = f"store-{store}"
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


# -- the rhythm of traffic -----------------------------------------------------------------------

_SHARES = tuple(tuple(w / sum(hours) for w in hours) for hours in (WEEKDAY_HOURS, WEEKEND_HOURS))
_MEAN_VOLUME = sum(WEEKDAY_VOLUME) / 7 * sum(MONTH_VOLUME) / 12


def day_volume(day: dt.date) -> float:
    """A day's relative volume (weekday × month; 1.0 on an average day of the year)."""
    return WEEKDAY_VOLUME[day.weekday()] * MONTH_VOLUME[day.month - 1] / _MEAN_VOLUME


def hour_shares(day: dt.date) -> tuple[float, ...]:
    """The share of `day`'s receipts in each hour of the day (they add up to 1)."""
    return _SHARES[day.weekday() >= 5]


def _cut_hours(shares: tuple[float, ...], until: dt.datetime) -> list[float]:
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


def write_live(
    path: str | os.PathLike[str],
    *,
    generator: ReceiptGenerator,
    model: TrafficModel,
    stop: threading.Event,
    tick: float = 0.25,
    seed: int | None = None,
    now: Callable[[], dt.datetime] = dt.datetime.now,
) -> int:
    """Append live traffic to `path` until `stop` is set: every `tick` seconds, the receipts
    `model` says arrived meanwhile (with the generator's shares of changes and invalid lines),
    stamped with the current local time. Returns the receipts written. `now` (local time) and
    `stop.wait` are the clock: a test runs a simulated day through them."""
    rng = Random(seed)
    written = 0
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            _write_all(fd, b"\n")
        last = now()
        while not stop.wait(tick):
            moment = now()
            n = poisson(rng, model.expected(last, moment)) if moment > last else 0
            last = moment
            if n:
                lines = list(generator.iter_lines(n))
                lines.append("")
                _write_all(fd, "\n".join(lines).encode("utf-8"))
                written += n
    finally:
        os.close(fd)
    return written


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an integer >= 0, got {count!r}")


# -- files ---------------------------------------------------------------------------------------

_CHUNK_LINES = 8192


def write_jsonl(
    path: str | os.PathLike[str],
    count: int,
    *,
    generator: ReceiptGenerator,
    append: bool = True,
    rate: float | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Write `generator.iter_lines(count)` to `path`, one line each; return the lines written.

    Appends by default (`append=False` truncates first); when appending to a file whose last
    line is unfinished, a newline ends it first so no line of ours is glued to it. Every
    write call writes whole lines, unbuffered, so a reader tailing the file sees complete
    lines only. `rate` (lines per second) writes steadily in small bursts, about 20 a
    second, instead of as fast as possible. Stops early once `stop` is set.
    """
    _check_count(count)
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be a positive number of lines per second, got {rate!r}")
    flags = os.O_CREAT | getattr(os, "O_BINARY", 0)
    flags |= os.O_RDWR | os.O_APPEND if append else os.O_WRONLY | os.O_TRUNC
    fd = os.open(path, flags, 0o644)
    lines = generator.iter_lines(count)
    written = 0
    try:
        if append:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                _write_all(fd, b"\n")
        if rate is None:
            while stop is None or not stop.is_set():
                chunk = list(islice(lines, _CHUNK_LINES))
                if not chunk:
                    break
                chunk.append("")
                _write_all(fd, "\n".join(chunk).encode("utf-8"))
                written += len(chunk) - 1
        else:
            burst = max(1, min(_CHUNK_LINES, round(rate / 20)))
            started = time.monotonic()
            while True:
                delay = started + written / rate - time.monotonic()
                if stop is not None:
                    if stop.wait(delay) if delay > 0 else stop.is_set():
                        break
                elif delay > 0:
                    time.sleep(delay)
                chunk = list(islice(lines, burst))
                if not chunk:
                    break
                chunk.append("")
                _write_all(fd, "\n".join(chunk).encode("utf-8"))
                written += len(chunk) - 1
    finally:
        lines.close()
        os.close(fd)
    return written


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
