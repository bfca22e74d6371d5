"""The shared retry policy (`coffeeshop.retry`) and the shared micro-batch clock
(`coffeeshop.sources.batching`), on their own; the adapters' use of them is covered end
to end by test_mongo (the source) and test_outages (the store, through a cut proxy)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from coffeeshop import retry
from coffeeshop.core.events import Skip
from coffeeshop.retry import Retrying, RetryPolicy
from coffeeshop.sources import batching
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.batching import MicroBatch


class Recorder:
    """A stop signal whose waits return at once and are recorded; set after `stop_after` waits."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    def is_set(self) -> bool:
        return self.stop_after is not None and len(self.waits) >= self.stop_after

    def wait(self, timeout: float, /) -> bool:
        self.waits.append(round(timeout, 3))
        return self.is_set()


class Fatal(Exception):
    pass


class Retryable(Exception):
    pass


class GaveUp(Exception):
    pass


class Halted(Exception):
    pass


class Adapter(Retrying):
    """An adapter as the store and the MongoDB source write one: classification and words."""

    def __init__(self, policy: RetryPolicy, stop: Recorder) -> None:
        super().__init__(policy, stop)
        self.lines: list[str] = []

    def retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, Retryable)

    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        self.lines.append(f"{what}: retry {self.failures} in {delay:.2f} s ({exc})")

    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        return GaveUp(f"{what}: {exc} ({'exhausted' if exhausted else 'fatal'})")

    def stopped(self, exc: BaseException, what: str) -> BaseException:
        return Halted(what)


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)


def failing(errors: list[Exception], result: str = "done") -> tuple[list[int], Callable[[], str]]:
    calls = [0]

    def action() -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return result

    return calls, action


def test_backoff_doubles_to_its_cap_and_logs_each_retry(no_jitter: None) -> None:
    stop = Recorder()
    adapter = Adapter(RetryPolicy(attempts=None, first_delay=0.5, max_delay=3.0), stop)
    calls, action = failing([Retryable(f"#{n}") for n in range(1, 7)])
    assert adapter.call(action, "read") == "done"
    assert calls[0] == 7
    assert stop.waits == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert adapter.lines[0] == "read: retry 1 in 0.50 s (#1)"
    assert adapter.lines[5] == "read: retry 6 in 3.00 s (#6)"


def test_jitter_stays_between_half_and_the_full_delay() -> None:
    policy = RetryPolicy(first_delay=1.0, max_delay=8.0)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert max(delays) - min(delays) > 0.5  # not one fixed value


def test_attempts_count_the_first_call_and_then_give_up(no_jitter: None) -> None:
    stop = Recorder()
    adapter = Adapter(RetryPolicy(attempts=3), stop)
    calls, action = failing([Retryable(f"#{n}") for n in range(1, 10)])
    with pytest.raises(GaveUp, match=r"^write: #3 \(exhausted\)$"):
        adapter.call(action, "write")
    assert calls[0] == 3
    assert len(stop.waits) == 2 and len(adapter.lines) == 2
    assert adapter.retries == 2


def test_an_error_that_is_not_retryable_raises_at_once_without_waiting() -> None:
    stop = Recorder()
    adapter = Adapter(RetryPolicy(attempts=None), stop)
    calls, action = failing([Retryable("blip"), Fatal("bad password")])
    with pytest.raises(GaveUp, match=r"^connect: bad password \(fatal\)$"):
        adapter.call(action, "connect")
    assert calls[0] == 2 and len(stop.waits) == 1


def test_a_stop_during_the_wait_ends_the_retries() -> None:
    stop = Recorder(stop_after=2)
    adapter = Adapter(RetryPolicy(attempts=None), stop)
    calls, action = failing([Retryable(f"#{n}") for n in range(1, 10)])
    with pytest.raises(Halted):
        adapter.call(action, "poll")
    assert calls[0] == 2


def test_errors_outside_catch_and_in_passthrough_propagate_as_they_are() -> None:
    adapter = Adapter(RetryPolicy(attempts=None), Recorder())
    _, action = failing([KeyError("not a database error")])
    with pytest.raises(KeyError):
        adapter.call(action, catch=(Retryable,))
    _, action = failing([Retryable("mine, but let through")])
    with pytest.raises(Retryable):
        adapter.call(action, passthrough=(Retryable,))


def test_progress_starts_the_count_again(no_jitter: None) -> None:
    """A reading loop: two failures, progress, two failures: never more than two in a row."""
    stop = Recorder()
    adapter = Adapter(RetryPolicy(attempts=3, first_delay=1.0), stop)
    for _ in range(2):
        adapter.failed(Retryable("a"), "read")
        adapter.failed(Retryable("b"), "read")
        adapter.succeeded()
    assert stop.waits == [1.0, 2.0, 1.0, 2.0]
    adapter.failed(Retryable("c"), "read")
    adapter.failed(Retryable("d"), "read")
    with pytest.raises(GaveUp):
        adapter.failed(Retryable("e"), "read")


# -- micro-batching -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(n: int) -> Skip:
    return Skip(note=f"event {n}", where=f"line {n}")


def test_a_batch_closes_at_max_events() -> None:
    batch = MicroBatch(BatchLimits(max_events=3, max_wait=3600))
    assert [batch.add(event(n)) for n in range(3)] == [False, False, True]
    assert len(batch) == 3
    assert [e.where for e in batch.take()] == ["line 0", "line 1", "line 2"]
    assert not batch and batch.take() == []


def test_a_batch_closes_max_wait_after_its_first_event(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(batching.time, "monotonic", clock)
    batch = MicroBatch(BatchLimits(max_events=100, max_wait=0.2))
    clock.now += 10.0  # time before the first event does not count
    assert batch.add(event(1)) is False
    clock.now += 0.15
    assert batch.add(event(2)) is False
    clock.now += 0.05
    assert batch.add(event(3)) is True
    batch.take()
    assert batch.add(event(4)) is False  # the next batch's clock starts at its first event


def test_a_bulk_read_is_cut_by_count_only(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(batching.time, "monotonic", clock)
    batch = MicroBatch(BatchLimits(max_events=2, max_wait=0.2), timed=False)
    assert batch.add(event(1)) is False
    clock.now += 60.0
    assert batch.add(event(2)) is True
