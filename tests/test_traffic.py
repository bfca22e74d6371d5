"""The demo's live traffic continues the seeded history: the same receipts per day, the same
hour-of-day and weekday rhythm (issue: 25 receipts/s stamped with the current hour drowned the
history within minutes). A simulated day runs the demo's writer (`write_live`) on a fake clock
and is compared with the history the demo seeds."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.options import DemoOptions
from coffeeshop.demo.traffic import STORES, TrafficModel, poisson, profile_of
from coffeeshop.demo.writer import write_live

PER_DAY = 3000  # the demo's default
TICK = 60.0  # simulated seconds between two writes


class SimulatedClock(threading.Event):
    """`stop.wait(tick)` advances the simulated time instead of sleeping; set after a day.
    Records how many lines the file holds after each tick, by simulated hour."""

    def __init__(self, start: dt.datetime, path: Path) -> None:
        super().__init__()
        self.moment = start
        self.end = start + dt.timedelta(days=1)
        self.path = path
        self.per_hour: Counter[int] = Counter()
        self._lines = 0
        self._hour = start.hour

    def now(self) -> dt.datetime:
        return self.moment

    def wait(self, timeout: float | None = None) -> bool:
        lines = self.path.read_bytes().count(b"\n") if self.path.exists() else 0
        self.per_hour[self._hour] += lines - self._lines
        self._lines = lines
        self._hour = self.moment.hour
        self.moment += dt.timedelta(seconds=timeout or 0)
        if self.moment > self.end:
            self.set()
        return self.is_set()


def history_by_weekday_and_hour(weeks: int) -> tuple[Counter[tuple[int, int]], Counter[int]]:
    """What the demo seeds: `PER_DAY` receipts a day on average over `weeks` weeks."""
    start = dt.date(2026, 9, 7)  # a Monday
    model = TrafficModel(PER_DAY)
    end = dt.datetime.combine(start + dt.timedelta(weeks=weeks), dt.time())
    count = round(model.expected(dt.datetime.combine(start, dt.time()), end))
    generator = ReceiptGenerator(seed=1, stores=12, start=start, days=weeks * 7)
    cells: Counter[tuple[int, int]] = Counter()
    days: Counter[int] = Counter()
    for line in generator.iter_lines(count):
        doc = json.loads(line)
        day = dt.date.fromisoformat(doc["transactionDate"])
        cells[day.weekday(), int(doc["transactionTime"][:2])] += 1
        days[day.weekday()] += 1
    return cells, Counter({wd: n // weeks for wd, n in days.items()})


HISTORY, HISTORY_DAYS = history_by_weekday_and_hour(8)


@pytest.mark.parametrize(
    "day", [dt.date(2026, 11, 30), dt.date(2026, 12, 3), dt.date(2026, 12, 5)], ids=str
)
def test_a_simulated_day_of_live_traffic_has_the_historys_rhythm(
    day: dt.date, tmp_path: Path
) -> None:
    path = tmp_path / "live.jsonl"
    clock = SimulatedClock(dt.datetime.combine(day, dt.time()), path)
    generator = ReceiptGenerator(seed=5, stores=12, live=True)
    written = write_live(
        path,
        generator=generator,
        model=TrafficModel(PER_DAY),
        stop=clock,
        tick=TICK,
        seed=7,
        now=clock.now,
    )
    assert sum(clock.per_hour.values()) == written == path.read_bytes().count(b"\n")

    # The day's volume: what the history has on that weekday (±4 σ of Poisson and day noise).
    weekday = day.weekday()
    expected = HISTORY_DAYS[weekday] * (1.05 / 1.0)  # December's volume vs the history's autumn
    assert abs(written - expected) < 0.15 * expected, (written, expected)

    # The hours: the history's share per hour of that weekday, within sampling noise.
    history = {h: HISTORY[weekday, h] for h in range(24)}
    total_history = sum(history.values())
    distance = (
        sum(abs(clock.per_hour[h] / written - history[h] / total_history) for h in range(24)) / 2
    )
    assert distance < 0.08, f"total variation {distance:.3f} from the history's hours"
    live_peak = max(range(24), key=lambda h: clock.per_hour[h])
    history_peaks = sorted(range(24), key=lambda h: -history[h])[:2]
    assert live_peak in history_peaks, (live_peak, history_peaks)
    night = sum(clock.per_hour[h] for h in range(0, 4))
    assert night < 0.02 * written  # 00:00-04:00: only the airport, as in the history


def test_seeded_history_stops_at_now_and_matches_the_model() -> None:
    until = dt.datetime(2026, 11, 30, 13, 40, 12)
    model = TrafficModel(PER_DAY)
    start = dt.datetime(2026, 10, 1)
    count = round(model.expected(start, until))
    generator = ReceiptGenerator(
        seed=1,
        stores=12,
        start=start.date(),
        days=(until.date() - start.date()).days + 1,
        until=until,
    )
    stamps = [
        (doc["transactionDate"], doc["transactionTime"])
        for doc in map(json.loads, generator.iter_lines(count))
    ]
    assert len(stamps) == count
    assert max(stamps) <= (until.date().isoformat(), until.time().isoformat())
    today = sum(1 for date, _ in stamps if date == "2026-11-30")
    assert abs(today - model.expected(dt.datetime(2026, 11, 30), until)) < 0.25 * today
    with pytest.raises(ValueError, match="until must fall on the last day"):
        ReceiptGenerator(start=dt.date(2026, 11, 1), days=3, until=until)


def test_rate_follows_hour_and_weekday() -> None:
    model = TrafficModel(PER_DAY)
    monday_8 = model.rate(dt.datetime(2026, 11, 30, 8, 30))
    monday_3 = model.rate(dt.datetime(2026, 11, 30, 3, 30))
    saturday_10 = model.rate(dt.datetime(2026, 12, 5, 10, 30))
    assert monday_8 > 10 * monday_3  # at 03:00 only the airport trades
    assert saturday_10 > model.rate(dt.datetime(2026, 12, 5, 7, 30))
    day = model.expected(dt.datetime(2026, 11, 30), dt.datetime(2026, 12, 1))
    assert 0.85 * PER_DAY < day < 1.15 * PER_DAY
    with pytest.raises(ValueError):
        TrafficModel(0)


def test_poisson_has_the_requested_mean() -> None:
    import random

    rng = random.Random(3)
    for mean in (0.05, 3.0, 400.0):
        draws = [poisson(rng, mean) for _ in range(4000)]
        assert abs(sum(draws) / len(draws) - mean) < 5 * (mean / 4000) ** 0.5 + 1e-9
    assert poisson(rng, 0.0) == 0


# -- the stores' profiles (issue 21.4) ------------------------------------------------------------


def test_every_hour_of_every_weekday_has_an_open_store_and_nights_only_round_the_clock_ones() -> (
    None
):
    for weekday in range(7):
        for hour in range(24):
            open_now = [p.name for p in STORES if p.is_open(weekday, hour)]
            assert open_now, (weekday, hour)
            if hour < 4:  # 00:00-04:00: only the stores open then, the airport
                assert open_now == ["Airport"], (weekday, hour, open_now)
    shut = {p.name for p in STORES if p.days[6] == 0}
    assert "Office Park" in shut  # an office district is quiet at weekends
    assert STORES[0].hours[0][0] == 0 and STORES[3].hours[0][0] >= 7  # the airport opens first


def busiest_hour(cells: Counter[tuple[int, int]], store: int) -> int:
    """The store's hour with the most receipts (the earliest of a tie)."""
    return max(range(24), key=lambda hour: cells[store, hour])


