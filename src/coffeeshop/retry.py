"""One retry policy for every adapter: exponential backoff with jitter, a cap, a number of
attempts (or for ever), a log line per retry, and a stop signal that ends the wait.

An adapter (the store in the engine, the MongoDB source) subclasses `Retrying` and says
only what is its own: which errors are worth another attempt (`retryable`), the log
line of a retry (`announce`), the error raised when retrying ends (`give_up`) or when a
stop is requested during a wait (`stopped`). The loop, the counting and the waits are
here, once:

    retrying = StoreRetrying(RetryPolicy(attempts=8), stop, store, report)
    retrying.call(action, catch=(StoreError,))   # retryable: `StoreError.transient`

or, in a loop that reads (a generator cannot be wrapped in a call):

    except Exception as exc:
        retrying.failed(exc, "read the snapshot")   # waits, or raises
    ...
    retrying.succeeded()                            # progress: the count starts again
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")


class StopSignal(Protocol):
    """What a long-running loop watches to stop: `threading.Event`, the read-ahead child's
    stop (which also fires when the parent dies), a test's recording stop.

    `wait(timeout)` sleeps up to `timeout` seconds, returning early (True) once stopped."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float, /) -> bool: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: the n-th retry waits `first_delay * 2**(n-1)`
        seconds, capped at `max_delay`, times a random factor in [0.5, 1) (jitter, so that
        many clients do not retry in step). `attempts`: calls in all, the first included,
        before the error is raised; None: retry for ever. `within`: also give up when the next
    attempt would start more than that many seconds after the first failed one started (a
    one-shot command's answer to an unreachable server comes in bounded time)."""

    attempts: int | None = 8
    first_delay: float = 0.5
    max_delay: float = 30.0
    within: float | None = None  # seconds: no attempt starts later than this after the first

    def delay(self, retry: int) -> float:
        base = min(self.max_delay, self.first_delay * 2 ** (retry - 1))
        return base * random.uniform(0.5, 1.0)


class Retrying(ABC):
    """The retries of one operation: the failures since its last progress, and what
    happens after the next one. Subclasses give the adapter's side (see the module)."""

    def __init__(self, policy: RetryPolicy, stop: StopSignal) -> None:
        self.policy = policy
        self.stop = stop
        self.failures = 0  # since the last success
        self.started = time.monotonic()  # when the current attempt started
        self.first_started = self.started  # when the first failed attempt since a success did
        self.took = 0.0  # how long the attempt that just failed took

    # -- the adapter's side ----------------------------------------------------------------------

    @abstractmethod
    def retryable(self, exc: BaseException) -> bool:
        """Whether another attempt may succeed (a lost connection, a deadlock, …)."""

    @abstractmethod
    def announce(self, exc: BaseException, what: str, delay: float) -> None:
        """Log one line for the retry about to wait `delay` s (`self.failures`: its number)."""

    @abstractmethod
    def give_up(self, exc: BaseException, what: str, *, exhausted: bool) -> BaseException:
        """The error to raise: `exc` is not retryable, or (`exhausted`) the attempts ran out."""

    @abstractmethod
    def stopped(self, exc: BaseException, what: str) -> BaseException:
        """The error to raise when a stop is requested while waiting to retry."""

    # -- the policy --------------------------------------------------------------------------------

    @property
    def retries(self) -> int | None:
        """Retries allowed after the first failure; None: for ever."""
        attempts = self.policy.attempts
        return None if attempts is None else attempts - 1

    def failed(self, exc: BaseException, what: str = "") -> None:
        """After a failure of `what`: wait before the next attempt, or raise (the error is
        not retryable, the attempts ran out, or a stop was requested while waiting)."""
        if not self.retryable(exc):
            raise self.give_up(exc, what, exhausted=False) from None
        now = time.monotonic()
        self.took = now - self.started
        if self.failures == 0:
            self.first_started = self.started
        self.failures += 1
        attempts, within = self.policy.attempts, self.policy.within
        delay = self.policy.delay(self.failures)
        if (attempts is not None and self.failures >= attempts) or (
            within is not None and now + delay - self.first_started > within
        ):
            raise self.give_up(exc, what, exhausted=True) from None
        self.announce(exc, what, delay)
        if self.stop.wait(delay):
            raise self.stopped(exc, what) from None
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        """Seconds since the first failed attempt since the last success started."""
        return time.monotonic() - self.first_started

    def succeeded(self) -> None:
        """Progress was made: the next failure is a first one again."""
        self.failures = 0
        self.started = time.monotonic()

    def call(
        self,
        action: Callable[[], T],
        what: str = "",
        *,
        catch: tuple[type[Exception], ...] = (Exception,),
        passthrough: tuple[type[Exception], ...] = (),
    ) -> T:
        """`action()`, retried after failures of the types in `catch` (the others, and
        those in `passthrough`, propagate as they are)."""
        while True:
            try:
                return action()
            except passthrough:
                raise
            except catch as exc:
                self.failed(exc, what)
