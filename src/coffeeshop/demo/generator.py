"""Realistic coffee-shop point-of-sale receipts: fast, reproducible, in the original shape.

Used by the demo, the tests and the benchmarks. Generates text and documents in memory
(standard library and `bson`); `coffeeshop.demo.writer` writes them to files.

A receipt looks like the ones the shops' POS writes to MongoDB::

    {"_id": {"$oid": "6650c7e2a1b2c3d4e5f60718"}, "Store_ID": 3,
     "transactionDate": "2026-11-20", "transactionTime": "08:15:42", "total_price": 12.5,
     "items": [{"product_name": "Latte", "product_quantity": 2, "product_price": 4.2}]}

`ReceiptGenerator.iter_lines` gives them as MongoDB relaxed Extended JSON, one per line
(as `mongoexport` writes them), mixed on request with change events that replace or delete
an earlier receipt and with deliberately invalid receipts (`coffeeshop.demo.changes`).
`iter_documents` gives native documents for `insert_many`.

Rhythms (`coffeeshop.demo.traffic`): receipts advance through a date range day by day; each
day's volume follows the weekday, the season and some day-to-day noise; within a day, each
store sells only in its opening hours, along its own hour curve (the airport from dawn and
around the clock, the office park on weekdays, the cinema café in the evening), and stores
differ in size; what people buy depends on the time of day (`coffeeshop.demo.catalog`).
Dates and times are local wall-clock times in the given zone (the configured
`COFFEESHOP_TIMEZONE`, by default the machine's). Every money amount is
computed in integer cents, so `total_price` is exactly the sum of `product_quantity *
product_price`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import cache
from random import Random
from typing import Any

from bson import ObjectId

from coffeeshop.demo.catalog import DAYPART_OF_HOUR, MONEY, MenuLines
from coffeeshop.demo.changes import Changes
from coffeeshop.demo.checks import check_count, check_options, local_now
from coffeeshop.demo.traffic import day_volume, hour_cut, rhythm

__all__ = ["ReceiptGenerator", "check_count"]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_SECONDS_OF_HOUR: tuple[range, ...] = tuple(range(h * 3600, h * 3600 + 3600) for h in range(24))
_HOURS = range(24)
_LIVE_BATCH = 64


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
        zone: dt.tzinfo | None = None,
    ) -> None:
        """
        `zone`: the time zone of the receipts' dates and times (None: the machine's).
        `start`: the first day (None: the `days` days ending today). `live`: stamp each
        receipt with the current date and time in `zone` when it is generated instead.
        `ids_until_now`: no ObjectId's time is later than the moment it is generated (for
        a MongoDB target: an `_id` from the future sorts above every real insert made
        before then); the receipt's own date and time are unchanged.
        `until` (naive local time on the last day): the last day ends there, its volume and
        hours cut to the part before that moment (a history that reaches "now"). A range
        that ends today ends now when `until` is not given: no receipt from the future.
        `update_share`, `delete_share`, `invalid_share`: the expected share of all emitted
        lines that are replace events, delete events and invalid receipts; the rest are new
        receipts. Their sum must be below 1.
        """
        shares = {
            "update_share": update_share,
            "delete_share": delete_share,
            "invalid_share": invalid_share,
        }
        now = local_now(zone)
        start = check_options(stores, days, start, until, shares, now.date())
        if until is None and not live and start + dt.timedelta(days=days - 1) == now.date():
            until = now
        self.seed = seed
        self.stores = stores
        self.start = start
        self.days = days
        self.update_share = float(update_share)
        self.delete_share = float(delete_share)
        self.invalid_share = float(invalid_share)
        self.live = live
        self.ids_until_now = ids_until_now
        self.until = until
        self.zone = zone
        self._seeded(seed, stores)

    def _seeded(self, seed: int, stores: int) -> None:
        """The random streams and the stores' profiles: the same seed, the same receipts."""
        self._rng = Random(f"coffeeshop-receipts:{seed}")
        setup = Random(f"coffeeshop-setup:{seed}")
        # Stores, their sizes, hours and curves: the profiles of `coffeeshop.demo.traffic`.
        self._rhythm = rhythm(stores)
        self._store_ids = list(range(1, stores + 1))
        self._cells = range(24 * stores)
        # _id: 4 bytes of seconds, then 8 bytes: 38 random bits from the seed and a counter.
        self._id_base = setup.getrandbits(38) << 24
        self._serial = 0
        self._live_second = 0
        self._lines = MenuLines.build()
        shares_of_changes = (self.update_share, self.delete_share)
        self._changes = Changes(seed, self._id_base, self._lines, *shares_of_changes)

    @property
    def end(self) -> dt.date:
        """The last day of the simulated range."""
        return self.start + dt.timedelta(days=self.days - 1)

    # -- public API ------------------------------------------------------------------------------

    def iter_lines(self, count: int) -> Generator[str, None, None]:
        """`count` new receipts as JSONL lines (no newline), mixed with the requested shares
        of replace events, delete events and invalid receipts."""
        check_count(count)
        extra = self.update_share + self.delete_share + self.invalid_share
        if extra == 0.0:
            yield from self._insert_lines(count, None)
            return
        remember = self.update_share > 0.0 or self.delete_share > 0.0
        changes = self._changes
        draw = changes.mix.random
        sink: list[list[Any]] = []
        for line in self._insert_lines(count, sink):
            yield line
            record = sink.pop()
            changes.last = record
            if remember:
                changes.keep(record)
            r = draw()
            while r < extra:
                change = changes.line(r)
                if change is not None:
                    yield change
                r = draw()

    def iter_documents(self, count: int) -> Iterator[dict[str, Any]]:
        """`count` new receipts as native documents for `insert_many` (ObjectId `_id`, float
        prices). Inserts only: the shares of changes and invalid receipts do not apply."""
        check_count(count)
        line_docs = self._lines.docs
        cents_of = self._lines.cents
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
        if self.live:
            left = count
            while left > 0:
                n = min(left, _LIVE_BATCH)
                left -= n
                now = local_now(self.zone)
                weights = self._rhythm.store_weights(now.weekday(), now.hour)
                stores = self._rng.choices(self._store_ids, weights=weights, k=n)
                yield self._draw(stores, "", 0, None, DAYPART_OF_HOUR[now.hour])
            return
        for day, n_day in zip(self._days(), self._day_counts(count), strict=True):
            if n_day:
                yield from self._day_batches(day, n_day)

    def _day_batches(self, day: dt.date, n_day: int) -> Iterator[_Batch]:
        """A day's `n_day` receipts, hour by hour: each store and hour gets its share of the
        day (none outside the store's opening hours); an `until` day ends at `until`."""
        choices = self._rng.choices
        n_stores = self.stores
        until = self.until if day == self.end else None
        if until is None:
            cells = choices(self._cells, cum_weights=self._rhythm.cell_cum(day.weekday()), k=n_day)
        else:
            cut = hour_cut(until)
            row = self._rhythm.cells[day.weekday()]
            weights = [w * cut[i // n_stores] for i, w in enumerate(row)]
            cells = choices(self._cells, weights=weights, k=n_day)
        per_hour: list[list[int]] = [[] for _ in _HOURS]
        for cell in cells:  # in the order drawn: the stores of an hour stay shuffled
            per_hour[cell // n_stores].append(cell % n_stores + 1)
        date = day.isoformat()
        day_seconds = (day.toordinal() - _EPOCH_ORDINAL) * 86400
        for hour, stores in enumerate(per_hour):
            if stores:
                span = _SECONDS_OF_HOUR[hour]
                if until is not None and hour == until.hour:
                    upto = until.minute * 60 + until.second
                    span = range(span.start, span.start + max(1, upto))
                seconds = choices(span, k=len(stores))
                seconds.sort()
                yield self._draw(stores, date, day_seconds, seconds, DAYPART_OF_HOUR[hour])

    def _draw(
        self, stores: list[int], date: str, day_seconds: int, seconds: list[int] | None, part: int
    ) -> _Batch:
        choices = self._rng.choices
        lines = self._lines
        n = len(stores)
        line_counts = choices(lines.line_counts, cum_weights=lines.line_count_cum, k=n)
        picks = choices(lines.codes, cum_weights=lines.code_cum[part], k=sum(line_counts))
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
            day_volume(day, self.stores) * max(0.5, gauss(1.0, 0.08)) * self._day_fraction(day)
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
        cut = hour_cut(self.until)
        row = self._rhythm.cells[day.weekday()]
        return sum(w * cut[i // self.stores] for i, w in enumerate(row))

    def _stamps(self, batch: _Batch) -> Iterator[tuple[int, str, str]]:
        """(Unix seconds for the _id, date, time) of each receipt of `batch`, in order."""
        if batch.seconds is not None:
            clock = _clock_texts()
            for second in batch.seconds:
                yield batch.day_seconds + second, batch.date, clock[second]
            return
        yield from self._live_stamps(len(batch.stores))

    def _live_stamps(self, n: int) -> Iterator[tuple[int, str, str]]:
        """Stamps for `n` receipts from the wall clock in `zone`, taken as each one is
        generated; the _id seconds never go backwards, even when the clock does."""
        last_second = -1
        date = clock_text = ""
        for _ in range(n):
            second = int(time.time())
            if second != last_second:
                last_second = second
                local = dt.datetime.fromtimestamp(second, self.zone)
                date = local.date().isoformat()
                clock_text = f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
                self._live_second = max(self._live_second, second)
            yield self._live_second, date, clock_text

    def _insert_lines(self, count: int, sink: list[list[Any]] | None) -> Iterator[str]:
        """The new receipts as JSONL lines; each one's parts also go to `sink` when given."""
        fragments = self._lines.fragments
        fragment_of = fragments.__getitem__
        cents_of = self._lines.cents
        cents_get = cents_of.__getitem__
        money = MONEY
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