def test_no_store_trades_outside_its_hours_and_peak_hours_differ() -> None:

    start = dt.date(2026, 10, 5)  # a Monday; four weeks
    generator = ReceiptGenerator(seed=2, stores=12, start=start, days=28)
    cells: Counter[tuple[int, int]] = Counter()  # (store, hour) on weekdays
    per_store_weekday: Counter[tuple[int, int]] = Counter()
    for line in generator.iter_lines(60_000):
        doc = json.loads(line)
        weekday = dt.date.fromisoformat(doc["transactionDate"]).weekday()
        hour = int(doc["transactionTime"][:2])
        store = doc["Store_ID"]
        assert profile_of(store).is_open(weekday, hour), (profile_of(store).name, weekday, hour)
        per_store_weekday[store, weekday] += 1
        if weekday < 5:
            cells[store, hour] += 1
    peaks = {STORES[s - 1].name: busiest_hour(cells, s) for s in range(1, 13)}

    assert len(set(peaks.values())) >= 5, peaks
    assert peaks["Airport"] <= 7 and peaks["Cinema Quarter"] >= 18, peaks
    assert per_store_weekday[3, 6] == 0 and per_store_weekday[10, 0] == 0  # shut days
    assert all(per_store_weekday[s, 2] > 0 for s in range(1, 13))  # all trade on a Wednesday


def test_live_traffic_at_night_moves_the_dashboard_within_10_s() -> None:
    """Started at 00:18 the demo used to get one receipt in 21 minutes. The live rate has a
    floor: within 9 s (the dashboard polls every 0.5 s) at least 3 receipts are expected, so
    the chance of none is e^-3 < 5 %; the rhythm alone would give almost nothing."""
    options = DemoOptions(directory=Path("unused"))
    live = TrafficModel(options.per_day, options.stores, floor=options.live_floor)
    rhythm_only = TrafficModel(options.per_day, options.stores)
    for night in (dt.datetime(2026, 12, 7, 0, 18), dt.datetime(2026, 12, 5, 3, 30)):
        assert live.expected(night, night + dt.timedelta(seconds=9)) >= 3.0
        assert rhythm_only.expected(night, night + dt.timedelta(seconds=9)) < 0.1
    # By day the rhythm may exceed the floor; the floor never lowers the rate.
    busy = TrafficModel(100_000, 12, floor=options.live_floor)
    monday_8 = dt.datetime(2026, 11, 30, 8, 30)
    assert busy.rate(monday_8) == TrafficModel(100_000, 12).rate(monday_8) > options.live_floor


def test_live_receipts_at_night_go_to_the_stores_open_then() -> None:
    """The clock is injected through the zone: one where it is 02:30 now."""
    utc = dt.datetime.now(dt.UTC)
    target = utc.replace(hour=2, minute=30)
    offset = target - utc
    while offset > dt.timedelta(hours=12):
        offset -= dt.timedelta(days=1)
    while offset < -dt.timedelta(hours=12):
        offset += dt.timedelta(days=1)
    zone = dt.timezone(offset)
    generator = ReceiptGenerator(seed=9, stores=12, live=True, zone=zone)
    docs = [json.loads(line) for line in generator.iter_lines(500)]
    for doc in docs:
        assert doc["transactionTime"][:2] in ("02", "03"), doc  # the zone's time, not the machine's
        weekday = dt.date.fromisoformat(doc["transactionDate"]).weekday()
        hour = int(doc["transactionTime"][:2])
        assert profile_of(doc["Store_ID"]).is_open(weekday, hour)
    assert {doc["Store_ID"] for doc in docs} == {1}  # only the airport trades at 02:30
